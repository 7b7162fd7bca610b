//! weir's second example schema end to end: recommendation-style interactions
//! (`interaction.avsc`) through `weir run --config weir.interactions.toml`, against a real
//! broker (Tansu) and a real Redis, scored by the model trained on them
//! (`models/interactions/v1`).
//!
//! Nothing in weir's code knows this schema: the feature definitions in
//! weir.interactions.toml name its fields by path. The expected output is the golden in
//! `tests/golden/interactions/`, computed independently in Python by
//! tools/train/train_interactions.py from the definitions' documented semantics: every event's
//! feature vector and its score (onnxruntime). The stream is the generator's, seeded as the
//! golden says, shifted by whole weeks to lie in the last days (a shift of whole weeks
//! changes no feature: hour, weekday and every pane boundary stay where they were).

//!
//! The input topic has one partition, so weir sees the events in the order Python did:
//! an item's events come from many users, and on several partitions their interleaving
//! (hence which ones are late) would depend on timing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_ingest::config::{KafkaConfig, TopicsConfig};
use weir_ingest::generator::interactions::{InteractionContent, InteractionMessage, InteractionsConfig};
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::events::{Interaction, Score};
use weir_tests::golden::{payload, read_topic};
use weir_tests::setup::score_decoder;
use weir_tests::{unique, Services, WeirProcess};

const WEEK_MS: i64 = 7 * 86_400_000;
/// The model's name and version (models/interactions/v1/metadata.json).
const MODEL: (&str, &str) = ("interactions", "v1");
/// Key prefix of the feature store (weir.interactions.toml's `features.key_prefix`).
const KEY_PREFIX: &str = "weir";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// tests/golden/interactions/: the stream's settings and, per event, features and score.
struct Golden {
    seed: u64,
    start_ms: i64,
    events: u64,
    event_rate: f64,
    model_sha256: String,
    feature_names: Vec<String>,
    /// In stream order.
    rows: Vec<GoldenRow>,
}

struct GoldenRow {
    event_id: String,
    score: f64,
    features: Vec<f64>,
}

fn load_golden() -> anyhow::Result<Golden> {
    let dir = workspace().join("tests/golden/interactions");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json"))?)?;
    let g = &meta["generator"];
    let number = |v: &serde_json::Value, what: &str| v.as_f64().ok_or_else(|| anyhow::anyhow!("meta.json: no {what}"));
    let text = std::fs::read_to_string(dir.join("scores.csv"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    anyhow::ensure!(header.len() > 2 && header[..2] == ["event_id", "score"], "scores.csv header {header:?}");
    let feature_names: Vec<String> = header[2..].iter().map(|s| s.to_string()).collect();
    let meta_names: Vec<String> = serde_json::from_value(meta["feature_names"].clone())?;
    anyhow::ensure!(meta_names == feature_names, "scores.csv and meta.json disagree on the features");
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        anyhow::ensure!(cells.len() == header.len(), "scores.csv line {}: {} cells", n + 2, cells.len());
        let numbers = cells[1..].iter().map(|c| c.parse::<f64>()).collect::<Result<Vec<_>, _>>()?;
        rows.push(GoldenRow { event_id: cells[0].to_string(), score: numbers[0], features: numbers[1..].to_vec() });
    }
    Ok(Golden {
        seed: number(&g["seed"], "seed")? as u64,
        start_ms: number(&g["start_ms"], "start_ms")? as i64,
        events: number(&g["events"], "events")? as u64,
        event_rate: number(&g["event_rate"], "event_rate")?,
        model_sha256: meta["model"]["sha256"].as_str().unwrap_or_default().to_string(),
        feature_names,
        rows,
    })
}

/// The golden's start moved by whole weeks to between nine and two days before now:
/// recent traffic (the test's config accepts events up to two weeks old), the same features.
fn shifted_start(golden_start: i64, now_ms: i64) -> i64 {
    let target = now_ms - 2 * 86_400_000;
    golden_start + (target - golden_start).div_euclid(WEEK_MS) * WEEK_MS
}

/// weir.interactions.toml as shipped, pointed at this test's broker, Redis, topics and
/// the model in the repository. Edited as TOML so that the test follows the file.
fn test_config(services: &Services, topics: &TopicsConfig) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(workspace().join("weir.interactions.toml"))?;
    let mut doc: toml::Table = text.parse()?;
    fn table<'a>(doc: &'a mut toml::Table, path: &[&str]) -> &'a mut toml::Table {
        let mut t = doc;
        for key in path {
            let entry = t.entry(key.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            t = entry.as_table_mut().unwrap_or_else(|| unreachable!("made a table just above"));
        }
        t
    }
    let kafka = table(&mut doc, &["kafka"]);
    kafka.insert("brokers".into(), services.brokers.clone().into());
    kafka.insert("group_id".into(), unique("weir-interactions").into());
    let t = table(&mut doc, &["kafka", "topics"]);
    // The input topic's key, whichever name the shipped file gives it.
    let input = if t.contains_key("input") { "input" } else { "transactions" };
    t.insert(input.into(), topics.input.clone().into());
    t.insert("labels".into(), topics.labels.clone().into());
    t.insert("scores".into(), topics.scores.clone().into());
    t.insert("dead_letter".into(), topics.dead_letter.clone().into());
    table(&mut doc, &["kafka", "batch"]).insert("max_events".into(), toml::Value::Integer(200));
    table(&mut doc, &["redis"]).insert("url".into(), services.redis_url.clone().into());
    let model_dir = workspace().join("models/interactions/v1");
    table(&mut doc, &["scorer"]).insert("model_dir".into(), model_dir.to_string_lossy().to_string().into());
    // This test is about features and scores; the monitor would publish to an alerts topic
    // it does not create.
    table(&mut doc, &["monitor"]).insert("enabled".into(), false.into());
    table(&mut doc, &["features"]).insert("key_prefix".into(), KEY_PREFIX.into());
    // The stream starts up to nine days ago (see `shifted_start`).
    table(&mut doc, &["validation"]).insert("max_past_skew_secs".into(), toml::Value::Integer(14 * 86_400));
    Ok(toml::to_string(&doc)?)
}

/// A score's feature equals the golden's: scores carry the vector as the model saw it, in
/// f32, so within one f32 rounding (2^-23 relative) or 1e-6 absolute.
fn close_f32(got: f64, want: f64) -> bool {
    (got - want).abs() <= (want.abs() * f64::from(f32::EPSILON)).max(1e-6)
}

/// A readable-hash value (f64, as text) equals the golden's: 1e-9 relative or absolute
/// (Python and weir add a mean's terms in different orders).
fn close_f64(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

/// The readable hash fields of an entity, with the value each must hold after the stream:
/// every windowed aggregate of the entity (its feature name without the `<entity>_` prefix,
/// e.g. `count_10m`, `item_id_distinct_24h`) as of the entity's newest event, which is its
/// last in the stream, and `event_time_max`.
fn expected_hash(feature_names: &[String], entity: &str, last: &GoldenRow, last_time: i64) -> BTreeMap<String, f64> {
    let prefix = format!("{entity}_");
    let mut fields: BTreeMap<String, f64> = feature_names
        .iter()
        .zip(&last.features)
        .filter_map(|(name, v)| {
            let field = name.strip_prefix(&prefix)?;
            // Windowed aggregates only: `seconds_since_last` depends on the reading time.
            (!field.starts_with("seconds_since_last")).then(|| (field.to_string(), *v))
        })
        .collect();
    fields.insert("event_time_max".into(), last_time as f64);
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_end_to_end_match_the_python_golden() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let golden = load_golden()?;
    let metadata = std::fs::read_to_string(workspace().join("models/interactions/v1/metadata.json"))?;
    let metadata: weir_schemas::model::ModelMetadata = serde_json::from_str(&metadata)?;
    assert_eq!(metadata.sha256, golden.model_sha256, "the golden was made with another model: rerun tools/train/train_interactions.py");
    assert_eq!(metadata.feature_names, golden.feature_names);
    assert_eq!((metadata.name.as_str(), metadata.version.as_str()), MODEL);

    // The stream: the generator as the golden ran it, a whole number of weeks later.
    let start_ms = shifted_start(golden.start_ms, weir_schemas::now_ms());
    let cfg = InteractionsConfig { event_rate: golden.event_rate, ..InteractionsConfig::new(golden.seed, start_ms, golden.events) };
    let messages: Vec<InteractionMessage> = weir::commands::produce::interactions_generator(cfg)?.collect::<Result<_, _>>()?;
    let interactions: Vec<Interaction> = messages
        .iter()
        .filter_map(|m| match &m.content {
            InteractionContent::Interaction { interaction, .. } => Some(interaction.clone()),
            InteractionContent::Label(_) => None,
        })
        .collect();
    let ids: Vec<&str> = interactions.iter().map(|i| i.event_id.as_str()).collect();
    let golden_ids: Vec<&str> = golden.rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, golden_ids, "the generator no longer makes the golden's stream: rerun tools/train/train_interactions.py");

    let services = Services::start()?;
    let topics = TopicsConfig {
        input: unique("interactions"),
        labels: unique("labels"),
        scores: unique("scores"),
        dead_letter: unique("dlq"),
        changelog: None,
    };
    services.create_topics(&[&topics.input], 1).await?;
    services.create_topics(&[&topics.labels, &topics.scores, &topics.dead_letter], 2).await?;
    let producer = EventProducer::new(&KafkaConfig::new(&services.brokers))?;
    let report = produce_all(&producer, &topics, messages.into_iter().map(Ok), None, |_| {}).await?;
    assert_eq!(report.transactions, golden.events);

    let dir = tempfile::tempdir()?;
    let config_path = dir.path().join("weir.interactions.toml");
    std::fs::write(&config_path, test_config(&services, &topics)?)?;
    let mut weir = WeirProcess::spawn(&["run", "--config", &config_path.to_string_lossy()], dir.path().join("weir.log"))?;

    // Every event scored; then a graceful stop, and the whole scores topic read again, so
    // that a duplicate written after the first read would be seen.
    let want: HashSet<String> = golden_ids.iter().map(|s| s.to_string()).collect();
    let scores = read_scores(&services, &topics.scores, &want, Duration::from_secs(240), &mut weir).await?;
    anyhow::ensure!(scores.len() >= want.len(), "only {} scores", scores.len());
    let status = weir.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "weir run exited with {status} after SIGINT");
    let scores = read_scores_until(&services, &topics.scores, &want, Duration::from_secs(60), Arc::default()).await?;

    let mut by_id: HashMap<&str, Vec<&Score>> = HashMap::new();
    for s in &scores {
        by_id.entry(s.event_id.as_str()).or_default().push(s);
    }
    let duplicated: Vec<_> = by_id.iter().filter(|(_, v)| v.len() > 1).map(|(k, v)| (*k, v.len())).collect();
    assert!(duplicated.is_empty(), "scored more than once: {duplicated:?}");
    let strangers: Vec<_> = by_id.keys().filter(|k| !want.contains(**k)).collect();
    assert!(strangers.is_empty(), "scores of unknown events: {strangers:?}");

    let mut differences = Vec::new();
    for (row, ix) in golden.rows.iter().zip(&interactions) {
        let s = by_id[row.event_id.as_str()][0];
        assert_eq!((s.model_name.as_str(), s.model_version.as_str()), MODEL, "{}", row.event_id);
        assert_eq!(s.key, ix.user.id, "{}: the score's key is the primary key user.id", row.event_id);
        assert_eq!(s.event_time, ix.event_time, "{}", row.event_id);
        let attributes: BTreeMap<String, String> = [
            ("country".to_string(), ix.user.country.clone()),
            ("device".to_string(), ix.device.clone()),
            ("segment".to_string(), ix.user.segment.clone()),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.attributes, attributes, "{}", row.event_id);
        let names: Vec<&str> = s.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, golden.feature_names, "{}: feature names and order", row.event_id);
        for (f, want) in s.features.iter().zip(&row.features) {
            if !close_f32(f.value, *want) {
                differences.push(format!("{} {}: weir {}, python {want}", row.event_id, f.name, f.value));
            }
        }
        if (s.value() - row.score).abs() > 1e-5 {
            differences.push(format!("{} score: weir {}, python {}", row.event_id, s.value(), row.score));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences from the golden, the first:\n{}",
        differences.len(),
        differences.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );

    // The readable feature hashes: one per user and per item, as of its newest event.
    let mut last: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, ix) in interactions.iter().enumerate() {
        last.insert(("user", ix.user.id.as_str()), i);
        last.insert(("item", ix.item.id.as_str()), i);
    }
    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut missing = Vec::new();
    for ((entity, id), i) in &last {
        let key = format!("{KEY_PREFIX}:{{{entity}:{id}}}");
        let actual: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&key).query_async(&mut con).await?;
        if actual.is_empty() {
            missing.push(key);
            continue;
        }
        let expected = expected_hash(&golden.feature_names, entity, &golden.rows[*i], interactions[*i].event_time);
        // user: 6 aggregations × 3 windows; item: 3 × 2; both: event_time_max.
        assert_eq!(expected.len(), if *entity == "user" { 19 } else { 7 }, "{key}");
        for (field, want) in expected {
            let got: f64 = actual.get(&field).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            if !close_f64(got, want) {
                differences.push(format!("{key} {field}: redis {got}, expected {want}"));
            }
        }
    }
    assert!(missing.is_empty(), "{} entities without a feature hash, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(
        differences.is_empty(),
        "{} differences in the feature hashes, the first:\n{}",
        differences.len(),
        differences.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(last.keys().any(|(e, _)| *e == "item") && last.keys().any(|(e, _)| *e == "user"));
    Ok(())
}

/// Reads the scores topic until every id in `want` has a score, failing at once (with
/// weir's log) if weir exits meanwhile.
async fn read_scores(
    services: &Services,
    topic: &str,
    want: &HashSet<String>,
    timeout: Duration,
    weir: &mut WeirProcess,
) -> anyhow::Result<Vec<Score>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut read = Box::pin(read_scores_until(services, topic, want, timeout, stop.clone()));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            result = &mut read => {
                return result.map_err(|e| anyhow::anyhow!("{e:#}\nweir log:\n{}", weir.log_plain()));
            }
            _ = tick.tick() => {
                if let Some(status) = weir.exited()? {
                    stop.store(true, Ordering::Relaxed);
                    let _ = read.await;
                    anyhow::bail!("weir run exited with {status} before scoring everything\nweir log:\n{}", weir.log_plain());
                }
            }
        }
    }
}

/// Every score on `topic`, read from the beginning until all of `want` are there and the
/// reader has caught up (or `stop` is set).
async fn read_scores_until(
    services: &Services,
    topic: &str,
    want: &HashSet<String>,
    timeout: Duration,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Score>> {
    let (brokers, topic, want) = (services.brokers.clone(), topic.to_string(), want.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Score>> {
        let decoder = score_decoder()?;
        let mut scores: Vec<Score> = Vec::new();
        let mut seen = HashSet::new();
        let mut decoded = 0;
        let mut error = None;
        let result = read_topic(&brokers, &topic, timeout, |m| {
            for msg in &m[decoded..] {
                match decoder.decode(payload(msg)) {
                    Ok(s) => {
                        seen.insert(s.event_id.clone());
                        scores.push(s);
                    }
                    Err(e) => error = Some(e),
                }
            }
            decoded = m.len();
            error.is_some() || stop.load(Ordering::Relaxed) || want.iter().all(|id| seen.contains(id))
        });
        if let Some(e) = error {
            anyhow::bail!("a score did not decode: {e}");
        }
        result.map_err(|e| anyhow::anyhow!("{e:#}: {} of {} events scored", seen.len(), want.len()))?;
        Ok(scores)
    })
    .await?
}

/// The shipped model under tract scores the golden's features as onnxruntime did: the
/// golden's scores are what the scorer must produce once the features are right.
#[test]
fn tract_scores_the_golden_features_like_onnxruntime() -> anyhow::Result<()> {
    let golden = load_golden()?;
    let model = weir_scorer::model::LoadedModel::load_dir(
        &workspace().join("models/interactions/v1"),
        &golden.feature_names,
        &[1, 64],
    )?;
    let rows: Vec<f32> = golden.rows.iter().flat_map(|r| r.features.iter().map(|v| *v as f32)).collect();
    let scores = model.score(&rows)?;
    assert_eq!(scores.len(), golden.rows.len());
    let worst = scores.iter().zip(&golden.rows).map(|(s, r)| (f64::from(*s) - r.score).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-5, "tract and onnxruntime differ by up to {worst}");
    // The golden is not degenerate: scores spread, and some events had no earlier one.
    let mean = golden.rows.iter().map(|r| r.score).sum::<f64>() / golden.rows.len() as f64;
    assert!(golden.rows.iter().any(|r| r.score > 5.0 * mean) && golden.rows.iter().any(|r| r.score < 0.5 * mean));
    Ok(())
}

#[test]
fn shifted_start_moves_by_whole_weeks_into_the_last_nine_days() {
    let golden = 1_767_225_600_000;
    let now = 1_795_000_000_000;
    let s = shifted_start(golden, now);
    assert_eq!((s - golden) % WEEK_MS, 0);
    assert!(s <= now - 2 * 86_400_000 && s > now - 9 * 86_400_000, "{s}");
    // Idempotent when the golden itself is recent.
    assert_eq!(shifted_start(s, now), s);
}

#[test]
fn expected_hash_strips_the_entity_prefix_and_keeps_windowed_aggregates() {
    let names: Vec<String> = ["hour_of_day", "user_count_10m", "user_seconds_since_last", "item_count_1h", "price_to_user_mean_24h"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let row = GoldenRow { event_id: "e".into(), score: 0.5, features: vec![3.0, 2.0, 10.0, 7.0, 1.0] };
    let user = expected_hash(&names, "user", &row, 1_000);
    assert_eq!(user, [("count_10m".to_string(), 2.0), ("event_time_max".to_string(), 1_000.0)].into_iter().collect());
    let item = expected_hash(&names, "item", &row, 1_000);
    assert_eq!(item.get("count_1h"), Some(&7.0));
}
