//! The delayed-label join, in memory, bounded, and recording what it changed so the
//! checkpoint can persist the difference (see [`crate::checkpoint`]).
//!
//! Both sides wait: a score waits for its label (labels are late: minutes to days), and a
//! label that overtook its score (the learner reads the two topics independently) waits
//! for the score. Whichever comes second completes the pair. The clock of both bounds is
//! the *score watermark*, the newest `event_time` among scores seen, so a replay evicts
//! exactly what the live run evicted:
//!
//! - a score older than `watermark − max_label_wait` is expired (its label came too late
//!   or never); beyond `max_pending_scores` the oldest scores are evicted;
//! - a label for an event older than `watermark − max_score_wait` whose score is not here
//!   is unmatched (the score was never produced, or was evicted); beyond
//!   `max_pending_labels` the oldest are evicted; a label arriving for an event older than
//!   `watermark − max_label_wait` is dropped on arrival as too late.
//!
//! Every eviction is counted ([`JoinCounters`]). The first score of an event wins: a
//! duplicate (a scorer replay after a crash) is counted and dropped. Joined event ids are
//! remembered for as long as a score would wait (same time and count bounds), so a label
//! or score delivered twice by an at-least-once producer is dropped as a duplicate
//! instead of being learned a second time.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use weir_schemas::events::Label;

use crate::config::JoinConfig;

/// What the learner keeps of a `Score` until its label comes: the served score and the
/// exact feature values the model saw (point-in-time correct by construction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingScore {
    pub event_time: i64,
    pub model_version: String,
    pub score: f64,
    pub features: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCounters {
    pub scores_pending_added: u64,
    pub scores_duplicate: u64,
    pub scores_expired: u64,
    pub scores_evicted: u64,
    pub labels_duplicate: u64,
    pub labels_too_late: u64,
    pub labels_unmatched: u64,
    pub labels_evicted: u64,
    pub joined: u64,
}

/// A change to persist: `Some(json)` to write, `None` to delete.
pub type Changes = HashMap<String, Option<String>>;

pub struct Join {
    config: JoinConfig,
    scores: HashMap<String, PendingScore>,
    score_index: BTreeSet<(i64, String)>,
    labels: HashMap<String, Label>,
    label_index: BTreeSet<(i64, String)>,
    /// Event ids already joined, with their event time.
    joined: HashMap<String, i64>,
    joined_index: BTreeSet<(i64, String)>,
    pub watermark: i64,
    pub counters: JoinCounters,
    pub score_changes: Changes,
    pub label_changes: Changes,
    pub joined_changes: Changes,
}

impl Join {
    pub fn new(config: JoinConfig, watermark: i64, counters: JoinCounters) -> Self {
        Join {
            config,
            scores: HashMap::new(),
            score_index: BTreeSet::new(),
            labels: HashMap::new(),
            label_index: BTreeSet::new(),
            joined: HashMap::new(),
            joined_index: BTreeSet::new(),
            watermark,
            counters,
            score_changes: HashMap::new(),
            label_changes: HashMap::new(),
            joined_changes: HashMap::new(),
        }
    }

    /// Restores a remembered joined id from the checkpoint.
    pub fn restore_joined(&mut self, id: String, event_time: i64) {
        self.joined_index.insert((event_time, id.clone()));
        self.joined.insert(id, event_time);
    }

    fn remember_joined(&mut self, id: &str, event_time: i64) {
        self.joined_changes.insert(id.to_string(), Some(event_time.to_string()));
        self.joined_index.insert((event_time, id.to_string()));
        self.joined.insert(id.to_string(), event_time);
    }

    /// Restores a pending score from the checkpoint (no change recorded).
    pub fn restore_score(&mut self, id: String, s: PendingScore) {
        self.score_index.insert((s.event_time, id.clone()));
        self.scores.insert(id, s);
    }

    pub fn restore_label(&mut self, id: String, l: Label) {
        self.label_index.insert((l.event_time, id.clone()));
        self.labels.insert(id, l);
    }

    pub fn pending_scores(&self) -> usize {
        self.scores.len()
    }

    pub fn pending_labels(&self) -> usize {
        self.labels.len()
    }

    fn label_wait_ms(&self) -> i64 {
        (self.config.max_label_wait_secs as i64).saturating_mul(1000)
    }

    /// A score arrives. Returns the completed pair if its label was waiting.
    pub fn on_score(&mut self, event_id: &str, score: PendingScore) -> Option<(PendingScore, Label)> {
        self.watermark = self.watermark.max(score.event_time);
        if let Some(label) = self.take_label(event_id) {
            self.counters.joined += 1;
            self.remember_joined(event_id, score.event_time);
            self.evict();
            return Some((score, label));
        }
        if self.scores.contains_key(event_id) || self.joined.contains_key(event_id) {
            self.counters.scores_duplicate += 1;
        } else {
            self.score_changes.insert(event_id.to_string(), Some(json(&score)));
            self.score_index.insert((score.event_time, event_id.to_string()));
            self.scores.insert(event_id.to_string(), score);
            self.counters.scores_pending_added += 1;
        }
        self.evict();
        None
    }

    /// A label arrives. Returns the completed pair if its score was waiting.
    pub fn on_label(&mut self, label: Label) -> Option<(PendingScore, Label)> {
        if let Some(score) = self.take_score(&label.event_id) {
            self.counters.joined += 1;
            self.remember_joined(&label.event_id, score.event_time);
            return Some((score, label));
        }
        if self.labels.contains_key(&label.event_id) || self.joined.contains_key(&label.event_id) {
            self.counters.labels_duplicate += 1;
        } else if label.event_time < self.watermark.saturating_sub(self.label_wait_ms()) {
            self.counters.labels_too_late += 1;
        } else {
            let id = label.event_id.clone();
            self.label_changes.insert(id.clone(), Some(json(&label)));
            self.label_index.insert((label.event_time, id.clone()));
            self.labels.insert(id, label);
            self.evict();
        }
        None
    }

    fn take_score(&mut self, id: &str) -> Option<PendingScore> {
        let s = self.scores.remove(id)?;
        self.score_index.remove(&(s.event_time, id.to_string()));
        self.score_changes.insert(id.to_string(), None);
        Some(s)
    }

    fn take_label(&mut self, id: &str) -> Option<Label> {
        let l = self.labels.remove(id)?;
        self.label_index.remove(&(l.event_time, id.to_string()));
        self.label_changes.insert(id.to_string(), None);
        Some(l)
    }

    /// Applies both bounds, by time then by count, oldest first.
    fn evict(&mut self) {
        let score_horizon = self.watermark.saturating_sub(self.label_wait_ms());
        while let Some((t, id)) = self.score_index.first().cloned() {
            let over = self.scores.len() > self.config.max_pending_scores;
            if t >= score_horizon && !over {
                break;
            }
            self.take_score(&id);
            if t < score_horizon { self.counters.scores_expired += 1 } else { self.counters.scores_evicted += 1 }
        }
        while let Some((t, id)) = self.joined_index.first().cloned() {
            if t >= score_horizon && self.joined.len() <= self.config.max_pending_scores {
                break;
            }
            self.joined_index.remove(&(t, id.clone()));
            self.joined.remove(&id);
            self.joined_changes.insert(id, None);
        }
        let label_horizon = self.watermark.saturating_sub((self.config.max_score_wait_secs as i64).saturating_mul(1000));
        while let Some((t, id)) = self.label_index.first().cloned() {
            let over = self.labels.len() > self.config.max_pending_labels;
            if t >= label_horizon && !over {
                break;
            }
            self.take_label(&id);
            if t < label_horizon { self.counters.labels_unmatched += 1 } else { self.counters.labels_evicted += 1 }
        }
    }

    /// Hands over what changed since the last call: pending scores, pending labels,
    /// remembered joined ids.
    pub fn take_changes(&mut self) -> (Changes, Changes, Changes) {
        (
            std::mem::take(&mut self.score_changes),
            std::mem::take(&mut self.label_changes),
            std::mem::take(&mut self.joined_changes),
        )
    }
}

fn json<T: Serialize>(v: &T) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> JoinConfig {
        JoinConfig { max_label_wait_secs: 100, max_pending_scores: 3, max_score_wait_secs: 10, max_pending_labels: 2 }
    }

    fn score(t: i64) -> PendingScore {
        PendingScore { event_time: t, model_version: "v1".into(), score: 0.1, features: vec![1.0] }
    }

    fn label(id: &str, t: i64) -> Label {
        Label { event_id: id.into(), card_id: "c".into(), is_fraud: true, event_time: t, label_time: t + 5 }
    }

    #[test]
    fn joins_in_either_order_with_the_scored_features() {
        let mut j = Join::new(cfg(), 0, JoinCounters::default());
        assert!(j.on_score("a", score(1_000)).is_none());
        let (s, l) = j.on_label(label("a", 1_000)).unwrap();
        assert_eq!((s.features, l.event_id.as_str()), (vec![1.0], "a"));
        // Label first.
        assert!(j.on_label(label("b", 2_000)).is_none());
        assert!(j.on_score("b", score(2_000)).is_some());
        assert_eq!(j.counters.joined, 2);
        assert_eq!((j.pending_scores(), j.pending_labels()), (0, 0));
        // A label or score delivered again after the join is a duplicate, not a new pair.
        assert!(j.on_label(label("a", 1_000)).is_none());
        assert!(j.on_score("b", score(2_000)).is_none());
        assert_eq!((j.counters.labels_duplicate, j.counters.scores_duplicate, j.pending_scores()), (1, 1, 0));
        let (sc, lc, jc) = j.take_changes();
        assert_eq!(jc.get("a"), Some(&Some("1000".to_string())));
        // Written then deleted within the batch: the last word is a delete.
        assert_eq!(sc.get("a"), Some(&None));
        assert_eq!(lc.get("b"), Some(&None));
    }

    #[test]
    fn bounds_by_time_and_count_are_counted() {
        let mut j = Join::new(cfg(), 0, JoinCounters::default());
        for (i, t) in [1_000, 2_000, 3_000, 4_000].into_iter().enumerate() {
            j.on_score(&format!("s{i}"), score(t));
        }
        assert_eq!((j.pending_scores(), j.counters.scores_evicted), (3, 1));
        // 200 s later: all older than 100 s behind the watermark expire.
        j.on_score("late", score(204_000));
        assert_eq!((j.pending_scores(), j.counters.scores_expired), (1, 3));
        // A label for an event 150 s behind: too late to ever join.
        assert!(j.on_label(label("s1", 54_000)).is_none());
        assert_eq!(j.counters.labels_too_late, 1);
        // Labels waiting for scores: 10 s of watermark, and at most 2.
        j.on_label(label("x", 200_000));
        j.on_label(label("y", 201_000));
        j.on_label(label("z", 202_000));
        assert_eq!((j.pending_labels(), j.counters.labels_evicted), (2, 1));
        j.on_score("w", score(215_000));
        assert_eq!((j.pending_labels(), j.counters.labels_unmatched), (0, 2));
        // Duplicates.
        j.on_score("w", score(215_000));
        assert_eq!(j.counters.scores_duplicate, 1);
    }
}
