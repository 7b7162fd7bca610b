//! Pane bookkeeping for rolling windows in event time, shared by the numeric and the
//! categorical sketches.
//!
//! A window of `panes` panes of `pane_len` time units each (the unit is the caller's —
//! weir uses event-time milliseconds) covers the `panes` panes ending with the pane of the
//! newest event time seen. Each pane owns one slot of a ring; when time moves forward, the
//! slots of the panes that fall out are cleared and reused. Memory is `panes` slots whatever
//! the window's length or the event rate, and an event costs O(1) plus, when it opens new
//! panes, clearing their slots.

use crate::error::{Result, invalid};

/// The shape of a rolling window: `panes × pane_len` time units, sliding by one pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pane_len: u64,
    panes: usize,
    /// Extra slots for panes newer than the reported window's end.
    open: usize,
}

impl WindowSpec {
    /// `pane_len` > 0 time units per pane, `panes` > 0 panes per window.
    pub fn new(pane_len: u64, panes: usize) -> Result<Self> {
        if pane_len == 0 {
            return Err(invalid("pane_len", pane_len, "must be at least 1 time unit"));
        }
        if panes == 0 {
            return Err(invalid("panes", panes, "must be at least 1"));
        }
        Ok(WindowSpec { pane_len, panes, open: 0 })
    }

    /// The same window, with room for `open` more panes after the one a report ends with:
    /// panes still open (not yet passed by the watermark) while an older one is evaluated.
    pub fn with_open_panes(self, open: usize) -> Self {
        WindowSpec { open, ..self }
    }

    /// Slots of the ring: `panes + open`.
    pub fn slots(&self) -> usize {
        self.panes + self.open
    }

    /// One pane covering all of time: the current window is everything observed (until
    /// [`reset`](super::NumericDrift::reset)). Used by tests and offline comparisons.
    pub fn unbounded() -> Self {
        WindowSpec { pane_len: u64::MAX, panes: 1, open: 0 }
    }

    pub fn pane_len(&self) -> u64 {
        self.pane_len
    }

    pub fn panes(&self) -> usize {
        self.panes
    }

    /// The window's length in time units (saturating).
    pub fn len(&self) -> u64 {
        self.pane_len.saturating_mul(self.panes as u64)
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Into this slot of the ring.
    Slot(usize),
    /// Older than the window: not counted.
    Late,
}

#[derive(Debug, Clone)]
pub(crate) struct PaneClock {
    spec: WindowSpec,
    newest: Option<u64>,
}

impl PaneClock {
    pub(crate) fn new(spec: WindowSpec) -> Self {
        PaneClock { spec, newest: None }
    }

    /// Moves the ring's newest pane to the pane of `t` if that is later, calling
    /// `clear(slot)` for every slot whose pane leaves the ring.
    pub(crate) fn advance(&mut self, t: u64, mut clear: impl FnMut(usize)) {
        let pane = t / self.spec.pane_len;
        let n = self.spec.slots() as u64;
        match self.newest {
            None => self.newest = Some(pane),
            Some(newest) if pane > newest => {
                let steps = (pane - newest).min(n);
                for k in 1..=steps {
                    clear(((newest + k) % n) as usize);
                }
                self.newest = Some(pane);
            }
            Some(_) => {}
        }
    }

    /// Advances to `t` (see [`advance`](Self::advance)) and says where an event at `t` goes.
    pub(crate) fn place(&mut self, t: u64, clear: impl FnMut(usize)) -> Placement {
        self.advance(t, clear);
        let pane = t / self.spec.pane_len;
        let newest = self.newest.unwrap_or(pane);
        let n = self.spec.slots() as u64;
        if newest - pane >= n { Placement::Late } else { Placement::Slot((pane % n) as usize) }
    }

    /// The slots holding the window of `panes` panes that ends with pane `end` (default:
    /// the newest pane seen): its panes still in the ring, none newer than the newest.
    pub(crate) fn window_slots(&self, end: Option<u64>) -> impl Iterator<Item = usize> + use<> {
        let n = self.spec.slots() as u64;
        // Half-open [lo, hi): empty before the first event.
        let (lo, hi) = match self.newest {
            None => (0, 0),
            Some(newest) => {
                let end = end.unwrap_or(newest);
                let lo = (end + 1).saturating_sub(self.spec.panes as u64).max((newest + 1).saturating_sub(n));
                (lo, end.min(newest) + 1)
            }
        };
        (lo..hi).map(move |p| (p % n) as usize)
    }

    pub(crate) fn reset(&mut self) {
        self.newest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_expire_and_late_events_are_refused() {
        let mut clock = PaneClock::new(WindowSpec::new(10, 3).unwrap());
        let mut cleared = Vec::new();
        assert_eq!(clock.place(5, |s| cleared.push(s)), Placement::Slot(0));
        assert_eq!(clock.place(25, |s| cleared.push(s)), Placement::Slot(2));
        assert_eq!(cleared, vec![1, 2]);
        // pane 0 is still inside the window [pane 0, pane 2]
        assert_eq!(clock.place(0, |s| cleared.push(s)), Placement::Slot(0));
        cleared.clear();
        // pane 3 pushes pane 0 out
        assert_eq!(clock.place(30, |s| cleared.push(s)), Placement::Slot(0));
        assert_eq!(cleared, vec![0]);
        assert_eq!(clock.place(9, |_| {}), Placement::Late);
        // a jump of more than a window clears every slot once
        cleared.clear();
        clock.advance(1_000, |s| cleared.push(s));
        cleared.sort();
        assert_eq!(cleared, vec![0, 1, 2]);
    }

    #[test]
    fn open_panes_are_kept_apart_from_the_reported_window() {
        // Windows of 3 panes of 10, two more panes open ahead.
        let mut clock = PaneClock::new(WindowSpec::new(10, 3).unwrap().with_open_panes(2));
        assert_eq!(clock.place(5, |_| {}), Placement::Slot(0));
        assert_eq!(clock.place(45, |_| {}), Placement::Slot(4));
        // pane 0 is still in the ring: 5 slots
        assert_eq!(clock.place(1, |_| {}), Placement::Slot(0));
        let slots = |clock: &PaneClock, end| clock.window_slots(end).collect::<Vec<_>>();
        assert_eq!(slots(&clock, Some(2)), vec![0, 1, 2]);
        assert_eq!(slots(&clock, Some(0)), vec![0]);
        assert_eq!(slots(&clock, None), vec![2, 3, 4]);
        // pane 5 evicts pane 0: the window ending with pane 2 keeps panes 1 and 2
        assert_eq!(clock.place(50, |_| {}), Placement::Slot(0));
        assert_eq!(slots(&clock, Some(2)), vec![1, 2]);
        assert_eq!(clock.place(3, |_| {}), Placement::Late);
        // a window past the newest pane holds only what has been seen
        assert_eq!(slots(&clock, Some(6)), vec![4, 0]);
    }
}
