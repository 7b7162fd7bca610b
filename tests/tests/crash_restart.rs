//! The fault, done for real: `weir run` processes are SIGKILLed mid-stream against Tansu
//! and Redis and restarted. Every test ends with every event scored (none lost) and every
//! card's features in Redis equal to one clean pass over the events (nothing double
//! counted), although the restarts replay whatever was not yet committed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, TopicPartitionList};
use weir::config::WeirConfig;
use weir::wiring::store_keys;
use weir_ingest::config::KafkaConfig;
use weir_ingest::generator::{Content, GeneratedMessage, GeneratorConfig, Stream};
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::events::Transaction;
use weir_tests::golden::{default_windows, expected_card_features, payload, read_topic, redis_feature_differences};
use weir_tests::setup::{create_pipeline_topics, generate, one_record_per_batch, pipeline_config, score_decoder};
use weir_tests::{strip_ansi, Services, WeirProcess};

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
    /// The world with its events produced ([`one_record_per_batch`]: a restart resumes
    /// from a committed offset inside the stream).
    async fn new(events: u64, seed: u64, tune: impl FnOnce(&mut WeirConfig)) -> anyhow::Result<Self> {
        let (world, messages) = Self::unproduced(events, seed, tune).await?;
        produce(&one_record_per_batch(&world.config.kafka), messages, None).await?;
        Ok(world)
    }

    /// The world with its topics empty, and the messages to produce onto them, in stream
    /// order: `valid` lists the valid transactions among them in the same order.
    async fn unproduced(
        events: u64,
        seed: u64,
        tune: impl FnOnce(&mut WeirConfig),
    ) -> anyhow::Result<(Self, Vec<GeneratedMessage>)> {
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
        let world = World { services, config, config_path: config_path.to_string_lossy().into(), valid, dir };
        Ok((world, messages))
    }

    /// A `weir run` process logging to `weir.log`.
    fn spawn(&self) -> anyhow::Result<WeirProcess> {
        self.spawn_named("weir")
    }

    /// A `weir run` process logging to `<name>.log`, to tell processes' logs apart.
    fn spawn_named(&self, name: &str) -> anyhow::Result<WeirProcess> {
        WeirProcess::spawn(&["run", "--config", &self.config_path], self.dir.path().join(format!("{name}.log")))
    }

    /// Every process's log, each under its file name (for failure messages).
    fn log_text(&self) -> String {
        logs_in(self.dir.path())
    }

    /// [`World::log_text`] for later, from another thread.
    fn log_text_later(&self) -> impl Fn() -> String + Send + 'static {
        let dir = self.dir.path().to_path_buf();
        move || logs_in(&dir)
    }

    /// Reads the scores topic until it holds at least `min` scores, or until every valid
    /// event has one when `min` is `None`. Returns the event id of every score read.
    async fn read_scores(&self, min: Option<usize>, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let ids: HashSet<String> = self.valid.iter().map(|t| t.event_id.clone()).collect();
        self.read_scores_until(timeout, move |scored, distinct| match min {
            Some(n) => scored.len() >= n,
            None => distinct.len() >= ids.len() && ids.iter().all(|id| distinct.contains(id)),
        })
        .await
    }

    /// Reads the scores topic until `done(every score's event id, the distinct ones)`.
    async fn read_scores_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[String], &HashSet<String>) -> bool + Send + 'static,
    ) -> anyhow::Result<Vec<String>> {
        let brokers = self.services.brokers.clone();
        let topic = self.config.kafka.topics.scores.clone();
        let decoder = score_decoder()?;
        let logs = self.log_text_later();
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
                done(&scored, &distinct)
            });
            if let Some(e) = decode_error {
                anyhow::bail!("a score did not decode: {e}");
            }
            result.map_err(|e| anyhow::anyhow!("{e:#}\nweir logs:\n{}", logs()))?;
            Ok(scored)
        })
        .await?
    }

    /// Waits until at least `n` of the events `ids` have a score, checking each score as
    /// it arrives (unlike [`World::read_scores`], which checks when the topic goes quiet),
    /// so that the caller acts while the stream is still flowing. Returns how many.
    async fn wait_for_scores_of(&self, ids: HashSet<String>, n: usize, timeout: Duration) -> anyhow::Result<usize> {
        let brokers = self.services.brokers.clone();
        let topic = self.config.kafka.topics.scores.clone();
        let decoder = score_decoder()?;
        let logs = self.log_text_later();
        tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", weir_tests::unique("weir-test-reader"))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .create()?;
            // Assigned, not subscribed: no consumer group in the way.
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let partitions = metadata.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len());
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions as i32 {
                tpl.add_partition_offset(&topic, p, rdkafka::Offset::Beginning)?;
            }
            consumer.assign(&tpl)?;
            let deadline = Instant::now() + timeout;
            let mut seen = HashSet::new();
            while seen.len() < n {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "only {} of the {} events scored after {timeout:?}\nweir logs:\n{}",
                    seen.len(),
                    ids.len(),
                    logs()
                );
                if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                    let score = decoder.decode(m?.payload().unwrap_or_default())?;
                    if ids.contains(&score.event_id) {
                        seen.insert(score.event_id);
                    }
                }
            }
            Ok(seen.len())
        })
        .await?
    }

    /// Every card's features in Redis compared with a brute-force pass over the events.
    async fn feature_differences(&self) -> anyhow::Result<(usize, Vec<String>)> {
        let expected =
            expected_card_features(&self.valid, &default_windows(), self.config.features.allowed_lateness_ms());
        let differences =
            redis_feature_differences(&self.services.redis_url, &store_keys(&self.config), &expected).await?;
        Ok((expected.len(), differences))
    }

    /// Reads the first `count` messages of the transactions topic: the partition of each
    /// card among them (the producer's partitioner hashes the key, the card id).
    async fn card_partitions(&self, count: usize) -> anyhow::Result<HashMap<String, i32>> {
        let (brokers, topic) = (self.services.brokers.clone(), self.config.kafka.topics.input.clone());
        let messages = tokio::task::spawn_blocking(move || {
            read_topic(&brokers, &topic, Duration::from_secs(60), |m| m.len() >= count)
        })
        .await??;
        Ok(messages
            .iter()
            .filter_map(|m| m.key().map(|k| (String::from_utf8_lossy(k).into_owned(), m.partition())))
            .collect())
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

/// The `*.log` files in `dir`, each under its name.
fn logs_in(dir: &Path) -> String {
    let mut logs: Vec<_> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
    logs.sort();
    logs.iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            format!("==> {name} <==\n{}", std::fs::read_to_string(p).unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Produces `messages`, `rate` transactions a second at most (`None`: at once).
async fn produce(kafka: &KafkaConfig, messages: Vec<GeneratedMessage>, rate: Option<f64>) -> anyhow::Result<()> {
    let producer = EventProducer::new(kafka)?;
    produce_all(&producer, &kafka.topics, messages.into_iter().map(Ok), rate, |_| {}).await?;
    Ok(())
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
    // the partitions back: the re-formed group waits on its dead leader (point 2 of the
    // comment at the two-process tests).
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

/// SIGTERM, what systemd and Kubernetes send, drains like SIGINT (issue 24 item 7): the
/// batch in flight finishes, its offsets are committed, the process exits 0, and the
/// restart scores no event twice. (Before, SIGTERM's default action killed the process
/// at once: exit by signal, and the restart replayed the uncommitted tail.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_commits_and_exits_zero() -> anyhow::Result<()> {
    const EVENTS: usize = 20_000;
    let world = World::new(EVENTS as u64, 505, |_| {}).await?;
    let first = world.spawn()?;
    let partial = world.read_scores(Some(EVENTS / 4), Duration::from_secs(120)).await?;
    let status = first
        .terminate(Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("{e:#}\nweir log:\n{}", world.log_text()))?;
    anyhow::ensure!(status.success(), "weir run exited with {status} after SIGTERM\n{}", world.log_text());
    // As after a kill: the broker settles the group before the next member joins.
    tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(1)).await;

    let second = world.spawn()?;
    let scored = world.read_scores(None, Duration::from_secs(180)).await?;
    stop(second, &world)?;
    let (missing, twice) = world.check_scores(&scored);
    eprintln!("SIGTERM after >= {} scores: {EVENTS} events, {} scores, missing {missing}, scored twice {twice}", partial.len(), scored.len());
    assert_eq!(missing, 0, "events lost across the SIGTERM");
    assert_eq!(twice, 0, "the restart scored events again: SIGTERM did not commit what was scored");
    Ok(())
}

/// Ten SIGKILLs at random moments over 50 000 events, each followed by a restart.
///
/// Each restart waits out the session timeout first, so the broker has evicted the dead
/// member when the new one joins: Tansu 0.6.0 mishandles a dead member that is evicted
/// while live members remain (points 1 and 2 of the comment at the two-process tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_random_sigkills_over_fifty_thousand_events_count_once() -> anyhow::Result<()> {
    const EVENTS: usize = 50_000;
    const KILLS: usize = 10;
    let world = World::new(EVENTS as u64, 4242, |_| {}).await?;
    // WEIR_KILL_SEED replays a failed run's kill moments.
    let seed: u64 = match std::env::var("WEIR_KILL_SEED") {
        Ok(s) => s.parse().map_err(|e| anyhow::anyhow!("WEIR_KILL_SEED={s:?}: {e}"))?,
        Err(_) => rand::rng().random(),
    };
    eprintln!("kill moments seed {seed} (WEIR_KILL_SEED={seed} replays them)");
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

// The two-process tests: where partitions go when a member of the group dies.
//
// What Tansu 0.6.0 does, which shapes the test that runs on it (file references are to
// the crates `tansu-broker` 0.6.0 and `tansu-storage` 0.6.0):
//
// 1. A dead member's partitions go nowhere with an eager assignor. The coordinator
//    notices a dead member only while handling another member's request, comparing each
//    member's last contact with the session timeout (`missed_heartbeat`,
//    src/coordinator/group/administrator.rs). In a formed group it is the survivor's next
//    Heartbeat: `Inner<Formed>::heartbeat` drops the member and answers
//    REBALANCE_IN_PROGRESS, but the group stays *formed*, in the same generation, with
//    the old leader and the old assignments (the `Wrapper::missed_heartbeat` that
//    `Controller::heartbeat` calls next, which would turn it back into a forming group,
//    finds nobody left to drop). The survivor rejoins; `Inner<Formed>::join` starts a new
//    generation only for a new member or a member whose JoinGroup metadata changed,
//    otherwise ("existing") it answers with the same generation, and `Inner<Formed>::sync`
//    ignores the assignments the leader sends and hands back the member's assignment of
//    the old generation. An eager assignor (range, roundrobin) revokes everything before
//    rejoining, so librdkafka's metadata never changes: the survivor gets exactly its old
//    partitions back (seen: revoke `[0, 1]`, assign `[0, 1]`), the dead one's are orphaned.
// 2. With `cooperative-sticky` the metadata carries the partitions the member owns and
//    the generation it got them in (librdkafka's `rd_kafka_sticky_assignor_get_metadata`),
//    so it changes at every rejoin: the group re-forms in a new generation and the
//    leader's assignment is taken. But a re-formed group keeps its old leader
//    (`leader: Some(self.state.leader)` in `Inner<Formed>::join`): if the dead member led
//    the group, every SyncGroup is answered REBALANCE_IN_PROGRESS (`Inner<Forming>::sync`)
//    and the group never forms again. The leader is the member that formed the group and
//    stays it while alive, so the test starts the survivor first and lets it form the
//    group alone, then kills the member that joined second.
// 3. A fetch from an offset inside a stored record batch skips the rest of that batch:
//    `DynoStore::fetch` (src/dynostore.rs, the `memory://` engine the harness runs) lists
//    the batches by base offset and returns those from `offsets.split_off(&offset)`, i.e.
//    whose *base* is at or after the offset (Kafka returns the batch containing it). A
//    consumer resumes mid-batch whenever it refetches from the position it had consumed
//    to: librdkafka pauses every assigned partition during a rebalance (also kept ones,
//    `rd_kafka_assignment_pause(.., "incremental rebalance")` in rdkafka_cgrp.c) and
//    refetches from there, and a new owner starts at the committed offset. Seen: offsets
//    700..=735 of a partition the survivor kept throughout, never delivered (a fetch at 50
//    of a 100-record batch returns nothing). The test's own producer therefore writes the
//    input one record per batch (`batch.num.messages=1`), so that every offset is a batch
//    boundary; weir's settings are untouched.
//
// The ignored test keeps the plain shape (range assignor, either process may lead, input
// batched) for a real Kafka broker.

/// Two processes in one consumer group on four partitions; the one that joined second is
/// SIGKILLed mid-stream and the survivor takes its partitions over from the state in
/// Redis: every event scored, every card's features equal to one clean pass. Runs on
/// Tansu 0.6.0 (see above for the shape: cooperative-sticky, the survivor forms the group
/// first, one input record per batch).
///
/// The events come in three parts: the first before any process starts; the second,
/// paced, once both own partitions, the victim being killed while it flows (once it has
/// scored some of its own); the third after the kill, so that the victim's partitions
/// receive events that only their new owner can score. Offsets are committed only on
/// revocation and shutdown, so the victim commits nothing and the survivor replays
/// everything the victim did: the fences must make that replay count for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_one_killed_survivor_takes_over_and_counts_once() -> anyhow::Result<()> {
    const EVENTS: u64 = 24_000;
    /// Events of its own the victim must have scored before it is killed.
    const VICTIM_SCORED: usize = 300;
    /// Transactions a second in the second part: it lasts ~8 s.
    const PACE: f64 = 1_000.0;
    let started = Instant::now();
    let (world, mut messages) = World::unproduced(EVENTS, 99, |c| {
        c.kafka.batch.max_events = 100;
        let props = &mut c.kafka.consumer_properties;
        props.insert("partition.assignment.strategy".into(), "cooperative-sticky".into());
        props.insert("auto.commit.interval.ms".into(), "600000".into());
    })
    .await?;
    let topic = world.config.kafka.topics.input.clone();
    let third = messages.len() / 3;
    let last: Vec<GeneratedMessage> = messages.split_off(2 * third);
    let second: Vec<GeneratedMessage> = messages.split_off(third);
    let first = messages;
    let valid_in =
        |part: &[GeneratedMessage]| part.iter().filter(|m| matches!(m.content, Content::Transaction { .. })).count();
    let (first_valid, second_valid) = (valid_in(&first), valid_in(&second));
    let first_on_topic = first.iter().filter(|m| m.stream == Stream::Transactions).count();
    // One record per batch on the input topic (3. above).
    let input = one_record_per_batch(&world.config.kafka);
    produce(&input, first, None).await?;
    // Which partition each card's events go to (the producer's partitioner hashes the key).
    let card_partition = world.card_partitions(first_on_topic).await?;

    let survivor = world.spawn_named("survivor")?;
    let all: BTreeSet<i32> = (0..4).collect();
    wait_for_log(&survivor, &world, "the survivor assigned all four partitions", |log| {
        (owned(log, &topic) == all).then_some(())
    })
    .await?;
    let mut victim = world.spawn_named("victim")?;
    let victim_partitions = wait_for_log(&victim, &world, "the victim assigned partitions", |log| {
        let p = owned(log, &topic);
        (!p.is_empty()).then_some(p)
    })
    .await?;
    let survivor_partitions = owned(&survivor.log_plain(), &topic);
    anyhow::ensure!(
        survivor_partitions.is_disjoint(&victim_partitions) && survivor_partitions.len() + victim_partitions.len() == 4,
        "survivor owns {survivor_partitions:?}, victim {victim_partitions:?}\n{}",
        world.log_text()
    );

    // The second part, on the victim's partitions: nobody but the victim scores these
    // before the kill.
    let victims_own: HashSet<String> = world.valid[first_valid..first_valid + second_valid]
        .iter()
        .filter(|t| card_partition.get(&t.card_id).is_some_and(|p| victim_partitions.contains(p)))
        .map(|t| t.event_id.clone())
        .collect();
    anyhow::ensure!(victims_own.len() > 2 * VICTIM_SCORED, "only {} events for the victim", victims_own.len());
    let producing = {
        let input = input.clone();
        tokio::spawn(async move { produce(&input, second, Some(PACE)).await })
    };
    let victim_scored = world.wait_for_scores_of(victims_own, VICTIM_SCORED, Duration::from_secs(120)).await?;
    anyhow::ensure!(victim.exited()?.is_none(), "the victim exited early:\n{}", world.log_text());
    let survivor_assignments_before = assigned_lines(&survivor.log_plain(), &topic).len();
    victim.kill()?;
    let killed = Instant::now();
    let still_producing = !producing.is_finished();
    producing.await??;
    produce(&input, last, None).await?;

    // The evidence that the partitions moved: the survivor is assigned the victim's
    // partitions after the kill.
    let moved = wait_for_log(&survivor, &world, "the survivor assigned the victim's partitions", |log| {
        let after: BTreeSet<i32> =
            assigned_lines(log, &topic)[survivor_assignments_before..].iter().flatten().copied().collect();
        victim_partitions.is_subset(&after).then_some(after)
    })
    .await?;
    let takeover = killed.elapsed();
    let scored = match world.read_scores(None, Duration::from_secs(120)).await {
        Ok(scored) => scored,
        Err(e) => {
            // Which partitions lack scores tells a takeover that never came (the victim's)
            // from events skipped by the broker (any).
            let now: HashSet<String> = world
                .read_scores_until(Duration::from_secs(30), {
                    // Caught up: two quiet polls in a row with nothing new.
                    let mut last = 0;
                    move |s, _| std::mem::replace(&mut last, s.len()) == s.len() && !s.is_empty()
                })
                .await?
                .into_iter()
                .collect();
            let mut missing: BTreeMap<Option<i32>, usize> = BTreeMap::new();
            for t in world.valid.iter().filter(|t| !now.contains(&t.event_id)) {
                *missing.entry(card_partition.get(&t.card_id).copied()).or_default() += 1;
            }
            return Err(e.context(format!("events without a score, by partition (None: unknown): {missing:?}")));
        }
    };
    stop(survivor, &world)?;

    let (missing, twice) = world.check_scores(&scored);
    let (cards, differences) = world.feature_differences().await?;
    eprintln!(
        "two processes, one killed: {EVENTS} events; victim owned {victim_partitions:?}, killed after scoring {victim_scored} of its own \
         (second part still being produced: {still_producing}); survivor assigned {moved:?} {:.1} s after the kill; \
         {} scores, missing {missing}, scored more than once {twice}, cards {cards}, feature differences {}; {:.1} s in all",
        takeover.as_secs_f64(),
        scored.len(),
        differences.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(missing, 0, "events lost in the takeover");
    assert!(twice > 0, "the survivor replayed nothing of the victim's: the fences were not exercised");
    assert!(differences.is_empty(), "features differ from one clean pass: {:?}", &differences[..differences.len().min(5)]);
    Ok(())
}

/// The plain shape, for a real Kafka broker: two processes started together with the
/// default (range, eager) assignor, so either may be the group's leader, one SIGKILLed
/// mid-stream; the survivor takes over. Run it with
/// `WEIR_TEST_BROKERS=host:9092 cargo test -p weir-tests --test crash_restart -- --ignored`.
///
/// Ignored on Tansu 0.6.0, which never hands a dead member's partitions on with an eager
/// assignor, nor at all when the dead member led the group, and skips the rest of a
/// record batch when a consumer resumes inside it (see above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Tansu 0.6.0 does not reassign a dead member's partitions with the range assignor (see the comment above)"]
async fn two_processes_range_assignor_one_killed_survivor_takes_over_and_counts_once() -> anyhow::Result<()> {
    const EVENTS: usize = 30_000;
    let (world, messages) = World::unproduced(EVENTS as u64, 99, |c| {
        c.kafka.batch.max_events = 100;
    })
    .await?;
    // Batched as any producer batches: a real broker serves a fetch from inside a batch.
    produce(&world.config.kafka, messages, None).await?;
    let topic = world.config.kafka.topics.input.clone();
    let survivor = world.spawn_named("survivor")?;
    let mut victim = world.spawn_named("victim")?;
    world.read_scores(Some(EVENTS / 3), Duration::from_secs(120)).await?;
    anyhow::ensure!(victim.exited()?.is_none(), "weir exited early:\n{}", world.log_text());
    let victim_partitions = owned(&victim.log_plain(), &topic);
    let survivor_assignments_before = assigned_lines(&survivor.log_plain(), &topic).len();
    victim.kill()?;
    let scored = world.read_scores(None, Duration::from_secs(180)).await?;
    let survivor_log = survivor.log_plain();
    stop(survivor, &world)?;

    let (missing, twice) = world.check_scores(&scored);
    let (cards, differences) = world.feature_differences().await?;
    let moved: BTreeSet<i32> =
        assigned_lines(&survivor_log, &topic)[survivor_assignments_before..].iter().flatten().copied().collect();
    eprintln!(
        "two processes (range), one killed: {EVENTS} events, {} scores, missing {missing}, scored more than once {twice}, cards {cards}, \
         feature differences {}, victim owned {victim_partitions:?}, survivor assigned {moved:?} after the kill",
        scored.len(),
        differences.len()
    );
    assert_eq!(missing, 0, "events lost in the takeover");
    assert!(differences.is_empty(), "features differ from one clean pass: {:?}", &differences[..differences.len().min(5)]);
    assert!(
        !victim_partitions.is_empty() && victim_partitions.is_subset(&moved),
        "the victim's partitions {victim_partitions:?} did not move to the survivor ({moved:?}):\n{}",
        world.log_text()
    );
    Ok(())
}

/// The partitions of `topic` in each "partitions assigned" line of a (plain) log, in
/// order. The consumer logs them as `partitions=<topic>[0, 1]`.
fn assigned_lines(log: &str, topic: &str) -> Vec<Vec<i32>> {
    partition_lines(log, topic, "partitions assigned")
}

fn partition_lines(log: &str, topic: &str, event: &str) -> Vec<Vec<i32>> {
    let needle = format!("{topic}[");
    log.lines()
        .filter(|l| l.contains(event))
        .map(|l| {
            l.find(&needle)
                .and_then(|i| l[i + needle.len()..].split(']').next())
                .map(|list| list.split(',').filter_map(|p| p.trim().parse().ok()).collect())
                .unwrap_or_default()
        })
        .collect()
}

/// The partitions of `topic` a process owns according to its log: assigned minus revoked,
/// in log order (an eager assignor revokes everything, cooperative-sticky only what moves).
fn owned(log: &str, topic: &str) -> BTreeSet<i32> {
    let mut owned = BTreeSet::new();
    for line in log.lines() {
        let (assigned, revoked) = (line.contains("partitions assigned"), line.contains("partitions revoked"));
        if assigned || revoked {
            for p in partition_lines(line, topic, "partitions").into_iter().flatten() {
                if assigned {
                    owned.insert(p);
                } else {
                    owned.remove(&p);
                }
            }
        }
    }
    owned
}

/// Polls `process`'s log until `found` returns something (60 s at most).
async fn wait_for_log<T>(
    process: &WeirProcess,
    world: &World,
    what: &str,
    found: impl Fn(&str) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = found(&strip_ansi(&process.log_text())) {
            return Ok(t);
        }
        anyhow::ensure!(Instant::now() < deadline, "waited 60 s for {what}:\n{}", world.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
