//! The monitor's per-event cost with 20 numeric and 5 categorical features: would catch
//! the per-event path picking up allocation beyond the label-join entry, a linear scan
//! over features or categories, or an evaluation that grows with the window's events.
//!
//! - `monitor/observe_score`: [`Monitor::observe_score`] on seeded scores — drift sketches
//!   of 20 features, 5 attributes and the score, data quality, fairness counters and the
//!   label-join entry; event time advances 5 ms per score, so a 60 s pane closes every
//!   12 000 scores and the window evaluations (all readings, every alert machine) are
//!   included, amortized.
//! - `monitor/observe_score_8_partitions`: the same read round-robin from 8 partitions
//!   through [`Monitor::observe_score_from`] (8 watermarks, minimum over them per score).
//! - `monitor/sketches_only`: just the 25 drift sketches' `observe`, the floor under the above.
//! - `monitor/evaluate`: one evaluation of a full window (`flush`).
//!
//! Run: `cargo bench -p weir-monitor --bench monitor`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_monitor::drift::{CategoricalDrift, CategoricalReference, NumericDrift, NumericReference, WindowSpec};
use weir_monitor::watch::Source;
use weir_monitor::{Monitor, MonitorConfig, ReferenceProfile};
use weir_schemas::events::{FeatureValue, ModelOutput, Score};

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

const NUMERIC: usize = 20;
const CATEGORICAL: usize = 5;

fn categories() -> Vec<String> {
    (0..22).map(|i| format!("c{i}")).collect() // c20, c21 never in the reference
}

fn scores(rng: &mut Rng, n: usize) -> Vec<Score> {
    let cats = categories();
    (0..n)
        .map(|i| Score {
            event_id: format!("e{i}"),
            key: "card".into(),
            event_time: 0,
            model_name: "m".into(),
            model_version: "v1".into(),
            output: ModelOutput::binary(rng.uniform()),
            decision: if rng.uniform() < 0.1 { "decline" } else { "approve" }.into(),
            features: (0..NUMERIC).map(|f| FeatureValue { name: format!("f{f}"), value: rng.uniform() * (f + 1) as f64 }).collect(),
            reasons: vec![],
            scored_at: 0,
            attributes: (0..CATEGORICAL)
                .map(|a| (if a == 0 { "customer_segment".to_string() } else { format!("a{a}") }, cats[(rng.next() % 22) as usize].clone()))
                .collect(),
        })
        .collect()
}

fn profile(rng: &mut Rng) -> ReferenceProfile {
    let cats = categories();
    ReferenceProfile {
        numeric: (0..NUMERIC).map(|f| (format!("f{f}"), (0..5_000).map(|_| rng.uniform() * (f + 1) as f64).collect())).collect(),
        categorical: (0..CATEGORICAL)
            .map(|a| {
                let name = if a == 0 { "customer_segment".to_string() } else { format!("a{a}") };
                (name, cats[..20].iter().map(|c| (c.clone(), 1 + rng.next() % 100)).collect::<BTreeMap<_, _>>())
            })
            .collect(),
        score: (0..5_000).map(|_| rng.uniform()).collect(),
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(42);
    let profile = profile(&mut rng);
    let mut events = scores(&mut rng, 50_000);
    let cfg = MonitorConfig::default(); // 10 panes of 60 s
    let mut group = c.benchmark_group("monitor");
    group.throughput(Throughput::Elements(1));

    let mut monitor = Monitor::with_reference(cfg.clone(), &profile).expect("valid reference");
    let (mut i, mut t) = (0usize, 1_700_000_000_000i64);
    group.bench_function("observe_score", |b| {
        b.iter(|| {
            let s = &mut events[i % 50_000];
            i += 1;
            t += 5;
            s.event_time = t;
            black_box(monitor.observe_score(s));
        })
    });

    // The same through per-partition watermarks: 8 partitions read round-robin.
    let mut monitor8 = Monitor::with_reference(cfg.clone(), &profile).expect("valid reference");
    let sources: Vec<Source<'static>> = (0..8).map(|p| Source { topic: "scores", partition: p }).collect();
    monitor8.assign_partitions(&sources, 0);
    let (mut i, mut t) = (0usize, 1_700_000_000_000i64);
    group.bench_function("observe_score_8_partitions", |b| {
        b.iter(|| {
            let s = &mut events[i % 50_000];
            i += 1;
            t += 5;
            s.event_time = t;
            black_box(monitor8.observe_score_from(s, sources[i % 8], 0));
        })
    });

    let window = WindowSpec::new(60_000, 10).expect("valid window");
    let mut numeric: Vec<NumericDrift> = profile
        .numeric
        .values()
        .map(|s| NumericDrift::new(NumericReference::from_sample(s, 10).expect("reference"), window))
        .collect();
    let mut categorical: Vec<CategoricalDrift> = profile
        .categorical
        .values()
        .map(|c| {
            let r = CategoricalReference::from_counts(c.iter().map(|(k, v)| (k.as_str(), *v)), 64).expect("reference");
            CategoricalDrift::new(r, window)
        })
        .collect();
    let (mut i, mut t) = (0usize, 0u64);
    group.bench_function("sketches_only", |b| {
        b.iter(|| {
            let s = &events[i % 50_000];
            i += 1;
            t += 5;
            for (d, f) in numeric.iter_mut().zip(&s.features) {
                black_box(d.observe(t, f.value));
            }
            for (d, (_, v)) in categorical.iter_mut().zip(&s.attributes) {
                black_box(d.observe(t, v));
            }
        })
    });

    group.throughput(Throughput::Elements(1));
    group.bench_function("evaluate", |b| b.iter(|| black_box(monitor.flush())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
