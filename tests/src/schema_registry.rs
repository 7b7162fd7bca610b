//! A Confluent-compatible Schema Registry for the tests: the documented subset of the
//! REST API, in memory, over real HTTP on a free loopback port.
//!
//! It stands in for Confluent's registry (and Karapace), which cannot be installed on the
//! machines these tests run on. The other side of every test that uses it is a real
//! client — weir's (`weir-schema-registry`) and confluent-kafka's Python
//! `SchemaRegistryClient` — so it answers as the API documents, as far as those clients
//! use it:
//!
//! | call | answer |
//! |---|---|
//! | `GET /schemas/ids/{id}` | `{"schema": …}`; 404 / 40403 when unknown |
//! | `GET /schemas/ids/{id}/versions` | `[{"subject", "version"}]` |
//! | `POST /subjects/{s}/versions` | `{"id"}`: an identical schema keeps its id (ids are global per schema, as Confluent's); a new version must be BACKWARD compatible with the latest (it can read it), else 409 |
//! | `POST /subjects/{s}` | the version of `s` with this schema; 40401 / 40403 |
//! | `GET /subjects/{s}/versions/latest` | `{"subject", "id", "version", "schema"}`; 40401 |
//! | `GET /subjects`, `GET /subjects/{s}/versions` | the lists |
//! | `POST /compatibility/subjects/{s}/versions/latest` | `{"is_compatible", "messages"}`; 40401 |
//!
//! Anything else is 404 (error code 404), which confluent-kafka treats as "not
//! supported" where it probes (associations). With [`RegistryServer::require_basic_auth`]
//! every request without those credentials gets 401 (error code 40101). Schemas are
//! compared as parsed JSON, so whitespace does not make a new schema. Every request is
//! logged ([`RegistryServer::requests`]) so that tests can count the calls a client made.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// The registry's state.
#[derive(Default)]
struct State {
    /// Schema text by id - 1.
    schemas: Vec<String>,
    /// Subject → the ids of its versions, version 1 first.
    subjects: BTreeMap<String, Vec<u32>>,
    /// The `Authorization` header every request must carry, when set.
    authorization: Option<String>,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
}

/// A running registry. Stops when dropped.
pub struct RegistryServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RegistryServer {
    /// Starts on a free loopback port, on a thread of its own (usable from any test,
    /// async or not).
    pub fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr: SocketAddr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new().name("schema-registry".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return eprintln!("schema registry runtime: {e}"),
            };
            runtime.block_on(serve(listener, shared, stopped));
        })?;
        Ok(RegistryServer { url: format!("http://{addr}"), state, stop: Some(stop), thread: Some(thread) })
    }

    /// From now on, every request must carry these basic-auth credentials (else 401).
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.lock().authorization = Some(format!("Basic {token}"));
    }

    /// Registers `schema` under `subject` as a client would (`POST /subjects/{s}/versions`
    /// semantics, without HTTP): its id.
    pub fn register(&self, subject: &str, schema: &str) -> anyhow::Result<u32> {
        match register(&mut self.lock(), subject, schema) {
            Ok(id) => Ok(id),
            Err((status, body)) => anyhow::bail!("register under {subject}: {status} {body}"),
        }
    }

    /// `METHOD path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// How many requests were `METHOD path` exactly.
    pub fn count(&self, request: &str) -> usize {
        self.lock().requests.iter().filter(|r| *r == request).count()
    }

    /// The ids of `subject`'s versions, version 1 first.
    pub fn versions(&self, subject: &str) -> Vec<u32> {
        self.lock().subjects.get(subject).cloned().unwrap_or_default()
    }

    /// The schema text of `id`.
    pub fn schema(&self, id: u32) -> Option<String> {
        self.lock().schemas.get(id.checked_sub(1)? as usize).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<Mutex<State>>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return eprintln!("schema registry listener: {e}"),
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(req, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

type Reply = Result<Value, (StatusCode, Value)>;

async fn answer(req: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let reply = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(format!("{method} {path}"));
        match &state.authorization {
            Some(expected) if authorization.as_deref() != Some(expected.as_str()) => {
                Err((StatusCode::UNAUTHORIZED, error(40101, "Unauthorized")))
            }
            _ => route(&mut state, &method, &path, &body),
        }
    };
    let (status, value) = match reply {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => e,
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_default()
}

fn error(code: i64, message: &str) -> Value {
    json!({ "error_code": code, "message": message })
}

fn not_found(code: i64, message: String) -> (StatusCode, Value) {
    (StatusCode::NOT_FOUND, error(code, &message))
}

fn route(state: &mut State, method: &str, path: &str, body: &[u8]) -> Reply {
    let segments: Vec<String> =
        path.trim_matches('/').split('/').map(|s| percent_decode(s)).collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let schema_in_body = || -> Result<String, (StatusCode, Value)> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, error(42201, &format!("invalid request body: {e}"))))?;
        if let Some(t) = v.get("schemaType").and_then(Value::as_str).filter(|t| *t != "AVRO") {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, error(42201, &format!("schema type {t} is not supported here"))));
        }
        v.get("schema")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| (StatusCode::UNPROCESSABLE_ENTITY, error(42201, "no schema in the request body")))
    };
    match (method, s.as_slice()) {
        ("GET", ["schemas", "ids", id]) => {
            let id = id.parse::<u32>().ok();
            match id.and_then(|id| state.schemas.get(id.checked_sub(1)? as usize)) {
                Some(schema) => Ok(json!({ "schema": schema })),
                None => Err(not_found(40403, format!("Schema {} not found", id.unwrap_or(0)))),
            }
        }
        ("GET", ["schemas", "ids", id, "versions"]) => {
            let id = id.parse::<u32>().unwrap_or(0);
            let found: Vec<Value> = state
                .subjects
                .iter()
                .flat_map(|(subject, ids)| {
                    ids.iter().enumerate().filter(|(_, v)| **v == id).map(move |(i, _)| json!({ "subject": subject, "version": i + 1 }))
                })
                .collect();
            if found.is_empty() { Err(not_found(40403, format!("Schema {id} not found"))) } else { Ok(Value::Array(found)) }
        }
        ("GET", ["subjects"]) => Ok(json!(state.subjects.keys().collect::<Vec<_>>())),
        ("GET", ["subjects", subject, "versions"]) => match state.subjects.get(*subject) {
            Some(ids) => Ok(json!((1..=ids.len()).collect::<Vec<_>>())),
            None => Err(not_found(40401, format!("Subject '{subject}' not found."))),
        },
        ("GET", ["subjects", subject, "versions", "latest"]) => match state.subjects.get(*subject) {
            Some(ids) if !ids.is_empty() => {
                let id = ids[ids.len() - 1];
                Ok(json!({ "subject": subject, "id": id, "version": ids.len(), "schema": state.schemas[(id - 1) as usize] }))
            }
            _ => Err(not_found(40401, format!("Subject '{subject}' not found."))),
        },
        ("POST", ["subjects", subject, "versions"]) => {
            let schema = schema_in_body()?;
            register(state, subject, &schema).map(|id| json!({ "id": id }))
        }
        ("POST", ["subjects", subject]) => {
            let schema = schema_in_body()?;
            let Some(ids) = state.subjects.get(*subject) else {
                return Err(not_found(40401, format!("Subject '{subject}' not found.")));
            };
            let wanted = parse_json(&schema);
            match ids.iter().enumerate().find(|(_, id)| parse_json(&state.schemas[(**id - 1) as usize]) == wanted) {
                Some((i, id)) => Ok(json!({ "subject": subject, "id": id, "version": i + 1, "schema": state.schemas[(id - 1) as usize] })),
                None => Err(not_found(40403, "Schema not found".into())),
            }
        }
        ("POST", ["compatibility", "subjects", subject, "versions", "latest"]) => {
            let schema = schema_in_body()?;
            let Some(latest) = state.subjects.get(*subject).and_then(|ids| ids.last()) else {
                return Err(not_found(40401, format!("Subject '{subject}' not found.")));
            };
            match backward_compatible(&state.schemas[(*latest - 1) as usize], &schema) {
                Ok(()) => Ok(json!({ "is_compatible": true })),
                Err(reason) => Ok(json!({ "is_compatible": false, "messages": [reason] })),
            }
        }
        _ => Err(not_found(404, format!("HTTP 404 Not Found: {method} {path}"))),
    }
}

/// Registers `schema` under `subject`: the existing version's id, or a new version (a
/// global id reused when the same schema is registered elsewhere), or 409.
fn register(state: &mut State, subject: &str, schema: &str) -> Result<u32, (StatusCode, Value)> {
    let parsed = parse_json(schema);
    if parsed.is_none() || apache_avro::Schema::parse_str(schema).is_err() {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, error(42201, "Invalid schema")));
    }
    let ids = state.subjects.get(subject).cloned().unwrap_or_default();
    if let Some(id) = ids.iter().find(|id| parse_json(&state.schemas[(**id - 1) as usize]) == parsed) {
        return Ok(*id);
    }
    if let Some(latest) = ids.last()
        && let Err(reason) = backward_compatible(&state.schemas[(*latest - 1) as usize], schema)
    {
        return Err((StatusCode::CONFLICT, error(409, &format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {reason}"))));
    }
    let id = match state.schemas.iter().position(|s| parse_json(s) == parsed) {
        Some(i) => i as u32 + 1,
        None => {
            state.schemas.push(schema.to_string());
            state.schemas.len() as u32
        }
    };
    state.subjects.entry(subject.to_string()).or_default().push(id);
    Ok(id)
}

/// BACKWARD (Confluent's default): the new schema can read data written with the latest.
fn backward_compatible(latest: &str, new: &str) -> Result<(), String> {
    let writer = apache_avro::Schema::parse_str(latest).map_err(|e| e.to_string())?;
    let reader = apache_avro::Schema::parse_str(new).map_err(|e| e.to_string())?;
    apache_avro::schema_compatibility::SchemaCompatibility::can_read(&writer, &reader).map_err(|e| e.to_string())
}

fn parse_json(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The Python side: confluent-kafka's official `SchemaRegistryClient`, `AvroSerializer`
/// and `AvroDeserializer`, from the virtualenv `scripts/test.sh` makes
/// (`$WEIR_CACHE/sr-venv`), or `WEIR_SR_PYTHON`.
pub fn python() -> anyhow::Result<std::path::PathBuf> {
    if let Ok(p) = std::env::var("WEIR_SR_PYTHON") {
        return Ok(p.into());
    }
    let cache = std::env::var("WEIR_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/weir"));
    let python = cache.join("sr-venv/bin/python");
    anyhow::ensure!(
        python.is_file(),
        "no {}: run scripts/test.sh (it makes a virtualenv with confluent-kafka there), or set WEIR_SR_PYTHON",
        python.display()
    );
    Ok(python)
}

/// Runs `tests/python/<script>` with `args` under [`python`], returning its stdout (its
/// stderr goes into the error when it fails).
pub fn run_python(script: &str, args: &[&str]) -> anyhow::Result<String> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(script);
    let output = std::process::Command::new(python()?)
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "{script} {args:?} failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

/// HTTPS in front of a [`RegistryServer`]: a private CA and a server certificate for
/// 127.0.0.1 made with the `openssl` CLI, and Debian's `socat` terminating TLS
/// (`OPENSSL-LISTEN`) and forwarding to the plain-HTTP registry. Stops when dropped.
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that signed the server certificate (PEM).
    pub ca_file: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    pub fn start(registry: &RegistryServer) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let p = |name: &str| dir.path().join(name).display().to_string();
        let openssl = |args: &[&str]| -> anyhow::Result<()> {
            let out = std::process::Command::new("openssl").args(args).output().context("running openssl (apt-get install openssl)")?;
            anyhow::ensure!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Ok(())
        };
        openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=weir test CA", "-keyout", &p("ca.key"), "-out", &p("ca.pem")])?;
        openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", &p("server.key"), "-out", &p("server.csr")])?;
        std::fs::write(dir.path().join("san.ext"), "subjectAltName=IP:127.0.0.1\n")?;
        openssl(&[
            "x509", "-req", "-in", &p("server.csr"), "-CA", &p("ca.pem"), "-CAkey", &p("ca.key"), "-CAcreateserial",
            "-days", "2", "-extfile", &p("san.ext"), "-out", &p("server.pem"),
        ])?;
        let port = crate::free_port()?;
        let backend = registry.url.trim_start_matches("http://");
        let child = crate::spawn_child(
            std::process::Command::new("socat")
                .arg(format!(
                    "OPENSSL-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,cert={},key={},verify=0",
                    p("server.pem"),
                    p("server.key")
                ))
                .arg(format!("TCP:{backend}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )
        .context("starting socat (apt-get install socat)")?;
        crate::wait_for_port(port, std::time::Duration::from_secs(10))?;
        Ok(TlsFront { url: format!("https://127.0.0.1:{port}"), ca_file: dir.path().join("ca.pem"), child, _dir: dir })
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
