//! Cost of the feature engine per event: would catch a window update that grows with the
//! window length or the number of entities, a min/max or distinct that rescans too often,
//! and a Redis write path that stops batching.
//!
//! - `window_update/in_process`: `EmbeddedStore::observe` (the engine both stores run, on
//!   the in-process map, with its batch path: watermarks, prefetching, answers) for 4
//!   windows (1m/5s, 10m/30s, 1h/1m, 24h/30m) × 6 aggregations (count, sum, mean, min,
//!   max on the amount; distinct merchants) on 100 000 entities with Zipf(1) key skew,
//!   seeded, about 25 events per second of event time; the events of the first 25 hours
//!   (about 2.28 million) are applied untimed, so that every window, the 24 h one
//!   included, is full and dropping panes and distinct values as it slides (the steady
//!   state of a long-running stream, and the steady mix of busy and quiet entities), then
//!   events are timed in stream order, in micro-batches
//!   of 500 copied fresh before each is timed (as the consumer hands the store a batch it
//!   has just decoded).
//! - `redis_round_trip/ping`: one `PING`, the floor any batch pays.
//! - `redis_batch/500`: one micro-batch of 500 events through `RedisStore::observe` (read
//!   states, compute, compare-and-set per entity, watermarks) against a `redis-server` this
//!   bench starts on a free port; skipped when `redis-server` is not installed.
//! - `redis_cluster_batch/500`: the same against a 3-master Redis Cluster this bench forms.
//!
//! Run: `cargo bench -p weir-features --bench windows` (`-- redis` for the Redis ones).

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weir_features::config::{AggregationConfig, EntityConfig, FeaturesConfig, WindowConfig};
use weir_features::definitions::FeatureDefinitions;
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_features::embedded::EmbeddedStore;
use weir_features::windows::{distinct_hash, EngineSpec};
use weir_schemas::store::{FeatureStore, Observation, SourcePosition};

/// The `weir` binary's allocator, so that the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Entities the keys are drawn from; `WEIR_BENCH_ENTITIES` overrides it (a few thousand
/// fit in the CPU caches: the difference is what cache misses cost).
fn entities() -> usize {
    std::env::var("WEIR_BENCH_ENTITIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn config() -> FeaturesConfig {
    let agg = |kind: &str, field: &str| AggregationConfig { kind: kind.into(), field: Some(field.into()), alias: None };
    FeaturesConfig {
        windows: vec![
            WindowConfig { name: "1m".into(), length_secs: 60, pane_secs: 5 },
            WindowConfig { name: "10m".into(), length_secs: 600, pane_secs: 30 },
            WindowConfig { name: "1h".into(), length_secs: 3600, pane_secs: 60 },
            WindowConfig { name: "24h".into(), length_secs: 86_400, pane_secs: 1_800 },
        ],
        entities: vec![EntityConfig {
            name: "card".into(),
            key: "card_id".into(),
            windows: None,
            aggregations: vec![
                AggregationConfig { kind: "count".into(), field: None, alias: None },
                agg("sum", "amount"),
                agg("mean", "amount"),
                agg("min", "amount"),
                agg("max", "amount"),
                agg("distinct", "merchant_id"),
            ],
        }],
        ..FeaturesConfig::default()
    }
}

/// Zipf(1) over `n` ranks by inverse CDF.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / k as f64;
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf(cdf)
    }
    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let u: f64 = rng.random();
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1)
    }
}

/// Observations in event-time order (~25 events/s), keys Zipf-skewed.
fn observations(n: usize, seed: u64) -> Vec<Observation> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let zipf = Zipf::new(entities());
    let mut t = 1_767_225_600_000i64;
    (0..n)
        .map(|i| {
            t += rng.random_range(0..80);
            let card = zipf.sample(&mut rng);
            let merchant: u32 = rng.random_range(0..2_000);
            Observation {
                kind: "card".into(),
                entity: format!("card-{card:06}"),
                event_time_ms: t,
                values: vec![Some(rng.random_range(1.0..500.0))],
                distinct: vec![Some(distinct_hash(merchant.to_string().as_bytes()))],
                position: SourcePosition { topic: "transactions".into(), partition: (card % 4) as i32, offset: i as i64 },
            }
        })
        .collect()
}

/// Stream time applied before timing starts: longer than the longest window (24 h), so
/// that the timed events meet full windows that drop as much as they take in, and the
/// steady mix of busy and quiet entities (not the start-up, when every entity is new and
/// every state grows). A warm-up shorter than the 24 h window timed states still growing
/// into fresh memory, and never the expiry paths a long-running stream takes.
const WARM_MS: i64 = 25 * 3_600_000;

/// Events timed after the warm-up before criterion starts again from empty states.
const TIMED_EVENTS: usize = 2_000_000;

/// Events per micro-batch, as the consumer hands them to the store.
const BATCH: usize = 500;

/// Applies `events` to the embedded store one micro-batch at a time and returns the time
/// spent in the store. Each batch is first copied fresh, untimed: in the pipeline the store
/// gets a batch the consumer has just decoded, hot in the CPU caches, not events that sat
/// in a 3-million event array (whose strings, read cold, cost several cache misses per
/// event that the engine does not).
fn apply_timed(store: &EmbeddedStore, runtime: &tokio::runtime::Runtime, events: &[Observation]) -> Duration {
    let mut elapsed = Duration::ZERO;
    for chunk in events.chunks(BATCH) {
        let batch = chunk.to_vec();
        elapsed += apply_batch(store, runtime, &batch);
    }
    elapsed
}

/// The timed part, out of line so that a profiler can collect it alone
/// (`valgrind --tool=callgrind --toggle-collect='*apply_batch*'`): the store's whole batch
/// path, answers included (and dropped).
#[inline(never)]
fn apply_batch(store: &EmbeddedStore, runtime: &tokio::runtime::Runtime, batch: &[Observation]) -> Duration {
    let start = Instant::now();
    let outcome = runtime.block_on(store.observe(batch)).expect("observe");
    std::hint::black_box(outcome);
    start.elapsed()
}

/// How many of `obs` (in event-time order) the warm-up applies: those of its first
/// [`WARM_MS`].
fn warm_events(obs: &[Observation]) -> usize {
    let start = obs.first().map_or(0, |o| o.event_time_ms);
    obs.partition_point(|o| o.event_time_ms < start + WARM_MS)
}

/// A store with the first `warm` events applied.
fn warmed_store(spec: &EngineSpec, runtime: &tokio::runtime::Runtime, obs: &[Observation], warm: usize) -> EmbeddedStore {
    let store = EmbeddedStore::new(spec.clone());
    for chunk in obs[..warm].chunks(BATCH) {
        runtime.block_on(store.observe(chunk)).expect("observe");
    }
    store
}

/// This process's resident memory in MB (Linux; 0 elsewhere): whether the timed events
/// still grow the states into fresh memory, whose page faults they would pay.
fn resident_mb() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096 / 1_000_000
}

fn window_update(c: &mut Criterion) {
    let defs = FeatureDefinitions::new(&config()).expect("bench config");
    let spec = defs.engine_spec().clone();
    let def = spec.entities[0].clone();
    // 0–79 ms apart, 39.5 on average: the warm-up's 25 hours are about 2.28 M events.
    let obs = observations((WARM_MS / 40) as usize + TIMED_EVENTS, 1);
    let warm = warm_events(&obs);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    // `WEIR_BENCH_PROFILE_EVENTS=n`: warm up, apply the next n events once (or those of
    // some entities: `WEIR_BENCH_RANKS` below), print the time and stop; for an instruction count that machine noise cannot move:
    // `valgrind --tool=callgrind --toggle-collect='*apply_batch*' <bench binary> --bench in_process`.
    if let Some(n) = std::env::var("WEIR_BENCH_PROFILE_EVENTS").ok().and_then(|v| v.parse::<usize>().ok()) {
        let store = warmed_store(&spec, &runtime, &obs, warm);
        let n = n.min(obs.len() - warm);
        let mut timed = obs[warm..warm + n].to_vec();
        // `WEIR_BENCH_RANKS=lo..hi`: time only the events of the entities of those ranks
        // (0 the busiest), the others left out, to compare busy and quiet entities' costs.
        if let Some((lo, hi)) = std::env::var("WEIR_BENCH_RANKS").ok().and_then(|v| {
            let (lo, hi) = v.split_once("..")?;
            Some((lo.parse::<usize>().ok()?, hi.parse::<usize>().ok()?))
        }) {
            timed.retain(|o| o.entity["card-".len()..].parse::<usize>().is_ok_and(|rank| (lo..hi).contains(&rank)));
            eprintln!("window_update: timing the {} events of entity ranks {lo}..{hi}", timed.len());
        }
        let n = timed.len();
        let (entities_before, resident_before) = (store.entity_count(), resident_mb());
        let elapsed = apply_timed(&store, &runtime, &timed);
        eprintln!(
            "window_update: {n} events after {warm} untimed: {:.3} µs per event (an entity's state struct is {} bytes; \
             entities {entities_before} -> {}, resident memory {resident_before} -> {} MB)",
            elapsed.as_secs_f64() * 1e6 / n as f64,
            std::mem::size_of::<weir_features::windows::EntityState>(),
            store.entity_count(),
            resident_mb()
        );
        return;
    }
    // Warmed before criterion starts its clock: it sizes its samples by the wall time of
    // its warm-up calls, which a warm-up inside the first one (seconds) would make it
    // read as the cost of one iteration.
    let mut store = warmed_store(&spec, &runtime, &obs, warm);
    let mut next = warm;
    let mut timed = 0usize;
    let mut group = c.benchmark_group("window_update");
    group.throughput(Throughput::Elements(1));
    group.bench_function("in_process", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                if next == obs.len() {
                    // Start again from empty states, warmed up untimed.
                    store = warmed_store(&spec, &runtime, &obs, warm);
                    next = warm;
                }
                let n = left.min(obs.len() - next);
                elapsed += apply_timed(&store, &runtime, &obs[next..next + n]);
                next += n;
                timed += n;
                left -= n;
            }
            elapsed
        })
    });
    group.finish();
    let ids: std::collections::BTreeSet<&str> = obs.iter().map(|o| o.entity.as_str()).collect();
    let sizes: Vec<usize> = ids.iter().filter_map(|id| store.state("card", id)).map(|s| s.to_bytes(&def).len()).collect();
    eprintln!(
        "window_update: {} entities, {timed} events timed after {warm} untimed; state {} bytes on average, {} at most",
        store.entity_count(),
        sizes.iter().sum::<usize>() / sizes.len().max(1),
        sizes.iter().max().unwrap_or(&0)
    );
}

fn redis_batches(c: &mut Criterion, name: &str, store: &RedisStore, runtime: &tokio::runtime::Runtime) {
    let obs = observations(400_000, 2);
    let mut batches = obs.chunks(500);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(500));
    group.bench_function("500", |b| {
        b.iter(|| {
            let batch = batches.next().unwrap_or_else(|| {
                batches = obs.chunks(500);
                batches.next().expect("a batch")
            });
            runtime.block_on(store.observe(batch)).expect("observe")
        })
    });
    group.finish();
}

fn redis_batch(c: &mut Criterion) {
    let Ok(port) = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()) else { return };
    let Ok(mut child) = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("redis-server not installed: skipping redis_batch");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = config();
    let defs = FeatureDefinitions::new(&config).expect("bench config");
    let url = format!("redis://127.0.0.1:{port}");
    let store = runtime
        .block_on(RedisStore::connect(&url, KeySpace::new("bench"), defs.engine_spec().clone(), config.ttl_ms()))
        .expect("connect to the bench redis");
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut con = runtime.block_on(client.get_multiplexed_async_connection()).expect("connection");
    let mut group = c.benchmark_group("redis_round_trip");
    group.bench_function("ping", |b| {
        b.iter(|| runtime.block_on(redis::cmd("PING").query_async::<String>(&mut con)).expect("ping"))
    });
    group.finish();
    redis_batches(c, "redis_batch", &store, &runtime);
    // Server time, which the round trip and the client hide.
    let stats: Result<String, _> = runtime.block_on(redis::cmd("INFO").arg("commandstats").query_async::<String>(&mut con));
    for line in stats.unwrap_or_default().lines().filter(|l| l.starts_with("cmdstat_")) {
        eprintln!("redis server time: {line}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A free port whose cluster bus port (+10 000) is free too.
fn cluster_port(taken: &[u16]) -> Option<u16> {
    let mut rng = ChaCha8Rng::seed_from_u64(std::process::id() as u64 + taken.len() as u64);
    (0..1000).map(|_| rng.random_range(20_000..55_000u16)).find(|&p| {
        !taken.iter().any(|&t| t.abs_diff(p) == 10_000 || t == p)
            && TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok()
    })
}

fn redis_cluster_batch(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("weir-bench-cluster-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let mut ports = Vec::new();
    let mut children = Vec::new();
    for _ in 0..3 {
        let Some(port) = cluster_port(&ports) else { return };
        ports.push(port);
        let Ok(child) = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(dir.join(format!("nodes-{port}.conf")))
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            eprintln!("redis-server not installed: skipping redis_cluster_batch");
            return;
        };
        children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ports.iter().any(|&p| TcpStream::connect(("127.0.0.1", p)).is_err()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let ok = |p: u16| {
        Command::new("redis-cli")
            .args(["-p", &p.to_string(), "CLUSTER", "INFO"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while created && !ports.iter().all(|&p| ok(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if created && ports.iter().all(|&p| ok(p)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let config = config();
        let defs = FeatureDefinitions::new(&config).expect("bench config");
        let seeds: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
        let store = runtime
            .block_on(RedisStore::connect_cluster(&seeds, KeySpace::new("bench"), defs.engine_spec().clone(), config.ttl_ms()))
            .expect("connect to the bench cluster");
        redis_batches(c, "redis_cluster_batch", &store, &runtime);
    } else {
        eprintln!("the bench cluster did not form: skipping redis_cluster_batch");
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, window_update, redis_batch, redis_cluster_batch);
criterion_main!(benches);
