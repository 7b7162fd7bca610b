//! A concept change half way, through the real pipeline: 20 000 seeded transactions whose
//! fraud pattern moves at transaction 10 000 (`--concept-change-at`: other risky
//! merchants, slow ATM draining instead of quick card-not-present bursts abroad) are
//! scored by the frozen baseline through Tansu and Redis; the learner then takes the real
//! `Score` events and the labels in stream order, test-then-train.
//!
//! Expected: the baseline's (champion's) rolling AUC drops after the change; the
//! learner's (challenger's) recovers above it; the learner is promoted in a real model
//! registry after the change and not before, and the version it published loads in the
//! scorer (checksum, feature set, canary) and scores like the learner did.

use std::collections::HashMap;
use std::time::Duration;

use weir_ingest::generator::{Content, GeneratorConfig};
use weir_online_learner::config::LearnerConfig;
use weir_online_learner::learner::{Input, Learner, Position};
use weir::stages::promote::Promoter;
use weir_schemas::registry::ModelRegistry;
use weir_scorer::model::LoadedModel;
use weir_schemas::events::Score;
use weir_tests::golden::{payload, read_topic};
use weir_tests::learning::produce_and_score;
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::Services;

const EVENTS: u64 = 20_000;
const CHANGE_AT: u64 = 10_000;
const WINDOW: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_decays_after_the_concept_change_learner_recovers_and_is_promoted_after_it() -> anyhow::Result<()> {
    let services = Services::start()?;
    let config = pipeline_config(&services, "concept");
    create_pipeline_topics(&services, &config, 4).await?;
    // 5 transactions a second of event time: 20 000 span about 67 minutes, long enough
    // for the changed pattern's 10–30 minute drains to play out.
    let g = GeneratorConfig {
        event_rate: 5.0,
        concept_change_at: Some(CHANGE_AT),
        ..GeneratorConfig::new(8080, weir_schemas::now_ms() - 2 * 3_600_000, EVENTS)
    };
    let (messages, _) = generate(g)?;
    produce_and_score(&config, messages.clone(), EVENTS).await?;

    let decoder = score_decoder()?;
    let (brokers, topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let raw = tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, Duration::from_secs(120), |m| m.len() as u64 >= EVENTS))
        .await??;
    let mut scores: HashMap<String, Score> = HashMap::new();
    for m in &raw {
        let s = decoder.decode(payload(m))?;
        scores.insert(s.event_id.clone(), s);
    }
    assert_eq!(scores.len() as u64, EVENTS);

    // A registry where the baseline serves, as the scorer would find it.
    let registry_dir = tempfile::tempdir()?;
    let registry = ModelRegistry::create(registry_dir.path())?;
    let baseline = format!("{}/../models/fraud-baseline/v1", env!("CARGO_MANIFEST_DIR"));
    let mut v1: weir_schemas::model::ModelMetadata = serde_json::from_str(&std::fs::read_to_string(format!("{baseline}/metadata.json"))?)?;
    v1.name = "fraud".into();
    registry.publish(&v1, &std::fs::read(format!("{baseline}/model.onnx"))?)?;
    registry.promote("fraud", "v1", "baseline", "test")?;

    let mut lc = LearnerConfig::default();
    lc.evaluation.windows = vec![WINDOW];
    lc.promotion.enabled = true;
    lc.promotion.registry_dir = Some(registry_dir.path().to_path_buf());
    lc.promotion.min_labels = 2_000;
    lc.promotion.compare_labels = WINDOW;
    lc.promotion.margin = 0.05;
    let mut promoter = Promoter::new(&lc)?.expect("promotion enabled");
    let mut learner = Learner::restore(lc, None, vec![], vec![], vec![], vec![])?;

    // The real scores and the labels, in the order the generator emitted them.
    let (mut tx_seen, mut offset) = (0u64, 0i64);
    let mut batch = Vec::new();
    let mut timeline = Vec::new(); // (transactions so far, champion AUC, challenger AUC)
    let mut first_promotion: Option<(u64, String, weir_online_learner::model::OnlineModel)> = None;
    for m in &messages {
        let input = match &m.content {
            Content::Transaction { tx, .. } => {
                tx_seen += 1;
                Input::Score(scores[&tx.event_id].clone())
            }
            Content::Label(l) => Input::Label(l.clone()),
            Content::Poison(_) => continue,
        };
        offset += 1;
        batch.push((Position { topic: "stream".into(), partition: 0, offset }, input));
        if batch.len() == 250 {
            learner.apply(std::mem::take(&mut batch))?;
            let r = learner.prequential().window_report(WINDOW);
            if r.labels == WINDOW {
                timeline.push((tx_seen, r.champion.auc.unwrap_or(f64::NAN), r.challenger.auc.unwrap_or(f64::NAN)));
            }
            if first_promotion.is_none() {
                promoter.step(&mut learner)?;
                let champion = registry.champion("fraud")?.unwrap_or_default();
                if champion != "v1" {
                    let model = learner.model().expect("a model").clone();
                    first_promotion = Some((tx_seen, champion, model));
                }
            }
        }
    }
    learner.apply(batch)?;
    let (promoted_at, version, promoted_model) = first_promotion.expect("the learner should be promoted after the change");

    // The window just before the change, and the last one.
    let before = timeline.iter().rev().find(|(t, _, _)| *t <= CHANGE_AT).copied().expect("a full window before the change");
    let end = *timeline.last().expect("windows");
    let lowest_after = timeline.iter().filter(|(t, _, _)| *t > CHANGE_AT).map(|(_, c, _)| *c).fold(f64::INFINITY, f64::min);
    eprintln!("concept change at transaction {CHANGE_AT}; rolling AUC over the last {WINDOW} labels:");
    for (t, c, h) in timeline.iter().step_by(4) {
        eprintln!("  after {t:>6} transactions: baseline {c:.4}  learner {h:.4}");
    }
    eprintln!(
        "before the change: baseline {:.4} learner {:.4}; end: baseline {:.4} learner {:.4}; baseline lowest after {lowest_after:.4}; promoted {version} at transaction {promoted_at}; counters {:?}",
        before.1, before.2, end.1, end.2, learner.counters().join
    );
    assert!(before.1 > 0.8, "the baseline should work before the change: {before:?}");
    assert!(end.1 < before.1 - 0.1, "the baseline's AUC should drop after the change: {before:?} -> {end:?}");
    assert!(end.2 > end.1 + 0.1, "the learner should recover above the baseline: {end:?}");
    assert!(promoted_at > CHANGE_AT, "promoted at transaction {promoted_at}, before the change");

    // The published version: lineage, and the scorer's loader takes it and agrees.
    let meta = registry.metadata("fraud", &version)?;
    assert_eq!(meta.lineage.parent_version.as_deref(), Some("v1"));
    let names = v1.feature_names.clone();
    let loaded = LoadedModel::load_dir(&registry.version_dir("fraud", &version)?, &names, &[1, 64])?;
    let sample: Vec<&Score> = scores.values().take(500).collect();
    let rows: Vec<f32> = sample.iter().flat_map(|s| s.features.iter().map(|f| f.value as f32)).collect();
    let served = loaded.score(&rows)?;
    let worst = sample
        .iter()
        .zip(&served)
        .map(|(s, p)| {
            let x: Vec<f64> = s.features.iter().map(|f| f.value).collect();
            (promoted_model.predict(&x) - f64::from(*p)).abs()
        })
        .fold(0.0, f64::max);
    eprintln!("{version} in the scorer (tract) vs the learner in memory, 500 real feature vectors: max difference {worst:.2e}");
    assert!(worst < 1e-6, "{worst}");
    Ok(())
}
