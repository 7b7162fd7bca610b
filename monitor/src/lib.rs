//! # weir-monitor
//!
//! Watches weir's stream. It owns today:
//!
//! - [`drift`]: data drift of each feature against a reference — PSI, two-sample KS,
//!   Jensen–Shannon distance and Wasserstein-1 for numeric features, PSI and chi-square for
//!   categorical ones — over rolling windows in event time with fixed memory per feature
//!   (reference-quantile bins × panes). The exact-on-sample definitions live in
//!   [`drift::exact`] and are checked against scipy; what the streaming sketch computes
//!   exactly and what it bounds is documented in [`drift::numeric`].
//! - [`detectors`]: concept-drift detectors for error and label rates — [`detectors::Adwin`]
//!   and [`detectors::PageHinkley`], matching River's detection indices.
//! - [`LatencyHistogram`]: exact latency percentiles, an `hdrhistogram` behind a mutex,
//!   recorded by the pipeline per event and read by `weir demo`'s summary.
//!
//! - [`watch::Monitor`]: the per-event streaming monitor that puts these together — every
//!   feature of the scored vector, the score and each categorical attribute against a
//!   reference (a [`ReferenceProfile`] or a warm-up), data-quality rates, fairness by group,
//!   ADWIN/Page–Hinkley on the error and label rates once labels join, and per statistic an
//!   [`alert::AlertMachine`] (a breach must persist, one alert per episode, a clear event on
//!   recovery) turning evaluations into `DriftAlert` events. Configured by [`MonitorConfig`]
//!   (`[monitor]` in `weir.toml`). No I/O: the `weir` binary's monitor stage feeds it from
//!   Kafka and ships its alerts.
//! - [`subjects`]: the names of what the monitor watches (`score`, `data_quality`, ...),
//!   shared by readings, alerts, thresholds and metric labels.
//! - [`metrics`]: the Prometheus metric names and the `/metrics` exporter.
//!
//! ```
//! use weir_monitor::drift::{NumericDrift, NumericReference, WindowSpec, DEFAULT_BINS};
//! use weir_monitor::detectors::{Adwin, DriftDetector};
//!
//! // Reference: 0, 1, …, 999; window: 6 panes of 10 s of event time.
//! let reference: Vec<f64> = (0..1000).map(f64::from).collect();
//! let reference = NumericReference::from_sample(&reference, DEFAULT_BINS).unwrap();
//! let mut amount = NumericDrift::new(reference, WindowSpec::new(10_000, 6).unwrap());
//! for i in 0..1000u64 {
//!     amount.observe(i * 10, (i + 500) as f64); // event time in ms, shifted values
//! }
//! let report = amount.report();
//! assert!(report.psi > 0.25);
//! assert!(report.ks.value >= 0.4 && report.ks.value <= 0.5 + 1e-9);
//!
//! let mut errors = Adwin::default();
//! let drift_at = (0..4000).position(|i| errors.update(if i < 2000 { 0.0 } else { 1.0 }));
//! assert!(drift_at.is_some_and(|i| i >= 2000));
//!
//! let h = weir_monitor::LatencyHistogram::new();
//! for us in [100, 200, 300, 400, 10_000] { h.record_us(us); }
//! let p = h.percentiles();
//! assert_eq!(p.count, 5);
//! assert!(p.p50_us >= 299 && p.p50_us <= 301);
//! ```

pub mod alert;
pub mod config;
pub mod detectors;
pub mod drift;
pub mod error;
pub mod metrics;
pub mod subjects;
pub mod watch;

pub use config::MonitorConfig;
pub use error::{MonitorError, Result};
pub use watch::{Evaluation, Monitor, ReferenceProfile};

use std::sync::Mutex;

use hdrhistogram::Histogram;

/// Latencies in microseconds, from 1 µs to 1 hour, 3 significant digits.
pub struct LatencyHistogram {
    inner: Mutex<Histogram<u64>>,
}

/// A summary of a [`LatencyHistogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

const MAX_US: u64 = 3_600_000_000;

impl LatencyHistogram {
    pub fn new() -> Self {
        // 1..=1h at 3 significant digits is a valid hdrhistogram range; cannot fail.
        let h = Histogram::new_with_bounds(1, MAX_US, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        LatencyHistogram { inner: Mutex::new(h) }
    }

    /// Records one latency; values beyond an hour are clamped.
    pub fn record_us(&self, us: u64) {
        self.record_many_us([us]);
    }

    /// Records many latencies under one lock (a micro-batch's worth).
    pub fn record_many_us(&self, values: impl IntoIterator<Item = u64>) {
        if let Ok(mut h) = self.inner.lock() {
            for us in values {
                h.saturating_record(us.clamp(1, MAX_US));
            }
        }
    }

    pub fn percentiles(&self) -> Percentiles {
        match self.inner.lock() {
            Ok(h) if !h.is_empty() => Percentiles {
                count: h.len(),
                p50_us: h.value_at_quantile(0.50),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
            },
            _ => Percentiles::default(),
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}
