//! The names of what the monitor watches, as they appear in readings, alerts and metric
//! labels. Kept apart so the configuration (which looks thresholds up by subject) and the
//! monitor (which names its readings) share them without importing each other.

/// Subject name of the score (prediction) distribution.
pub const SCORE_SUBJECT: &str = "score";
/// Subject name of the data-quality rates.
pub const QUALITY_SUBJECT: &str = "data_quality";
/// Subject name of the error indicator's concept drift.
pub const ERROR_RATE_SUBJECT: &str = "error_rate";
/// Subject name of the label indicator's concept drift.
pub const LABEL_RATE_SUBJECT: &str = "label_rate";
/// Prefix of the fairness subjects: `fairness:<attribute>` for the gaps,
/// `fairness:<attribute>:<group>` for one group's rates.
pub const FAIRNESS_PREFIX: &str = "fairness";
