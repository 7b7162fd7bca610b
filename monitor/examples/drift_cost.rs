//! Per-event cost of the drift sketches: 20 numeric and 5 categorical features, each
//! observed once per event, on seeded synthetic data; prints ns per event and the cost of
//! a full report of all 25 features. A regression here means the per-event path picked
//! up allocation, hashing or a linear scan.
//!
//! A quick look without Criterion (`benches/monitor.rs` is the Criterion bench of the whole
//! per-event path). Run it optimized without rebuilding the workspace's dependencies:
//!
//! ```sh
//! cargo run -p weir-monitor --example drift_cost --config 'profile.dev.package.weir-monitor.opt-level=3'
//! ```

use std::hint::black_box;
use std::time::Instant;

use weir_monitor::drift::{CategoricalDrift, CategoricalReference, NumericDrift, NumericReference, WindowSpec};

/// xorshift64*: seeded, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let mut rng = Rng(42);
    let window = WindowSpec::new(60_000, 10).expect("valid window"); // 10 min of 1-min panes
    let mut numeric: Vec<NumericDrift> = (0..20)
        .map(|f| {
            let sample: Vec<f64> = (0..2_000).map(|_| rng.uniform() * (f + 1) as f64).collect();
            NumericDrift::new(NumericReference::from_sample(&sample, 10).expect("reference"), window)
        })
        .collect();
    let names: Vec<String> = (0..20).map(|i| format!("cat{i}")).collect();
    let mut categorical: Vec<CategoricalDrift> = (0..5)
        .map(|_| {
            let counts = names.iter().map(|n| (n.as_str(), 1 + rng.next() % 100));
            CategoricalDrift::new(CategoricalReference::from_counts(counts, 64).expect("reference"), window)
        })
        .collect();

    // Pre-generate the events so the timing covers the sketches only.
    let events = 200_000usize;
    let values: Vec<f64> = (0..events * 20).map(|_| rng.uniform() * 20.0).collect();
    let cats: Vec<usize> = (0..events * 5).map(|_| (rng.next() % 22) as usize).collect(); // 2 unseen
    let unseen = ["new0".to_string(), "new1".to_string()];
    let cat_name = |i: usize| if i < 20 { &names[i] } else { &unseen[i - 20] };

    let start = Instant::now();
    for e in 0..events {
        let t = e as u64 * 5; // 200 events per second of event time
        for (f, d) in numeric.iter_mut().enumerate() {
            black_box(d.observe(t, values[e * 20 + f]));
        }
        for (f, d) in categorical.iter_mut().enumerate() {
            black_box(d.observe(t, cat_name(cats[e * 5 + f])));
        }
    }
    let per_event = start.elapsed().as_nanos() as f64 / events as f64;

    let start = Instant::now();
    let reports = 100;
    for _ in 0..reports {
        for d in &numeric {
            black_box(d.report());
        }
        for d in &categorical {
            black_box(d.report());
        }
    }
    let per_report = start.elapsed().as_micros() as f64 / reports as f64;
    println!("{events} events × (20 numeric + 5 categorical features)");
    println!("observe: {per_event:.0} ns per event ({:.1} ns per feature value)", per_event / 25.0);
    println!("report of all 25 features: {per_report:.1} µs");
}
