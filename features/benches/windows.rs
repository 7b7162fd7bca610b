//! Cost of the feature engine per event: would catch a window update that grows with the
//! window length or the number of entities, and a Redis write path that stops batching.
//!
//! - `window_update/in_process`: `EntityState::apply` (the embedded store's algorithm and
//!   the reference for the Lua script) for 4 windows (1 m, 10 m, 1 h, 24 h) on 10 000
//!   cards with Zipf-like key skew.
//! - `redis_batch/500`: one micro-batch of 500 observations through `RedisStore::observe`
//!   (one pipeline of EVALSHA) against a `redis-server` this bench starts on a free port;
//!   skipped when `redis-server` is not installed.
//! - `redis_cluster_batch/500`: the same batches against a 3-master Redis Cluster this
//!   bench forms (`redis-cli --cluster create`): one pipeline per hash slot, sent at once.
//!   Compare with `redis_batch/500` in the same run.
//!
//! Run: `cargo bench -p weir-features --bench windows` (`-- redis` for the Redis ones).

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weir_features::config::{FeaturesConfig, WindowConfig};
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_features::windows::{EntityState, WindowSpec};
use weir_schemas::store::{FeatureStore, Observation, SourcePosition};

fn config() -> FeaturesConfig {
    FeaturesConfig {
        windows: vec![
            WindowConfig { name: "1m".into(), length_secs: 60, pane_secs: 5 },
            WindowConfig { name: "10m".into(), length_secs: 600, pane_secs: 30 },
            WindowConfig { name: "1h".into(), length_secs: 3600, pane_secs: 60 },
            WindowConfig { name: "24h".into(), length_secs: 86_400, pane_secs: 900 },
        ],
        ..FeaturesConfig::default()
    }
}

/// Observations in event-time order; card ids drawn with a skew (a few hot cards).
fn observations(n: usize, cards: u32, seed: u64) -> Vec<Observation> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 1_767_225_600_000i64;
    (0..n)
        .map(|i| {
            t += rng.random_range(0..40);
            // u^3 skews towards low ids: the hottest 1 % of cards get ~20 % of events.
            let u: f64 = rng.random();
            let card = ((u * u * u) * cards as f64) as u32;
            Observation {
                entity: format!("card-{card:05}"),
                event_time_ms: t,
                value: rng.random_range(1.0..500.0),
                position: SourcePosition { topic: "transactions".into(), partition: (card % 4) as i32, offset: i as i64 },
            }
        })
        .collect()
}

fn window_update(c: &mut Criterion) {
    let config = config();
    let windows: Vec<WindowSpec> = config.window_specs();
    let lateness = config.allowed_lateness_ms();
    let obs = observations(100_000, 10_000, 1);
    let mut group = c.benchmark_group("window_update");
    group.throughput(Throughput::Elements(obs.len() as u64));
    group.bench_function("in_process", |b| {
        b.iter_batched(
            HashMap::<String, EntityState>::new,
            |mut states| {
                for o in &obs {
                    // Look up before inserting so that the bench does not time a key clone per event.
                    if !states.contains_key(&o.entity) {
                        states.insert(o.entity.clone(), EntityState::new(&windows));
                    }
                    let state = states.get_mut(&o.entity).expect("inserted");
                    std::hint::black_box(state.apply(&windows, lateness, o));
                }
                states
            },
            BatchSize::LargeInput,
        )
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
    let store = runtime
        .block_on(RedisStore::connect(
            &format!("redis://127.0.0.1:{port}"),
            KeySpace { prefix: "bench".into(), entity_kind: "card".into() },
            config.window_specs(),
            config.allowed_lateness_ms(),
            config.ttl_ms(),
        ))
        .expect("connect to the bench redis");
    let obs = observations(200_000, 10_000, 2);
    let mut batches = obs.chunks(500).cycle();
    let mut group = c.benchmark_group("redis_batch");
    group.throughput(Throughput::Elements(500));
    group.bench_function("500", |b| {
        b.iter(|| {
            let batch = batches.next().expect("cycle");
            runtime.block_on(store.observe(batch)).expect("observe")
        })
    });
    group.finish();
    // Server time, which the round trip and the client hide: Redis's own count of
    // microseconds spent in the script per call.
    let stats: Result<String, _> = runtime.block_on(async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO").arg("commandstats").query_async::<String>(&mut con).await
    });
    if let Some(line) = stats.ok().and_then(|s| s.lines().find(|l| l.starts_with("cmdstat_evalsha")).map(str::to_string)) {
        eprintln!("redis server time per observation: {line}");
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
        let seeds: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
        let store = runtime
            .block_on(RedisStore::connect_cluster(
                &seeds,
                KeySpace { prefix: "bench".into(), entity_kind: "card".into() },
                config.window_specs(),
                config.allowed_lateness_ms(),
                config.ttl_ms(),
            ))
            .expect("connect to the bench cluster");
        let obs = observations(200_000, 10_000, 2);
        let mut batches = obs.chunks(500).cycle();
        let mut group = c.benchmark_group("redis_cluster_batch");
        group.throughput(Throughput::Elements(500));
        group.bench_function("500", |b| {
            b.iter(|| {
                let batch = batches.next().expect("cycle");
                runtime.block_on(store.observe(batch)).expect("observe")
            })
        });
        group.finish();
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
