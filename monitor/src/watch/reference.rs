//! The reference drift is measured against: given at start (a [`ReferenceProfile`]), or
//! collected by a [`Warmup`] and then binned into [`Sketches`]. Until it is ready only
//! data quality, fairness and concept drift are evaluated.

use weir_schemas::events::Score;

use crate::config::MonitorConfig;
use crate::drift::WindowSpec;
use crate::error::Result;

use super::profile::ReferenceProfile;
use super::quality::ValueCounts;
use super::sketches::Sketches;
use super::warmup::Warmup;

pub(super) enum Reference {
    Warmup(Box<Warmup>),
    Ready(Box<Sketches>),
}

/// 1 when a score is not a probability (not finite, or outside [0, 1]).
fn score_invalid(score: &Score) -> u64 {
    !score.output.is_valid() as u64
}

impl Reference {
    /// A reference to collect from the first scores.
    pub fn warmup() -> Self {
        Reference::Warmup(Box::new(Warmup::new()))
    }

    /// The reference `profile`, binned over `window`; entries without a finite value are
    /// refused.
    pub fn ready(profile: &ReferenceProfile, cfg: &MonitorConfig, window: WindowSpec) -> Result<Self> {
        Ok(Reference::Ready(Box::new(Sketches::build(profile, cfg, window)?)))
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, Reference::Ready(_))
    }

    /// The sketches, once the reference is ready.
    pub fn sketches(&self) -> Option<&Sketches> {
        match self {
            Reference::Ready(s) => Some(s),
            Reference::Warmup(_) => None,
        }
    }

    /// Feeds an on-time score at event time `t` to the warm-up or the sketches; returns
    /// its value counts for data quality.
    pub fn observe(&mut self, t: u64, score: &Score, cfg: &MonitorConfig) -> ValueCounts {
        let invalid = score_invalid(score);
        match self {
            Reference::Ready(s) => s.observe(t, score, invalid),
            Reference::Warmup(w) => w.observe(t, score, invalid, cfg),
        }
    }

    /// A late score: late for the windows, not for the reference — the warm-up span
    /// takes its scores whenever they come, until it completes.
    pub fn observe_late(&mut self, t: u64, score: &Score, cfg: &MonitorConfig) {
        if let Reference::Warmup(w) = self {
            w.observe(t, score, score_invalid(score), cfg);
        }
    }

    /// While warming up, keeps a score past the span (at most `cap`) to bin once the
    /// reference is ready. False if it is past the span and did not fit: it is never
    /// binned.
    pub fn hold_past_span(&mut self, t: u64, score: &Score, cap: usize) -> bool {
        match self {
            Reference::Warmup(w) if w.past_span(t) => w.hold(score, cap),
            _ => true,
        }
    }

    /// Ends the warm-up if the watermark is a window past its span: bins the collected
    /// profile over `window`, then the scores held past the span, and returns the profile.
    pub fn complete(&mut self, watermark: Option<u64>, cfg: &MonitorConfig, window: WindowSpec) -> Option<ReferenceProfile> {
        let Reference::Warmup(w) = self else { return None };
        if !w.is_over(watermark, window.len()) {
            return None;
        }
        let (profile, after_span) = w.take();
        // Every entry of a collected profile holds at least one finite value (only those
        // are pushed), so building cannot fail on emptiness.
        match Sketches::build(&profile, cfg, window) {
            Ok(mut sketches) => {
                // Their quality counts are in already; now their values reach the windows.
                for score in &after_span {
                    if let Ok(t) = u64::try_from(score.event_time) {
                        sketches.observe(t, score, score_invalid(score));
                    }
                }
                *self = Reference::Ready(Box::new(sketches));
                Some(profile)
            }
            Err(_) => {
                // Unreachable by the above; start the warm-up over rather than panic.
                *self = Reference::warmup();
                None
            }
        }
    }
}
