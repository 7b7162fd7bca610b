//! One learner per name, enforced by a lease in Redis with a fencing token.
//!
//! - `a_replaced_holder_cannot_write_the_checkpoint`: the fence itself, on a real Redis:
//!   once a second holder has acquired, the first one's write, renewal and release are
//!   refused and change nothing.
//! - `second_learner_waits_then_takes_over_and_the_paused_one_cannot_write`: two real
//!   `weir learn` processes with the same name. The second waits while the first runs;
//!   the first is then paused (SIGSTOP) past its lease, the second takes over and learns;
//!   the first is resumed, finds itself replaced, and exits with an error without writing;
//!   in the end every label was learned exactly once.

use std::time::Duration;

use weir::config::WeirConfig;
use weir_ingest::generator::GeneratorConfig;
use weir_online_learner::checkpoint::{Acquire, RedisCheckpoint};
use weir_online_learner::learner::{Commit, LearnerState};
use weir_tests::learning::{checkpoint_state, expected_learned, labels, produce_and_score, write_learner_config};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config};
use weir_tests::{strip_ansi, unique, Services, WeirProcess};

fn commit_with_learned(learned: u64) -> anyhow::Result<Commit> {
    let mut state = LearnerState::fresh();
    state.counters.learned = learned;
    Ok(Commit {
        state_json: serde_json::to_string(&state)?,
        joined: vec![(format!("s{learned}"), Some(learned.to_string()))],
        eval_capacity: 10,
        ..Commit::default()
    })
}

#[tokio::test]
async fn a_replaced_holder_cannot_write_the_checkpoint() -> anyhow::Result<()> {
    let services = Services::start()?;
    let url = services.redis_url.clone();
    let prefix = unique("lease");
    let mut first = RedisCheckpoint::connect(&url, &prefix, "fraud-ftrl").await?;
    let mut second = RedisCheckpoint::connect(&url, &prefix, "fraud-ftrl").await?;

    // Without the lease nothing can be written.
    assert!(matches!(first.commit(&commit_with_learned(9)?).await, Err(weir_online_learner::Error::LeaseLost { .. })));
    assert_eq!(first.acquire("first", 1_000).await?, Acquire::Acquired(1));
    match second.acquire("second", 1_000).await? {
        Acquire::Held { by, ttl_ms } => assert!(by == "1 first" && ttl_ms > 0 && ttl_ms <= 1_000, "{by} {ttl_ms}"),
        other => panic!("the second acquired a held lease: {other:?}"),
    }
    first.commit(&commit_with_learned(1)?).await?;
    first.renew().await?;

    // The first stops renewing (paused, cut off): its lease expires, the second takes it.
    let mut waited = 0;
    let token = loop {
        match second.acquire("second", 60_000).await? {
            Acquire::Acquired(token) => break token,
            Acquire::Held { .. } => {
                waited += 1;
                anyhow::ensure!(waited < 600, "the first lease never expired");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(token, 2, "a new token on every acquisition");
    second.commit(&commit_with_learned(2)?).await?;

    // The first wakes up: every write is refused and nothing of it lands.
    match first.commit(&commit_with_learned(3)?).await {
        Err(weir_online_learner::Error::LeaseLost { token, current }) => assert_eq!((token, current.as_str()), (1, "2")),
        other => panic!("a replaced holder wrote its checkpoint: {other:?}"),
    }
    assert!(matches!(first.renew().await, Err(weir_online_learner::Error::LeaseLost { .. })));
    assert!(!first.release().await?, "a replaced holder released the successor's lease");
    let restored = second.load().await?;
    assert_eq!(restored.state.map(|s| s.counters.learned), Some(2));
    let mut ids: Vec<String> = restored.joined.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ["s1", "s2"], "only the holders' own writes landed");
    // The successor still holds it; a clean release frees it for a third.
    assert!(matches!(first.acquire("third", 1_000).await?, Acquire::Held { .. }));
    assert!(second.release().await?);
    assert_eq!(first.acquire("third", 1_000).await?, Acquire::Acquired(3));
    Ok(())
}

const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Longer than the session timeout: when the successor gets the lease and joins the
/// consumer group, the paused holder has been evicted from the group already (Tansu
/// 0.6.0 does not hand an evicted member's partitions to one that joined before the
/// eviction; see crash_restart.rs).
const LEASE: Duration = Duration::from_secs(9);

async fn learned_now(config: &WeirConfig) -> anyhow::Result<u64> {
    Ok(checkpoint_state(config).await?.map(|s| s.counters.learned).unwrap_or(0))
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while !done().await? {
        anyhow::ensure!(std::time::Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn signal(p: &WeirProcess, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(p.id() as i32, sig);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_learner_waits_then_takes_over_and_the_paused_one_cannot_write() -> anyhow::Result<()> {
    const EVENTS: u64 = 6_000;
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = pipeline_config(&services, "learn-lease");
    create_pipeline_topics(&services, &config, 4).await?;
    let (messages, _) = generate(GeneratorConfig::new(616, weir_schemas::now_ms() - 3_600_000, EVENTS))?;
    let (expected_count, expected_fingerprint) = expected_learned(&labels(&messages));
    // Half the stream now, the other half once the first learner is paused: so the pause
    // lands mid-stream however fast the first one learns.
    let mut messages = messages;
    let rest = messages.split_off(messages.len() / 2);
    let txs = |m: &[weir_ingest::generator::GeneratedMessage]| {
        m.iter().filter(|m| matches!(m.content, weir_ingest::generator::Content::Transaction { .. })).count() as u64
    };
    let (first_txs, rest_txs) = (txs(&messages), txs(&rest));
    assert_eq!(first_txs + rest_txs, EVENTS);
    produce_and_score(&config, messages, first_txs).await?;

    let path = dir.path().join("weir.toml");
    write_learner_config(&mut config, "weir-lease", LEASE, SESSION_TIMEOUT, &path)?;
    let path = path.to_string_lossy().to_string();

    let mut first = WeirProcess::spawn(&["learn", "--config", &path], dir.path().join("first.log"))?;
    wait_for("the first learner learning", Duration::from_secs(120), async || {
        anyhow::ensure!(first.exited()?.is_none(), "first exited:\n{}", first.log_text());
        Ok(learned_now(&config).await? >= 100)
    })
    .await?;
    let mut second = WeirProcess::spawn(&["learn", "--config", &path], dir.path().join("second.log"))?;
    wait_for("the second learner waiting for the lease", Duration::from_secs(60), async || {
        anyhow::ensure!(second.exited()?.is_none(), "second exited:\n{}", second.log_text());
        Ok(second.log_text().contains("holds the lease; waiting"))
    })
    .await?;
    assert!(!second.log_text().contains("acquired the learner lease"), "{}", second.log_text());

    // Pause the holder mid-stream, past its lease: the second takes over.
    signal(&first, libc::SIGSTOP);
    let paused_at = learned_now(&config).await?;
    produce_and_score(&config, rest, rest_txs).await?;
    wait_for("the second learner taking over", Duration::from_secs(120), async || {
        anyhow::ensure!(second.exited()?.is_none(), "second exited:\n{}", second.log_text());
        Ok(second.log_text().contains("acquired the learner lease") && learned_now(&config).await? > paused_at)
    })
    .await?;
    assert!(paused_at < expected_count, "the pause did not land mid-stream");
    assert!(second.log_plain().contains("acquired the learner lease token=2"), "{}", second.log_text());

    // The first wakes up replaced: it must stop with an error and write nothing.
    signal(&first, libc::SIGCONT);
    wait_for("the replaced learner exiting", Duration::from_secs(60), async || Ok(first.exited()?.is_some())).await?;
    let status = first.exited()?.expect("exited");
    let first_log = first.log_text();
    assert!(!status.success(), "the replaced learner exited cleanly:\n{first_log}");
    assert!(first_log.contains("lease lost"), "{first_log}");

    let all_learned = wait_for("every label learned", Duration::from_secs(180), async || {
        anyhow::ensure!(second.exited()?.is_none(), "second exited:\n{}", second.log_text());
        Ok(learned_now(&config).await? >= expected_count)
    })
    .await;
    if let Err(e) = all_learned {
        let learned = learned_now(&config).await?;
        anyhow::bail!("{e:#}: {learned} of {expected_count} learned\nsecond learner's log:\n{}", second.log_text());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = second.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "weir learn exited with {status}");

    let state = checkpoint_state(&config).await?.ok_or_else(|| anyhow::anyhow!("no checkpoint"))?;
    let c = &state.counters;
    eprintln!(
        "lease: {expected_count} labels; paused at {paused_at}; final learned {}, fingerprint match {}; replaced learner's last lines:\n{}",
        c.learned,
        c.learned_fingerprint == expected_fingerprint,
        strip_ansi(&first_log).lines().filter(|l| l.contains("lease")).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(c.learned, expected_count, "labels learned (lost or twice)");
    assert_eq!(c.learned_fingerprint, expected_fingerprint, "a different set of labels was learned");
    assert_eq!(c.labels_seen, expected_count, "a label record was applied twice or never");
    assert_eq!(c.scores_seen, EVENTS, "a score record was applied twice or never");
    Ok(())
}
