//! `weir bench` without `--brokers`: end-to-end figures of the pipeline on the embedded
//! default, one run per micro-batch size.

use serde::Serialize;

use crate::commands::demo::{run_demo, DemoOptions};

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub max_batch: usize,
    pub events: u64,
    pub events_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub model_batch_p50_us: u64,
}

/// Runs the demo pipeline as fast as the generator can feed it, once per batch size.
pub async fn run_bench(transactions: u64, batch_sizes: &[usize], seed: u64) -> anyhow::Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &max_batch in batch_sizes {
        let report = run_demo(DemoOptions {
            transactions,
            rate: None,
            seed,
            partitions: 4,
            poison_rate: 0.0,
            progress: false,
            max_batch,
            drift_at: None,
        })
        .await?;
        rows.push(BenchRow {
            max_batch,
            events: report.received,
            events_per_sec: report.throughput(),
            p50_us: report.latency.p50_us,
            p99_us: report.latency.p99_us,
            p999_us: report.latency.p999_us,
            model_batch_p50_us: report.model_batch_latency.p50_us,
        });
    }
    Ok(rows)
}

pub fn render(rows: &[BenchRow]) -> String {
    let mut out = String::from("max batch   events   events/s   p50 ms   p99 ms  p99.9 ms  model/batch p50 µs\n");
    for r in rows {
        out.push_str(&format!(
            "{:>9} {:>8} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>19}\n",
            r.max_batch,
            r.events,
            r.events_per_sec,
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.p999_us as f64 / 1000.0,
            r.model_batch_p50_us
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_runs_each_batch_size_and_renders() {
        let rows = run_bench(1_000, &[50, 200], 9).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.max_batch).collect::<Vec<_>>(), vec![50, 200]);
        assert!(rows.iter().all(|r| r.events == 1_000 && r.events_per_sec > 0.0));
        let table = render(&rows);
        assert_eq!(table.lines().count(), 3);
        assert!(serde_json::to_string(&rows).unwrap().contains("\"max_batch\":50"));
    }
}
