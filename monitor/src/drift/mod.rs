//! Data drift: how far a feature's current window has moved from its reference.
//!
//! - [`exact`]: the statistics on two samples or two count vectors — PSI, Jensen–Shannon
//!   distance (base 2), two-sample KS, Wasserstein-1, chi-square homogeneity with p-value.
//!   These are the definitions, checked against scipy by the golden tests to 1e-9.
//! - [`NumericDrift`]: per numeric feature, a reference binned at its own quantiles
//!   ([`DEFAULT_BINS`] = 10) and a rolling window of bin counts in event time
//!   ([`WindowSpec`]: panes × pane length). PSI and JS are exact on the bins; KS and W1 are
//!   sketched from the bins and come as an [`Estimate`] with an error bound (see
//!   [`numeric`]'s docs for the bounds).
//! - [`CategoricalDrift`]: per categorical feature, counts per reference category plus an
//!   "other/unseen" bucket; PSI and chi-square, exact on those counts.
//!
//! Memory per feature is fixed by bins × panes (or buckets × panes), never by the number of
//! events in a window; an event costs a binary search over the edges (or a hash lookup) and
//! a few additions.

pub mod categorical;
pub mod exact;
pub mod numeric;
pub mod special;
pub mod window;

pub use categorical::{CategoricalDrift, CategoricalReference, CategoricalReport, DEFAULT_MAX_CATEGORIES};
pub use numeric::{BinStats, DEFAULT_BINS, Estimate, NumericDrift, NumericReference, NumericReport, Observed};
pub use window::WindowSpec;
