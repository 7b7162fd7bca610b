//! The learner's crash guarantee, done for real: the `weir learn` process is SIGKILLed
//! twice mid-stream against Tansu and Redis and restarted; in the end every label was
//! learned exactly once. Proven by the count and the fingerprint (sum of hashes of the
//! learned event ids) that the learner persists in the same Redis transaction as its
//! model and offsets, compared with the same two numbers computed here from the
//! generator's labels.

use std::time::Duration;

use weir::config::WeirConfig;
use weir_ingest::generator::GeneratorConfig;
use weir_tests::learning::{checkpoint_state, expected_learned, labels, produce_and_score, write_learner_config};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config};
use weir_tests::{Services, WeirProcess};

const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// The learner's lease. A restarted learner waits for the killed one's lease to expire,
/// at least two thirds of it after the kill (renewals come every third), and only then
/// joins the consumer group: by then the broker has evicted the dead member — Tansu
/// 0.6.0 does not hand a dead member's partitions to a member that joined before the
/// eviction (see crash_restart.rs). 10 s after the kill against a 6 s session timeout.
const LEASE: Duration = Duration::from_secs(15);

async fn learned_now(config: &WeirConfig) -> anyhow::Result<u64> {
    Ok(checkpoint_state(config).await?.map(|s| s.counters.learned).unwrap_or(0))
}

/// Waits until the checkpoint shows at least `n` labels learned.
async fn wait_learned(config: &WeirConfig, n: u64, process: &mut WeirProcess, timeout: Duration) -> anyhow::Result<u64> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let learned = learned_now(config).await?;
        if learned >= n {
            return Ok(learned);
        }
        anyhow::ensure!(process.exited()?.is_none(), "weir learn exited:\n{}", process.log_text());
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "only {learned} of {n} labels learned after {timeout:?}:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_killed_twice_learns_every_label_exactly_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    match killed_twice(dir.path()).await {
        Ok(()) => Ok(()),
        Err(e) => {
            // Keep the learner's log and config for the post-mortem.
            let kept = dir.keep();
            Err(e.context(format!("logs kept in {}", kept.display())))
        }
    }
}

async fn killed_twice(dir: &std::path::Path) -> anyhow::Result<()> {
    const EVENTS: u64 = 6_000;
    let services = Services::start()?;
    let mut config = pipeline_config(&services, "learn-restart");
    create_pipeline_topics(&services, &config, 4).await?;

    let (messages, valid) = generate(GeneratorConfig::new(515, weir_schemas::now_ms() - 3_600_000, EVENTS))?;
    assert_eq!(valid.len() as u64, EVENTS);
    let (expected_count, expected_fingerprint) = expected_learned(&labels(&messages));
    produce_and_score(&config, messages, EVENTS).await?;

    // The learner: small batches so the kills land mid-stream; no join bound can drop a
    // label here (the stream spans minutes, the bounds a day), so every label must join.
    let config_path = dir.join("weir.toml");
    write_learner_config(&mut config, "weir-learn", LEASE, SESSION_TIMEOUT, &config_path)?;
    let path = config_path.to_string_lossy().to_string();
    let spawn = || WeirProcess::spawn(&["learn", "--config", &path], dir.join("learn.log"));

    let mut kills = Vec::new();
    for fraction in [4, 2] {
        let mut p = spawn()?;
        let at = wait_learned(&config, expected_count / fraction, &mut p, Duration::from_secs(180)).await?;
        p.kill()?;
        kills.push((at, learned_now(&config).await?));
        // Restarted at once: the successor waits for the dead one's lease (see LEASE).
    }
    let mut last = spawn()?;
    wait_learned(&config, expected_count, &mut last, Duration::from_secs(180)).await?;
    // Let it run on a little: nothing more may be learned (no label twice).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = last.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "weir learn exited with {status}");

    let log = weir_tests::strip_ansi(&std::fs::read_to_string(dir.join("learn.log"))?);
    let waits = log.matches("holds the lease; waiting").count();
    let state = checkpoint_state(&config).await?.ok_or_else(|| anyhow::anyhow!("no checkpoint"))?;
    let c = &state.counters;
    eprintln!(
        "learner restart: {EVENTS} events, {expected_count} labels; kills at learned {kills:?}; final learned {}, \
         fingerprint match {}, replayed records skipped {}, scores pending {}, join {:?}",
        c.learned,
        c.learned_fingerprint == expected_fingerprint,
        c.replayed_skipped,
        c.join.scores_pending_added - c.join.joined.min(c.join.scores_pending_added),
        c.join
    );
    assert_eq!(waits, 2, "each restarted learner waits for the killed one's lease:\n{log}");
    for (at, _) in &kills {
        assert!(*at > 0 && *at < expected_count, "a kill did not land mid-stream: {kills:?}");
    }
    assert_eq!(c.learned, expected_count, "labels learned (lost or twice)");
    assert_eq!(c.learned_fingerprint, expected_fingerprint, "a different set of labels was learned");
    assert_eq!(c.labels_seen, expected_count, "a label record was applied twice or never");
    assert_eq!(c.scores_seen, EVENTS, "a score record was applied twice or never");
    // `weir learn --status` renders from the same checkpoint.
    let out = std::process::Command::new(weir_tests::weir_bin()?).args(["learn", "--config", &path, "--status"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("labels learned     {expected_count}")), "{text}");
    // Issue 26: the README says --status prints accuracy; the last column is it.
    assert!(text.contains("ECE     acc"), "{text}");
    let accuracy: Vec<f64> = text
        .lines()
        // The prequential rows: they start with the window size.
        .filter(|l| l.split_whitespace().next().is_some_and(|w| w.parse::<u64>().is_ok()))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(!accuracy.is_empty() && accuracy.iter().all(|a| (0.0..=1.0).contains(a)), "{text}");
    eprintln!("{text}");
    Ok(())
}
