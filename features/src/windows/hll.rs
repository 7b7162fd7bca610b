//! HyperLogLog: the distinct hash, registers, a pane's registers and a merged sketch.

use smallvec::SmallVec;

/// Registers of a distinct sketch.
pub const HLL_REGISTERS: usize = 256;

/// The hash of a distinct value: FNV-1a 64 over its bytes, then murmur3's `fmix64` so
/// that every bit is well mixed (HyperLogLog reads the top ones). Fixed forever: states
/// and sketches written by one process are read by others.
pub fn distinct_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Where a hash goes in HyperLogLog registers: (register, rank of the first 1 bit).
pub(super) fn hll_slot(h: u64) -> (usize, u8) {
    ((h >> 56) as usize, ((h << 8) | 0x80).leading_zeros() as u8 + 1)
}

/// Adds a hash to HyperLogLog registers.
pub(super) fn hll_add(regs: &mut [u8; HLL_REGISTERS], h: u64) {
    let (idx, rank) = hll_slot(h);
    regs[idx] = regs[idx].max(rank);
}

/// Register-wise max. Not inlined: on its own it compiles to SIMD byte-max instructions,
/// while inlined into a loop over panes the compiler may leave it scalar.
#[inline(never)]
pub(super) fn hll_merge(into: &mut [u8; HLL_REGISTERS], from: &[u8; HLL_REGISTERS]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = (*a).max(*b);
    }
}

/// Set registers a pane keeps as a list before it switches to all 256.
pub(super) const PANE_SPARSE_MAX: usize = 12;

/// One pane's HyperLogLog registers: while few are set (most panes hold a handful of
/// values) a short list of (register, rank) sorted by register, kept inline; once more are
/// set, all 256. A new pane then costs a few bytes instead of 256 zeroed ones, and an
/// entity's panes a fraction of the memory (its state is read cold on most of its
/// events). Only the representation differs: every operation answers as the 256
/// registers would, and the state encoding is the same.
#[derive(Debug, Clone)]
pub(super) enum PaneRegs {
    Sparse(SmallVec<[(u8, u8); PANE_SPARSE_MAX]>),
    Dense(Box<[u8; HLL_REGISTERS]>),
}

impl Default for PaneRegs {
    fn default() -> Self {
        PaneRegs::Sparse(SmallVec::new())
    }
}

impl PartialEq for PaneRegs {
    fn eq(&self, other: &Self) -> bool {
        self.to_dense() == other.to_dense()
    }
}

impl PaneRegs {
    pub(super) fn from_dense(regs: &[u8; HLL_REGISTERS]) -> Self {
        let set = regs.iter().filter(|&&r| r != 0).count();
        if set <= PANE_SPARSE_MAX {
            PaneRegs::Sparse(regs.iter().enumerate().filter(|(_, r)| **r != 0).map(|(i, &r)| (i as u8, r)).collect())
        } else {
            PaneRegs::Dense(Box::new(*regs))
        }
    }

    pub(super) fn to_dense(&self) -> [u8; HLL_REGISTERS] {
        match self {
            PaneRegs::Sparse(set) => {
                let mut regs = [0; HLL_REGISTERS];
                for &(i, r) in set {
                    regs[usize::from(i)] = r;
                }
                regs
            }
            PaneRegs::Dense(regs) => **regs,
        }
    }

    pub(super) fn add(&mut self, h: u64) {
        let (idx, rank) = hll_slot(h);
        match self {
            PaneRegs::Dense(regs) => regs[idx] = regs[idx].max(rank),
            PaneRegs::Sparse(set) => match set.binary_search_by_key(&(idx as u8), |e| e.0) {
                Ok(j) => set[j].1 = set[j].1.max(rank),
                Err(_) if set.len() == PANE_SPARSE_MAX => {
                    let mut regs = Box::new(self.to_dense());
                    regs[idx] = rank;
                    *self = PaneRegs::Dense(regs);
                }
                Err(j) => set.insert(j, (idx as u8, rank)),
            },
        }
    }

    /// Register-wise max into `into`.
    pub(super) fn merge_into(&self, into: &mut [u8; HLL_REGISTERS]) {
        match self {
            PaneRegs::Sparse(set) => {
                for &(i, r) in set {
                    let a = &mut into[usize::from(i)];
                    *a = (*a).max(r);
                }
            }
            PaneRegs::Dense(regs) => hll_merge(into, regs),
        }
    }
}

/// `2^-r` in fixed point (`2^(64 - r)`) for every rank `r` a register can hold (at most
/// 57; 64 covers any byte after `min`): a sum of 256 terms is exact in a `u128` and does
/// not depend on the order it was added in.
const HLL_TERMS: [u128; 65] = {
    let mut t = [0u128; 65];
    let mut r = 0;
    while r < 65 {
        t[r] = 1u128 << (64 - r);
        r += 1;
    }
    t
};

fn hll_term(r: u8) -> u128 {
    HLL_TERMS[usize::from(r.min(64))]
}

/// The HyperLogLog estimate from the harmonic sum (fixed point, [`hll_term`]) and the
/// number of zero registers: linear counting below 2.5 m, rounded.
fn hll_estimate_from(sum: u128, zeros: u32) -> f64 {
    let m = HLL_REGISTERS as f64;
    // Scaling by a power of two is exact: the only rounding is the u128 -> f64 conversion.
    let harmonic = sum as f64 / 18_446_744_073_709_551_616.0;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let e = alpha * m * m / harmonic;
    let e = if e <= 2.5 * m && zeros > 0 { LINEAR_COUNTING[zeros.min(HLL_REGISTERS as u32) as usize] } else { e };
    e.round()
}

/// Linear counting's `m ln(m / zeros)` for every count of zero registers: the same
/// expression, computed once, so that an estimate costs no logarithm.
pub(super) static LINEAR_COUNTING: std::sync::LazyLock<[f64; HLL_REGISTERS + 1]> = std::sync::LazyLock::new(|| {
    let m = HLL_REGISTERS as f64;
    let mut table = [0.0; HLL_REGISTERS + 1];
    for (zeros, v) in table.iter_mut().enumerate().skip(1) {
        *v = m * (m / zeros as f64).ln();
    }
    table
});

/// The HyperLogLog estimate (256 registers, linear counting below 2.5 m), rounded.
pub fn hll_estimate(regs: &[u8; HLL_REGISTERS]) -> f64 {
    Sketch::from_regs(*regs).estimate()
}

/// Registers merged over a window, with their harmonic sum and zero count kept up to
/// date, so the estimate after a register changes costs O(1) instead of a pass over 256
/// registers, and equals a recount from the registers bit for bit.
#[derive(Debug, Clone)]
pub(super) struct Sketch {
    pub(super) regs: [u8; HLL_REGISTERS],
    pub(super) sum: u128,
    pub(super) zeros: u32,
    /// The estimate from `sum` and `zeros`, kept with them: read on every event, it
    /// changes only when a register does (and costs a logarithm to compute).
    pub(super) estimate: f64,
}

impl Sketch {
    pub(super) const EMPTY: Sketch = Sketch { regs: [0; HLL_REGISTERS], sum: (HLL_REGISTERS as u128) << 64, zeros: HLL_REGISTERS as u32, estimate: 0.0 };

    pub(super) fn from_regs(regs: [u8; HLL_REGISTERS]) -> Self {
        let sum = regs.iter().map(|&r| hll_term(r)).sum();
        let zeros = regs.iter().filter(|&&r| r == 0).count() as u32;
        Sketch { regs, sum, zeros, estimate: hll_estimate_from(sum, zeros) }
    }

    pub(super) fn add(&mut self, h: u64) {
        let (idx, rank) = hll_slot(h);
        let old = self.regs[idx];
        if old < rank {
            self.regs[idx] = rank;
            self.sum = self.sum - hll_term(old) + hll_term(rank);
            self.zeros -= (old == 0) as u32;
            self.estimate = hll_estimate_from(self.sum, self.zeros);
        }
    }

    pub(super) fn estimate(&self) -> f64 {
        self.estimate
    }
}

impl Sketch {
    /// Sets the registers to `new`, updating the harmonic sum and zero count only where a
    /// register changed (a pane sliding out changes a few of 256).
    #[inline]
    pub(super) fn set_regs(&mut self, new: &[u8; HLL_REGISTERS]) {
        let mut changed = false;
        for (old, new) in self.regs.chunks_exact_mut(16).zip(new.chunks_exact(16)) {
            let chunk = |c: &[u8]| u128::from_ne_bytes(c.try_into().unwrap_or([0; 16]));
            if chunk(old) == chunk(new) {
                continue;
            }
            changed = true;
            for (o, &n) in old.iter_mut().zip(new) {
                if *o != n {
                    self.sum = self.sum + hll_term(n) - hll_term(*o);
                    self.zeros = self.zeros + u32::from(n == 0) - u32::from(*o == 0);
                    *o = n;
                }
            }
        }
        if changed {
            self.estimate = hll_estimate_from(self.sum, self.zeros);
        }
    }
}

