//! Statistics computed exactly on two samples (or on two count vectors).
//!
//! These are the definitions: the golden tests compare them with scipy to 1e-9, and the
//! streaming versions in [`super::numeric`] and [`super::categorical`] are checked against
//! them. They allocate and sort, so they are for references, tests and offline reports,
//! not for the per-event path.
//!
//! Non-finite values (NaN, ±∞) are the caller's to filter: the streaming side counts them
//! as invalid and never passes them here.

/// Replacement for an empty bin's proportion in [`psi`], so that `ln(q / p)` stays finite.
///
/// Only proportions that are exactly zero are replaced (non-zero ones are left alone even
/// when smaller), which keeps PSI symmetric and 0 for identical count vectors. An empty bin
/// on one side against a proportion `q` on the other contributes `(q - ε)·ln(q / ε)`, about
/// `q·9.2` for ε = 1e-4: a bin that is empty in the reference but holds 5% of the current
/// window adds ≈ 0.46 on its own, well above the usual 0.25 alarm.
pub const PSI_EPSILON: f64 = 1e-4;

/// Interior edges of `bins` bins at the reference quantiles `1/bins, …, (bins-1)/bins`.
///
/// Quantiles are numpy's default (`method="linear"`, Hyndman–Fan type 7), computed with
/// numpy's exact arithmetic (`(n-1)·q`, then its two-sided lerp) so the edges are the same
/// floats numpy gives. Ties: equal consecutive quantiles are collapsed, so the edges are
/// strictly increasing and there may be fewer than `bins` bins (a constant reference has one
/// edge and two bins: below it, and at or above it). The sample need not be sorted; it must
/// be non-empty and finite.
pub fn quantile_edges(sample: &[f64], bins: usize) -> Vec<f64> {
    quantile_edges_sorted(&sorted(sample), bins)
}

pub(crate) fn quantile_edges_sorted(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
    if sorted.is_empty() {
        return edges;
    }
    for i in 1..bins {
        let q = i as f64 / bins as f64;
        let e = quantile_linear(sorted, q);
        if edges.last().is_none_or(|&last| e > last) {
            edges.push(e);
        }
    }
    edges
}

/// numpy's `quantile(sorted, q, method="linear")`, operation for operation.
fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n as f64 - 1.0) * q;
    let prev = virtual_index.floor();
    let (lo, hi) = if virtual_index >= (n - 1) as f64 {
        (n - 1, n - 1)
    } else if virtual_index < 0.0 {
        (0, 0)
    } else {
        (prev as usize, prev as usize + 1)
    };
    let gamma = virtual_index - prev;
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if gamma >= 0.5 { b - diff * (1.0 - gamma) } else { a + diff * gamma }
}

/// The bin of `x` given strictly increasing interior `edges`: the number of edges `≤ x`.
///
/// Bin 0 is `(-∞, e₀)`, bin `i` is `[eᵢ₋₁, eᵢ)`, the last is `[e_last, ∞)` — numpy's
/// `searchsorted(edges, x, side="right")`.
#[inline]
pub fn bin_index(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e <= x)
}

/// Counts of `sample` in the `edges.len() + 1` bins of [`bin_index`].
pub fn bin_counts(edges: &[f64], sample: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for &x in sample {
        counts[bin_index(edges, x)] += 1;
    }
    counts
}

fn proportions(counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    if total > 0.0 {
        counts.iter().map(|c| c / total).collect()
    } else {
        vec![0.0; counts.len()]
    }
}

/// Population stability index between two count (or weight) vectors over the same bins:
/// `Σ (qᵢ − pᵢ)·ln(qᵢ / pᵢ)` on proportions, an exactly zero proportion replaced by `epsilon`
/// (see [`PSI_EPSILON`]). Symmetric in its arguments; 0 when the proportions are equal.
///
/// Exact: PSI is defined on the binned distributions, so the streaming version, which keeps
/// exact counts per bin, gives the same value.
pub fn psi(expected: &[f64], actual: &[f64], epsilon: f64) -> f64 {
    assert_eq!(expected.len(), actual.len(), "psi: count vectors of different lengths");
    let p = proportions(expected);
    let q = proportions(actual);
    p.iter()
        .zip(&q)
        .map(|(&p, &q)| {
            let p = if p == 0.0 { epsilon } else { p };
            let q = if q == 0.0 { epsilon } else { q };
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Jensen–Shannon distance, base 2 (so in `[0, 1]`), between two count vectors over the
/// same bins — scipy's `spatial.distance.jensenshannon(p, q, base=2)`: the vectors are
/// normalised, `m = (p + q)/2`, distance `= sqrt((KL(p‖m) + KL(q‖m)) / 2)`.
///
/// Rounding can push the divergence a hair below 0 or above 1; the result is clamped to
/// `[0, 1]` (scipy would return NaN for the former). Both empty: 0.
pub fn js_distance(p_counts: &[f64], q_counts: &[f64]) -> f64 {
    assert_eq!(p_counts.len(), q_counts.len(), "js_distance: count vectors of different lengths");
    let p = proportions(p_counts);
    let q = proportions(q_counts);
    let mut js = 0.0;
    for (&p, &q) in p.iter().zip(&q) {
        let m = (p + q) / 2.0;
        // rel_entr(x, m) = x·ln(x/m), 0 when x = 0 (then m = 0 only if both are 0)
        let left = if p > 0.0 { p * (p / m).ln() } else { 0.0 };
        let right = if q > 0.0 { q * (q / m).ln() } else { 0.0 };
        js += left + right;
    }
    js /= std::f64::consts::LN_2;
    (js / 2.0).max(0.0).sqrt().min(1.0)
}

/// Two-sample Kolmogorov–Smirnov statistic `sup_x |F_a(x) − F_b(x)|` on the empirical
/// CDFs — scipy's `stats.ks_2samp(a, b).statistic`. Ties (within and across samples) are
/// stepped over together. Either sample empty: 0.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (a, b) = (sorted(a), sorted(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut d: f64 = 0.0;
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

/// Wasserstein-1 (earth mover's) distance between two samples with equal weights:
/// `∫ |F_a(x) − F_b(x)| dx` — scipy's `stats.wasserstein_distance(a, b)`. Either sample
/// empty: 0.
pub fn wasserstein1(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (a, b) = (sorted(a), sorted(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut total = 0.0;
    // Walk the merged support; between consecutive support points both CDFs are flat.
    let mut x = a[0].min(b[0]);
    loop {
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let next = match (a.get(i), b.get(j)) {
            (Some(&u), Some(&v)) => u.min(v),
            (Some(&u), None) => u,
            (None, Some(&v)) => v,
            (None, None) => break,
        };
        total += (i as f64 / n - j as f64 / m).abs() * (next - x);
        x = next;
    }
    total
}

/// Wasserstein-1 between two weighted point sets, each given as `(position, weight)` with
/// weights summing to 1 (or any common positive total per side; each side is normalised).
/// Used by the binned sketch, where each bin's mass sits at the bin's mean.
pub fn wasserstein1_weighted(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let wa: f64 = a.iter().map(|p| p.1).sum();
    let wb: f64 = b.iter().map(|p| p.1).sum();
    if wa <= 0.0 || wb <= 0.0 {
        return 0.0;
    }
    let mut a: Vec<(f64, f64)> = a.iter().filter(|p| p.1 > 0.0).copied().collect();
    let mut b: Vec<(f64, f64)> = b.iter().filter(|p| p.1 > 0.0).copied().collect();
    a.sort_by(|x, y| x.0.total_cmp(&y.0));
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut i, mut j) = (0usize, 0usize);
    let (mut fa, mut fb) = (0.0f64, 0.0f64);
    let mut total = 0.0;
    let mut x = a[0].0.min(b[0].0);
    loop {
        while i < a.len() && a[i].0 <= x {
            fa += a[i].1 / wa;
            i += 1;
        }
        while j < b.len() && b[j].0 <= x {
            fb += b[j].1 / wb;
            j += 1;
        }
        let next = match (a.get(i), b.get(j)) {
            (Some(u), Some(v)) => u.0.min(v.0),
            (Some(u), None) => u.0,
            (None, Some(v)) => v.0,
            (None, None) => break,
        };
        total += (fa - fb).abs() * (next - x);
        x = next;
    }
    total
}

/// Pearson's chi-square test of homogeneity on the 2×K table `[reference; current]` of
/// category counts — scipy's `stats.chi2_contingency(table, correction=False)`. Columns
/// empty on both sides are dropped first (scipy refuses zero expected frequencies). Returns
/// `(statistic, degrees of freedom, p-value)`; with fewer than two non-empty columns or an
/// empty side there is nothing to test: `(0, 0, 1)`.
///
/// Yates' correction is never applied (scipy applies it by default when dof = 1; the golden
/// file calls scipy with `correction=False`). Symmetric in its arguments.
pub fn chi_square_homogeneity(reference: &[f64], current: &[f64]) -> (f64, usize, f64) {
    assert_eq!(reference.len(), current.len(), "chi_square: count vectors of different lengths");
    let cols: Vec<(f64, f64)> =
        reference.iter().zip(current).filter(|(r, c)| **r + **c > 0.0).map(|(r, c)| (*r, *c)).collect();
    let n_r: f64 = cols.iter().map(|c| c.0).sum();
    let n_c: f64 = cols.iter().map(|c| c.1).sum();
    if cols.len() < 2 || n_r <= 0.0 || n_c <= 0.0 {
        return (0.0, 0, 1.0);
    }
    let n = n_r + n_c;
    let mut stat = 0.0;
    for &(r, c) in &cols {
        let col = r + c;
        let er = n_r * col / n;
        let ec = n_c * col / n;
        stat += (r - er) * (r - er) / er + (c - ec) * (c - ec) / ec;
    }
    let dof = cols.len() - 1;
    (stat, dof, super::special::chi2_sf(stat, dof as f64))
}

/// A sorted copy (total order, so NaN cannot break the sort).
fn sorted(x: &[f64]) -> Vec<f64> {
    let mut x = x.to_vec();
    x.sort_by(f64::total_cmp);
    x
}
