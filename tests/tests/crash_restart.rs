//! The fault, done for real: `weir run` processes are SIGKILLed mid-stream against Tansu
//! and Redis and restarted. Every test ends with every event scored (none lost) and every
//! card's features in Redis equal to one clean pass over the events (nothing double
//! counted), although the restarts replay whatever was not yet committed.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use weir::config::WeirConfig;
use weir::pipeline::card_keys;
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::produce::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::events::Transaction;
use weir_tests::golden::{default_windows, expected_card_features, payload, read_topic, redis_feature_differences};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::{Services, WeirProcess};

const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// A test world: services, a config file for `weir run`, and the events on the topic.
struct World {
    services: Services,
    config: WeirConfig,
    config_path: String,
    valid: Vec<Transaction>,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(events: u64, seed: u64, tune: impl FnOnce(&mut WeirConfig)) -> anyhow::Result<Self> {
        let services = Services::start()?;
        let dir = tempfile::tempdir()?;
        let mut config = pipeline_config(&services, "crash");
        config.kafka.batch.max_events = 200;
        // A dead member is noticed sooner, so restarts and takeovers are quick.
        config
            .kafka
            .consumer_properties
            .insert("session.timeout.ms".into(), SESSION_TIMEOUT.as_millis().to_string());
        // These tests are about the features in Redis and the scores. The monitor stage
        // would publish drift alerts to a topic this world does not create, and its
        // delivery retries outlast the 30 s shutdown allowance.
        config.monitor.enabled = false;
        tune(&mut config);
        config.check()?;
        let config_path = dir.path().join("weir.toml");
        std::fs::write(&config_path, toml::to_string(&config)?)?;
        create_pipeline_topics(&services, &config, 4).await?;

        let (messages, valid) = generate(GeneratorConfig::new(seed, weir_schemas::now_ms() - 3_600_000, events))?;
        let producer = EventProducer::new(&config.kafka)?;
        produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;
        Ok(World { services, config, config_path: config_path.to_string_lossy().into(), valid, dir })
    }

    fn spawn(&self) -> anyhow::Result<WeirProcess> {
        WeirProcess::spawn(&["run", "--config", &self.config_path], self.log())
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("weir.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Reads the scores topic until it holds at least `min` scores, or until every valid
    /// event has one when `min` is `None`. Returns the event id of every score read.
    async fn read_scores(&self, min: Option<usize>, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let brokers = self.services.brokers.clone();
        let topic = self.config.kafka.topics.scores.clone();
        let ids: HashSet<String> = self.valid.iter().map(|t| t.event_id.clone()).collect();
        let decoder = score_decoder()?;
        let log = self.log();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
            let mut scored = Vec::new();
            let mut distinct = HashSet::new();
            let mut decoded = 0;
            let mut decode_error = None;
            let result = read_topic(&brokers, &topic, timeout, |m| {
                for msg in &m[decoded..] {
                    match decoder.decode(payload(msg)) {
                        Ok(s) => {
                            distinct.insert(s.event_id.clone());
                            scored.push(s.event_id);
                        }
                        Err(e) => decode_error = Some(e),
                    }
                }
                decoded = m.len();
                match min {
                    Some(n) => scored.len() >= n,
                    None => distinct.len() >= ids.len() && ids.iter().all(|id| distinct.contains(id)),
                }
            });
            if let Some(e) = decode_error {
                anyhow::bail!("a score did not decode: {e}");
            }
            result.map_err(|e| {
                anyhow::anyhow!("{e:#}\nweir log:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
            })?;
            Ok(scored)
        })
        .await?
    }

    /// Every card's features in Redis compared with a brute-force pass over the events.
    async fn feature_differences(&self) -> anyhow::Result<(usize, Vec<String>)> {
        let expected =
            expected_card_features(&self.valid, &default_windows(), self.config.features.allowed_lateness_ms());
        let differences =
            redis_feature_differences(&self.services.redis_url, &card_keys(&self.config), &expected).await?;
        Ok((expected.len(), differences))
    }

    fn check_scores(&self, scored: &[String]) -> (usize, usize) {
        let mut per_event: HashMap<&str, usize> = HashMap::new();
        for id in scored {
            *per_event.entry(id).or_default() += 1;
        }
        let missing = self.valid.iter().filter(|t| !per_event.contains_key(t.event_id.as_str())).count();
        (missing, scored.len() - per_event.len())
    }
}

fn stop(process: WeirProcess, world: &World) -> anyhow::Result<()> {
    let status = process
        .interrupt(Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("{e:#}\nweir log:\n{}", world.log_text()))?;
    anyhow::ensure!(status.success(), "weir run exited with {status} after SIGINT\n{}", world.log_text());
    Ok(())
}

/// One SIGKILL with no commit at all before it: the restart replays the whole stream so
/// far, the hardest case for double counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_before_any_commit_then_restart_counts_once() -> anyhow::Result<()> {
    const EVENTS: usize = 20_000;
    let world = World::new(EVENTS as u64, 77, |c| {
        c.kafka.consumer_properties.insert("auto.commit.interval.ms".into(), "600000".into());
    })
    .await?;

    let mut first = world.spawn()?;
    let partial = world.read_scores(Some(EVENTS / 4), Duration::from_secs(120)).await?;
    anyhow::ensure!(first.exited()?.is_none(), "weir exited early:\n{}", world.log_text());
    first.kill()?;
    // Like the ten-kill test: let the broker evict the dead member first. Since `weir run`
    // also runs the monitor's consumer group, a restart that joins while the dead member
    // is still in the groups is handed empty assignments by Tansu 0.6.0 and never gets
    // the partitions back (the bug described at the two-process test).
    tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(1)).await;

    let second = world.spawn()?;
    let scored = world.read_scores(None, Duration::from_secs(180)).await?;
    stop(second, &world)?;

    let (missing, twice) = world.check_scores(&scored);
    let (cards, differences) = world.feature_differences().await?;
    eprintln!(
        "one kill before any commit: {EVENTS} events, >= {} scores before the kill, {} scores in all, missing {missing}, scored twice {twice}, cards {cards}, feature differences {}",
        partial.len(),
        scored.len(),
        differences.len()
    );
    assert_eq!(missing, 0, "events lost across the crash");
    assert!(twice > 0, "the restart replayed nothing: the test did not exercise the fence");
    assert!(differences.is_empty(), "features differ from one clean pass: {:?}", &differences[..differences.len().min(5)]);
    Ok(())
}

/// Ten SIGKILLs at random moments over 50 000 events, each followed by a restart.
///
/// Each restart waits out the session timeout first, so the broker has evicted the dead
/// member when the new one joins: Tansu 0.6.0 mishandles a dead member that is evicted
/// while live members remain (see `two_processes_one_killed_...` below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_random_sigkills_over_fifty_thousand_events_count_once() -> anyhow::Result<()> {
    const EVENTS: usize = 50_000;
    const KILLS: usize = 10;
    let world = World::new(EVENTS as u64, 4242, |_| {}).await?;
    let seed: u64 = rand::rng().random();
    eprintln!("kill moments seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    for kill in 0..KILLS {
        let mut process = world.spawn()?;
        // Anywhere from before the group join completes to well into processing.
        let moment = Duration::from_millis(rng.random_range(300..4_000));
        tokio::time::sleep(moment).await;
        anyhow::ensure!(process.exited()?.is_none(), "weir exited before kill {kill}:\n{}", world.log_text());
        process.kill()?;
        tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(1)).await;
    }
    let last = world.spawn()?;
    let scored = world.read_scores(None, Duration::from_secs(300)).await?;
    stop(last, &world)?;

    let (missing, twice) = world.check_scores(&scored);
    let (cards, differences) = world.feature_differences().await?;
    eprintln!(
        "{KILLS} random kills: {EVENTS} events, {} scores, missing {missing}, scored more than once {twice}, cards {cards}, feature differences {}",
        scored.len(),
        differences.len()
    );
    assert_eq!(missing, 0, "events lost across the crashes");
    assert!(differences.is_empty(), "features differ from one clean pass: {:?}", &differences[..differences.len().min(5)]);
    Ok(())
}

/// Two processes in one consumer group share four partitions; one is SIGKILLed mid-stream
/// and the survivor takes its partitions over from the state in Redis.
///
/// Ignored on Tansu 0.6.0, which weir's CI runs: after the broker evicts a SIGKILLed
/// member (its "missed heartbeat" log line), the survivor rejoins but is handed back only
/// its old partitions, as if the dead member were still in the group, so the dead member's
/// partitions are never consumed again. Seen in this test's logs: revoke `[0, 1]`, assign
/// `[0, 1]` after the eviction, with 4 partitions and one live member. With the range
/// assignor, librdkafka can only compute that split when the broker's JoinGroup answer
/// lists two members. Run it against a real Kafka broker:
/// `WEIR_TEST_BROKERS=host:9092 cargo test -p weir-tests --test crash_restart -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Tansu 0.6.0 does not reassign a dead member's partitions (see the doc comment)"]
async fn two_processes_one_killed_survivor_takes_over_and_counts_once() -> anyhow::Result<()> {
    const EVENTS: usize = 30_000;
    let world = World::new(EVENTS as u64, 99, |c| {
        c.kafka.batch.max_events = 100;
    })
    .await?;
    let survivor = world.spawn()?;
    let mut victim = world.spawn()?;
    world.read_scores(Some(EVENTS / 3), Duration::from_secs(120)).await?;
    anyhow::ensure!(victim.exited()?.is_none(), "weir exited early:\n{}", world.log_text());
    victim.kill()?;
    let scored = world.read_scores(None, Duration::from_secs(180)).await?;
    stop(survivor, &world)?;
    assert!(Path::new(&world.log()).exists());

    let (missing, twice) = world.check_scores(&scored);
    let (cards, differences) = world.feature_differences().await?;
    let assignments = world.log_text().matches("partitions assigned").count();
    eprintln!(
        "two processes, one killed: {EVENTS} events, {} scores, missing {missing}, scored more than once {twice}, cards {cards}, feature differences {}, assignments logged {assignments}",
        scored.len(),
        differences.len()
    );
    assert_eq!(missing, 0, "events lost in the takeover");
    assert!(differences.is_empty(), "features differ from one clean pass: {:?}", &differences[..differences.len().min(5)]);
    assert!(assignments >= 3, "expected both processes assigned and a reassignment after the kill:\n{}", world.log_text());
    Ok(())
}
