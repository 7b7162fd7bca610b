//! The serving copy's writer: keeps Redis's copy of the state kept in process up to date,
//! behind the critical path.
//!
//! The pipeline hands it each committed batch's changed entities ([`ServingCopy::send`],
//! which never waits on Redis). A task coalesces them per entity (the newest version
//! wins) and writes what it holds in one pipelined round, again and again: at low load one
//! round per batch, under load one round per several batches, during a Redis outage none —
//! then the pending map holds at most one state per entity, and everything is written once
//! Redis is back, the versions keeping any older write from landing over a newer one
//! (`redis_store`'s `serving` part). Scoring never waits on any of it.
//!
//! When Redis lost data (the marker key is gone: a `FLUSHALL`, a restart without
//! persistence, a failover to a lagging replica), the writer takes a snapshot of every
//! entity the process holds and writes it all, then sets the marker again: the copy is
//! whole again without a restart, and scoring did not stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::changelog::EntityChange;
use crate::local_state::LocalState;
use crate::redis_store::RedisStore;

/// Entities per round of writes: enough to amortise the round trip, few enough that a
/// round holds Redis (single-threaded) for milliseconds, not seconds.
const ENTITIES_PER_ROUND: usize = 4096;

/// How long a stopping writer keeps trying to reach Redis with what it holds.
const FLUSH_AT_SHUTDOWN: Duration = Duration::from_secs(10);

/// Batches waiting for the writer before [`ServingCopy::send`] merges in place instead of
/// queueing (the writer coalesces anyway).
const QUEUE: usize = 256;

/// What the writer has done, for metrics and tests.
#[derive(Debug, Default)]
pub struct ServingStats {
    /// Entity states written.
    pub written: AtomicU64,
    /// Entity writes skipped because Redis held that version or a newer one.
    pub stale: AtomicU64,
    /// Full rewrites after Redis lost data.
    pub resyncs: AtomicU64,
    /// Rounds that failed (Redis unreachable or refusing); each retried.
    pub failures: AtomicU64,
    /// Entities waiting to be written.
    pub pending: AtomicU64,
    /// Whether the last round reached Redis.
    pub up: AtomicBool,
    /// Batches dropped from the queue and merged into the writer's next round instead
    /// (the queue was full): never lost, only coalesced.
    pub merged_while_full: AtomicU64,
}

/// Where the pipeline hands committed changes to the writer.
#[derive(Clone)]
pub struct ServingCopy {
    tx: mpsc::Sender<(Instant, Vec<EntityChange>)>,
    overflow: Arc<std::sync::Mutex<Vec<(Instant, Vec<EntityChange>)>>>,
    stats: Arc<ServingStats>,
}

impl ServingCopy {
    /// Hands over a committed batch's changes. Never waits: with the queue full they wait
    /// beside it for the writer's next round.
    pub fn send(&self, changes: Vec<EntityChange>) {
        if changes.is_empty() {
            return;
        }
        match self.tx.try_send((Instant::now(), changes)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.stats.merged_while_full.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut overflow) = self.overflow.lock() {
                    overflow.push(item);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    pub fn stats(&self) -> &Arc<ServingStats> {
        &self.stats
    }
}

/// Starts the writer. `lag` is told, per entity written, how long after its batch was
/// handed over it reached Redis (the copy's freshness).
pub fn spawn_serving_copy(
    store: Arc<RedisStore>,
    local: Arc<LocalState>,
    lag: Box<dyn Fn(Duration) + Send + Sync>,
    shutdown: CancellationToken,
) -> (ServingCopy, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ServingStats::default());
    let overflow = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = Writer { store, local, lag, stats: stats.clone(), overflow: overflow.clone(), pending: HashMap::new() };
    let task = tokio::spawn(writer.run(rx, shutdown));
    (ServingCopy { tx, overflow, stats }, task)
}

struct Writer {
    store: Arc<RedisStore>,
    local: Arc<LocalState>,
    lag: Box<dyn Fn(Duration) + Send + Sync>,
    stats: Arc<ServingStats>,
    overflow: Arc<std::sync::Mutex<Vec<(Instant, Vec<EntityChange>)>>>,
    /// Per entity, its newest change not yet written, and when it was handed over.
    pending: HashMap<(String, String), (Instant, EntityChange)>,
}

impl Writer {
    /// Writes until every [`ServingCopy`] is dropped and what they sent is written; once
    /// `shutdown` is cancelled and the senders are gone, gives up on Redis after
    /// [`FLUSH_AT_SHUTDOWN`] (the next start rewrites each restored partition anyway).
    async fn run(mut self, mut rx: mpsc::Receiver<(Instant, Vec<EntityChange>)>, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut closed: Option<Instant> = None;
        loop {
            if self.pending.is_empty() && closed.is_none() {
                match rx.recv().await {
                    Some((at, changes)) => self.merge(at, changes),
                    None => closed = Some(Instant::now()),
                }
            }
            loop {
                match rx.try_recv() {
                    Ok((at, changes)) => self.merge(at, changes),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed.get_or_insert_with(Instant::now);
                        break;
                    }
                }
            }
            let overflow = self.overflow.lock().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default();
            for (at, changes) in overflow {
                self.merge(at, changes);
            }
            if self.pending.is_empty() {
                if closed.is_some() {
                    return;
                }
                continue;
            }
            match self.round().await {
                Ok(()) => {
                    failures = 0;
                    self.stats.up.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    failures += 1;
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    self.stats.up.store(false, Ordering::Relaxed);
                    if let Some(at) = closed
                        && shutdown.is_cancelled()
                        && at.elapsed() > FLUSH_AT_SHUTDOWN
                    {
                        tracing::error!(error = %e, pending = self.pending.len(),
                            "serving copy: redis unreachable at shutdown, entities not written; the next start rewrites them");
                        return;
                    }
                    let backoff = Duration::from_millis(50 * 2u64.pow(failures.min(6)));
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(error = %e, pending = self.pending.len(), ?backoff,
                            "serving copy: redis write failed; scoring goes on, the copy catches up once redis answers");
                    }
                    tokio::time::sleep(backoff).await;
                }
            }
            self.stats.pending.store(self.pending.len() as u64, Ordering::Relaxed);
        }
    }

    fn merge(&mut self, at: Instant, changes: Vec<EntityChange>) {
        for change in changes {
            match self.pending.entry((change.kind.clone(), change.id.clone())) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    if change.version >= e.get().1.version {
                        // Keeps the older hand-over time: the lag is measured from the
                        // first change the copy has not shown yet.
                        let first = e.get().0;
                        e.insert((first, change));
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((at, change));
                }
            }
        }
    }

    /// Writes up to [`ENTITIES_PER_ROUND`] pending entities; on a missing marker, rewrites
    /// everything from the process's state.
    async fn round(&mut self) -> Result<(), weir_schemas::StoreError> {
        let keys: Vec<(String, String)> = self.pending.keys().take(ENTITIES_PER_ROUND).cloned().collect();
        let changes: Vec<EntityChange> = keys.iter().filter_map(|k| self.pending.get(k).map(|(_, c)| c.clone())).collect();
        let outcome = self.store.write_serving(&changes).await?;
        let now = Instant::now();
        for key in &keys {
            if let Some((at, _)) = self.pending.remove(key) {
                (self.lag)(now.saturating_duration_since(at));
            }
        }
        self.stats.written.fetch_add(outcome.written as u64, Ordering::Relaxed);
        self.stats.stale.fetch_add(outcome.stale as u64, Ordering::Relaxed);
        if outcome.marker_missing {
            self.resync().await?;
        }
        Ok(())
    }

    /// Rewrites every entity held (Redis lost data, or this is the first round), then
    /// sets the marker.
    async fn resync(&mut self) -> Result<(), weir_schemas::StoreError> {
        let snapshot = self.local.snapshot()?;
        tracing::warn!(entities = snapshot.len(), "serving copy: redis has no marker (lost data, or a first start); rewriting every entity");
        for chunk in snapshot.chunks(ENTITIES_PER_ROUND) {
            let outcome = self.store.write_serving(chunk).await?;
            self.stats.written.fetch_add(outcome.written as u64, Ordering::Relaxed);
            self.stats.stale.fetch_add(outcome.stale as u64, Ordering::Relaxed);
        }
        self.store.set_serving_marker().await?;
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
