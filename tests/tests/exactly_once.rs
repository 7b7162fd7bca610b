//! Exactly-once, done for real: `weir run` with `kafka.exactly_once` is SIGKILLed ten
//! times at random moments over 50 000 events, on a broker with Kafka transactions
//! (noida-db: Tansu 0.6.0 has none, and librdkafka's mock cluster answers the
//! transactional requests without their meaning; see `Services::start_transactional`).
//! A `read_committed` reader of the scores must then see each event exactly once, and
//! each score must carry the vector a clean single pass computed for that event: what a
//! killed process scored but did not commit is invisible, and its restart restores the
//! state the committed scores were computed from.

use std::collections::HashMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use weir::config::WeirConfig;
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::events::Score;
use weir_tests::golden::{payload, read_topic};
use weir_tests::setup::{generate, pipeline_config, score_decoder};
use weir_tests::{unique, Services, WeirProcess};

const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// A config file for `weir run` on `services`, exactly-once or not.
fn write_config(dir: &std::path::Path, name: &str, config: &WeirConfig) -> anyhow::Result<String> {
    config.check()?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(config)?)?;
    Ok(path.to_string_lossy().into_owned())
}

/// Every score of `topic` read by a `read_committed` reader until `expected` distinct
/// events have one (or `timeout`): per event id, each score it got.
async fn committed_scores(brokers: &str, topic: &str, expected: usize, timeout: Duration) -> anyhow::Result<HashMap<String, Vec<Score>>> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    let decoder = score_decoder()?;
    tokio::task::spawn_blocking(move || {
        let mut scores: HashMap<String, Vec<Score>> = HashMap::new();
        let mut decoded = 0;
        let mut error = None;
        let _ = read_topic(&brokers, &topic, timeout, |m| {
            for msg in &m[decoded..] {
                match decoder.decode(payload(msg)) {
                    Ok(s) => scores.entry(s.event_id.clone()).or_default().push(s),
                    Err(e) => error = Some(e),
                }
            }
            decoded = m.len();
            scores.len() >= expected
        });
        if let Some(e) = error {
            anyhow::bail!("a score did not decode: {e}");
        }
        Ok(scores)
    })
    .await?
}

fn logs(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            out.push_str(&format!("==> {} <==\n{}\n", entry.path().display(), std::fs::read_to_string(entry.path()).unwrap_or_default()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sigkills_with_transactions_each_event_scored_once_with_its_first_vector() -> anyhow::Result<()> {
    const EVENTS: u64 = 50_000;
    const KILLS: usize = 10;
    let services = Services::start_transactional()?;
    let dir = tempfile::tempdir()?;
    let mut config = pipeline_config(&services, "eos");
    // WEIR_EOS_CONTROL=1 runs the same kills at-least-once: the control that shows these
    // checks catch what the transactions prevent (duplicates, vectors recomputed).
    let control = std::env::var_os("WEIR_EOS_CONTROL").is_some();
    config.kafka.exactly_once = !control;
    config.kafka.transactional_id = Some(unique("weir-eos"));
    config.kafka.batch.max_events = 200;
    config.kafka.consumer_properties.insert("session.timeout.ms".into(), SESSION_TIMEOUT.as_millis().to_string());
    // Static membership (KIP-345), as a StatefulSet would run it: the restarted process
    // takes its dead predecessor's place in the group at once. noida-db notices a dead
    // dynamic member only when the rebalance it is holding up times out
    // (`max.poll.interval.ms`), not when its session does.
    config.kafka.consumer_properties.insert("group.instance.id".into(), unique("weir-eos-instance"));
    config.monitor.enabled = false;
    let t = &config.kafka.topics;
    services.create_topics(&[&t.input, &t.labels, &t.scores, &t.dead_letter], 4).await?;
    let eos_path = write_config(dir.path(), "eos", &config)?;

    let (messages, valid) = generate(GeneratorConfig::new(4343, weir_schemas::now_ms() - 3_600_000, EVENTS))?;
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;

    let seed: u64 = match std::env::var("WEIR_KILL_SEED") {
        Ok(s) => s.parse().map_err(|e| anyhow::anyhow!("WEIR_KILL_SEED={s:?}: {e}"))?,
        Err(_) => rand::rng().random(),
    };
    eprintln!("kill moments seed {seed} (WEIR_KILL_SEED={seed} replays them)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for kill in 0..KILLS {
        let process = WeirProcess::spawn(&["run", "--config", &eos_path], dir.path().join("eos.log"))?;
        let moment = Duration::from_millis(rng.random_range(300..4_000));
        tokio::time::sleep(moment).await;
        let mut process = process;
        anyhow::ensure!(process.exited()?.is_none(), "weir exited before kill {kill}:\n{}", logs(dir.path()));
        process.kill()?;
        tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(1)).await;
    }
    let last = WeirProcess::spawn(&["run", "--config", &eos_path], dir.path().join("eos.log"))?;
    committed_scores(&services.brokers, &config.kafka.topics.scores, valid.len(), Duration::from_secs(300)).await?;
    let status = last.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "weir run exited with {status}\n{}", logs(dir.path()));
    // Read again once nothing more can come: every committed score, duplicates included.
    let exactly_once = committed_scores(&services.brokers, &config.kafka.topics.scores, usize::MAX, Duration::from_secs(20)).await?;

    // The clean pass: the same input, a group, changelog and scores topic of its own, no
    // kill.
    let mut clean = config.clone();
    clean.kafka.group_id = unique("weir-eos-clean");
    clean.kafka.topics.scores = unique("scores-clean");
    clean.kafka.transactional_id = Some(unique("weir-eos-clean"));
    clean.features.key_prefix = unique("weir-eos-clean");
    clean.kafka.consumer_properties.insert("group.instance.id".into(), unique("weir-eos-clean-instance"));
    services.create_topics(&[&clean.kafka.topics.scores], 4).await?;
    let clean_path = write_config(dir.path(), "clean", &clean)?;
    let process = WeirProcess::spawn(&["run", "--config", &clean_path], dir.path().join("clean.log"))?;
    let reference = committed_scores(&services.brokers, &clean.kafka.topics.scores, valid.len(), Duration::from_secs(300)).await?;
    let status = process.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "clean weir run exited with {status}\n{}", logs(dir.path()));

    let (mut missing, mut twice, mut differ) = (0, 0, Vec::new());
    for tx in &valid {
        let Some(reference) = reference.get(&tx.event_id).and_then(|s| s.first()) else {
            anyhow::bail!("the clean pass did not score {}", tx.event_id);
        };
        match exactly_once.get(&tx.event_id).map(Vec::as_slice) {
            None | Some([]) => missing += 1,
            Some([score]) => {
                let same = score.features.len() == reference.features.len()
                    && score.features.iter().zip(&reference.features).all(|(a, b)| a.name == b.name && a.value.to_bits() == b.value.to_bits());
                if !same {
                    differ.push(tx.event_id.clone());
                }
            }
            Some(_) => twice += 1,
        }
    }
    let restores = logs(dir.path()).matches("partition state restored from the changelog").count();
    eprintln!(
        "{KILLS} kills ({}): {} events, missing {missing}, scored more than once {twice}, vectors unlike the clean pass {}, partition restores {restores}",
        if control { "at-least-once, the control" } else { "exactly-once" },
        valid.len(),
        differ.len()
    );
    if missing + twice > 0 || !differ.is_empty() {
        let kept = dir.keep();
        eprintln!("logs kept in {}", kept.display());
    }
    assert_eq!(missing, 0, "events without a committed score");
    assert_eq!(twice, 0, "events with more than one committed score");
    assert!(differ.is_empty(), "vectors unlike the clean pass's: {:?}", &differ[..differ.len().min(5)]);
    Ok(())
}
