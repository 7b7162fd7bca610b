//! # weir-tests
//!
//! End-to-end and fault tests of weir against a real Kafka-compatible broker and a real
//! Redis. This crate owns the harness that provides them:
//!
//! - **Kafka**: a Tansu broker (in-memory storage) started on a free loopback port, unless
//!   `WEIR_TEST_BROKERS` names a broker to use instead. The Tansu binary is looked for in
//!   `WEIR_TANSU_BIN`, then `$WEIR_CACHE/tansu-0.6.0/bin/tansu` (default cache
//!   `~/.cache/weir`, where `scripts/test.sh` installs it), then `PATH`.
//! - **Redis**: `redis-server` started on a free loopback port with no persistence, unless
//!   `WEIR_TEST_REDIS` gives a URL. A Redis already running on 6379 is never touched.
//! - **Kafka with transactions** (the exactly-once tests): noida-db's Kafka service, see
//!   [`Services::start_transactional`]; `tests/transactions_contract.rs` checks that it
//!   has the transactional semantics weir relies on ([`transactions`] reads them back).
//!
//! - **Schema Registry**: [`schema_registry::RegistryServer`], the documented subset of
//!   Confluent's REST API in memory on a free port (Confluent's registry cannot be
//!   installed here); the tests' other client is confluent-kafka's Python one, from the
//!   virtualenv `scripts/test.sh` makes.
//!
//! Every test gets its own services (they start in milliseconds), random topic names and a
//! random key prefix; the processes are killed when the test's [`Services`] is dropped,
//! and by the kernel if the test process dies (`PR_SET_PDEATHSIG`).
//!
//! The tests themselves are in `tests/tests/`.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

pub mod cluster;
pub mod golden;
pub mod learning;
pub mod models;
pub mod schema_registry;
pub mod setup;
pub mod transactions;

/// A running broker and Redis for one test.
pub struct Services {
    pub brokers: String,
    pub redis_url: String,
    children: Vec<(String, Child)>,
    _dir: tempfile::TempDir,
}

impl Services {
    /// Starts (or finds, from the environment) a Kafka broker and a Redis.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut children = Vec::new();
        let brokers = match std::env::var("WEIR_TEST_BROKERS") {
            Ok(b) if !b.is_empty() => b,
            _ => {
                let port = free_port()?;
                let addr = format!("tcp://127.0.0.1:{port}");
                // WEIR_TANSU_LOG=info (a RUST_LOG filter) keeps the broker's log in the
                // system temp dir for debugging; otherwise it dies with the test.
                let log_path = match std::env::var("WEIR_TANSU_LOG") {
                    Ok(_) => std::env::temp_dir().join(format!("weir-tansu-{port}.log")),
                    Err(_) => dir.path().join("tansu.log"),
                };
                let log = std::fs::File::create(&log_path)?;
                let child = spawn_child(
                    Command::new(tansu_bin()?)
                        .args(["broker", "--listener-url", &addr, "--advertised-listener-url", &addr])
                        .args(["--storage-engine", "memory://tansu/"])
                        .env("RUST_LOG", std::env::var("WEIR_TANSU_LOG").unwrap_or_else(|_| "warn".into()))
                        .stdout(log.try_clone()?)
                        .stderr(log),
                )
                .context("starting tansu")?;
                children.push(("tansu".to_string(), child));
                wait_for_port(port, Duration::from_secs(20)).context("tansu did not start listening")?;
                format!("127.0.0.1:{port}")
            }
        };
        let redis_url = start_redis(&dir, &mut children)?;
        Ok(Services { brokers, redis_url, children, _dir: dir })
    }

    /// Starts a broker with Kafka transactions and a Redis, for the exactly-once tests.
    ///
    /// Tansu 0.6.0 has no `EndTxn` (librdkafka's `commit_transaction` fails with
    /// "EndTxnRequest (KIP-98) not supported by broker"), and librdkafka's mock cluster
    /// answers the transactional requests without their meaning: it writes no commit or
    /// abort markers, lists no aborted transactions to a `read_committed` fetch and drops
    /// the offsets of `TxnOffsetCommit` (rdkafka-sys 4.10's
    /// `librdkafka/src/rdkafka_mock_handlers.c`). noida-db 0.2.3 (crates.io, a
    /// Kafka-protocol broker in Rust) implements them: markers, aborted records hidden
    /// from `read_committed`, offsets committed with the transaction, fencing by
    /// `transactional.id`. It does not abort a transaction whose producer went silent
    /// when `transaction.timeout.ms` passes (only a new producer with the same id ends
    /// it), so a test restarts a killed process with the same `transactional.id`.
    ///
    /// The binary is looked for in `WEIR_NOIDA_BIN`, then
    /// `$WEIR_CACHE/noida-db-0.2.3/bin/noida-db` (where `scripts/test.sh` installs it).
    pub fn start_transactional() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("noida-db.log"))?;
        let data = dir.path().join("noida-data");
        let child = spawn_child(
            Command::new(cached_bin("WEIR_NOIDA_BIN", "noida-db-0.2.3/bin/noida-db", "noida-db")?)
                .args(["start", "--only", "kafka", "--kafka-port", &port.to_string()])
                .arg("--data-dir")
                .arg(&data)
                .stdout(log.try_clone()?)
                .stderr(log),
        )
        .context("starting noida-db")?;
        wait_for_port(port, Duration::from_secs(20)).context("noida-db did not start listening")?;
        let mut services = Self::start_redis_only(dir)?;
        services.children.push(("noida-db".to_string(), child));
        services.brokers = format!("127.0.0.1:{port}");
        Ok(services)
    }

    fn start_redis_only(dir: tempfile::TempDir) -> anyhow::Result<Self> {
        let mut children = Vec::new();
        let redis_url = start_redis(&dir, &mut children)?;
        Ok(Services { brokers: String::new(), redis_url, children, _dir: dir })
    }

    /// Creates topics with `partitions` partitions through the Kafka admin API.
    pub async fn create_topics(&self, names: &[&str], partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create()?;
        let topics: Vec<NewTopic<'_>> =
            names.iter().map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1))).collect();
        let results = admin.create_topics(&topics, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))).await?;
        for r in results {
            if let Err((topic, code)) = r {
                bail!("creating topic {topic}: {code:?}");
            }
        }
        Ok(())
    }

    /// Kills the harness's redis-server and starts a new, empty one on the same port (a
    /// restart without persistence: every key is gone).
    pub fn restart_redis(&mut self) -> anyhow::Result<()> {
        let at = self.children.iter().position(|(name, _)| name == "redis-server").context("no redis-server of the harness")?;
        let (_, mut old) = self.children.remove(at);
        old.kill()?;
        old.wait()?;
        let port: u16 = self.redis_url.rsplit(':').next().and_then(|p| p.parse().ok()).context("redis url has no port")?;
        let child = spawn_child(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self._dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        self.children.push(("redis-server".to_string(), child));
        wait_for_port(port, Duration::from_secs(20)).context("redis-server did not start listening again")?;
        Ok(())
    }

    /// Whether a process of ours died (a test should fail loudly rather than hang).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited: {status}");
            }
        }
        Ok(())
    }
}

/// A Redis for the test (`WEIR_TEST_REDIS`, or `redis-server` on a free port with no
/// persistence): its URL.
fn start_redis(dir: &tempfile::TempDir, children: &mut Vec<(String, Child)>) -> anyhow::Result<String> {
    if let Ok(r) = std::env::var("WEIR_TEST_REDIS")
        && !r.is_empty()
    {
        return Ok(r);
    }
    let port = free_port()?;
    let child = spawn_child(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .context("starting redis-server (apt-get install redis-server)")?;
    children.push(("redis-server".to_string(), child));
    wait_for_port(port, Duration::from_secs(20)).context("redis-server did not start listening")?;
    Ok(format!("redis://127.0.0.1:{port}"))
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A random suffix for topic, group and key names.
pub fn unique(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}-{n:016x}")
}

pub(crate) fn spawn_child(cmd: &mut Command) -> std::io::Result<Child> {
    // SAFETY: prctl is async-signal-safe; it makes the kernel kill the child if this
    // test process dies, so no broker outlives a crashed test.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).spawn()
}

/// The text of `/metrics` served on 127.0.0.1:`port` (a plain HTTP/1.0 GET).
pub fn scrape_metrics(port: u16) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listening on 127.0.0.1:{port} after {timeout:?}")
}

fn tansu_bin() -> anyhow::Result<PathBuf> {
    cached_bin("WEIR_TANSU_BIN", "tansu-0.6.0/bin/tansu", "tansu")
}

/// A server binary: the path in `variable`, else `in_cache` under `$WEIR_CACHE` (default
/// `~/.cache/weir`, where `scripts/test.sh` installs it), else `name` on the `PATH`.
fn cached_bin(variable: &str, in_cache: &str, name: &str) -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var(variable) {
        return Ok(PathBuf::from(p));
    }
    let cache = std::env::var("WEIR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/weir"));
    let cached = cache.join(in_cache);
    if cached.is_file() {
        return Ok(cached);
    }
    if let Some(p) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return Ok(p);
    }
    bail!("{name} not found: run scripts/test.sh (it installs it into {}), or set {variable}", cache.display())
}

/// The `weir` binary: `WEIR_BIN` if set (relative to the workspace root), else built now with the same cargo and target
/// directory as the tests (incremental, so usually instant).
pub fn weir_bin() -> anyhow::Result<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Ok(p) = std::env::var("WEIR_BIN") {
        // Tests run in the `tests/` folder: a relative path means the workspace root.
        return Ok(workspace.join(p));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bin", "weir"])
        .current_dir(&workspace)
        .status()
        .context("running cargo build --bin weir")?;
    anyhow::ensure!(status.success(), "cargo build --bin weir failed: {status}");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace.join("target"));
    let bin = target.join("debug/weir");
    anyhow::ensure!(bin.is_file(), "no weir binary at {}", bin.display());
    Ok(bin)
}

/// A `weir` process started by a test. Killed (SIGKILL) when dropped.
pub struct WeirProcess {
    child: Child,
    pub log: PathBuf,
}

impl WeirProcess {
    /// Starts `weir ARGS...`, its output going to `log`.
    pub fn spawn(args: &[&str], log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let child = spawn_child(
            Command::new(weir_bin()?)
                .args(args)
                .env("WEIR_LOG", "info")
                .stdout(file.try_clone()?)
                .stderr(file),
        )?;
        Ok(WeirProcess { child, log })
    }

    /// The crash: SIGKILL, no chance to finish a batch or commit.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// A graceful stop: SIGINT, then wait for the exit status.
    pub fn interrupt(self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.stop_with(libc::SIGINT, "SIGINT", timeout)
    }

    /// A service manager's stop: SIGTERM, then wait for the exit status.
    pub fn terminate(self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.stop_with(libc::SIGTERM, "SIGTERM", timeout)
    }

    fn stop_with(mut self, signal: i32, name: &str, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("weir did not stop within {timeout:?} of {name}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id (to signal it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log without its colour codes (to search it).
    pub fn log_plain(&self) -> String {
        strip_ansi(&self.log_text())
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
