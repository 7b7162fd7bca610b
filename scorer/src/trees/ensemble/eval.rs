//! The hand-tuned evaluation: rows in blocks, walked through each tree in lockstep lanes
//! with unchecked loads. What it must compute is what `reference` computes (the plain
//! walk over the ONNX arrays), which the property tests check.

use super::layout::{Ensemble, Label, Node, Payload};
use super::real::Real;
use crate::trees::attrs::Aggregate;

/// Rows (or, below that many rows, trees) walked in lockstep: independent load chains
/// the CPU overlaps.
const LANES: usize = 8;
/// Rows evaluated together, tree by tree: the block's scores stay in L1.
pub const BLOCK: usize = 64;

impl<T: Real> Ensemble<T> {
    /// Scores `n` rows of `x` (row-major, `cols >= n_features` columns): writes
    /// `n × n_outputs` values to `z` and, for a classifier, one label per row.
    pub fn eval(&self, x: &[T], cols: usize, z: &mut [T], labels: &mut [Label]) -> Result<(), String> {
        if cols < self.n_features {
            return Err(format!("the trees read feature {} but the input has {cols} columns", self.n_features - 1));
        }
        let n = x.len().checked_div(cols).unwrap_or(0);
        let k = self.n_outputs;
        if z.len() < n * k || (self.classifier && labels.len() < n) {
            return Err(format!("output buffers too small for {n} rows"));
        }
        let block_rows = BLOCK.min(n.max(1));
        let mut scores = vec![T::ZERO; block_rows * k];
        let mut seen = vec![false; block_rows * k];
        let nan_copy = self.nan_copy;
        let nf = self.n_features;
        // Rows with a NaN-as-minus-infinity copy after them, when some node reads it.
        let mut copy = if nan_copy { vec![T::ZERO; block_rows * 2 * nf] } else { Vec::new() };
        let mut start = 0;
        while start < n {
            let rows = (n - start).min(BLOCK);
            scores[..rows * k].fill(T::ZERO);
            if let Some(always) = &self.always_seen {
                for r in 0..rows {
                    seen[r * k..(r + 1) * k].copy_from_slice(always);
                }
            } else {
                seen[..rows * k].fill(false);
            }
            let (block, stride) = if nan_copy {
                for r in 0..rows {
                    let src = &x[(start + r) * cols..(start + r) * cols + nf];
                    let dst = &mut copy[r * 2 * nf..(r + 1) * 2 * nf];
                    dst[..nf].copy_from_slice(src);
                    for (d, &v) in dst[nf..].iter_mut().zip(src) {
                        *d = if v.is_nan() { T::NEG_INFINITY } else { v };
                    }
                }
                (&copy[..rows * 2 * nf], 2 * nf)
            } else {
                (&x[start * cols..(start + rows) * cols], cols)
            };
            self.block(block, stride, rows, &mut scores, &mut seen);
            for r in 0..rows {
                let s = &mut scores[r * k..(r + 1) * k];
                let h = &mut seen[r * k..(r + 1) * k];
                let out = &mut z[(start + r) * k..(start + r + 1) * k];
                if self.classifier {
                    labels[start + r] = self.finalize_classifier(s, h, out);
                } else {
                    self.finalize_regressor(s, h, out);
                }
            }
            start += rows;
        }
        Ok(())
    }

    /// One block's scores, tree by tree in onnxruntime's order.
    fn block(&self, block: &[T], stride: usize, rows: usize, scores: &mut [T], seen: &mut [bool]) {
        let k = self.n_outputs;
        if rows < LANES {
            // Too few rows to fill the lanes: each row walks LANES trees in lockstep
            // instead (weights still added in tree order).
            for r in 0..rows {
                let x = &block[r * stride..];
                let s = &mut scores[r * k..(r + 1) * k];
                let h = &mut seen[r * k..(r + 1) * k];
                let mut t = 0;
                while t < self.roots.len() {
                    let count = (self.roots.len() - t).min(LANES);
                    let found = self.walk_trees(t, count, x);
                    for (i, &leaf) in found[..count].iter().enumerate() {
                        self.add_leaf(t + i, leaf, s, h);
                    }
                    t += count;
                }
            }
            return;
        }
        match (&self.payload, self.aggregate) {
            (Payload::Inline { tree_output }, Aggregate::Sum | Aggregate::Average) => {
                for (t, &o) in tree_output.iter().enumerate() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        // SAFETY: r < rows, o < k (checked at build), leaf is a node index.
                        unsafe { *scores.get_unchecked_mut(r * k + o as usize) += self.node(leaf).threshold }
                    });
                }
            }
            (Payload::Dense { values }, Aggregate::Sum | Aggregate::Average) => {
                for t in 0..self.roots.len() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        let i = self.node(leaf).children[1] as usize;
                        let (s, v) = (&mut scores[r * k..(r + 1) * k], &values[i * k..(i + 1) * k]);
                        for (s, &v) in s.iter_mut().zip(v) {
                            *s += v;
                        }
                    });
                }
            }
            (Payload::Sparse { start, weights }, Aggregate::Sum | Aggregate::Average) => {
                for t in 0..self.roots.len() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        let i = self.node(leaf).children[1] as usize;
                        for &(o, w) in &weights[start[i] as usize..start[i + 1] as usize] {
                            let at = r * k + o as usize;
                            scores[at] += w;
                            seen[at] = true;
                        }
                    });
                }
            }
            _ => {
                for t in 0..self.roots.len() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        self.add_leaf(t, leaf, &mut scores[r * k..(r + 1) * k], &mut seen[r * k..(r + 1) * k]);
                    });
                }
            }
        }
    }

    #[inline(always)]
    fn node(&self, i: u32) -> &Node<T> {
        // SAFETY: node indices come from `build`, which only writes indices of pushed nodes.
        unsafe { self.nodes.get_unchecked(i as usize) }
    }

    /// Walks the rows of a block through tree `t`, `LANES` rows in lockstep, and gives
    /// each row's leaf to `leaf(row, node)`. A last group of fewer rows fills its spare
    /// lanes with its last row (walked, not reported): overlapped walks beat one
    /// dependent chain per row.
    #[inline(always)]
    fn walk_rows(&self, t: usize, block: &[T], stride: usize, rows: usize, mut leaf: impl FnMut(usize, u32)) {
        let root = self.roots[t];
        let (depth, sure) = (self.depths[t], self.min_depths[t]);
        let nodes = self.nodes.as_ptr();
        let mut r = 0;
        while r < rows {
            let x: [*const T; LANES] = std::array::from_fn(|g| block[(r + g).min(rows - 1) * stride..].as_ptr());
            let mut idx = [root; LANES];
            // Every row takes the shortest path's steps; past them, stop as soon as no
            // lane moves (all stand on leaves: a branch never steps to itself).
            for _ in 0..sure {
                for g in 0..LANES {
                    // SAFETY: the block holds `rows` rows of `stride >= n_features` (or
                    // 2 × n_features for the NaN copy) slots; keys index inside a row.
                    idx[g] = unsafe { step(nodes, idx[g], x[g]) };
                }
            }
            for _ in sure..depth {
                let mut moved = 0;
                for g in 0..LANES {
                    // SAFETY: as above.
                    let next = unsafe { step(nodes, idx[g], x[g]) };
                    moved |= next ^ idx[g];
                    idx[g] = next;
                }
                if moved == 0 {
                    break;
                }
            }
            for (g, &i) in idx.iter().enumerate().take(rows - r) {
                leaf(r + g, i);
            }
            r += LANES;
        }
    }

    /// The leaves one row `x` reaches in trees `first..first + count` (count <= LANES),
    /// walked in lockstep.
    #[inline(always)]
    fn walk_trees(&self, first: usize, count: usize, x: &[T]) -> [u32; LANES] {
        let mut idx = [self.roots[first]; LANES];
        idx[..count].copy_from_slice(&self.roots[first..first + count]);
        let depth = self.depths[first..first + count].iter().copied().max().unwrap_or(0);
        let sure = self.min_depths[first..first + count].iter().copied().min().unwrap_or(0);
        let nodes = self.nodes.as_ptr();
        let x = x.as_ptr();
        for _ in 0..sure {
            for i in idx.iter_mut() {
                // SAFETY: as in `walk_rows`.
                *i = unsafe { step(nodes, *i, x) };
            }
        }
        for _ in sure..depth {
            let mut moved = 0;
            for i in idx.iter_mut() {
                // SAFETY: as in `walk_rows`.
                let next = unsafe { step(nodes, *i, x) };
                moved |= next ^ *i;
                *i = next;
            }
            if moved == 0 {
                break;
            }
        }
        idx
    }

    /// Adds (or, for MIN/MAX, folds) the weights of tree `t`'s leaf `leaf` into one
    /// row's scores.
    #[inline(always)]
    fn add_leaf(&self, t: usize, leaf: u32, s: &mut [T], h: &mut [bool]) {
        let node = self.node(leaf);
        let mut fold = |o: usize, w: T| {
            match self.aggregate {
                Aggregate::Sum | Aggregate::Average => s[o] += w,
                Aggregate::Min => s[o] = if !h[o] || w < s[o] { w } else { s[o] },
                Aggregate::Max => s[o] = if !h[o] || w > s[o] { w } else { s[o] },
            }
            h[o] = true;
        };
        match &self.payload {
            Payload::Inline { tree_output } => fold(tree_output[t] as usize, node.threshold),
            Payload::Dense { values } => {
                let i = node.children[1] as usize;
                let k = self.n_outputs;
                for (o, &w) in values[i * k..(i + 1) * k].iter().enumerate() {
                    fold(o, w);
                }
            }
            Payload::Sparse { start, weights } => {
                let i = node.children[1] as usize;
                for &(o, w) in &weights[start[i] as usize..start[i + 1] as usize] {
                    fold(o as usize, w);
                }
            }
        }
    }
}

/// One step down a tree (a leaf steps to itself).
///
/// # Safety
/// `i` is a node index of `nodes`, and `x` has a slot at every key of the ensemble.
#[inline(always)]
unsafe fn step<T: Real>(nodes: *const Node<T>, i: u32, x: *const T) -> u32 {
    // SAFETY: the caller's contract.
    unsafe {
        let node = &*nodes.add(i as usize);
        let v = *x.add(node.key as usize);
        node.children[usize::from(v <= node.threshold)]
    }
}
