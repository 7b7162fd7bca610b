//! Event time: a watermark per source partition, the monitor's watermark (their
//! minimum), and which panes are open or closed. See "Time: watermarks per partition" in
//! the [module docs](super). The clock only says which panes close; the monitor
//! evaluates them.

use std::ops::Range;

use crate::config::MonitorConfig;

/// Where a score was read from: a partition of the scores topic. Its watermark is kept
/// apart from the others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
}

impl Source<'static> {
    /// The one source of [`Monitor::observe_score`](super::Monitor::observe_score): a
    /// single, in-order stream.
    pub const SINGLE: Source<'static> = Source { topic: "", partition: 0 };
}

/// One partition's watermark.
#[derive(Debug, Clone)]
struct PartitionClock {
    topic: String,
    partition: i32,
    /// Newest event time read from it; `None` while assigned but not read yet (then it
    /// holds the watermark back until it delivers or goes idle).
    newest: Option<u64>,
    /// Processing time (ms) of its last score, or of its assignment.
    last_seen_ms: u64,
}

/// Where a score's event time falls, once the clock has taken it.
pub(super) struct Arrival {
    /// Panes closed before their time to make room (a partition ran more than
    /// `max_open_secs` ahead): to be evaluated before the score is counted.
    pub forced: Range<u64>,
    /// Its pane had already closed: it counts in data quality, not in the windows.
    pub late: bool,
}

/// The monitor's event-time bookkeeping.
pub(super) struct Clock {
    pane_ms: u64,
    /// Panes per evaluated window.
    window_panes: u64,
    /// Most panes open at once (ahead of the last closed one), from `max_open_secs`.
    open_panes: u64,
    out_of_orderness_ms: u64,
    allowed_lateness_ms: u64,
    idle_timeout_ms: u64,
    /// Newest pane any on-time score fell in.
    newest_pane: Option<u64>,
    /// Oldest pane a score fell in before the first pane closed.
    oldest_pane: Option<u64>,
    /// Panes before this one are closed (evaluated); a score in one of them is late.
    closed_until: Option<u64>,
    newest_t: u64,
    /// Event-time watermark (ms): the minimum over active partitions; never goes back.
    watermark: Option<u64>,
    partitions: Vec<PartitionClock>,
    /// Processing time (ms) as last given by the caller.
    now_ms: u64,
    /// See [`MonitorCounts::forced_closes`](super::MonitorCounts::forced_closes).
    forced_closes: u64,
    /// See [`MonitorCounts::max_partition_skew_ms`](super::MonitorCounts::max_partition_skew_ms).
    max_skew_ms: u64,
}

impl Clock {
    pub fn new(cfg: &MonitorConfig) -> Self {
        Clock {
            pane_ms: cfg.pane_secs * 1000,
            window_panes: cfg.window_panes as u64,
            open_panes: Self::open_panes(cfg),
            out_of_orderness_ms: cfg.out_of_orderness_secs * 1000,
            allowed_lateness_ms: cfg.allowed_lateness_secs * 1000,
            idle_timeout_ms: cfg.idle_timeout_secs * 1000,
            newest_pane: None,
            oldest_pane: None,
            closed_until: None,
            newest_t: 0,
            watermark: None,
            partitions: Vec::new(),
            now_ms: 0,
            forced_closes: 0,
            max_skew_ms: 0,
        }
    }

    /// Most panes open at once, from `max_open_secs` (at least one).
    pub fn open_panes(cfg: &MonitorConfig) -> u64 {
        (cfg.max_open_secs / cfg.pane_secs).max(1)
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Processing time moves to `now_ms` (never back).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    pub fn watermark(&self) -> Option<u64> {
        self.watermark
    }

    pub fn forced_closes(&self) -> u64 {
        self.forced_closes
    }

    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// Newest pane an on-time score fell in.
    pub fn newest_pane(&self) -> Option<u64> {
        self.newest_pane
    }

    /// The window ending with `pane`, in event-time ms: `[start, end)`.
    pub fn window_of(&self, pane: u64) -> (u64, u64) {
        ((pane + 1).saturating_sub(self.window_panes) * self.pane_ms, (pane + 1) * self.pane_ms)
    }

    /// Partitions now read: each holds the watermark back until its first score, or
    /// until it has been idle `idle_timeout_secs`.
    pub fn assign(&mut self, partitions: &[Source<'_>]) {
        for src in partitions {
            if self.partition_index(*src).is_none() {
                self.partitions.push(PartitionClock {
                    topic: src.topic.to_string(),
                    partition: src.partition,
                    newest: None,
                    last_seen_ms: self.now_ms,
                });
            }
        }
    }

    /// Partitions no longer read: they stop holding the watermark back.
    pub fn revoke(&mut self, partitions: &[Source<'_>]) {
        self.partitions.retain(|p| !partitions.iter().any(|s| s.topic == p.topic && s.partition == p.partition));
    }

    /// Partitions holding the watermark back now (assigned, not idle).
    pub fn active_partitions(&self) -> usize {
        self.partitions.iter().filter(|p| self.now_ms.saturating_sub(p.last_seen_ms) < self.idle_timeout_ms).count()
    }

    fn partition_index(&self, src: Source<'_>) -> Option<usize> {
        self.partitions.iter().position(|p| p.partition == src.partition && p.topic == src.topic)
    }

    /// The first pane still open, in ms: where a late score (or one without a valid
    /// event time) is counted.
    pub fn first_open_ms(&self) -> u64 {
        self.closed_until.or(self.oldest_pane).map_or(self.newest_t, |p| p * self.pane_ms)
    }

    /// Takes a score at event time `t` from `source` (at the current processing time):
    /// moves the source's watermark, closes panes the memory bound requires, and says
    /// whether the score is late. An on-time score's pane is open from then on.
    pub fn arrive(&mut self, source: Source<'_>, t: u64) -> Arrival {
        let pane = t / self.pane_ms;
        let i = match self.partition_index(source) {
            Some(i) => i,
            None => {
                self.assign(&[source]);
                self.partitions.len() - 1
            }
        };
        let p = &mut self.partitions[i];
        p.last_seen_ms = self.now_ms;
        p.newest = Some(p.newest.map_or(t, |n| n.max(t)));

        // Memory bound: a partition this far ahead of the oldest open pane closes it.
        let mut forced = 0..0;
        if let Some(first) = self.closed_until.or(self.oldest_pane)
            && pane >= first + self.open_panes
        {
            let target = pane + 1 - self.open_panes;
            self.forced_closes += target - first;
            forced = self.close_until(target);
        }
        let late = match self.closed_until {
            Some(c) => pane < c,
            // Before the first close, only beyond the open span.
            None => self.newest_pane.is_some_and(|n| pane + self.open_panes <= n),
        };
        if !late {
            if self.closed_until.is_none() {
                self.oldest_pane = Some(self.oldest_pane.map_or(pane, |o| o.min(pane)));
            }
            self.newest_pane = Some(self.newest_pane.map_or(pane, |n| n.max(pane)));
            self.newest_t = self.newest_t.max(t);
        }
        Arrival { forced, late }
    }

    /// Recomputes the watermark. `None` if it did not move; else the panes it closed,
    /// oldest first (possibly none).
    pub fn advance(&mut self) -> Option<Range<u64>> {
        let mut min: Option<u64> = None;
        let mut max = 0;
        for p in &self.partitions {
            if self.now_ms.saturating_sub(p.last_seen_ms) >= self.idle_timeout_ms {
                continue; // idle: does not hold anyone back
            }
            match p.newest {
                // assigned, nothing read yet: hold until it delivers or goes idle
                None => return None,
                Some(t) => {
                    let w = t.saturating_sub(self.out_of_orderness_ms);
                    min = Some(min.map_or(w, |m| m.min(w)));
                    max = max.max(w);
                }
            }
        }
        if let Some(m) = min {
            self.max_skew_ms = self.max_skew_ms.max(max - m);
        }
        // No active partition: the watermark stays where it is (as Flink's idleness).
        let w = min?;
        if self.watermark.is_some_and(|old| old >= w) {
            return None;
        }
        self.watermark = Some(w);
        // Pane p closes once the watermark reaches its end plus the allowed lateness.
        let through = w.saturating_sub(self.allowed_lateness_ms) / self.pane_ms;
        Some(self.close_until(through))
    }

    /// Closes every open pane before `target`; returns those to evaluate, oldest first.
    /// Panes whose window can hold no score (a jump in event time) close without
    /// evaluation.
    fn close_until(&mut self, target: u64) -> Range<u64> {
        let Some(first) = self.closed_until.or(self.oldest_pane) else { return 0..0 };
        if target <= first {
            return 0..0;
        }
        let last_with_data = self.newest_pane.map_or(first, |n| n + self.window_panes - 1);
        self.closed_until = Some(target);
        first..target.min(last_with_data + 1)
    }
}
