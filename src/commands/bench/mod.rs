//! `weir bench`: end-to-end figures, printed as a table and written as JSON. Timing is
//! reported, never asserted: compare runs made in one invocation, as ratios.
//!
//! - Without `--brokers`: the embedded default, one run per micro-batch size
//!   ([`batch_sizes`]).
//! - With `--brokers … --redis …`: the production path on a real broker and Redis, next to
//!   a raw consume of the same topic, the embedded default and (with `--python`) the plain
//!   Python peer ([`production`]).
//!
//! Files: `batch_sizes` (the embedded runs), `production` (the production runs),
//! `report` (the production rows and table), `python_peer` (the peer subprocess and its
//! report), `cpu` (this process's CPU time).

pub mod batch_sizes;
pub mod cpu;
pub mod production;
pub mod python_peer;
pub mod report;

use std::path::PathBuf;

use anyhow::Context;

pub use batch_sizes::{render, run_bench, BenchRow};

/// `weir bench`'s command line.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Valid transactions per run. Default 50 000 on the embedded default, 200 000 with
    /// `--brokers`.
    #[arg(long)]
    pub transactions: Option<u64>,
    /// (embedded default) Micro-batch sizes to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,200,500,2000")]
    pub batch_sizes: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the JSON.
    #[arg(long, default_value = "weir-bench.json")]
    pub json: PathBuf,
    /// Measure the production path on these bootstrap servers (needs `--redis`): a raw
    /// consume, weir with state local and with state redis, the embedded default.
    #[arg(long, requires = "redis")]
    pub brokers: Option<String>,
    /// The Redis of the production path, e.g. `redis://127.0.0.1:6379`.
    #[arg(long, requires = "brokers")]
    pub redis: Option<String>,
    /// (production) Partitions of the bench's input topic.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub partitions: i32,
    /// (production) Also run the plain Python peer with this interpreter (it needs
    /// `tools/requirements.txt`).
    #[arg(long, requires = "brokers")]
    pub python: Option<PathBuf>,
    /// (production) The peer script. Default `tools/bench/python_peer.py`.
    #[arg(long)]
    pub python_script: Option<PathBuf>,
    /// (production) Longest any one run may take, seconds; a run stopped there is
    /// reported as timed out.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

impl BenchArgs {
    /// Transactions per run: `--transactions`, or the default of the mode.
    pub fn transactions(&self) -> u64 {
        self.transactions.unwrap_or(if self.brokers.is_some() { 200_000 } else { 50_000 })
    }

    /// The production options, when `--brokers` (and so `--redis`) was given.
    pub fn production(&self) -> Option<production::ProductionOptions> {
        Some(production::ProductionOptions {
            brokers: self.brokers.clone()?,
            redis: self.redis.clone()?,
            transactions: self.transactions(),
            partitions: self.partitions,
            seed: self.seed,
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            python: self.python.clone(),
            python_script: self.python_script.clone().unwrap_or_else(python_peer::default_script),
        })
    }
}

/// `weir bench`: runs, prints the table, writes the JSON.
pub async fn execute(args: BenchArgs) -> anyhow::Result<()> {
    let json = match args.production() {
        Some(options) => {
            let report = production::run_production(&options).await?;
            print!("{}", report::render(&report));
            serde_json::to_string_pretty(&report)?
        }
        None => {
            let rows = run_bench(args.transactions(), &args.batch_sizes, args.seed).await?;
            print!("{}", render(&rows));
            serde_json::to_string_pretty(&rows)?
        }
    };
    std::fs::write(&args.json, json).with_context(|| format!("writing {}", args.json.display()))?;
    eprintln!("wrote {}", args.json.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench)
    }

    #[test]
    fn without_brokers_it_is_the_embedded_bench_as_before() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.transactions(), 50_000);
        assert_eq!(args.batch_sizes, vec![50, 200, 500, 2000]);
        assert_eq!(args.json, PathBuf::from("weir-bench.json"));
        assert!(args.production().is_none());
    }

    #[test]
    fn brokers_and_redis_make_the_production_bench() {
        let args = parse(&["--brokers", "127.0.0.1:9092", "--redis", "redis://127.0.0.1:6380", "--python", "/usr/bin/python3"]).unwrap();
        let p = args.production().unwrap();
        assert_eq!((p.brokers.as_str(), p.redis.as_str()), ("127.0.0.1:9092", "redis://127.0.0.1:6380"));
        assert_eq!((p.transactions, p.partitions, p.timeout.as_secs()), (200_000, 4, 600));
        assert_eq!(p.python, Some(PathBuf::from("/usr/bin/python3")));
        assert!(p.python_script.ends_with("tools/bench/python_peer.py"));
        let p = parse(&["--brokers", "b:1", "--redis", "redis://r", "--transactions", "1000", "--partitions", "2"]).unwrap().production().unwrap();
        assert_eq!((p.transactions, p.partitions), (1_000, 2));
    }

    #[test]
    fn brokers_redis_and_python_need_each_other() {
        for args in [&["--brokers", "b:1"][..], &["--redis", "redis://r"], &["--python", "python3"], &["--brokers", "b:1", "--redis", "r", "--partitions", "0"]] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }
}
