//! The label join: a label meets its scored event by `event_id`, whichever comes first.
//! Each side waits for the other in a bounded FIFO (`label_join_capacity`), oldest
//! evicted first.

use std::collections::{HashMap, VecDeque};

use weir_schemas::events::Label;

/// What a scored event leaves for its label.
#[derive(Debug, Clone, Copy)]
pub(super) struct WaitingScore {
    /// Its fairness group.
    pub group: usize,
    /// Any decision other than `approve`.
    pub flagged: bool,
}

/// A label that came before its score (a replay, or labels read ahead of scores).
#[derive(Debug, Clone, Copy)]
struct EarlyLabel {
    is_fraud: bool,
    label_time: i64,
}

/// A score and its label, joined.
#[derive(Debug, Clone, Copy)]
pub(super) struct Joined {
    pub group: usize,
    pub flagged: bool,
    pub is_fraud: bool,
    /// Event time of the label, ms: labels are windowed by it.
    pub label_time: i64,
}

impl Joined {
    fn new(score: WaitingScore, label: EarlyLabel) -> Self {
        Joined { group: score.group, flagged: score.flagged, is_fraud: label.is_fraud, label_time: label.label_time }
    }

    /// The error indicator: the decision disagreed with the label.
    pub fn error(&self) -> bool {
        self.flagged != self.is_fraud
    }
}

/// What became of a label.
pub(super) enum LabelArrival {
    /// Its score was waiting.
    Joined(Joined),
    /// It waits for its score; `evicted` if an older label still waiting was dropped to
    /// make room.
    Waits { evicted: bool },
}

/// One side of the join waiting for the other, by event id, oldest evicted first.
struct Waiting<V> {
    waiting: HashMap<String, V>,
    order: VecDeque<String>,
    capacity: usize,
}

impl<V> Waiting<V> {
    fn new(capacity: usize) -> Self {
        Waiting { waiting: HashMap::new(), order: VecDeque::new(), capacity }
    }

    /// Inserts; returns whether an entry still waiting was evicted to make room.
    fn insert(&mut self, event_id: &str, v: V) -> bool {
        let mut evicted = false;
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            evicted = self.waiting.remove(&old).is_some();
        }
        self.order.push_back(event_id.to_string());
        self.waiting.insert(event_id.to_string(), v);
        evicted
    }

    fn take(&mut self, event_id: &str) -> Option<V> {
        self.waiting.remove(event_id)
    }
}

pub(super) struct LabelJoin {
    scores: Waiting<WaitingScore>,
    labels: Waiting<EarlyLabel>,
}

impl LabelJoin {
    pub fn new(capacity: usize) -> Self {
        LabelJoin { scores: Waiting::new(capacity), labels: Waiting::new(capacity) }
    }

    /// A scored event: joined at once if its label came first, else it waits (a score
    /// evicted unlabelled is not counted).
    pub fn score(&mut self, event_id: &str, score: WaitingScore) -> Option<Joined> {
        match self.labels.take(event_id) {
            Some(label) => Some(Joined::new(score, label)),
            None => {
                self.scores.insert(event_id, score);
                None
            }
        }
    }

    /// A label: joined if its score waits, else it waits for its score.
    pub fn label(&mut self, label: &Label) -> LabelArrival {
        let early = EarlyLabel { is_fraud: label.is_fraud, label_time: label.label_time };
        match self.scores.take(&label.event_id) {
            Some(score) => LabelArrival::Joined(Joined::new(score, early)),
            None => LabelArrival::Waits { evicted: self.labels.insert(&label.event_id, early) },
        }
    }

    /// Scored events waiting for their label.
    pub fn scores_waiting(&self) -> usize {
        self.scores.waiting.len()
    }
}
