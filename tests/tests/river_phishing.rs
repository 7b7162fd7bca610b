//! Real data no one here wrote: River's Phishing dataset (1250 labelled web pages, 9
//! features), extracted from River's PyPI wheel by `tools/golden/river_phishing.py` into
//! `tests/data/phishing.csv`. Each row goes through Tansu as a `Score` (its features, no
//! champion: a constant 0.5) and a `Label`, in row order on one partition each; the real
//! learner stage (`weir learn`'s consumer loop and Redis checkpoint) joins and learns
//! them. Its prequential accuracy is reported next to River's `LogisticRegression` on
//! the same rows in the same order (`tests/data/phishing_river.json`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_ingest::producer::{EventProducer, OutgoingMessage};
use weir_online_learner::config::LearnerConfig;
use weir_schemas::events::{FeatureValue, Label, ModelOutput, Score};
use weir_schemas::wire::{subjects, Encoder, LocalSchemaRegistry};
use weir_tests::learning::checkpoint_state;
use weir_tests::setup::{create_pipeline_topics, pipeline_config};
use weir_tests::{unique, Services};

fn data(name: &str) -> String {
    format!("{}/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phishing_through_kafka_next_to_river() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(data("phishing.csv"))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(String::from).collect();
    let names = &header[..header.len() - 1];
    let rows: Vec<(Vec<f64>, bool)> = lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse::<f64>()).collect::<Result<_, _>>()?;
            let (x, y) = v.split_at(v.len() - 1);
            Ok((x.to_vec(), y[0] == 1.0))
        })
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(rows.len(), 1250);

    let services = Services::start()?;
    let mut config = pipeline_config(&services, "phishing");
    create_pipeline_topics(&services, &config, 1).await?;
    let mut lc = LearnerConfig { group_id: unique("learner"), key_prefix: unique("phishing"), ..LearnerConfig::default() };
    lc.name = "phishing".into();
    lc.evaluation.windows = vec![rows.len()];
    config.learner = Some(lc);
    config.check()?;

    let registry = LocalSchemaRegistry::embedded()?;
    let (score_enc, label_enc) = (Encoder::new(&registry, subjects::SCORE)?, Encoder::new(&registry, subjects::LABEL)?);
    let base = weir_schemas::now_ms() - 3_600_000;
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for (i, (x, y)) in rows.iter().enumerate() {
        let id = format!("phish-{i:05}");
        let t = base + i as i64 * 1_000;
        let score = Score {
            event_id: id.clone(),
            key: id.clone(),
            event_time: t,
            model_name: "none".into(),
            model_version: "none".into(),
            output: ModelOutput::binary(0.5),
            decision: "review".into(),
            features: names.iter().zip(x).map(|(n, v)| FeatureValue { name: n.clone(), value: *v }).collect(),
            reasons: vec![],
            scored_at: t,
            attributes: Default::default(),
        };
        let label = Label { event_id: id.clone(), card_id: id.clone(), is_fraud: *y, event_time: t, label_time: t + 1 };
        scores.push(OutgoingMessage::new(id.as_bytes(), score_enc.encode(&score)?));
        labels.push(OutgoingMessage::new(id.as_bytes(), label_enc.encode(&label)?));
    }
    let producer = EventProducer::new(&config.kafka)?;
    producer.send_all(&config.kafka.topics.scores, &scores).await?;
    producer.send_all(&config.kafka.topics.labels, &labels).await?;

    let shutdown = CancellationToken::new();
    let task = weir::stages::learn::spawn_learner(config.clone(), shutdown.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let learned = checkpoint_state(&config).await?.map(|s| s.counters.learned).unwrap_or(0);
        if learned >= rows.len() as u64 {
            break;
        }
        anyhow::ensure!(!task.is_finished(), "the learner stopped early");
        anyhow::ensure!(std::time::Instant::now() < deadline, "only {learned} rows learned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let (_, handler) = task.await??;
    let report = handler.learner().prequential().window_report(rows.len());
    let m = &report.challenger;

    let river: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data("phishing_river.json"))?)?;
    let r = &river["river_scaled_logistic_regression"];
    eprintln!(
        "Phishing, {} rows, prequential: weir FTRL accuracy {:.4} log loss {:.4} AUC {:.4} | River StandardScaler|LogisticRegression accuracy {:.4} log loss {:.4} | River LogisticRegression accuracy {:.4}",
        report.labels,
        m.accuracy.unwrap_or(f64::NAN),
        m.log_loss.unwrap_or(f64::NAN),
        m.auc.unwrap_or(f64::NAN),
        r["accuracy"].as_f64().unwrap_or(f64::NAN),
        r["log_loss"].as_f64().unwrap_or(f64::NAN),
        river["river_logistic_regression"]["accuracy"].as_f64().unwrap_or(f64::NAN),
    );
    assert_eq!(report.labels, rows.len());
    // A learner that learned nothing would sit at the majority rate (~0.56).
    assert!(m.accuracy.unwrap_or(0.0) > 0.8, "{m:?}");
    Ok(())
}
