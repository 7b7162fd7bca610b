//! What `weir bench --brokers` reports: one row per pipeline run on the same topic, the
//! ratios to the raw consume, and the table printed from them.

use serde::{Deserialize, Serialize};

/// One pipeline's run over the bench topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// What ran: `raw consume`, `weir, state local`, …
    pub pipeline: String,
    /// Events it handled (for weir: scored) before it stopped.
    pub events: u64,
    /// The span the rate is over (first event received to last one done), seconds.
    pub seconds: f64,
    /// CPU time of the process that ran it over the run (user + system), seconds.
    pub cpu_seconds: f64,
    /// Receipt to score acknowledged, per event, from the pipeline's own histogram.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// It stopped at the timeout, not at the last event.
    pub timed_out: bool,
    /// What the row's figures include that the others' do not.
    pub note: String,
}

impl Run {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }

    /// Events per second of CPU time of the process (0 when no CPU time was measured).
    pub fn events_per_cpu_sec(&self) -> f64 {
        if self.cpu_seconds > 0.0 { self.events as f64 / self.cpu_seconds } else { 0.0 }
    }
}

/// A [`Run`] with its derived figures, as the JSON carries them.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub run: Run,
    pub events_per_sec: f64,
    pub events_per_cpu_sec: f64,
    /// events/s over the raw consume's events/s.
    pub vs_raw: Option<f64>,
    /// events per CPU-second over the raw consume's.
    pub cpu_vs_raw: Option<f64>,
}

/// The whole bench: where it ran, and its rows (the raw consume first).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub brokers: String,
    pub redis: String,
    pub topic: String,
    pub partitions: i32,
    pub transactions: u64,
    /// `release` or `debug`: the build of weir that measured.
    pub build: &'static str,
    pub rows: Vec<Row>,
    /// The Python peer's check of its feature vectors against weir's, when it ran.
    pub python_check: Option<crate::commands::bench::python_peer::Check>,
}

/// Adds the derived figures, taking the ratios against the run named `raw consume` (the
/// first one whose name starts so).
pub fn rows(runs: Vec<Run>) -> Vec<Row> {
    let raw = runs.iter().find(|r| r.pipeline.starts_with("raw consume")).cloned();
    runs.into_iter()
        .map(|run| {
            let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
            let (vs_raw, cpu_vs_raw) = match &raw {
                Some(raw) => (
                    ratio(run.events_per_sec(), raw.events_per_sec()),
                    ratio(run.events_per_cpu_sec(), raw.events_per_cpu_sec()),
                ),
                None => (None, None),
            };
            Row { events_per_sec: run.events_per_sec(), events_per_cpu_sec: run.events_per_cpu_sec(), vs_raw, cpu_vs_raw, run }
        })
        .collect()
}

/// The table: a Markdown table (it goes into `docs/performance.md` as printed), then the
/// notes of the rows that have one.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "weir bench — production path ({} build): {} events on {} ({} partitions), brokers {}, redis {}\n\
         CPU is this process's own (getrusage); the broker and Redis run in other processes and are not in it.\n\n",
        report.build, report.transactions, report.topic, report.partitions, report.brokers, report.redis
    );
    out.push_str("| pipeline | events | events/s | vs raw | events/CPU-s | CPU vs raw | p50 ms | p99 ms |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let ms = |us: Option<u64>| us.map(|u| format!("{:.2}", u as f64 / 1000.0)).unwrap_or_else(|| "–".into());
    let ratio = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "–".into());
    for r in &report.rows {
        out.push_str(&format!(
            "| {}{} | {} | {:.0} | {} | {:.0} | {} | {} | {} |\n",
            r.run.pipeline,
            if r.run.timed_out { " (timed out)" } else { "" },
            r.run.events,
            r.events_per_sec,
            ratio(r.vs_raw),
            r.events_per_cpu_sec,
            ratio(r.cpu_vs_raw),
            ms(r.run.p50_us),
            ms(r.run.p99_us),
        ));
    }
    let notes: Vec<_> = report.rows.iter().filter(|r| !r.run.note.is_empty()).collect();
    if !notes.is_empty() {
        out.push('\n');
        for r in notes {
            out.push_str(&format!("- {}: {}\n", r.run.pipeline, r.run.note));
        }
    }
    let find = |name: &str| report.rows.iter().find(|r| r.run.pipeline.starts_with(name));
    if let (Some(weir), Some(peer)) = (find("weir, state local"), find("python peer")) {
        let times = |a: f64, b: f64| if b > 0.0 { format!("{:.1}×", a / b) } else { "–".into() };
        out.push_str(&format!(
            "\nweir (state local) against the python peer: {} the events/s, {} the events per CPU-second\n",
            times(weir.events_per_sec, peer.events_per_sec),
            times(weir.events_per_cpu_sec, peer.events_per_cpu_sec)
        ));
    }
    if let Some(check) = &report.python_check {
        out.push_str(&format!("\n{}\n", check.summary()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pipeline: &str, events: u64, seconds: f64, cpu_seconds: f64) -> Run {
        Run { pipeline: pipeline.into(), events, seconds, cpu_seconds, p50_us: None, p99_us: None, timed_out: false, note: String::new() }
    }

    #[test]
    fn ratios_are_against_the_raw_consume_and_the_table_has_a_line_per_run() {
        let mut weir = run("weir, state local", 1_000, 2.0, 4.0);
        weir.p50_us = Some(1_500);
        weir.p99_us = Some(12_250);
        weir.note = "serving copy in redis".into();
        let mut slow = run("weir, state redis", 300, 3.0, 0.0);
        slow.timed_out = true;
        let rows = rows(vec![run("raw consume (rdkafka)", 1_000, 0.5, 0.25), weir, slow, run("python peer (…)", 1_000, 20.0, 10.0)]);
        assert_eq!(rows[0].vs_raw, Some(1.0));
        // 500 events/s against 2000: 0.25; 250 events/CPU-s against 4000: 0.0625.
        assert_eq!(rows[1].events_per_sec, 500.0);
        assert_eq!(rows[1].vs_raw, Some(0.25));
        assert_eq!(rows[1].cpu_vs_raw, Some(0.0625));
        // No CPU time measured: no events per CPU-second, and no ratio of it.
        assert_eq!(rows[2].events_per_cpu_sec, 0.0);
        assert_eq!(rows[2].cpu_vs_raw, Some(0.0));
        let report = Report {
            brokers: "127.0.0.1:9092".into(),
            redis: "redis://127.0.0.1:6380".into(),
            topic: "bench-input".into(),
            partitions: 4,
            transactions: 1_000,
            build: "debug",
            rows,
            python_check: None,
        };
        let table = render(&report);
        assert!(table.contains("| weir, state local | 1000 | 500 | 0.25 | 250 | 0.06 | 1.50 | 12.25 |"), "{table}");
        assert!(table.contains("| weir, state redis (timed out) | 300 | 100 | 0.05 | 0 | 0.00 | – | – |"), "{table}");
        assert!(table.contains("- weir, state local: serving copy in redis"), "{table}");
        assert_eq!(table.lines().filter(|l| l.starts_with("| ")).count(), 5);
        // 500 against 50 events/s; 250 against 100 events per CPU-second.
        assert!(table.contains("against the python peer: 10.0× the events/s, 2.5× the events per CPU-second"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rows"][1]["pipeline"], "weir, state local");
        assert_eq!(json["rows"][1]["vs_raw"], 0.25);
    }

    #[test]
    fn without_a_raw_consume_there_are_no_ratios() {
        let rows = rows(vec![run("weir, state local", 10, 1.0, 1.0)]);
        assert_eq!((rows[0].vs_raw, rows[0].cpu_vs_raw), (None, None));
    }
}
