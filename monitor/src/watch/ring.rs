//! Per-pane counters of a fixed number of groups: the plain windows behind data quality,
//! fairness and the label rates (the drift sketches keep their own bins).

use crate::drift::window::{PaneClock, Placement};
use crate::drift::WindowSpec;

/// `K` counters per group per pane, over the panes of a [`WindowSpec`]. Memory is
/// `groups × slots` cells whatever the event rate.
#[derive(Debug, Clone)]
pub(super) struct Ring<const K: usize> {
    clock: PaneClock,
    groups: usize,
    cells: Vec<[u64; K]>,
}

impl<const K: usize> Ring<K> {
    pub(super) fn new(spec: WindowSpec, groups: usize) -> Self {
        Ring { clock: PaneClock::new(spec), groups, cells: vec![[0; K]; groups * spec.slots()] }
    }

    /// Adds `v` to `group` at time `t`; false if `t` is older than the window. A group
    /// past the last is counted in the last.
    pub(super) fn add(&mut self, t: u64, group: usize, v: [u64; K]) -> bool {
        let (groups, cells) = (self.groups, &mut self.cells);
        match self.clock.place(t, |slot| cells[slot * groups..(slot + 1) * groups].fill([0; K])) {
            Placement::Late => false,
            Placement::Slot(slot) => {
                let cell = &mut self.cells[slot * self.groups + group.min(self.groups - 1)];
                for (c, x) in cell.iter_mut().zip(v) {
                    *c += x;
                }
                true
            }
        }
    }

    /// `group`'s totals over the window ending with pane `end` (default the newest).
    pub(super) fn group_totals(&self, group: usize, end: Option<u64>) -> [u64; K] {
        let mut out = [0; K];
        for slot in self.clock.window_slots(end) {
            for (o, c) in out.iter_mut().zip(&self.cells[slot * self.groups + group]) {
                *o += c;
            }
        }
        out
    }

    /// All groups' totals over the window ending with pane `end` (default the newest).
    pub(super) fn totals(&self, end: Option<u64>) -> [u64; K] {
        let mut out = [0; K];
        for slot in self.clock.window_slots(end) {
            for cell in &self.cells[slot * self.groups..(slot + 1) * self.groups] {
                for (o, c) in out.iter_mut().zip(cell) {
                    *o += c;
                }
            }
        }
        out
    }
}
