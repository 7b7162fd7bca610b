//! `weir serve`: request-time scoring over HTTP/1.1.
//!
//! - `POST /score` with an event of the input subject as a JSON object (fields by name,
//!   nested records as nested objects; for transactions the `Transaction` fields),
//!   checked as on the stream → its feature
//!   vector as of the request's event time, with this event included so it means what it
//!   means on the stream (`FeatureDefinitions::vector_at`: every entity's state read from
//!   Redis in one round trip, the windows slid to that time — a card quiet for an hour has
//!   empty 1-minute windows — and the event applied to a copy), scored by
//!   the current champion on the blocking pool, and answered with `{event_id, score,
//!   decision, model_name, model_version, reasons, features}`. The event is not written
//!   to the store: the stream does that.
//! - `GET /health` → `200 ok` (the champion is loaded and Redis answered a read at start).
//! - `GET /model` → the champion's metadata as JSON.
//!
//! With `scorer.registry` set, the champion is watched and swapped like in `weir run`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_features::definitions::FeatureDefinitions;
use weir_schemas::events::{FeatureValue, Reason};
use weir_schemas::store::FeatureStore;
use weir_scorer::config::ScorerConfig;
use weir_scorer::live::LiveModel;

use crate::config::WeirConfig;
use crate::stages::score::{score_and_explain, Scored};
use crate::wiring::{feature_definitions, input_plan, InputPlan};

/// What `POST /score` answers.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ScoreResponse {
    pub event_id: String,
    pub score: f64,
    pub decision: String,
    pub model_name: String,
    pub model_version: String,
    pub reasons: Vec<Reason>,
    pub features: Vec<FeatureValue>,
}

struct App<S> {
    store: Arc<S>,
    model: Arc<LiveModel>,
    definitions: FeatureDefinitions,
    /// Which fields of the JSON body are read, and the checks they pass (as on the stream).
    plan: InputPlan,
    scorer: ScorerConfig,
    max_body: usize,
}

/// Largest request body accepted, bytes.
const MAX_BODY: usize = 64 * 1024;

/// Serves on `listener` until `shutdown`; one task per connection.
pub async fn serve<S: FeatureStore + 'static>(
    config: &WeirConfig,
    listener: tokio::net::TcpListener,
    store: Arc<S>,
    model: Arc<LiveModel>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let definitions = feature_definitions(config)?;
    let app = Arc::new(App {
        store,
        model,
        plan: input_plan(config, &definitions),
        definitions,
        scorer: config.scorer.clone(),
        max_body: MAX_BODY,
    });
    info!(addr = %listener.local_addr()?, "serving POST /score, GET /health, GET /model");
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { warn!("accept failed: {e}"); continue; }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

/// Binds `addr` and serves (the `weir serve` command).
pub async fn bind_and_serve<S: FeatureStore + 'static>(
    config: &WeirConfig,
    addr: SocketAddr,
    store: Arc<S>,
    model: Arc<LiveModel>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    serve(config, listener, store, model, shutdown).await
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message.into() }))
}

impl<S: FeatureStore + 'static> App<S> {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => Response::new(Full::new(Bytes::from_static(b"ok"))),
            (&Method::GET, "/model") => json(StatusCode::OK, self.model.current().metadata()),
            (&Method::POST, "/score") => match self.score(req).await {
                Ok(r) => json(StatusCode::OK, &r),
                Err((status, message)) => error(status, message),
            },
            (_, "/health" | "/model" | "/score") => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (_, path) => error(StatusCode::NOT_FOUND, format!("no route {path}")),
        }
    }

    async fn score(&self, req: Request<Incoming>) -> Result<ScoreResponse, (StatusCode, String)> {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let body = http_body_util::Limited::new(req.into_body(), self.max_body)
            .collect()
            .await
            .map_err(|e| bad(format!("reading body: {e}")))?
            .to_bytes();
        let event: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not json: {e}")))?;
        if !event.is_object() {
            return Err(bad("the body must be a json object: the event, its fields by name".to_string()));
        }
        let fields = weir_schemas::record::EventRecord::from_json(&event, self.plan.paths());
        self.definitions.check(&fields).map_err(|e| bad(e.to_string()))?;
        self.plan.check(&fields, weir_schemas::now_ms()).map_err(|e| bad(e.to_string()))?;
        // As of the request's event time, this event included, as on the stream; one
        // round trip for all its entities, nothing written.
        let row = self
            .definitions
            .vector_at(self.store.as_ref(), &fields)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("feature store: {e}")))?;
        let Scored { model, rows: row, outcome } =
            score_and_explain(self.model.current(), row, self.scorer.reason_top_k)
                .await
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("scoring task: {e}")))?;
        let (scores, mut reasons) = outcome.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let score = f64::from(scores[0]);
        let meta = model.metadata();
        Ok(ScoreResponse {
            event_id: self.plan.event_id(&fields),
            score,
            decision: self.scorer.decide(score).as_str().to_string(),
            model_name: meta.name.clone(),
            model_version: meta.version.clone(),
            reasons: reasons.pop().unwrap_or_default(),
            features: self
                .definitions
                .names()
                .iter()
                .zip(&row)
                .map(|(name, v)| FeatureValue { name: name.clone(), value: f64::from(*v) })
                .collect(),
        })
    }
}
