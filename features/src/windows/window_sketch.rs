//! A window's registers merged over its panes, kept by a two-stacks sliding aggregate.

use std::collections::VecDeque;

use super::hll::{HLL_REGISTERS, PaneRegs, Sketch, hll_add, hll_merge, hll_slot};

/// A window's registers merged over its panes, for one sketched distinct field, kept by a
/// *two-stacks* sliding aggregate: a pane sliding out costs O(1) register merges amortized,
/// and the estimate changes only where a register does, instead of a merge over every
/// remaining pane and a harmonic sum over 256 registers on each slide.
///
/// - The *back*: the window's panes older than its newest, as of the last rebuild, each
///   with the registers merged over it and every newer pane of the back (suffix maxima),
///   ascending by pane; `first` skips those that slid out.
/// - The *front*: the registers merged over the window's panes newer than the back's.
///
/// The window's registers are `max(back[first], front)`. When the back is used up and a
/// front pane slides out, both are rebuilt from the window's panes: each pane is merged
/// into a back once per pass through the window, so a slide costs one merge amortized,
/// plus one to combine back and front. An event adds its hash to `merged` and to the front
/// (or, out of order, to the back entries its pane is part of).
#[derive(Debug, Clone)]
pub(super) struct WindowSketch {
    pub(super) merged: Sketch,
    /// The window's first pane `merged` answers for (the window as of `cur`).
    start: i64,
    pub(super) back: Vec<(i64, [u8; HLL_REGISTERS])>,
    pub(super) first: usize,
    pub(super) front: [u8; HLL_REGISTERS],
    /// The oldest pane merged into the front (`i64::MAX` when none).
    front_from: i64,
    /// An out-of-order event made a pane inside the back: rebuild before the next answer.
    stale: bool,
}

impl WindowSketch {
    /// The merged sketch of the window `[start, cur]` of `heads`, field `d` of `nd`.
    #[inline]
    pub(super) fn build(start: i64, cur: i64, heads: &[(i64, f64)], regs: &VecDeque<PaneRegs>, nd: usize, d: usize) -> Self {
        let mut s = WindowSketch {
            merged: Sketch::EMPTY,
            start,
            back: Vec::new(),
            first: 0,
            front: [0; HLL_REGISTERS],
            front_from: i64::MAX,
            stale: false,
        };
        s.rebuild(start, cur, heads, regs, nd, d);
        s.merged = Sketch::from_regs(s.registers());
        s
    }

    /// An empty window starting at `start`, keeping the back's allocation.
    pub(super) fn clear(&mut self, start: i64) {
        self.merged = Sketch::EMPTY;
        self.start = start;
        self.back.clear();
        self.first = 0;
        self.front = [0; HLL_REGISTERS];
        self.front_from = i64::MAX;
        self.stale = false;
    }

    /// Whether `merged` answers for the window starting at `start`.
    pub(super) fn is_current(&self, start: i64) -> bool {
        self.start == start && !self.stale
    }

    fn registers(&self) -> [u8; HLL_REGISTERS] {
        let mut regs = self.front;
        if let Some((_, back)) = self.back.get(self.first) {
            hll_merge(&mut regs, back);
        }
        regs
    }

    fn rebuild(&mut self, start: i64, cur: i64, heads: &[(i64, f64)], regs: &VecDeque<PaneRegs>, nd: usize, d: usize) {
        let lo = heads.partition_point(|h| h.0 < start);
        let mut hi = heads.partition_point(|h| h.0 <= cur).max(lo);
        self.front = [0; HLL_REGISTERS];
        self.front_from = i64::MAX;
        if hi > lo && heads[hi - 1].0 == cur {
            hi -= 1;
            self.front = regs[hi * nd + d].to_dense();
            self.front_from = cur;
        }
        self.back.clear();
        self.back.resize(hi - lo, (0, [0; HLL_REGISTERS]));
        self.first = 0;
        let mut acc = [0u8; HLL_REGISTERS];
        for i in (lo..hi).rev() {
            regs[i * nd + d].merge_into(&mut acc);
            self.back[i - lo] = (heads[i].0, acc);
        }
        self.stale = false;
    }

    /// Brings the window to `[start, cur]` after panes slid out.
    #[inline]
    pub(super) fn advance(&mut self, start: i64, cur: i64, heads: &[(i64, f64)], regs: &VecDeque<PaneRegs>, nd: usize, d: usize) {
        let first = self.first;
        while self.first < self.back.len() && self.back[self.first].0 < start {
            self.first += 1;
        }
        let rebuild = self.stale || self.front_from < start;
        if rebuild {
            self.rebuild(start, cur, heads, regs, nd, d);
        }
        if rebuild || self.first != first {
            let regs = self.registers();
            self.merged.set_regs(&regs);
        }
        self.start = start;
    }

    /// Adds hash `h` of an event in pane `p`, inside the window.
    #[inline]
    pub(super) fn add(&mut self, p: i64, h: u64) {
        self.merged.add(h);
        let from = self.first.min(self.back.len());
        let back = &mut self.back[from..];
        if back.last().is_none_or(|b| p > b.0) {
            hll_add(&mut self.front, h);
            self.front_from = self.front_from.min(p);
            return;
        }
        match back.binary_search_by_key(&p, |b| b.0) {
            Ok(j) => {
                // Pane p and every older back pane's suffix include it; those are
                // non-increasing going newer, so stop at the first already as high.
                let (idx, rank) = hll_slot(h);
                for b in back[..=j].iter_mut().rev() {
                    if b.1[idx] >= rank {
                        break;
                    }
                    b.1[idx] = rank;
                }
            }
            // A new pane among the back's: rare (out of order); rebuilt on next need.
            Err(_) => self.stale = true,
        }
    }
}
