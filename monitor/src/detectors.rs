//! Concept-drift detectors on a stream of numbers — in weir, per-event error indicators
//! (0 or 1, or a loss in `[0, 1]`) and label indicators.
//!
//! Both follow River 0.26 (`river.drift.PageHinkley`, `river.drift.ADWIN`) operation for
//! operation, so that on the same input they flag drift at the same indices; the golden
//! tests check this on seeded streams recorded from River. That includes River's reset
//! semantics: after [`update`](DriftDetector::update) returns `true`, the *next* call
//! first resets the detector to its initial state (empty window, fresh mean), then counts
//! its value.

use crate::error::{Result, invalid};

/// A detector fed one value at a time.
pub trait DriftDetector {
    /// Counts `x`; `true` if drift is detected at this value.
    fn update(&mut self, x: f64) -> bool;
    /// Whether the last [`update`](Self::update) detected drift.
    fn drift_detected(&self) -> bool;
    /// Back to the initial state.
    fn reset(&mut self);
}

/// Which changes of the mean [`PageHinkley`] watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhMode {
    Up,
    Down,
    #[default]
    Both,
}

/// Parameters of [`PageHinkley`], River's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageHinkleyConfig {
    /// No detection before this many values since the last reset (default 30).
    pub min_instances: u64,
    /// Magnitude of change tolerated (default 0.005).
    pub delta: f64,
    /// Detection threshold, λ (default 50).
    pub threshold: f64,
    /// Forgetting factor of the cumulative sums (default 1 − 1e-4).
    pub alpha: f64,
    pub mode: PhMode,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        PageHinkleyConfig { min_instances: 30, delta: 0.005, threshold: 50.0, alpha: 1.0 - 0.0001, mode: PhMode::Both }
    }
}

/// Page–Hinkley test (a CUSUM on deviations from the running mean, with forgetting).
///
/// With `m` the running mean of the values since the last reset: `U ← α·U + (x − m) − δ`
/// and `L ← α·L + (x − m) + δ`; an increase is flagged when `U − min U > λ`, a decrease
/// when `max L − L > λ` (`max L` starts at −1, as in River).
#[derive(Debug, Clone)]
pub struct PageHinkley {
    cfg: PageHinkleyConfig,
    n: f64,
    mean: f64,
    sum_increase: f64,
    sum_decrease: f64,
    min_increase: f64,
    max_decrease: f64,
    detected: bool,
}

impl PageHinkley {
    pub fn new(cfg: PageHinkleyConfig) -> Result<Self> {
        if cfg.threshold.is_nan() || cfg.threshold <= 0.0 {
            return Err(invalid("threshold", cfg.threshold, "must be positive"));
        }
        if !(cfg.alpha > 0.0 && cfg.alpha <= 1.0) {
            return Err(invalid("alpha", cfg.alpha, "must be in (0, 1]"));
        }
        if cfg.delta.is_nan() || cfg.delta < 0.0 {
            return Err(invalid("delta", cfg.delta, "must be non-negative"));
        }
        let mut ph = PageHinkley {
            cfg,
            n: 0.0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: f64::INFINITY,
            max_decrease: -1.0,
            detected: false,
        };
        ph.reset();
        Ok(ph)
    }

    pub fn config(&self) -> &PageHinkleyConfig {
        &self.cfg
    }
}

impl Default for PageHinkley {
    fn default() -> Self {
        // The defaults pass validation.
        PageHinkley::new(PageHinkleyConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}

impl DriftDetector for PageHinkley {
    fn update(&mut self, x: f64) -> bool {
        if self.detected {
            self.reset();
        }
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
        let dev = x - self.mean;
        self.sum_increase = self.cfg.alpha * self.sum_increase + dev - self.cfg.delta;
        self.sum_decrease = self.cfg.alpha * self.sum_decrease + dev + self.cfg.delta;
        if self.sum_increase < self.min_increase {
            self.min_increase = self.sum_increase;
        }
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.n >= self.cfg.min_instances as f64 {
            let up = self.sum_increase - self.min_increase;
            let down = self.max_decrease - self.sum_decrease;
            self.detected = match self.cfg.mode {
                PhMode::Up => up > self.cfg.threshold,
                PhMode::Down => down > self.cfg.threshold,
                PhMode::Both => up > self.cfg.threshold || down > self.cfg.threshold,
            };
        }
        self.detected
    }

    fn drift_detected(&self) -> bool {
        self.detected
    }

    fn reset(&mut self) {
        self.n = 0.0;
        self.mean = 0.0;
        self.sum_increase = 0.0;
        self.sum_decrease = 0.0;
        self.min_increase = f64::INFINITY;
        self.max_decrease = -1.0;
        self.detected = false;
    }
}

/// Parameters of [`Adwin`], River's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdwinConfig {
    /// Confidence of a cut, δ (default 0.002).
    pub delta: f64,
    /// Check for a cut every `clock` values (default 32).
    pub clock: u32,
    /// Buckets of each size kept before two are merged (default 5).
    pub max_buckets: usize,
    /// Smallest sub-window a cut may leave on either side (default 5).
    pub min_window_length: u32,
    /// No check until the window holds more than this many values (default 10).
    pub grace_period: u32,
}

impl Default for AdwinConfig {
    fn default() -> Self {
        AdwinConfig { delta: 0.002, clock: 32, max_buckets: 5, min_window_length: 5, grace_period: 10 }
    }
}

/// One bucket: the sum of its `2^level` values and their sum of squared deviations.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// ADWIN2 (Bifet & Gavaldà 2007): an adaptive window compressed into an exponential
/// histogram — level `l` holds up to `max_buckets` buckets of `2^l` values each, so memory
/// is O(max_buckets · log(window)). Every `clock` values, every split of the window into
/// an older part `W0` and a newer `W1` along bucket boundaries is tested; when the means
/// differ by more than
/// `ε = sqrt(2·m·σ²·δ') + (2/3)·δ'·m`, with `m = 1/(n0 − mwl + 1) + 1/(n1 − mwl + 1)`,
/// `δ' = ln(2·ln(n)/δ)` and `σ²` the window's variance, the oldest bucket is dropped,
/// drift is reported, and the test repeats on the shrunk window.
#[derive(Debug, Clone)]
pub struct Adwin {
    cfg: AdwinConfig,
    /// `levels[l]`: buckets of `2^l` values, oldest first. Level 0 always exists.
    levels: Vec<Vec<Bucket>>,
    width: f64,
    total: f64,
    /// Sum of squared deviations from the mean over the window.
    variance: f64,
    tick: u64,
    detected: bool,
    detections: u64,
}

impl Adwin {
    pub fn new(cfg: AdwinConfig) -> Result<Self> {
        if !(cfg.delta > 0.0 && cfg.delta < 1.0) {
            return Err(invalid("delta", cfg.delta, "must be in (0, 1)"));
        }
        if cfg.clock == 0 {
            return Err(invalid("clock", cfg.clock, "must be at least 1"));
        }
        if cfg.max_buckets < 2 {
            return Err(invalid("max_buckets", cfg.max_buckets, "must be at least 2"));
        }
        let mut a = Adwin {
            cfg,
            levels: Vec::new(),
            width: 0.0,
            total: 0.0,
            variance: 0.0,
            tick: 0,
            detected: false,
            detections: 0,
        };
        a.reset();
        Ok(a)
    }

    pub fn config(&self) -> &AdwinConfig {
        &self.cfg
    }

    /// Values in the window.
    pub fn width(&self) -> u64 {
        self.width as u64
    }

    /// Mean of the window (0 when empty).
    pub fn estimation(&self) -> f64 {
        if self.width == 0.0 { 0.0 } else { self.total / self.width }
    }

    /// Detections since creation (not cleared by resets).
    pub fn n_detections(&self) -> u64 {
        self.detections
    }

    fn insert(&mut self, x: f64) {
        self.width += 1.0;
        // Running sum of squared deviations (Welford, in River's arithmetic order).
        if self.width > 1.0 {
            let d = x - self.total / (self.width - 1.0);
            self.variance += (self.width - 1.0) * d * d / self.width;
        }
        self.total += x;
        self.levels[0].push(Bucket { total: x, variance: 0.0 });
        self.compress();
    }

    /// Merges the two oldest buckets of every level that holds `max_buckets + 1`.
    fn compress(&mut self) {
        let mut level = 0;
        while self.levels[level].len() > self.cfg.max_buckets {
            let size = (1u64 << level) as f64;
            let (a, b) = (self.levels[level][0], self.levels[level][1]);
            let (mu_a, mu_b) = (a.total / size, b.total / size);
            let merged = Bucket {
                total: a.total + b.total,
                variance: a.variance + b.variance + size * 0.5 * (mu_a - mu_b) * (mu_a - mu_b),
            };
            self.levels[level].drain(..2);
            if level + 1 == self.levels.len() {
                self.levels.push(Vec::with_capacity(self.cfg.max_buckets + 1));
            }
            self.levels[level + 1].push(merged);
            level += 1;
        }
    }

    /// Drops the oldest bucket (the oldest of the highest level).
    fn drop_oldest(&mut self) {
        let top = self.levels.len() - 1;
        let size = (1u64 << top) as f64;
        let oldest = self.levels[top].remove(0);
        let mu = oldest.total / size;
        self.width -= size;
        self.total -= oldest.total;
        let mu_window = self.total / self.width;
        self.variance -= oldest.variance + size * self.width * (mu - mu_window) * (mu - mu_window) / (size + self.width);
        if self.levels[top].is_empty() && top > 0 {
            self.levels.pop();
        }
    }

    fn cut_found(&self, n0: f64, n1: f64, mean_gap: f64) -> bool {
        let mwl = self.cfg.min_window_length as f64;
        let delta_prime = (2.0 * self.width.ln() / self.cfg.delta).ln();
        let m = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0);
        let epsilon = (2.0 * m * (self.variance / self.width) * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m;
        mean_gap.abs() > epsilon
    }

    /// Scans the splits oldest first; on a cut, drops the oldest bucket and starts over.
    fn detect(&mut self) -> bool {
        self.tick += 1;
        if !self.tick.is_multiple_of(self.cfg.clock as u64) || self.width <= self.cfg.grace_period as f64 {
            return false;
        }
        let mwl = self.cfg.min_window_length as f64;
        let mut change = false;
        'rescan: loop {
            let (mut n0, mut n1, mut u0, mut u1) = (0.0f64, self.width, 0.0f64, self.total);
            for level in (0..self.levels.len()).rev() {
                let size = (1u64 << level) as f64;
                let len = self.levels[level].len();
                for k in 0..len {
                    let t = self.levels[level][k].total;
                    n0 += size;
                    n1 -= size;
                    u0 += t;
                    u1 -= t;
                    if level == 0 && k == len - 1 {
                        // W1 would be empty: every split has been tried.
                        break 'rescan;
                    }
                    if n1 >= mwl && n0 >= mwl && self.cut_found(n0, n1, u0 / n0 - u1 / n1) {
                        change = true;
                        if self.width > 0.0 {
                            self.drop_oldest();
                            continue 'rescan;
                        }
                    }
                }
            }
            break;
        }
        change
    }
}

impl Default for Adwin {
    fn default() -> Self {
        // The defaults pass validation.
        Adwin::new(AdwinConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}

impl DriftDetector for Adwin {
    fn update(&mut self, x: f64) -> bool {
        if self.detected {
            self.reset();
        }
        self.insert(x);
        self.detected = self.detect();
        if self.detected {
            self.detections += 1;
        }
        self.detected
    }

    fn drift_detected(&self) -> bool {
        self.detected
    }

    fn reset(&mut self) {
        self.levels.clear();
        self.levels.push(Vec::with_capacity(self.cfg.max_buckets + 1));
        self.width = 0.0;
        self.total = 0.0;
        self.variance = 0.0;
        self.tick = 0;
        self.detected = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_stream_never_drifts() {
        let mut ph = PageHinkley::default();
        let mut ad = Adwin::default();
        for _ in 0..5_000 {
            assert!(!ph.update(0.1));
            assert!(!ad.update(0.1));
        }
        assert_eq!(ad.width(), 5_000);
    }

    #[test]
    fn adwin_memory_is_logarithmic() {
        let mut ad = Adwin::default();
        for i in 0..100_000 {
            ad.update((i % 2) as f64);
        }
        let buckets: usize = ad.levels.iter().map(Vec::len).sum();
        assert!(buckets <= 5 * 18, "{buckets} buckets");
        assert_eq!(ad.width(), 100_000);
    }

    #[test]
    fn both_detect_an_abrupt_shift_and_reset_after_it() {
        let mut ph = PageHinkley::default();
        let mut ad = Adwin::default();
        let (mut ph_at, mut ad_at) = (None, None);
        for i in 0..4_000u64 {
            let x = if i < 2_000 { 0.0 } else { 1.0 };
            if ph.update(x) && ph_at.is_none() {
                ph_at = Some(i);
            }
            if ad.update(x) && ad_at.is_none() {
                ad_at = Some(i);
            }
        }
        assert!(ph_at.is_some_and(|i| i >= 2_000), "{ph_at:?}");
        assert!(ad_at.is_some_and(|i| (2_000..2_100).contains(&i)), "{ad_at:?}");
        // River's reset: the update after a detection starts from scratch
        let mut ad = Adwin::default();
        let mut i = 0;
        while !ad.update(if i < 200 { 0.0 } else { 1.0 }) {
            i += 1;
        }
        ad.update(1.0);
        assert_eq!(ad.width(), 1);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Adwin::new(AdwinConfig { delta: 0.0, ..Default::default() }).is_err());
        assert!(Adwin::new(AdwinConfig { clock: 0, ..Default::default() }).is_err());
        assert!(PageHinkley::new(PageHinkleyConfig { alpha: 1.5, ..Default::default() }).is_err());
    }
}
