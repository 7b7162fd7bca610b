//! The plain Python peer (`tools/bench/python_peer.py`: confluent-kafka + fastavro +
//! redis-py + onnxruntime) run as a subprocess on the bench topic, and what it reports:
//! its rate and CPU, and its check of its feature vectors against weir's scores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::commands::bench::report::Run;

/// What the peer is run with.
#[derive(Debug, Clone)]
pub struct PeerArgs {
    pub python: PathBuf,
    pub script: PathBuf,
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub redis: String,
    pub key_prefix: String,
    pub events: u64,
    /// weir's scores of the same events (run with state local), to compare vectors with.
    pub weir_scores_topic: String,
    pub timeout: Duration,
    /// Only consume and count (`--count-only`): the Python client's own ceiling.
    pub count_only: bool,
}

/// The peer's last line on stdout: one JSON object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeerOutput {
    pub events: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub timed_out: bool,
    pub check: Check,
}

/// The peer's vectors against weir's, event by event (matched by event id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Events found in both.
    pub compared: u64,
    /// Events whose vectors differ in any feature (compared as float32, weir's row type).
    pub differences: u64,
    /// The peer's events with no score from weir, and weir's scores with no peer event.
    pub missing_in_weir: u64,
    pub missing_in_peer: u64,
    /// Per feature name: events where it differs.
    pub by_feature: BTreeMap<String, u64>,
    /// Events whose card's events came out of event-time order (the peer answers those by
    /// summing panes, not with weir's running totals, so their sums may differ in the last
    /// bits).
    pub out_of_order: u64,
}

impl Check {
    pub fn summary(&self) -> String {
        let by: Vec<String> = self.by_feature.iter().filter(|(_, n)| **n > 0).map(|(f, n)| format!("{f} {n}")).collect();
        format!(
            "python peer vs weir (state local), feature vectors by event id: {} compared, {} differ{}, {} missing in weir, {} missing in the peer, {} out of event-time order",
            self.compared,
            self.differences,
            if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) },
            self.missing_in_weir,
            self.missing_in_peer,
            self.out_of_order
        )
    }
}

impl PeerOutput {
    /// Reads the last non-empty line of `stdout`.
    pub fn parse(stdout: &str) -> anyhow::Result<Self> {
        let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).context("the python peer printed nothing")?;
        serde_json::from_str(line).with_context(|| format!("reading the python peer's report {line:?}"))
    }

    /// The peer's row (`count_only`: the count-only run's) and its check.
    pub fn into_run(self, count_only: bool) -> (Run, Check) {
        if count_only {
            let run = Run {
                pipeline: "raw consume, python (confluent-kafka, count only)".into(),
                events: self.events,
                seconds: self.seconds,
                cpu_seconds: self.cpu_seconds,
                p50_us: None,
                p99_us: None,
                timed_out: self.timed_out,
                note: "its own process's CPU".into(),
            };
            return (run, self.check);
        }
        let run = Run {
            pipeline: "python peer (confluent-kafka + fastavro + redis-py + onnxruntime)".into(),
            events: self.events,
            seconds: self.seconds,
            cpu_seconds: self.cpu_seconds,
            p50_us: self.p50_us,
            p99_us: self.p99_us,
            timed_out: self.timed_out,
            note: "its own process's CPU; latency is receipt to the batch's scores computed and its Redis pipeline answered (no scores produced)".into(),
        };
        (run, self.check)
    }
}

/// Where the peer script is: `tools/bench/python_peer.py` under the working directory,
/// else under the source tree weir was built from.
pub fn default_script() -> PathBuf {
    let here = Path::new("tools/bench/python_peer.py");
    if here.is_file() { here.to_path_buf() } else { Path::new(env!("CARGO_MANIFEST_DIR")).join(here) }
}

/// Runs the peer to the end (or kills it at the timeout) and reads its report.
pub async fn run(args: &PeerArgs) -> anyhow::Result<PeerOutput> {
    let mut command = tokio::process::Command::new(&args.python);
    command
        .arg(&args.script)
        .args(["--brokers", &args.brokers, "--topic", &args.topic, "--group", &args.group])
        .args(["--redis", &args.redis, "--key-prefix", &args.key_prefix])
        .args(["--events", &args.events.to_string(), "--weir-scores-topic", &args.weir_scores_topic])
        .args(["--timeout-secs", &args.timeout.as_secs().to_string()])
        .args(args.count_only.then_some("--count-only"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let child = command.spawn().with_context(|| format!("starting {} {}", args.python.display(), args.script.display()))?;
    // The peer stops itself at its timeout; this one (longer: it also reads weir's scores
    // back) is for a peer that hangs anyway.
    let output = tokio::time::timeout(args.timeout * 2 + Duration::from_secs(120), child.wait_with_output())
        .await
        .context("the python peer did not finish in time (killed)")??;
    if !output.status.success() {
        anyhow::bail!("the python peer failed: {}", output.status);
    }
    PeerOutput::parse(&String::from_utf8_lossy(&output.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_line_as_the_report() {
        let stdout = "consumed 10\n{\"events\": 10, \"seconds\": 0.5, \"cpu_seconds\": 0.4, \"p50_us\": 900, \"p99_us\": null, \"timed_out\": false, \
            \"check\": {\"compared\": 10, \"differences\": 1, \"missing_in_weir\": 0, \"missing_in_peer\": 0, \"by_feature\": {\"card_amount_sum_1h\": 1, \"amount_log\": 0}, \"out_of_order\": 2}}\n\n";
        let out = PeerOutput::parse(stdout).unwrap();
        assert_eq!((out.events, out.p50_us, out.p99_us), (10, Some(900), None));
        assert!(out.check.summary().contains("10 compared, 1 differ (card_amount_sum_1h 1), 0 missing in weir"), "{}", out.check.summary());
        let (run, check) = out.clone().into_run(false);
        assert_eq!(run.events_per_sec(), 20.0);
        assert!(run.pipeline.starts_with("python peer"));
        assert!(out.into_run(true).0.pipeline.starts_with("raw consume, python"));
        assert_eq!(check.out_of_order, 2);
    }

    #[test]
    fn a_peer_that_printed_no_report_is_an_error_naming_the_line() {
        let e = PeerOutput::parse("Traceback (most recent call last)\n").unwrap_err();
        assert!(format!("{e:#}").contains("Traceback"), "{e:#}");
        assert!(PeerOutput::parse("").is_err());
    }
}
