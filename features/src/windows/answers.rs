//! A window's values gathered in one pass: the per-event fast path's layout.

/// Every value a window can answer from its running totals and caches, computed in one
/// straight pass (count; per numeric field sum, mean, min, max; per distinct field its
/// count) and then gathered in the aggregations' order through
/// [`EntityDef::answer_slots`](super::EntityDef::answer_slots), instead of evaluating
/// the aggregations one by one, which dispatches on the kind and finds the field's totals
/// again for every value.
pub(super) struct WindowAnswers(pub(super) [f64; Self::LEN]);

impl WindowAnswers {
    /// A power of two, so that a slot masked by `LEN - 1` is in bounds without a check.
    pub(super) const LEN: usize = 32;

    pub(super) fn fits(numeric: usize, distinct: usize) -> bool {
        1 + 4 * numeric + distinct <= Self::LEN
    }

    pub(super) fn slot(op: ValueOp, numeric: usize) -> u8 {
        let slot = match op {
            ValueOp::Count => 0,
            ValueOp::Sum(k) => 1 + 4 * k,
            ValueOp::Mean(k) => 2 + 4 * k,
            ValueOp::Min(k) => 3 + 4 * k,
            ValueOp::Max(k) => 4 + 4 * k,
            ValueOp::Distinct(d) => 1 + 4 * numeric + d,
        };
        slot as u8
    }

    pub(super) fn get(&self, slot: u8) -> f64 {
        self.0[usize::from(slot) & (Self::LEN - 1)]
    }
}

/// One value of a window: an [`Aggregation`](super::Aggregation) without its name, small and `Copy` (what
/// [`EntityState::current_window_values`](super::EntityState::current_window_values) checks the caches for and gathers by).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ValueOp {
    Count,
    Sum(usize),
    Mean(usize),
    Min(usize),
    Max(usize),
    Distinct(usize),
}
