//! Sliding windows in event time, the reference algorithm.
//!
//! Each window of length `L` is cut into panes of length `P` (`P` divides `L`). An event
//! at event time `t` falls in pane `p(t) = floor(t / P)`. The window *as of* `t` is the
//! `L / P` panes ending with `p(t)`: `[p(t) - L/P + 1, p(t)]`. Per pane we keep a count
//! and a sum, so the cost of an event is one pane update plus reading `L / P` panes,
//! whatever the number of events in the window.
//!
//! Panes live in a ring of `L/P + ceil(lateness/P) + 1` slots indexed by `p mod slots`.
//! A slot holds the pane index it was last written for; a write for a newer pane resets
//! it. The ring is just big enough that every pane a non-late event can need is still in
//! it, so expiry needs no separate sweep and memory per entity is fixed.
//!
//! An event is *late* when `t < max_t - lateness`, `max_t` being the newest event time seen
//! for the entity; late events are not applied (and are counted by the caller).
//!
//! The Redis store runs the same algorithm as a Lua script (`redis_store.rs`); the
//! embedded store runs this code. Tests hold the two to the same answers.

use std::collections::HashMap;

use weir_schemas::store::{Applied, Observation, ObservationResult};

/// One window, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub name: String,
    pub length_ms: i64,
    pub pane_ms: i64,
    /// Panes per window, `length / pane`.
    pub panes: i64,
    /// Ring size: panes + lateness panes + 1.
    pub slots: i64,
}

impl WindowSpec {
    pub fn new(name: &str, length_ms: u64, pane_ms: u64, lateness_ms: i64) -> Self {
        let (length_ms, pane_ms) = (length_ms as i64, pane_ms as i64);
        let panes = length_ms / pane_ms;
        let slots = panes + (lateness_ms + pane_ms - 1) / pane_ms + 1;
        WindowSpec { name: name.to_string(), length_ms, pane_ms, panes, slots }
    }

    pub fn pane_of(&self, t: i64) -> i64 {
        t.div_euclid(self.pane_ms)
    }
}

/// Names of the values a store returns, in order: per window, count then sum.
pub fn value_names(windows: &[WindowSpec]) -> Vec<String> {
    windows.iter().flat_map(|w| [format!("count_{}", w.name), format!("amount_sum_{}", w.name)]).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pane {
    index: i64,
    count: u64,
    sum: f64,
}

const EMPTY: Pane = Pane { index: i64::MIN, count: 0, sum: 0.0 };

/// One entity's window state.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityState {
    rings: Vec<Vec<Pane>>,
    max_event_time: Option<i64>,
    /// Highest applied offset per (topic, partition): the replay fence.
    fences: HashMap<(String, i32), i64>,
}

impl EntityState {
    pub fn new(windows: &[WindowSpec]) -> Self {
        EntityState {
            rings: windows.iter().map(|w| vec![EMPTY; w.slots as usize]).collect(),
            max_event_time: None,
            fences: HashMap::new(),
        }
    }

    pub fn max_event_time(&self) -> Option<i64> {
        self.max_event_time
    }

    /// Applies one observation (unless fenced or late) and returns the aggregates as of its
    /// event time.
    pub fn apply(&mut self, windows: &[WindowSpec], lateness_ms: i64, obs: &Observation) -> ObservationResult {
        let fence_key = (obs.position.topic.clone(), obs.position.partition);
        let t = obs.event_time_ms;
        let applied = match self.fences.get(&fence_key) {
            Some(&fence) if obs.position.offset <= fence => Applied::Replayed,
            _ => {
                self.fences.insert(fence_key, obs.position.offset);
                match self.max_event_time {
                    Some(max_t) if t < max_t - lateness_ms => Applied::Late,
                    _ => {
                        for (w, ring) in windows.iter().zip(self.rings.iter_mut()) {
                            let p = w.pane_of(t);
                            let slot = &mut ring[p.rem_euclid(w.slots) as usize];
                            if slot.index < p {
                                *slot = Pane { index: p, count: 0, sum: 0.0 };
                            }
                            // slot.index > p cannot happen for a non-late event (ring size).
                            if slot.index == p {
                                slot.count += 1;
                                slot.sum += obs.value;
                            }
                        }
                        self.max_event_time = Some(self.max_event_time.map_or(t, |m| m.max(t)));
                        Applied::Applied
                    }
                }
            }
        };
        ObservationResult { applied, values: self.values_at(windows, t) }
    }

    /// Aggregates as of event time `t`: per window, count then sum.
    pub fn values_at(&self, windows: &[WindowSpec], t: i64) -> Vec<f64> {
        let mut out = Vec::with_capacity(windows.len() * 2);
        for (w, ring) in windows.iter().zip(&self.rings) {
            let last = w.pane_of(t);
            let first = last - w.panes + 1;
            let (mut count, mut sum) = (0u64, 0.0f64);
            // Sum in pane order so that the Redis script, which walks the same order,
            // gives bit-identical sums.
            for p in first..=last {
                let pane = &ring[p.rem_euclid(w.slots) as usize];
                if pane.index == p {
                    count += pane.count;
                    sum += pane.sum;
                }
            }
            out.push(count as f64);
            out.push(sum);
        }
        out
    }

    /// Aggregates as of the newest event (what the readable Redis hash holds).
    pub fn current_values(&self, windows: &[WindowSpec]) -> Option<Vec<f64>> {
        self.max_event_time.map(|t| self.values_at(windows, t))
    }
}
