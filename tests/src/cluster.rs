//! A 3-master Redis Cluster of real `redis-server` processes on loopback, for one test.
//!
//! Three `redis-server --cluster-enabled yes` on free ports (each port's cluster bus,
//! port + 10 000, free too), joined by `redis-cli --cluster create … --cluster-replicas 0`
//! (16 384 slots split in three), ready once every node reports `cluster_state:ok`. The
//! processes die with the [`RedisCluster`] (and with the test process).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::Rng;

use crate::{spawn_child, wait_for_port};

pub struct RedisCluster {
    /// `redis://127.0.0.1:P` of every master: the seeds to give a cluster client.
    pub seeds: Vec<String>,
    pub ports: Vec<u16>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// A port whose cluster bus port (+10 000) is free as well.
fn free_cluster_port(taken: &[u16]) -> anyhow::Result<u16> {
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port: u16 = rng.random_range(20_000..55_000);
        if taken.contains(&port) || taken.contains(&(port + 10_000)) || taken.contains(&(port - 10_000)) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port pair (port, port + 10000) on loopback")
}

fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running redis-cli")?;
    if !out.status.success() {
        bail!("redis-cli -p {port} {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RedisCluster {
    /// Starts three masters and forms the cluster (a few seconds).
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut ports = Vec::new();
        let mut children = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port(&ports)?;
            ports.push(port);
            let child = spawn_child(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
                    .arg("--cluster-config-file")
                    .arg(dir.path().join(format!("nodes-{port}.conf")))
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .context("starting redis-server in cluster mode")?;
            children.push(child);
        }
        let mut cluster = RedisCluster {
            seeds: ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect(),
            ports,
            children,
            _dir: dir,
        };
        for &p in &cluster.ports {
            wait_for_port(p, Duration::from_secs(20)).context("redis-server (cluster) did not start listening")?;
        }
        let nodes: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(nodes.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = Command::new("redis-cli").args(&args).stdin(Stdio::null()).output().context("redis-cli --cluster create")?;
        if !out.status.success() {
            bail!("redis-cli --cluster create: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut ok = true;
            for &p in &cluster.ports {
                ok &= redis_cli(p, &["CLUSTER", "INFO"])?.contains("cluster_state:ok");
            }
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("cluster not ok after 30 s: {}", redis_cli(cluster.ports[0], &["CLUSTER", "INFO"])?);
            }
            cluster.check_alive()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(cluster)
    }

    /// The number of keys each master holds (`DBSIZE` on each), in `ports` order.
    pub fn keys_per_master(&self) -> anyhow::Result<Vec<u64>> {
        self.ports
            .iter()
            .map(|&p| redis_cli(p, &["DBSIZE"])?.trim().parse::<u64>().with_context(|| format!("DBSIZE of {p}")))
            .collect()
    }

    /// `CLUSTER NODES` as one node sees it (ids, addresses, slot ranges).
    pub fn nodes(&self) -> anyhow::Result<String> {
        redis_cli(self.ports[0], &["CLUSTER", "NODES"])
    }

    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (child, port) in self.children.iter_mut().zip(&self.ports) {
            if let Some(status) = child.try_wait()? {
                bail!("redis-server {port} (cluster) exited: {status}");
            }
        }
        Ok(())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
