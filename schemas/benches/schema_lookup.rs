//! What finding an event's writer schema costs once it is cached: would catch the
//! per-event id lookup of `RecordDecoder` (the only registry work on the hot path, with the
//! compiled-in map and with a Confluent registry alike: the registry client is asked once
//! per new id) growing a lock or an allocation, or starting to slow down when two threads
//! decode at once.
//!
//! - `tiny/*`: a one-`int` record (a 6-byte frame), so that the lookup is most of the
//!   time: `direct` runs the writer's `PathDecoder` on the body with no lookup at all;
//!   `record_decoder` is `RecordDecoder::decode` (unframe, the id table's loads, decode);
//!   `rwlock_reference` is an id map behind an `RwLock` (the cache before issue 21), as
//!   the reference.
//! - `tiny_2_threads/*`: the same, two threads decoding through one shared decoder at once
//!   (`iter_custom`: the time is per thread, each decoding the batch).
//! - `transaction/*`: the realistic case, transaction v2 frames with the 6 paths of the
//!   default features, `direct` against `record_decoder`.
//!
//! 1024 events per iteration: per-event time is the reported time / 1024 (criterion
//! prints it as elem/s). Run: `cargo bench -p weir-schemas --bench schema_lookup`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_schemas::events::Transaction;
use weir_schemas::paths::{PathDecoder, RecordDecoder};
use weir_schemas::wire::{subjects, unframe, write_header, Encoder, LocalSchemaRegistry, SchemaRegistry};

const N: usize = 1024;
const TINY: &str = r#"{"type": "record", "name": "Tiny", "fields": [{"name": "a", "type": "int"}]}"#;

/// The id hasher `RecordDecoder` uses (one multiplication), for the reference map.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The cache as it was: an id map behind a read-mostly lock.
struct RwLockReference {
    cache: RwLock<HashMap<u32, Arc<PathDecoder>, BuildHasherDefault<IdHasher>>>,
}

impl RwLockReference {
    fn decode(&self, framed: &[u8]) -> usize {
        let (id, body) = unframe(framed).unwrap();
        let cache = self.cache.read().unwrap();
        cache[&id].decode(body).unwrap().values.len()
    }
}

fn tiny() -> (Arc<dyn SchemaRegistry>, Vec<Vec<u8>>) {
    let mut registry = LocalSchemaRegistry::default();
    // A few versions, so the map is not a single entry.
    for id in 1..=4 {
        registry.register(id, "tiny", "bench", TINY.to_string()).unwrap();
    }
    let frames = (0..N)
        .map(|i| {
            let mut f = Vec::new();
            write_header(&mut f, 4);
            f.push(((i % 60) as u8) << 1); // zigzag varint of a small int
            f
        })
        .collect();
    (Arc::new(registry), frames)
}

/// Runs `decode` over `frames` on `threads` threads at once, `iters` times each; the time
/// per thread.
fn threaded(threads: usize, iters: u64, frames: &[Vec<u8>], decode: &(dyn Fn(&[u8]) + Sync)) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    let times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        for f in frames {
                            decode(black_box(f));
                        }
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    times.iter().sum::<Duration>() / threads as u32
}

fn bench_tiny(c: &mut Criterion) {
    let (registry, frames) = tiny();
    let writer = registry.by_id(4).unwrap();
    let direct = PathDecoder::new(&writer, &["a"]).unwrap();
    let decoder = RecordDecoder::new(registry.clone(), "tiny", &["a"]).unwrap();
    let reference = RwLockReference {
        cache: RwLock::new((1..=4).map(|id| (id, Arc::new(PathDecoder::new(&registry.by_id(id).unwrap(), &["a"]).unwrap()))).collect()),
    };

    let mut group = c.benchmark_group("tiny");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("direct", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(direct.decode(black_box(&f[5..])).unwrap());
            }
        })
    });
    group.bench_function("record_decoder", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(decoder.decode(black_box(f)).unwrap());
            }
        })
    });
    group.bench_function("rwlock_reference", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(reference.decode(black_box(f)));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("tiny_2_threads");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("record_decoder", |b| {
        b.iter_custom(|iters| {
            threaded(2, iters, &frames, &|f| {
                black_box(decoder.decode(f).unwrap());
            })
        })
    });
    group.bench_function("rwlock_reference", |b| {
        b.iter_custom(|iters| {
            threaded(2, iters, &frames, &|f| {
                black_box(reference.decode(f));
            })
        })
    });
    group.finish();
}

fn bench_transaction(c: &mut Criterion) {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
    let encoder = Encoder::new(registry.as_ref(), subjects::TRANSACTION).unwrap();
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let tx = Transaction {
                event_id: format!("tx-{i:08}"),
                card_id: format!("card-{:05}", (i * 7919) % 10_000),
                merchant_id: format!("m-{:04}", i % 2_000),
                device_id: format!("dev-{i:05}"),
                amount: (i % 1000) as f64 * 1.25,
                currency: "EUR".into(),
                country: "FR".into(),
                channel: ["pos", "ecom", "atm"][i % 3].into(),
                customer_segment: ["retail", "premium", "business"][i % 3].into(),
                event_time: 1_767_225_600_000 + i as i64 * 37,
            };
            encoder.encode(&tx).unwrap()
        })
        .collect();
    let six = ["event_time", "card_id", "amount", "channel", "event_id", "customer_segment"];
    let direct = PathDecoder::new(&registry.latest(subjects::TRANSACTION).unwrap(), &six).unwrap();
    let decoder = RecordDecoder::new(registry.clone(), subjects::TRANSACTION, &six).unwrap();
    let mut group = c.benchmark_group("transaction");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("direct", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(direct.decode(black_box(&f[5..])).unwrap());
            }
        })
    });
    group.bench_function("record_decoder", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(decoder.decode(black_box(f)).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_tiny, bench_transaction);
criterion_main!(benches);
