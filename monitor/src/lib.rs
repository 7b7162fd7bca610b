//! # weir-monitor
//!
//! Watches weir's stream. It will own (see the drift issue): rolling drift statistics per
//! feature against a reference (PSI, KS, Jensen–Shannon, Wasserstein-1, chi-square),
//! concept-drift detectors (ADWIN, Page–Hinkley) on error and label rates, fairness by
//! group, alerting with hysteresis to the `DriftAlert` topic, and Prometheus metrics.
//!
//! Today it owns exact latency percentiles: [`LatencyHistogram`], an `hdrhistogram` behind
//! a mutex, recorded by the pipeline per event and read by `weir demo`'s summary.
//!
//! ```
//! let h = weir_monitor::LatencyHistogram::new();
//! for us in [100, 200, 300, 400, 10_000] { h.record_us(us); }
//! let p = h.percentiles();
//! assert_eq!(p.count, 5);
//! assert!(p.p50_us >= 299 && p.p50_us <= 301);
//! ```

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
        if let Ok(mut h) = self.inner.lock() {
            h.saturating_record(us.clamp(1, MAX_US));
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
