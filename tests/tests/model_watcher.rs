//! Issue 24 item 6, on the real binary: the model validation holes.
//!
//! A registry with a good champion; a model whose graph input is narrower than its
//! feature list (`[?, 8]` under 9 names, an 8-feature `LinearClassifier`) and a model whose
//! `positive_class_index` has no output column are both refused by `weir models promote`
//! with the reason. Then the champion pointer is forced onto each of them by hand, as a
//! user editing the file would, while `weir serve` runs: its watcher refuses each with the
//! reason, nothing panics, the old version keeps serving (`GET /model`). A promotion and a
//! rollback are then served within two polls. Finally a restart with the bad champion
//! still in the pointer serves the earlier champion instead of failing (it used to
//! crash-loop).

use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_schemas::model::ModelMetadata;
use weir_schemas::registry::ModelRegistry;
use weir_tests::models::{narrowed, publish_as, shipped};
use weir_tests::setup::pipeline_config;
use weir_tests::{free_port, weir_bin, Services, WeirProcess};

const MODEL: &str = "fraud";
const POLL_MS: u64 = 500;

fn weir(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(weir_bin()?).args(args).env("WEIR_LOG", "warn").output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// The version `GET /model` of `weir serve` names, or `None` while it is not answering.
async fn serving(port: u16) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(b"GET /model HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let body = response.split_once("\r\n\r\n")?.1;
    let meta: ModelMetadata = serde_json::from_str(body).ok()?;
    Some(meta.version)
}

/// Waits until `weir serve` serves `version`; returns how long that took.
async fn wait_serving(port: u16, version: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if serving(port).await.as_deref() == Some(version) {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < timeout, "weir serve did not serve {version} within {timeout:?} (serving {:?})", serving(port).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the log of `process` contains every one of `needles` (after `from` bytes).
async fn wait_log(process: &WeirProcess, from: usize, needles: &[&str], timeout: Duration) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let log = process.log_plain();
        let tail = log.get(from..).unwrap_or_default().to_string();
        if needles.iter().all(|n| tail.contains(n)) {
            return Ok(tail);
        }
        anyhow::ensure!(start.elapsed() < timeout, "log never showed {needles:?}; log since:\n{tail}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn point(root: &std::path::Path, version: &str) -> anyhow::Result<()> {
    // By hand, as a user editing the file would (not through the registry).
    Ok(std::fs::write(root.join(MODEL).join("champion"), format!("{version}\n"))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_models_are_refused_by_promote_and_the_watcher_and_later_moves_are_served() -> anyhow::Result<()> {
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("registry");
    publish_as(&root, MODEL, "v1", &shipped("baseline"), |_, _| {})?;
    publish_as(&root, MODEL, "v2", &shipped("logistic"), |_, _| {})?;
    publish_as(&root, MODEL, "bad-class", &shipped("baseline"), |meta, _| meta.positive_class_index = 5)?;
    // The narrower model, published with its own checksum (it is not a corrupt file).
    let baseline = shipped("baseline");
    let mut meta: ModelMetadata = serde_json::from_str(&std::fs::read_to_string(baseline.join("metadata.json"))?)?;
    (meta.name, meta.version) = (MODEL.into(), "narrow".into());
    let onnx = narrowed(&std::fs::read(baseline.join("model.onnx"))?, 9, 8)?;
    ModelRegistry::open(&root)?.publish(&meta, &onnx)?;

    let mut config = pipeline_config(&services, "model-watcher");
    config.scorer.registry = Some(root.clone());
    config.scorer.registry_poll_ms = POLL_MS;
    config.check()?;
    let config_path = dir.path().join("weir.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let c = config_path.to_str().unwrap_or_default();
    let registry = ModelRegistry::open(&root)?;

    // `weir models promote` refuses both, with the reason, before the pointer moves.
    let (ok, out) = weir(&["models", "promote", "--config", c, "v1"])?;
    assert!(ok, "{out}");
    let (ok, out) = weir(&["models", "promote", "--config", c, "narrow"])?;
    assert!(!ok, "the narrower model was promoted: {out}");
    assert!(out.contains("not fit to serve") && out.contains("declared [?, 8]") && out.contains("lists 9 features"), "{out}");
    let (ok, out) = weir(&["models", "promote", "--config", c, "bad-class"])?;
    assert!(!ok, "the bad positive class was promoted: {out}");
    assert!(out.contains("not fit to serve") && out.contains("positive_class_index 5 is out of range"), "{out}");
    assert_eq!(registry.champion(MODEL)?.as_deref(), Some("v1"));
    assert_eq!(registry.history(MODEL)?.len(), 1, "a refused promote wrote history");

    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut serve = WeirProcess::spawn(&["serve", "--config", c, "--listen", &listen], dir.path().join("serve.log"))?;
    wait_serving(port, "v1", Duration::from_secs(60)).await?;

    // Forced by hand: the watcher refuses each with its reason; v1 keeps serving.
    for (bad, reason, says) in [("narrow", "input_width", "declared [?, 8]"), ("bad-class", "positive_class", "positive_class_index 5")] {
        let from = serve.log_plain().len();
        point(&root, bad)?;
        let log = wait_log(&serve, from, &["model version refused", reason, says], Duration::from_secs(30)).await?;
        assert!(log.contains(&format!("version={bad}")), "{log}");
        assert_eq!(serving(port).await.as_deref(), Some("v1"));
        // Remembered: not loaded and reported on every poll.
        tokio::time::sleep(Duration::from_millis(3 * POLL_MS)).await;
        let since = serve.log_plain().get(from..).unwrap_or_default().matches("model version refused").count();
        assert_eq!(since, 1, "refused more than once:\n{}", serve.log_plain());
        assert!(serve.exited()?.is_none(), "weir serve exited:\n{}", serve.log_plain());
    }

    // A promotion, then a rollback: each served within two polls (plus the HTTP probe).
    let (ok, out) = weir(&["models", "promote", "--config", c, "v2"])?;
    assert!(ok && out.contains("champion bad-class -> v2"), "{out}");
    let took = wait_serving(port, "v2", Duration::from_secs(30)).await?;
    eprintln!("promotion served after {took:?} (poll {POLL_MS} ms)");
    assert!(took <= Duration::from_millis(2 * POLL_MS + 500), "promotion took {took:?}");
    let (ok, out) = weir(&["models", "rollback", "--config", c])?;
    assert!(ok && out.contains("champion v2 -> v1 (rollback)"), "{out}");
    let took = wait_serving(port, "v1", Duration::from_secs(30)).await?;
    eprintln!("rollback served after {took:?} (poll {POLL_MS} ms)");
    assert!(took <= Duration::from_millis(2 * POLL_MS + 500), "rollback took {took:?}");

    let log = serve.log_plain();
    assert!(!log.contains("panicked"), "{log}");
    serve.kill()?;

    // A restart with a bad champion in the pointer: serves the earlier champion, loudly.
    point(&root, "narrow")?;
    let mut serve = WeirProcess::spawn(&["serve", "--config", c, "--listen", &listen], dir.path().join("restart.log"))?;
    wait_serving(port, "v1", Duration::from_secs(60)).await?;
    let log = wait_log(&serve, 0, &["model version refused at start-up", "input_width", "serving the earlier champion v1"], Duration::from_secs(10)).await?;
    assert!(!log.contains("panicked"), "{log}");
    // And the next move is still acted on.
    let (ok, out) = weir(&["models", "promote", "--config", c, "v2"])?;
    assert!(ok, "{out}");
    wait_serving(port, "v2", Duration::from_secs(30)).await?;
    assert!(serve.exited()?.is_none(), "weir serve exited:\n{}", serve.log_plain());
    serve.kill()?;
    Ok(())
}
