//! One entity's state: applying an event, pruning, switching distinct modes, answering.

use std::collections::VecDeque;
use std::sync::Arc;

// Small per-entity lists (per numeric field, per window, per distinct field) are kept
// inline: a quiet entity's state is read cold from memory on each of its events, and every
// separate allocation it points to is another cache miss.
use smallvec::{SmallVec, smallvec};

use weir_schemas::store::{Applied, Observation, ObservationResult};

use crate::hint::{prefetch, prefetch_address};

use super::answers::{ValueOp, WindowAnswers};
use super::distinct::{DistinctIndex, Newest, Occurrences, SCRATCH, exact_distinct};
use super::fences::intern_topic;
use super::hll::{HLL_REGISTERS, PaneRegs, hll_estimate, hll_slot};
use super::panes::{EMPTY_STAT, Window, slide, window_bit};
use super::spec::{AggKind, EntityDef, WindowSpec};
use super::window_sketch::WindowSketch;

/// One entity's state: its windows, recent times, distinct occurrences and replay fences.
#[derive(Debug, Clone)]
pub struct EntityState {
    pub(super) max_t: i64,
    pub(super) windows: SmallVec<[Window; 4]>,
    /// Applied event times within the lateness behind `max_t`, ascending
    /// (`seconds_since_last` only).
    pub(super) times: VecDeque<i64>,
    /// The largest applied time that fell out of `times` (`i64::MIN` if none).
    pub(super) older: i64,
    /// Per distinct field: in sketch mode?
    pub(super) sketched: SmallVec<[bool; 2]>,
    /// Per distinct field: (time, hash), ascending by time (equal times in arrival order).
    /// In exact mode every occurrence inside some window's ring; in sketch mode a shadow
    /// that is complete for times after `exact_from` and at most the limit long, so the
    /// field can go back to exact once the sketched data has left every ring.
    pub(super) occurrences: SmallVec<[Occurrences; 1]>,
    /// Per distinct field in sketch mode: the shadow occurrences hold every occurrence
    /// with a time after this one. `i64::MIN` in exact mode.
    pub(super) exact_from: SmallVec<[i64; 2]>,
    /// Cache per distinct field in exact mode: the counts as of each window's newest pane.
    pub(super) distinct_index: SmallVec<[DistinctIndex; 1]>,
    /// Every cache is filled for the current panes (set by `fill_caches`, cleared by any
    /// change): the values of a newest pane need no check.
    pub(super) warm: bool,
    /// Highest applied offset per (topic, partition): the replay fence. A short list, not
    /// a map: an entity is almost always fed by one partition.
    /// Topics are interned ([`intern_topic`]): comparing one on every event reads memory
    /// every entity shares, not a string of this entity's own (a cache miss per event).
    pub(super) fences: SmallVec<[(Arc<str>, i32, i64); 1]>,
}

impl PartialEq for EntityState {
    /// Equal when their encodings are (caches aside).
    fn eq(&self, other: &Self) -> bool {
        self.max_t == other.max_t
            && self.times == other.times
            && self.older == other.older
            && self.sketched == other.sketched
            && self.occurrences == other.occurrences
            && self.exact_from == other.exact_from
            && self.fences() == other.fences()
            && self.windows.len() == other.windows.len()
            && self.windows.iter().zip(&other.windows).all(|(a, b)| {
                a.cur == b.cur
                    && a.count.to_bits() == b.count.to_bits()
                    && a.num.iter().zip(&b.num).all(|(x, y)| x.n.to_bits() == y.n.to_bits() && x.sum.to_bits() == y.sum.to_bits())
                    && a.heads == b.heads
                    && a.stats == b.stats
                    && a.regs == b.regs
            })
    }
}

impl EntityState {
    pub fn new(def: &EntityDef) -> Self {
        EntityState {
            max_t: i64::MIN,
            windows: def.windows.iter().map(|_| Window::new(def.numeric.len())).collect(),
            times: VecDeque::new(),
            older: i64::MIN,
            sketched: smallvec![false; def.distinct],
            occurrences: smallvec![Occurrences::default(); def.distinct],
            exact_from: smallvec![i64::MIN; def.distinct],
            distinct_index: smallvec![DistinctIndex::default(); def.distinct],
            warm: false,
            fences: SmallVec::new(),
        }
    }

    /// Asks the CPU to start loading the memory `obs`, an event of this entity, will touch
    /// (its newest panes and the slots after them, its oldest, the merged sketches'
    /// registers its hash sets, the newest occurrences and its value's entry in the
    /// distinct index), without waiting for it. A store prefetches a batch's states some
    /// events before applying them, so that their cache misses overlap instead of
    /// following one another (a quiet entity's state is cold on each of its events). Reads
    /// the state's own struct: call [`EntityState::prefetch_lines`] some time before.
    pub fn prefetch(&self, obs: &Observation) {
        for w in &self.windows {
            prefetch(w.heads.last());
            prefetch(w.stats.last());
            // A new newest pane goes into the slots after them.
            prefetch_address(w.heads.as_ptr().wrapping_add(w.heads.len()).cast());
            prefetch_address(w.stats.as_ptr().wrapping_add(w.stats.len()).cast());
            // A quiet entity's event slides its windows, which reads their oldest panes.
            prefetch(w.heads.first());
            prefetch(w.stats.first());
            prefetch(w.regs.back());
        }
        for (d, (occ, index)) in self.occurrences.iter().zip(&self.distinct_index).enumerate() {
            prefetch(occ.last());
            // The occurrences at the windows' starts, which sliding windows move past.
            for &start in &index.start {
                prefetch(start.checked_sub(index.base).and_then(|i| occ.get(i as usize)));
            }
            let Some(Some(h)) = obs.distinct.get(d) else { continue };
            if self.is_sketched(d) {
                let (register, _) = hll_slot(*h);
                let nd = self.occurrences.len();
                for w in &self.windows {
                    // The newest pane's registers, if a full set on the heap.
                    if let Some(PaneRegs::Dense(regs)) = w.regs.len().checked_sub(nd - d).and_then(|i| w.regs.get(i)) {
                        prefetch(Some(&regs[register]));
                    }
                    if let Some(Some(c)) = w.sketch.get(d) {
                        prefetch(Some(&c.merged.sum));
                        prefetch(Some(&c.first));
                        prefetch(Some(&c.merged.regs[register]));
                        prefetch(Some(&c.front[register]));
                        prefetch(c.back.last());
                        // A slide moves past the back's oldest entries, reading them.
                        prefetch(c.back.get(c.first));
                    }
                }
            } else if let Newest::Many(table) = &index.newest {
                table.prefetch(*h);
            }
        }
    }

    /// Asks the CPU to start loading every cache line of this state's own struct (not
    /// what its lists point to: see [`EntityState::prefetch`]).
    pub fn prefetch_lines(&self) {
        let start = (self as *const Self).cast::<u8>();
        for offset in (0..std::mem::size_of::<Self>()).step_by(64) {
            prefetch_address(start.wrapping_add(offset));
        }
    }

    pub fn max_event_time(&self) -> Option<i64> {
        (self.max_t != i64::MIN).then_some(self.max_t)
    }

    /// Whether distinct field `d` has switched to sketches.
    pub fn is_sketched(&self, d: usize) -> bool {
        self.sketched.get(d).copied().unwrap_or(false)
    }

    /// Applies one observation (unless fenced or late) and returns the values as of its
    /// event time. `floor` is its partition's watermark (events below it are late), if any.
    pub fn apply(&mut self, def: &EntityDef, obs: &Observation, floor: Option<i64>) -> ObservationResult {
        let t = obs.event_time_ms;
        let pos = &obs.position;
        let fence = self.fences.iter_mut().find(|(topic, partition, _)| *partition == pos.partition && **topic == *pos.topic);
        let applied = match fence {
            Some((_, _, up_to)) if pos.offset <= *up_to => Applied::Replayed,
            fence => {
                match fence {
                    Some((_, _, up_to)) => *up_to = pos.offset,
                    None => self.fences.push((intern_topic(&pos.topic), pos.partition, pos.offset)),
                }
                if self.is_late(def, t, floor) {
                    Applied::Late
                } else {
                    let stale = self.add(def, obs);
                    self.fill_caches(def, stale);
                    Applied::Applied
                }
            }
        };
        ObservationResult { applied, values: self.values_at(def, t) }
    }

    /// What [`EntityState::apply`] would answer for `obs` without its fence or a
    /// partition watermark, leaving this state as it is.
    pub fn preview(&self, def: &EntityDef, obs: &Observation) -> ObservationResult {
        let t = obs.event_time_ms;
        if self.is_late(def, t, None) {
            return ObservationResult { applied: Applied::Late, values: self.values_at(def, t) };
        }
        let mut copy = self.clone();
        copy.add(def, obs);
        ObservationResult { applied: Applied::Applied, values: copy.values_at(def, t) }
    }

    fn is_late(&self, def: &EntityDef, t: i64, floor: Option<i64>) -> bool {
        (self.max_t != i64::MIN && t < self.max_t.saturating_sub(def.lateness_ms)) || floor.is_some_and(|f| t < f)
    }

    /// Adds a non-late event. Returns the windows whose caches may be missing now (a
    /// [`window_bit`] mask): those the event slid or did not fall in the newest pane of.
    /// In a window whose newest pane it fell in, the merged sketches and extremes were
    /// updated in place and still answer, so [`EntityState::fill_caches`] can skip it.
    /// All windows if the caches were not all filled before, or a distinct field changed
    /// mode.
    fn add(&mut self, def: &EntityDef, obs: &Observation) -> u64 {
        let mut stale = if self.warm { 0 } else { u64::MAX };
        self.warm = false;
        let t = obs.event_time_ms;
        let nf = def.numeric.len();
        let nd = def.distinct;
        let any_sketched = self.sketched.iter().any(|&s| s);
        let mut slid = false;
        for (wi, (w, spec)) in self.windows.iter_mut().zip(&def.windows).enumerate() {
            let p = spec.pane_near(t, w.cur);
            if p != w.cur {
                stale |= window_bit(wi);
            }
            if p > w.cur {
                slide(w, spec, p, nf, nd);
                slid = true;
            }
            let at = match w.find(p) {
                Ok(i) => i,
                // The common case: a new newest pane.
                Err(i) if i == w.heads.len() => {
                    w.heads.push((p, 0.0));
                    for _ in 0..nf {
                        w.stats.push(EMPTY_STAT);
                    }
                    if any_sketched {
                        for _ in 0..nd {
                            w.regs.push_back(PaneRegs::default());
                        }
                    }
                    i
                }
                Err(i) => {
                    w.heads.insert(i, (p, 0.0));
                    for k in 0..nf {
                        w.stats.insert(i * nf + k, EMPTY_STAT);
                    }
                    if any_sketched {
                        for k in 0..nd {
                            w.regs.insert(i * nd + k, PaneRegs::default());
                        }
                    }
                    i
                }
            };
            let inside = p > w.cur - spec.panes;
            w.heads[at].1 += 1.0;
            if inside {
                w.count += 1.0;
            }
            for (k, v) in obs.values.iter().enumerate().take(nf) {
                let Some(x) = *v else { continue };
                let s = &mut w.stats[at * nf + k];
                s.n += 1.0;
                s.sum += x;
                s.min = s.min.min(x);
                s.max = s.max.max(x);
                if inside {
                    let f = &mut w.num[k];
                    if let Some((lo, hi)) = f.extremes() {
                        f.set_extremes(Some(if f.n == 0.0 { (x, x) } else { (lo.min(x), hi.max(x)) }));
                    }
                    f.n += 1.0;
                    f.sum += x;
                }
            }
            for (d, h) in obs.distinct.iter().enumerate().take(nd) {
                let Some(h) = *h else { continue };
                if self.sketched[d] {
                    w.regs[at * nd + d].add(h);
                    if inside && let Some(c) = &mut w.sketch[d] {
                        c.add(p, h);
                    }
                }
            }
        }
        if slid {
            for index in &mut self.distinct_index {
                index.panes_synced = false;
            }
        }
        if def.seconds_since_last {
            let i = self.times.partition_point(|&u| u <= t);
            self.times.insert(i, t);
        }
        for (d, h) in obs.distinct.iter().enumerate().take(nd) {
            if let Some(h) = *h {
                let occ = &mut self.occurrences[d];
                let i = occ.len() - occ.iter().rev().take_while(|o| o.0 > t).count();
                if i == occ.len() {
                    occ.push((t, h));
                } else {
                    // Out of order: the index's positions shift; rebuilt on next need.
                    occ.insert(i, (t, h));
                    self.distinct_index[d].valid = false;
                }
            }
        }
        if t > self.max_t {
            self.max_t = t;
        }
        if !self.prune(def) {
            stale = u64::MAX;
        }
        stale
    }

    /// Drops times and occurrences nothing can need any more; switches a distinct field
    /// over its limit to sketches, and a sketched one back to exact once every ring holds
    /// only times its shadow occurrences cover. Returns false if some field switched.
    fn prune(&mut self, def: &EntityDef) -> bool {
        let keep_from = self.max_t.saturating_sub(def.lateness_ms);
        while let Some(&u) = self.times.front() {
            if u >= keep_from {
                break;
            }
            self.older = self.older.max(u);
            self.times.pop_front();
        }
        if def.distinct == 0 {
            return true;
        }
        // The oldest time still inside some window's kept panes.
        let horizon = self
            .windows
            .iter()
            .zip(&def.windows)
            .map(|(w, s)| (w.cur - s.slots + 1).saturating_mul(s.pane_ms))
            .min()
            .unwrap_or(i64::MAX);
        let mut kept = true;
        for d in 0..def.distinct {
            let occ = &mut self.occurrences[d];
            // Usually none or one: a scan from the oldest, not a binary search.
            let drop = occ.iter().take_while(|o| o.0 < horizon).count();
            if drop > 0 {
                self.distinct_index[d].drop_front(&occ[..drop]);
                occ.drop_front(drop);
            }
            let over = occ.len() > def.distinct_exact_limit;
            match (self.sketched[d], over) {
                (false, true) => {
                    self.switch_to_sketch(def, d);
                    kept = false;
                }
                (true, true) => {
                    // The shadow overflowed: start it again from here.
                    occ.clear();
                    self.exact_from[d] = self.max_t;
                }
                (true, false) if horizon > self.exact_from[d] => {
                    self.switch_to_exact(def, d);
                    kept = false;
                }
                _ => {}
            }
        }
        kept
    }

    /// Switches sketched field `d` back to exact counts from its shadow occurrences (which
    /// cover every time still in a ring).
    fn switch_to_exact(&mut self, def: &EntityDef, d: usize) {
        let nd = def.distinct;
        self.sketched[d] = false;
        self.exact_from[d] = i64::MIN;
        self.distinct_index[d].valid = false;
        let none_sketched = !self.sketched.iter().any(|&s| s);
        for w in &mut self.windows {
            if none_sketched {
                w.sketch = Vec::new();
                w.regs = VecDeque::new();
            } else {
                w.sketch[d] = None;
                for i in 0..w.heads.len() {
                    w.regs[i * nd + d] = PaneRegs::default();
                }
            }
        }
    }

    /// Switches distinct field `d` to per-pane sketches, built from its occurrences.
    fn switch_to_sketch(&mut self, def: &EntityDef, d: usize) {
        let nd = def.distinct;
        let first = !self.sketched.iter().any(|&s| s);
        let occ = std::mem::take(&mut self.occurrences[d]);
        // The shadow starts empty: complete for what comes after the newest time so far.
        self.exact_from[d] = self.max_t;
        self.distinct_index[d] = DistinctIndex::default();
        for (w, spec) in self.windows.iter_mut().zip(&def.windows) {
            if first {
                w.regs = std::iter::repeat_n(PaneRegs::default(), w.heads.len() * nd).collect();
                w.sketch = vec![None; nd];
            }
            for &(t, h) in occ.iter() {
                if let Ok(i) = w.find(spec.pane_of(t)) {
                    w.regs[i * nd + d].add(h);
                }
            }
            w.sketch[d] = None;
        }
        self.sketched[d] = true;
    }

    /// Recomputes the missing caches of the current windows in `stale` (a [`window_bit`]
    /// mask; the others' are known to be filled) and syncs the distinct indexes.
    fn fill_caches(&mut self, def: &EntityDef, stale: u64) {
        let nf = def.numeric.len();
        let nd = def.distinct;
        for (wi, (w, spec)) in self.windows.iter_mut().zip(&def.windows).enumerate() {
            if stale & window_bit(wi) == 0 {
                continue;
            }
            // The current window's panes, found on first need.
            let mut r: Option<std::ops::Range<usize>> = None;
            let mut r = |w: &Window| r.get_or_insert_with(|| w.range(w.cur - spec.panes + 1, w.cur)).clone();
            for k in 0..nf {
                if def.extremes[k] && w.num[k].extremes().is_none() {
                    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                    for i in r(w) {
                        let s = &w.stats[i * nf + k];
                        lo = lo.min(s.min);
                        hi = hi.max(s.max);
                    }
                    w.num[k].set_extremes(Some((lo, hi)));
                }
            }
            let start = w.cur - spec.panes + 1;
            for d in 0..nd {
                if !self.sketched[d] {
                    continue;
                }
                match &mut w.sketch[d] {
                    Some(c) if c.is_current(start) => {}
                    Some(c) => c.advance(start, w.cur, &w.heads, &w.regs, nd, d),
                    None => w.sketch[d] = Some(WindowSketch::build(start, w.cur, &w.heads, &w.regs, nd, d)),
                }
            }
        }
        for d in 0..nd {
            if !self.sketched[d] {
                self.distinct_index[d].sync(&self.occurrences[d], &self.windows, &def.windows);
            }
        }
        self.warm = true;
    }

    /// The values as of event time `t` (see [`EntityDef`] for the order).
    pub fn values_at(&self, def: &EntityDef, t: i64) -> Vec<f64> {
        let mut out = Vec::with_capacity(def.names.len());
        // Exact distinct counts per field, all windows at once, counted on first use (when
        // the incremental index cannot answer).
        let mut exact: Vec<Vec<f64>> = Vec::new();
        let nf = def.numeric.len();
        let nd = def.distinct;
        // Per window: count, and (n, sum) of a numeric field, as of t (in pane pt).
        let totals = |w: &Window, spec: &WindowSpec, pt: i64, field: Option<usize>| -> (f64, f64) {
            let get = |i: usize| match field {
                None => (w.heads[i].1, 0.0),
                Some(k) => (w.stats[i * nf + k].n, w.stats[i * nf + k].sum),
            };
            if pt == w.cur {
                return match field {
                    None => (w.count, 0.0),
                    Some(k) => (w.num[k].n, w.num[k].sum),
                };
            }
            let (mut n, mut s);
            if pt > w.cur || w.cur - pt >= spec.panes {
                (n, s) = (0.0, 0.0);
                for i in w.range(pt - spec.panes + 1, pt) {
                    let (a, b) = get(i);
                    n += a;
                    s += b;
                }
            } else {
                (n, s) = match field {
                    None => (w.count, 0.0),
                    Some(k) => (w.num[k].n, w.num[k].sum),
                };
                for i in w.range(pt + 1, w.cur) {
                    let (a, b) = get(i);
                    n -= a;
                    s -= b;
                }
                for i in w.range(pt - spec.panes + 1, w.cur - spec.panes) {
                    let (a, b) = get(i);
                    n += a;
                    s += b;
                }
            }
            if n == 0.0 {
                s = 0.0;
            }
            (n, s)
        };
        for (wi, (w, spec)) in self.windows.iter().zip(&def.windows).enumerate() {
            // The newest event is in every window's newest pane (no division needed).
            let pt = if t == self.max_t { w.cur } else { spec.pane_of(t) };
            if pt == w.cur && self.current_window_values(def, wi, &mut out) {
                continue;
            }
            for a in &def.aggregations {
                let v = match a.kind {
                    AggKind::Count => totals(w, spec, pt, None).0,
                    AggKind::Sum => totals(w, spec, pt, Some(a.field)).1,
                    AggKind::Mean => {
                        let (n, s) = totals(w, spec, pt, Some(a.field));
                        if n > 0.0 { s / n } else { 0.0 }
                    }
                    AggKind::Min | AggKind::Max => {
                        let k = a.field;
                        let (lo, hi) = match w.num[k].extremes() {
                            Some(c) if pt == w.cur => c,
                            _ => {
                                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                                for i in w.range(pt - spec.panes + 1, pt) {
                                    let s = &w.stats[i * nf + k];
                                    lo = lo.min(s.min);
                                    hi = hi.max(s.max);
                                }
                                (lo, hi)
                            }
                        };
                        let v = if a.kind == AggKind::Min { lo } else { hi };
                        if v.is_finite() { v } else { 0.0 }
                    }
                    AggKind::Distinct => {
                        let d = a.field;
                        if self.sketched[d] {
                            match &w.sketch[d] {
                                Some(c) if pt == w.cur && c.is_current(w.cur - spec.panes + 1) => c.merged.estimate(),
                                _ => {
                                    let mut regs = [0u8; HLL_REGISTERS];
                                    for i in w.range(pt - spec.panes + 1, pt) {
                                        w.regs[i * nd + d].merge_into(&mut regs);
                                    }
                                    hll_estimate(&regs)
                                }
                            }
                        } else if pt == w.cur && let Some(n) = self.distinct_index[d].count(wi, self.occurrences[d].len()) {
                            n
                        } else {
                            if exact.is_empty() {
                                exact = vec![Vec::new(); def.distinct];
                            }
                            if exact[d].is_empty() {
                                exact[d] = SCRATCH.with(|set| exact_distinct(&self.occurrences[d], &def.windows, t, &mut set.borrow_mut()));
                            }
                            exact[d][wi]
                        }
                    }
                };
                out.push(v);
            }
        }
        if def.seconds_since_last {
            let i = self.times.partition_point(|&u| u < t);
            let before = if i > 0 { self.times[i - 1] } else { self.older };
            out.push(if before != i64::MIN && before < t { (t - before) as f64 / 1000.0 } else { -1.0 });
        }
        for &(k, wi) in &def.extra_means {
            let spec = &def.windows[wi];
            let w = &self.windows[wi];
            let (n, s) = totals(w, spec, if t == self.max_t { w.cur } else { spec.pane_of(t) }, Some(k));
            out.push(if n > 0.0 { s / n } else { 0.0 });
        }
        out
    }

    /// The fast path of [`EntityState::values_at`] for a time in window `wi`'s newest pane:
    /// every value straight from the running totals and caches, through [`WindowAnswers`].
    /// Pushes the window's values and returns true, or pushes nothing and returns false
    /// when some cache is missing or the kind is too wide for `WindowAnswers` (then
    /// `values_at` evaluates the aggregations one by one).
    fn current_window_values(&self, def: &EntityDef, wi: usize, out: &mut Vec<f64>) -> bool {
        if def.answer_slots.is_empty() {
            return false;
        }
        let w = &self.windows[wi];
        let start = w.cur - def.windows[wi].panes + 1;
        let ready = self.warm
            || def.value_ops.iter().all(|op| match *op {
                ValueOp::Min(k) | ValueOp::Max(k) => w.num[k].extremes().is_some(),
                ValueOp::Distinct(d) if self.sketched[d] => w.sketch[d].as_ref().is_some_and(|c| c.is_current(start)),
                ValueOp::Distinct(d) => self.distinct_index[d].count(wi, self.occurrences[d].len()).is_some(),
                _ => true,
            });
        if !ready {
            return false;
        }
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let mut answers = WindowAnswers([0.0; WindowAnswers::LEN]);
        let (count, rest) = answers.0.split_at_mut(1);
        count[0] = w.count;
        let (numeric, distinct) = rest.split_at_mut(4 * def.numeric.len());
        for (slots, f) in numeric.chunks_exact_mut(4).zip(w.num.iter()) {
            let (n, s) = (f.n, f.sum);
            // Extremes are known wherever a min or max is asked for (`ready`); elsewhere
            // their slots are not gathered, and an unknown NaN would read as 0 anyway.
            slots.copy_from_slice(&[s, if n > 0.0 { s / n } else { 0.0 }, finite(f.lo), finite(f.hi)]);
        }
        for (d, slot) in distinct.iter_mut().take(def.distinct).enumerate() {
            *slot = if self.sketched[d] {
                w.sketch[d].as_ref().map_or(0.0, |c| c.merged.estimate())
            } else {
                self.distinct_index[d].count(wi, self.occurrences[d].len()).unwrap_or(0.0)
            };
        }
        out.extend(def.answer_slots.iter().map(|&slot| answers.get(slot)));
        true
    }

    /// Values as of the newest event, or `None` before the first.
    pub fn current_values(&self, def: &EntityDef) -> Option<Vec<f64>> {
        self.max_event_time().map(|t| self.values_at(def, t))
    }

    /// The replay fences, sorted: (topic, partition, highest applied offset).
    pub fn fences(&self) -> Vec<(String, i32, i64)> {
        let mut fences: Vec<(String, i32, i64)> = self.fences.iter().map(|(t, p, o)| (t.to_string(), *p, *o)).collect();
        fences.sort();
        fences
    }
}
