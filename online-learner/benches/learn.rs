//! Learner throughput: one FTRL step, the join alone, and a whole batch through the
//! engine (join + test-then-train + evaluation + checkpoint snapshot). Would catch a
//! regression in the per-label cost of learning or of the join's bookkeeping.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir_online_learner::config::{FtrlConfig, JoinConfig, LearnerConfig};
use weir_online_learner::join::{Join, JoinCounters, PendingScore};
use weir_online_learner::learner::{Input, Learner, Position};
use weir_online_learner::model::OnlineModel;
use weir_schemas::events::{FeatureValue, Label, ModelOutput, Score};

const K: usize = 9;
const N: usize = 500;

fn rows() -> Vec<(Vec<f64>, bool)> {
    let mut s = 42u64;
    let mut rnd = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..N).map(|_| {
        let x: Vec<f64> = (0..K).map(|j| rnd() * (j + 1) as f64 * 10.0).collect();
        let y = x[0] > 7.0 && rnd() < 0.5;
        (x, y)
    }).collect()
}

fn names() -> Vec<String> {
    (0..K).map(|j| format!("f{j}")).collect()
}

fn batch(rows: &[(Vec<f64>, bool)], round: i64) -> Vec<(Position, Input)> {
    let names = names();
    let mut out = Vec::with_capacity(2 * rows.len());
    for (i, (x, y)) in rows.iter().enumerate() {
        let id = format!("e{round}-{i}");
        let t = round * 1_000_000 + i as i64;
        let offset = round * N as i64 + i as i64;
        out.push((Position { topic: "scores".into(), partition: 0, offset }, Input::Score(Score {
            event_id: id.clone(), key: "c".into(), event_time: t, model_name: "m".into(), model_version: "v1".into(),
            output: ModelOutput::binary(0.1), decision: "approve".into(),
            features: names.iter().zip(x).map(|(n, v)| FeatureValue { name: n.clone(), value: *v }).collect(),
            reasons: vec![], scored_at: t, attributes: Default::default(),
        })));
        out.push((Position { topic: "labels".into(), partition: 0, offset }, Input::Label(Label {
            event_id: id, card_id: "c".into(), is_fraud: *y, event_time: t, label_time: t + 1,
        })));
    }
    out
}

fn bench(c: &mut Criterion) {
    let data = rows();
    let mut g = c.benchmark_group("learner");
    g.throughput(Throughput::Elements(N as u64));

    let mut model = OnlineModel::new(names(), &FtrlConfig::default()).unwrap();
    g.bench_function("ftrl_learn_500", |b| b.iter(|| {
        for (x, y) in &data {
            model.learn(x, *y).unwrap();
        }
    }));

    g.bench_function("join_500_pairs", |b| b.iter_batched(
        || Join::new(JoinConfig::default(), 0, JoinCounters::default()),
        |mut j| {
            for (i, (x, y)) in data.iter().enumerate() {
                let id = format!("e{i}");
                j.on_score(&id, PendingScore { event_time: i as i64, model_version: "v1".into(), score: 0.1, features: x.clone() });
                j.on_label(Label { event_id: id, card_id: "c".into(), is_fraud: *y, event_time: i as i64, label_time: i as i64 });
            }
            j
        },
        BatchSize::SmallInput,
    ));

    let mut learner = Learner::restore(LearnerConfig::default(), None, vec![], vec![], vec![], vec![]).unwrap();
    let mut round = 0i64;
    g.bench_function("engine_batch_500_labels", |b| b.iter_batched(
        || { round += 1; batch(&data, round) },
        |input| learner.apply(input).unwrap(),
        BatchSize::SmallInput,
    ));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
