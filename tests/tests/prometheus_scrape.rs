//! A real Prometheus (Debian's `prometheus` package; `scripts/test.sh` installs it)
//! scrapes `weir run`'s `/metrics` with the shipped `ops/prometheus.yml`, and the main
//! series are there when asked through Prometheus's HTTP API. Every PromQL expression of
//! `ops/grafana-dashboard.json` is also sent to Prometheus, which must accept it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir::config::MetricsConfig;
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_tests::golden::read_topic;
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config};
use weir_tests::{free_port, Services, WeirProcess};

fn prometheus_bin() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("WEIR_PROMETHEUS_BIN") {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("prometheus not found: run scripts/test.sh (apt-get install prometheus)"))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET `path` on 127.0.0.1:`port`; the JSON body.
fn get_json(port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

fn query(port: u16, q: &str) -> anyhow::Result<serde_json::Value> {
    get_json(port, &format!("/api/v1/query?query={}", encode(q)))
}

/// The value of the first sample of an instant query, if any.
fn first_value(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"].get(0)?["value"].get(1)?.as_str()?.parse().ok()
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_weir_and_accepts_the_dashboard() -> anyhow::Result<()> {
    let prometheus = prometheus_bin()?;
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let weir_port = free_port()?;
    let mut config = pipeline_config(&services, "prometheus");
    config.metrics = MetricsConfig { listen: Some(format!("127.0.0.1:{weir_port}")) };
    config.monitor.lag_interval_secs = 1;
    config.check()?;
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;
    create_pipeline_topics(&services, &config, 2).await?;
    let (messages, _) = generate(GeneratorConfig::new(12, weir_schemas::now_ms() - 3_600_000, 1_000))?;
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;

    let weir = WeirProcess::spawn(&["run", "--config", &path.to_string_lossy()], dir.path().join("weir.log"))?;
    let (brokers, scores) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    tokio::task::spawn_blocking(move || read_topic(&brokers, &scores, Duration::from_secs(120), |m| m.len() >= 1_000))
        .await?
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", weir.log_text()))?;

    // The shipped scrape config, pointed at this weir and scraping every second.
    let shipped = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/prometheus.yml"))?;
    assert!(shipped.contains("127.0.0.1:9464") && shipped.contains("scrape_interval: 15s"));
    let prom_config = shipped
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{weir_port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    std::fs::write(dir.path().join("prometheus.yml"), prom_config)?;
    let prom_port = free_port()?;
    let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
    let _prom = Child(
        Command::new(prometheus)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let prom_log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // Wait until Prometheus has scraped the final count and the lag gauges.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let scored = query(prom_port, "weir_events_scored_total").ok().and_then(|v| first_value(&v));
        let lag = query(prom_port, "weir_consumer_lag").ok().map(|v| v["data"]["result"].as_array().map_or(0, Vec::len));
        if scored == Some(1_000.0) && lag == Some(2) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "prometheus saw scored={scored:?} lag series={lag:?}\n{}", prom_log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(first_value(&query(prom_port, r#"up{job="weir"}"#)?), Some(1.0));
    for series in [
        "weir_events_received_total",
        "weir_batches_total",
        r#"weir_event_latency_seconds{quantile="0.999"}"#,
        r#"weir_model_batch_seconds{quantile="0.5"}"#,
        r#"weir_batch_size{quantile="0.5"}"#,
        r#"weir_model_info{model="fraud-baseline",version="v1"}"#,
        "weir_monitor_scores_total",
        "weir_monitor_labels_total",
    ] {
        let v = query(prom_port, series)?;
        assert!(first_value(&v).is_some(), "no {series} in prometheus: {v}");
    }
    let lag_groups = query(prom_port, "weir_consumer_lag")?;
    let groups: Vec<&str> =
        lag_groups["data"]["result"].as_array().into_iter().flatten().filter_map(|r| r["metric"]["group"].as_str()).collect();
    assert!(groups.contains(&config.kafka.group_id.as_str()), "{groups:?}");
    assert!(groups.contains(&format!("{}-monitor", config.kafka.group_id).as_str()), "{groups:?}");
    // The monitor reads what the pipeline wrote: every score, once.
    assert_eq!(first_value(&query(prom_port, "weir_monitor_scores_total")?), Some(1_000.0));

    // The dashboard's expressions are valid PromQL for this Prometheus.
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ops/grafana-dashboard.json"),
    )?)?;
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 20, "{} expressions", exprs.len());
    for e in exprs {
        let v = query(prom_port, e)?;
        assert_eq!(v["status"], "success", "{e}: {v}");
    }
    assert!(weir.interrupt(Duration::from_secs(30))?.success());
    Ok(())
}
