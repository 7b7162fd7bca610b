//! Cost of decoding one event: would catch the path decoder (`weir_schemas::paths`)
//! falling behind the typed `serde_avro_fast` decoder it replaced on the hot path, a
//! program that stops skipping unrequested fields cheaply, or a schema-id cache that
//! starts costing more than the decode.
//!
//! - `transaction/typed`: `wire::Decoder<Transaction>` (all 10 fields, by name).
//! - `transaction/paths_6`: `RecordDecoder` with the 6 paths the default features read
//!   (event_time, card_id, amount, channel, event_id, customer_segment).
//! - `transaction/paths_10`: `RecordDecoder` with all 10 fields of `Transaction`.
//! - `interaction/paths_11`: `RecordDecoder` on `interaction.avsc` (nested records, an
//!   enum, a nullable long) with 11 paths; `interaction/apache_avro_value` is apache-avro's
//!   generic reader on the same bodies, for scale.
//!
//! Frames are written with the latest schema of each subject (transaction v2, id 6; what
//! `weir produce` writes), 1024 seeded events per iteration: per-event time is the
//! reported time / 1024 (criterion prints it as elem/s).
//!
//! Run: `cargo bench -p weir-schemas --bench decode`.

use std::hint::black_box;
use std::sync::Arc;

use apache_avro::types::Value;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_schemas::events::Transaction;
use weir_schemas::paths::RecordDecoder;
use weir_schemas::wire::{subjects, write_header, Decoder, Encoder, LocalSchemaRegistry, SchemaRegistry};

const N: usize = 1024;

/// splitmix64: seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn transactions(rng: &mut Rng) -> Vec<Transaction> {
    (0..N)
        .map(|i| {
            let card = rng.below(10_000);
            Transaction {
                event_id: format!("tx-{i:08}"),
                card_id: format!("card-{card:05}"),
                merchant_id: format!("m-{:04}", rng.below(2_000)),
                device_id: format!("dev-{card:05}-{}", rng.below(3)),
                amount: (rng.below(100_000) as f64) / 100.0,
                currency: rng.pick(&["EUR", "USD", "GBP"]).into(),
                country: rng.pick(&["FR", "DE", "US", "GB", "ES"]).into(),
                channel: rng.pick(&["pos", "ecom", "atm"]).into(),
                customer_segment: rng.pick(&["retail", "premium", "business"]).into(),
                event_time: 1_767_225_600_000 + i as i64 * 37,
            }
        })
        .collect()
}

fn interaction(rng: &mut Rng, i: usize) -> Value {
    let rec = |fields: Vec<(&str, Value)>| Value::Record(fields.into_iter().map(|(n, v)| (n.to_string(), v)).collect());
    let action = rng.below(3) as u32;
    rec(vec![
        ("event_id", Value::String(format!("i-{i:08}"))),
        (
            "user",
            rec(vec![
                ("id", Value::String(format!("user-{:05}", rng.below(20_000)))),
                ("country", Value::String(rng.pick(&["FR", "DE", "US"]).into())),
                ("segment", Value::String(rng.pick(&["new", "casual", "loyal"]).into())),
            ]),
        ),
        (
            "item",
            rec(vec![
                ("id", Value::String(format!("item-{:05}", rng.below(5_000)))),
                ("category", Value::String(rng.pick(&["books", "music", "garden", "toys"]).into())),
                ("price", Value::Double(rng.below(20_000) as f64 / 100.0)),
            ]),
        ),
        ("action", Value::Enum(action, ["view", "click", "add_to_cart"][action as usize].into())),
        (
            "dwell_ms",
            if rng.below(4) == 0 {
                Value::Union(0, Box::new(Value::Null))
            } else {
                Value::Union(1, Box::new(Value::Long(rng.below(120_000) as i64)))
            },
        ),
        ("device", Value::String(rng.pick(&["web", "ios", "android"]).into())),
        ("event_time", Value::TimestampMillis(1_767_225_600_000 + i as i64 * 53)),
    ])
}

fn bench_transaction(c: &mut Criterion) {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
    let encoder = Encoder::new(registry.as_ref(), subjects::TRANSACTION).unwrap();
    let frames: Vec<Vec<u8>> =
        transactions(&mut Rng(7)).iter().map(|t| encoder.encode(t).unwrap()).collect();
    let typed = Decoder::<Transaction>::new(registry.clone(), subjects::TRANSACTION, &registry.by_id(1).unwrap());
    let six = ["event_time", "card_id", "amount", "channel", "event_id", "customer_segment"];
    let ten = [
        "event_id", "card_id", "merchant_id", "device_id", "amount", "currency", "country", "channel",
        "customer_segment", "event_time",
    ];
    let paths_6 = RecordDecoder::new(registry.clone(), subjects::TRANSACTION, &six).unwrap();
    let paths_10 = RecordDecoder::new(registry.clone(), subjects::TRANSACTION, &ten).unwrap();

    let mut group = c.benchmark_group("transaction");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("typed", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(typed.decode(black_box(f)).unwrap());
            }
        })
    });
    group.bench_function("paths_6", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(paths_6.decode(black_box(f)).unwrap());
            }
        })
    });
    group.bench_function("paths_10", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(paths_10.decode(black_box(f)).unwrap());
            }
        })
    });
    group.finish();
}

fn bench_interaction(c: &mut Criterion) {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
    let writer = registry.latest(subjects::INTERACTION).unwrap();
    let mut rng = Rng(11);
    let bodies: Vec<Vec<u8>> = (0..N)
        .map(|i| apache_avro::to_avro_datum(&writer.canonical, interaction(&mut rng, i)).unwrap())
        .collect();
    let frames: Vec<Vec<u8>> = bodies
        .iter()
        .map(|body| {
            let mut f = Vec::with_capacity(body.len() + 5);
            write_header(&mut f, writer.id);
            f.extend_from_slice(body);
            f
        })
        .collect();
    let paths = [
        "event_id", "user.id", "user.country", "user.segment", "item.id", "item.category", "item.price",
        "action", "dwell_ms", "device", "event_time",
    ];
    let decoder = RecordDecoder::new(registry.clone(), subjects::INTERACTION, &paths).unwrap();

    let mut group = c.benchmark_group("interaction");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("paths_11", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(decoder.decode(black_box(f)).unwrap());
            }
        })
    });
    group.bench_function("apache_avro_value", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(apache_avro::from_avro_datum(&writer.canonical, &mut &body[..], None).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_transaction, bench_interaction);
criterion_main!(benches);
