//! The learner engine: fenced input → join → test-then-train → the batch's [`Commit`].
//!
//! It owns no I/O. The caller (`weir learn`) decodes Kafka records into [`Input`]s, hands
//! a batch to [`Learner::apply`], writes the returned [`Commit`] with
//! [`crate::checkpoint::RedisCheckpoint::commit`] (one transaction), and only then lets
//! the consumer store the batch's offsets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_schemas::events::{Label, Score};

use crate::config::LearnerConfig;
use crate::error::Result;
use crate::eval::{Entry, Prequential, WindowReport};
use crate::join::{Join, JoinCounters, PendingScore};
use crate::model::OnlineModel;
use crate::promote::PromotionState;

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Position {
    fn key(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Score(Score),
    Label(Label),
}

/// Counts persisted with the model; the restart test reads them back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub scores_seen: u64,
    pub labels_seen: u64,
    /// Labels learned (joined, evaluated, trained on).
    pub learned: u64,
    /// Order-independent fingerprint of the learned event ids: the wrapping sum of their
    /// 64-bit FNV-1a hashes. Equal counts and equal fingerprints mean the same set of
    /// labels was learned, each once (up to a 2⁻⁶⁴ accident).
    pub learned_fingerprint: u64,
    /// Records at or below the checkpointed offset of their partition: replays after a
    /// crash or rebalance, skipped.
    pub replayed_skipped: u64,
    /// Scores whose feature names differ from the model's: not learned.
    pub feature_mismatch: u64,
    /// Scores of a multi-class or regression model: the learner learns binary labels
    /// against a positive-class probability, so these are not joined.
    #[serde(default)]
    pub not_binary: u64,
    pub join: JoinCounters,
}

/// FNV-1a, 64 bit: stable across processes and versions (unlike std's hasher).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Everything but the join buffers and the evaluation ring, which are persisted
/// incrementally. One JSON value under the `state` key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearnerState {
    /// Checkpoint format version.
    pub format: u32,
    pub model: Option<OnlineModel>,
    pub counters: Counters,
    /// `topic/partition` → the last offset whose effects are in this state.
    pub offsets: BTreeMap<String, i64>,
    pub watermark: i64,
    /// Label time of the first and last label learned (lineage).
    pub label_time_range: Option<(i64, i64)>,
    pub promotion: PromotionState,
}

/// 2: the promotion comparison window moved out of the state JSON into its own list.
pub const FORMAT: u32 = 2;

impl LearnerState {
    pub fn fresh() -> Self {
        LearnerState {
            format: FORMAT,
            model: None,
            counters: Counters::default(),
            offsets: BTreeMap::new(),
            watermark: i64::MIN,
            label_time_range: None,
            promotion: PromotionState::default(),
        }
    }
}

/// What one batch changed, to be written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub state_json: String,
    /// Pending scores: `Some(json)` to write, `None` to delete.
    pub scores: Vec<(String, Option<String>)>,
    pub labels: Vec<(String, Option<String>)>,
    /// Remembered joined ids (value: event time).
    pub joined: Vec<(String, Option<String>)>,
    /// New evaluation entries (JSON), appended to the ring.
    pub eval: Vec<String>,
    pub eval_capacity: usize,
    /// The promotion comparison window's changes (emptied first if `reset`), appended
    /// to its list and trimmed to `compare_capacity`.
    pub compare_reset: bool,
    pub compare: Vec<String>,
    pub compare_capacity: usize,
    /// Labels learned in this batch.
    pub learned: u64,
}

impl Commit {
    /// `later` (taken after this one, before either was written) on top of this one.
    pub fn then(&mut self, later: Commit) {
        self.state_json = later.state_json;
        self.scores.extend(later.scores);
        self.labels.extend(later.labels);
        self.joined.extend(later.joined);
        self.eval.extend(later.eval);
        if later.compare_reset {
            self.compare_reset = true;
            self.compare = later.compare;
        } else {
            self.compare.extend(later.compare);
        }
        self.learned += later.learned;
    }
}

pub struct Learner {
    config: LearnerConfig,
    state: LearnerState,
    join: Join,
    eval: Prequential,
    new_eval: Vec<String>,
}

impl Learner {
    /// A learner from its checkpoint (or from nothing).
    pub fn restore(
        config: LearnerConfig,
        state: Option<LearnerState>,
        pending_scores: Vec<(String, PendingScore)>,
        pending_labels: Vec<(String, Label)>,
        joined: Vec<(String, i64)>,
        eval: Vec<Entry>,
    ) -> Result<Self> {
        config.check()?;
        let state = state.unwrap_or_else(LearnerState::fresh);
        let mut join = Join::new(config.join.clone(), state.watermark, state.counters.join.clone());
        for (id, s) in pending_scores {
            join.restore_score(id, s);
        }
        for (id, l) in pending_labels {
            join.restore_label(id, l);
        }
        for (id, t) in joined {
            join.restore_joined(id, t);
        }
        let e = &config.evaluation;
        let mut q = Prequential::new(&e.windows, e.decision_threshold, e.calibration_bins);
        for entry in eval {
            q.push(entry);
        }
        Ok(Learner { config, state, join, eval: q, new_eval: Vec::new() })
    }

    pub fn config(&self) -> &LearnerConfig {
        &self.config
    }

    pub fn state(&self) -> &LearnerState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut LearnerState {
        &mut self.state
    }

    pub fn model(&self) -> Option<&OnlineModel> {
        self.state.model.as_ref()
    }

    pub fn counters(&self) -> Counters {
        let mut c = self.state.counters.clone();
        c.join = self.join.counters.clone();
        c
    }

    pub fn pending(&self) -> (usize, usize) {
        (self.join.pending_scores(), self.join.pending_labels())
    }

    pub fn report(&self) -> Vec<WindowReport> {
        self.eval.report()
    }

    pub fn prequential(&self) -> &Prequential {
        &self.eval
    }

    /// The last applied offset of a partition, if any.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state.offsets.get(&format!("{topic}/{partition}")).copied()
    }

    /// Applies one batch in order. Records at or below their partition's checkpointed
    /// offset are skipped (they are already in the state).
    pub fn apply(&mut self, batch: Vec<(Position, Input)>) -> Result<Commit> {
        let before = self.state.counters.learned;
        for (pos, input) in batch {
            let key = pos.key();
            if self.state.offsets.get(&key).is_some_and(|&o| pos.offset <= o) {
                self.state.counters.replayed_skipped += 1;
                continue;
            }
            self.state.offsets.insert(key, pos.offset);
            match input {
                Input::Score(s) => self.on_score(s)?,
                Input::Label(l) => {
                    self.state.counters.labels_seen += 1;
                    if let Some((score, label)) = self.join.on_label(l) {
                        self.learn(score, label)?;
                    }
                }
            }
        }
        Ok(self.commit(self.state.counters.learned - before))
    }

    fn on_score(&mut self, s: Score) -> Result<()> {
        self.state.counters.scores_seen += 1;
        let model = match &self.state.model {
            Some(m) => m,
            None => {
                let names = s.features.iter().map(|f| f.name.clone()).collect();
                self.state.model = Some(OnlineModel::new(names, &self.config.ftrl)?);
                self.state.model.as_ref().expect("just set")
            }
        };
        let Some(probability) = s.probability() else {
            self.state.counters.not_binary += 1;
            return Ok(());
        };
        let same = s.features.len() == model.nfeatures()
            && s.features.iter().zip(&model.feature_names).all(|(f, n)| &f.name == n);
        if !same {
            self.state.counters.feature_mismatch += 1;
            return Ok(());
        }
        let pending = PendingScore {
            event_time: s.event_time,
            model_version: s.model_version,
            score: probability,
            features: s.features.iter().map(|f| f.value).collect(),
        };
        if let Some((score, label)) = self.join.on_score(&s.event_id, pending) {
            self.learn(score, label)?;
        }
        Ok(())
    }

    /// Test, then train.
    fn learn(&mut self, score: PendingScore, label: Label) -> Result<()> {
        let Some(model) = self.state.model.as_mut() else { return Ok(()) };
        let challenger = model.predict(&score.features);
        let entry = Entry { champion: score.score, challenger, label: label.is_fraud };
        model.learn(&score.features, label.is_fraud)?;
        self.eval.push(entry);
        self.new_eval.push(serde_json::to_string(&entry).unwrap_or_default());
        self.state.promotion.observe(&score.model_version, entry, &self.config.promotion);
        let c = &mut self.state.counters;
        c.learned += 1;
        c.learned_fingerprint = c.learned_fingerprint.wrapping_add(fnv1a(label.event_id.as_bytes()));
        self.state.label_time_range = Some(match self.state.label_time_range {
            Some((a, b)) => (a.min(label.label_time), b.max(label.label_time)),
            None => (label.label_time, label.label_time),
        });
        Ok(())
    }

    /// Restores the promotion comparison window (its own list in the checkpoint).
    pub fn restore_compare(&mut self, entries: Vec<Entry>) {
        self.state.promotion.restore_compare(entries, &self.config.promotion);
    }

    /// Snapshots the state and the changes since the last commit.
    pub fn commit(&mut self, learned: u64) -> Commit {
        self.state.watermark = self.join.watermark;
        self.state.counters.join = self.join.counters.clone();
        let (scores, labels, joined) = self.join.take_changes();
        let delta = self.state.promotion.take_compare_delta();
        Commit {
            compare_reset: delta.reset,
            compare: delta.pushed.iter().map(|e| serde_json::to_string(e).unwrap_or_default()).collect(),
            compare_capacity: self.config.promotion.compare_labels,
            state_json: serde_json::to_string(&self.state).unwrap_or_default(),
            scores: scores.into_iter().collect(),
            labels: labels.into_iter().collect(),
            joined: joined.into_iter().collect(),
            eval: std::mem::take(&mut self.new_eval),
            eval_capacity: self.eval.capacity(),
            learned,
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_schemas::events::{FeatureValue, ModelOutput};

    use super::*;

    fn score(id: &str, t: i64, x: f64) -> Input {
        Input::Score(Score {
            event_id: id.into(),
            key: "c".into(),
            event_time: t,
            model_name: "m".into(),
            model_version: "v1".into(),
            output: ModelOutput::binary(0.3),
            decision: "approve".into(),
            features: vec![FeatureValue { name: "a".into(), value: x }, FeatureValue { name: "b".into(), value: 1.0 }],
            reasons: vec![],
            scored_at: t,
            attributes: Default::default(),
        })
    }

    fn label(id: &str, t: i64, y: bool) -> Input {
        Input::Label(Label { event_id: id.into(), card_id: "c".into(), is_fraud: y, event_time: t, label_time: t + 1 })
    }

    fn pos(topic: &str, offset: i64) -> Position {
        Position { topic: topic.into(), partition: 0, offset }
    }

    #[test]
    fn replayed_offsets_are_skipped_and_the_fingerprint_is_order_free() {
        let mut l = Learner::restore(LearnerConfig::default(), None, vec![], vec![], vec![], vec![]).unwrap();
        let batch = vec![
            (pos("s", 0), score("e1", 1_000, 1.0)),
            (pos("s", 1), score("e2", 2_000, 5.0)),
            (pos("l", 0), label("e2", 2_000, true)),
            (pos("l", 1), label("e1", 1_000, false)),
        ];
        let c = l.apply(batch.clone()).unwrap();
        assert_eq!(c.learned, 2);
        assert_eq!(c.eval.len(), 2);
        // The same batch again (a replay): nothing happens.
        let c = l.apply(batch).unwrap();
        assert_eq!((c.learned, l.counters().replayed_skipped), (0, 4));
        let expected = fnv1a(b"e1").wrapping_add(fnv1a(b"e2"));
        assert_eq!(l.counters().learned_fingerprint, expected);
        assert_eq!(l.offset("s", 0), Some(1));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut l = Learner::restore(LearnerConfig::default(), None, vec![], vec![], vec![], vec![]).unwrap();
        l.apply(vec![(pos("s", 0), score("e1", 1_000, 1.0)), (pos("l", 0), label("e1", 1_000, true))]).unwrap();
        let c = l.commit(0);
        let back: LearnerState = serde_json::from_str(&c.state_json).unwrap();
        assert_eq!(back.counters, l.counters());
        assert_eq!(back.model.unwrap().linear(), l.model().unwrap().linear());
    }
}
