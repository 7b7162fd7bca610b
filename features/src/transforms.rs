//! The per-event feature transforms: pure functions of one event's fields.
//!
//! This file is the single implementation of these transforms. The feature engine calls
//! it, and the Arroyo UDF plugin (`features/arroyo-udfs`) compiles the very same file into
//! its plugin libraries and inlines it into the UDF definitions it registers with an Arroyo
//! cluster, so a feature computed in weir and one computed in an Arroyo pipeline are the same
//! value, bit for bit. That is why the file depends on nothing but the standard library: no
//! crate imports, no `crate::` paths, nothing that would not compile on its own inside
//! another crate (or inside an inline `mod` block), under edition 2021 as well as 2024.
//! Keep it that way.
//!
//! | function | result |
//! |---|---|
//! | [`log1p`] | ln(1 + max(x, 0)); NaN counts as 0 |
//! | [`hour_of_day`] | hour of an epoch-millisecond time, UTC, 0–23 |
//! | [`day_of_week`] | day of an epoch-millisecond time, UTC, 0 = Monday … 6 = Sunday |
//! | [`one_hot`] | 1.0 if the value is the category, else 0.0 |
//! | [`ratio_to_mean`] | x / mean, or 1.0 when the mean is not positive |
//!
//! Times before 1970 are handled with Euclidean division, so 1969-12-31T23:59:59.999Z is
//! hour 23 of a Wednesday, not hour -0 of some day -1.

/// Milliseconds in an hour.
const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day (UTC has no leap seconds in epoch time).
const DAY_MS: i64 = 86_400_000;

/// ln(1 + max(x, 0)): compresses amounts' long tail; negative amounts (refunds) and NaN
/// map to 0 rather than to NaN or -inf, so a bad amount cannot poison a model input.
pub fn log1p(x: f64) -> f64 {
    // f64::max returns the other operand when one is NaN: NaN -> 0.
    x.max(0.0).ln_1p()
}

/// Hour of the day, UTC, of `t_ms` milliseconds since the Unix epoch: 0–23, also for
/// times before the epoch.
pub fn hour_of_day(t_ms: i64) -> i64 {
    t_ms.div_euclid(HOUR_MS).rem_euclid(24)
}

/// Day of the week, UTC, of `t_ms` milliseconds since the Unix epoch: 0 = Monday …
/// 6 = Sunday (ISO order), also for times before the epoch.
pub fn day_of_week(t_ms: i64) -> i64 {
    // 1970-01-01 was a Thursday: day 0 of the epoch is weekday 3.
    (t_ms.div_euclid(DAY_MS) + 3).rem_euclid(7)
}

/// 1.0 if `value` is exactly `category` (byte for byte, case-sensitive), else 0.0.
pub fn one_hot(value: &str, category: &str) -> f64 {
    if value == category { 1.0 } else { 0.0 }
}

/// `x / mean`: how far a value is from an entity's usual one. With no usable mean (zero,
/// negative, or NaN: no history yet) the value is taken as usual, 1.0, rather than
/// infinite or NaN.
pub fn ratio_to_mean(x: f64, mean: f64) -> f64 {
    if mean > 0.0 { x / mean } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z, a Thursday.
    const NEW_YEAR_2026: i64 = 1_767_225_600_000;

    #[test]
    fn log1p_is_ln_of_one_plus_and_clamped_at_zero() {
        assert_eq!(log1p(0.0), 0.0);
        assert_eq!(log1p(-3.0), 0.0);
        assert_eq!(log1p(f64::NEG_INFINITY), 0.0);
        assert_eq!(log1p(f64::NAN), 0.0);
        assert_eq!(log1p(f64::INFINITY), f64::INFINITY);
        assert!((log1p(std::f64::consts::E - 1.0) - 1.0).abs() < 1e-15);
        assert!((log1p(999.0) - 1000f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn hour_of_day_in_utc_also_before_the_epoch() {
        for (t, hour) in [
            (0, 0),
            (3_599_999, 0),
            (3_600_000, 1),
            (86_399_999, 23),
            (86_400_000, 0),
            (-1, 23),
            (-3_600_000, 23),
            (-3_600_001, 22),
            (NEW_YEAR_2026 + 13 * HOUR_MS + 45 * 60_000 + 500, 13),
        ] {
            assert_eq!(hour_of_day(t), hour, "t = {t}");
            assert!((0..24).contains(&hour_of_day(t)), "t = {t}");
        }
        assert!((0..24).contains(&hour_of_day(i64::MAX)));
        assert!((0..24).contains(&hour_of_day(i64::MIN)));
    }

    #[test]
    fn day_of_week_is_monday_based_in_utc_also_before_the_epoch() {
        // The epoch was a Thursday; 1969-12-31 a Wednesday; 1969-12-29 a Monday.
        for (t, day) in [
            (0, 3),
            (DAY_MS - 1, 3),
            (DAY_MS, 4),
            (4 * DAY_MS, 0),
            (-1, 2),
            (-DAY_MS, 2),
            (-DAY_MS - 1, 1),
            (-3 * DAY_MS, 0),
            (-3 * DAY_MS - 1, 6),
            (NEW_YEAR_2026, 3),
            (NEW_YEAR_2026 + 4 * DAY_MS, 0),
            (NEW_YEAR_2026 + 4 * DAY_MS - 1, 6),
        ] {
            assert_eq!(day_of_week(t), day, "t = {t}");
        }
        assert!((0..7).contains(&day_of_week(i64::MAX)));
        assert!((0..7).contains(&day_of_week(i64::MIN)));
    }

    #[test]
    fn one_hot_is_exact_match() {
        assert_eq!(one_hot("ecom", "ecom"), 1.0);
        assert_eq!(one_hot("atm", "ecom"), 0.0);
        assert_eq!(one_hot("ECOM", "ecom"), 0.0);
        assert_eq!(one_hot("ecom ", "ecom"), 0.0);
        assert_eq!(one_hot("", ""), 1.0);
        assert_eq!(one_hot("", "ecom"), 0.0);
    }

    #[test]
    fn ratio_to_mean_is_one_without_a_positive_mean() {
        assert_eq!(ratio_to_mean(75.0, 50.0), 1.5);
        assert_eq!(ratio_to_mean(0.0, 50.0), 0.0);
        assert_eq!(ratio_to_mean(-10.0, 5.0), -2.0);
        assert_eq!(ratio_to_mean(10.0, 0.0), 1.0);
        assert_eq!(ratio_to_mean(10.0, -0.0), 1.0);
        assert_eq!(ratio_to_mean(10.0, -4.0), 1.0);
        assert_eq!(ratio_to_mean(10.0, f64::NAN), 1.0);
        assert!(ratio_to_mean(f64::NAN, 2.0).is_nan());
    }
}
