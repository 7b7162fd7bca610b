//! `weir serve` against a real Redis: a card's windows are written through the store
//! (as the stream would), then scored over HTTP. The answer must carry the champion's
//! version and reasons, and its score must equal the model's score for the feature
//! vector recomputed independently (brute-force windows over the same events, plus the
//! request's event). Plus /health, /model, and refusals of bad requests.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use weir::wiring::{connect_redis_store, load_model};
use weir::stages::serve::{serve, ScoreResponse};
use weir_features::definitions::{transaction_record, FeatureDefinitions};
use weir_schemas::events::Transaction;
use weir_schemas::store::{FeatureStore, Observation, SourcePosition};
use weir_scorer::live::LiveModel;
use weir_tests::golden::{default_windows, expected_card_features};
use weir_tests::setup::pipeline_config;
use weir_tests::Services;

/// One HTTP/1.1 request on a fresh connection; returns (status, body).
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status: u16 = response.split_whitespace().nth(1).unwrap_or("0").parse()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn tx(i: i64, card: &str, amount: f64, t0: i64) -> Transaction {
    Transaction {
        event_id: format!("tx-{i}"),
        card_id: card.into(),
        merchant_id: "m1".into(),
        device_id: "d1".into(),
        amount,
        currency: "EUR".into(),
        country: "FR".into(),
        channel: if i % 2 == 0 { "ecom".into() } else { "pos".into() },
        customer_segment: "retail".into(),
        event_time: t0 + i * 7_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_scores_an_event_with_the_cards_redis_features() -> anyhow::Result<()> {
    let services = Services::start()?;
    let config = pipeline_config(&services, "serve");
    let store = Arc::new(connect_redis_store(&config).await?);
    let t0 = weir_schemas::now_ms() - 600_000;
    let history: Vec<Transaction> = (0..12).map(|i| tx(i, "card-7", 10.0 + i as f64 * 3.5, t0)).collect();
    let defs = FeatureDefinitions::new(&config.features)?;
    let observations: Vec<Observation> = history
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            defs.observations(&transaction_record(t, defs.paths()), SourcePosition { topic: "t".into(), partition: 0, offset: i as i64 })
        })
        .collect();
    store.observe(&observations).await?;

    let model = Arc::new(LiveModel::new(Arc::new(load_model(&config)?)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = {
        let (config, store, model, shutdown) = (config.clone(), store.clone(), model.clone(), shutdown.clone());
        tokio::spawn(async move { serve(&config, listener, store, model, shutdown).await })
    };

    // The request: the card's next event, 50 s after its newest, so the 1-minute window
    // has slid past most of the history (the served features are as of the request's time).
    let mut request = tx(12, "card-7", 250.0, t0);
    request.event_time = history[11].event_time + 50_000;
    let (status, body) = http(addr, "POST", "/score", &serde_json::to_string(&request)?).await?;
    assert_eq!(status, 200, "{body}");
    let answer: ScoreResponse = serde_json::from_str(&body)?;
    assert_eq!((answer.event_id.as_str(), answer.model_version.as_str()), ("tx-12", "v1"));
    assert_eq!(answer.reasons.len(), 3);

    // Independently: the windows over history + this event, as the stream would see them.
    let mut all = history.clone();
    all.push(request.clone());
    let windows = default_windows();
    let expected = &expected_card_features(&all, &windows, config.features.allowed_lateness_ms())["card-7"];
    let mut values = Vec::new();
    for w in &windows {
        values.push(expected[&format!("count_{}", w.name)]);
        values.push(expected[&format!("amount_sum_{}", w.name)]);
    }
    let (count_1h, sum_1h) = (values[values.len() - 2], values[values.len() - 1]);
    // The slide matters here: the 1-minute window no longer holds all 12 + 1 events, the
    // hour does.
    assert!(values[0] < 13.0 && count_1h == 13.0, "{values:?}");
    let mut row: Vec<f32> = vec![
        (250f64).ln_1p() as f32,
        request.event_time.div_euclid(3_600_000).rem_euclid(24) as f32,
        1.0,
        0.0,
    ];
    row.extend(values.iter().map(|&v| v as f32));
    row.push((250.0 / (sum_1h / count_1h)) as f32);
    let got: Vec<f32> = answer.features.iter().map(|f| f.value as f32).collect();
    assert_eq!(got, row, "feature vector");
    let expected_score = f64::from(model.current().score(&row)?[0]);
    assert!((answer.score - expected_score).abs() <= 1e-7, "{} vs {expected_score}", answer.score);
    assert_eq!(answer.decision, config.scorer.decide(answer.score).as_str());

    // An unknown card scores on an empty history (count 1, its own amount).
    let (status, body) = http(addr, "POST", "/score", &serde_json::to_string(&tx(1, "card-new", 99.0, t0))?).await?;
    assert_eq!(status, 200, "{body}");
    let fresh: ScoreResponse = serde_json::from_str(&body)?;
    assert_eq!(fresh.features[4].value, 1.0);
    assert_eq!(fresh.features[5].value, 99.0);

    let (status, body) = http(addr, "GET", "/health", "").await?;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http(addr, "GET", "/model", "").await?;
    assert_eq!(status, 200);
    let meta: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(meta["version"], "v1");
    assert_eq!(meta["feature_names"].as_array().map(Vec::len), Some(9));
    for (method, path, body, code) in [
        ("POST", "/score", "{not json", 400),
        ("POST", "/score", r#"{"event_id":"x"}"#, 400),
        ("GET", "/score", "", 405),
        ("GET", "/nope", "", 404),
    ] {
        let (status, text) = http(addr, method, path, body).await?;
        assert_eq!(status, code, "{method} {path}: {text}");
    }
    shutdown.cancel();
    server.await??;
    Ok(())
}
