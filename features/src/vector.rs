//! The feature vector handed to the scorer: stable names, stable order.
//!
//! Order: the per-event transforms, then per window `card_count_<w>` and
//! `card_amount_sum_<w>` in configured window order, then the ratio of the amount to the
//! card's mean amount over the longest window.
//!
//! | name | meaning |
//! |---|---|
//! | `amount_log` | ln(1 + amount) |
//! | `hour_of_day` | hour of the event time, UTC, 0–23 |
//! | `channel_ecom`, `channel_atm` | 1 if the channel is that one (pos is the baseline) |
//! | `card_count_<w>` | events of the card in window `w` as of this event, this one included |
//! | `card_amount_sum_<w>` | their amounts summed |
//! | `amount_to_card_mean_<longest>` | amount / mean amount of the card in the longest window |

use weir_schemas::events::Transaction;

use crate::windows::WindowSpec;

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    names: Vec<String>,
    windows: usize,
    /// Index of the longest window.
    longest: usize,
}

impl FeatureSet {
    pub fn new(windows: &[WindowSpec]) -> Self {
        let mut names: Vec<String> =
            ["amount_log", "hour_of_day", "channel_ecom", "channel_atm"].iter().map(|s| s.to_string()).collect();
        for w in windows {
            names.push(format!("card_count_{}", w.name));
            names.push(format!("card_amount_sum_{}", w.name));
        }
        let longest = windows
            .iter()
            .enumerate()
            .max_by_key(|(_, w)| w.length_ms)
            .map(|(i, _)| i)
            .unwrap_or(0);
        if let Some(w) = windows.get(longest) {
            names.push(format!("amount_to_card_mean_{}", w.name));
        }
        FeatureSet { names, windows: windows.len(), longest }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Appends the vector for `tx` to `out`; `window_values` is the store's answer for this
    /// event (per window: count, sum).
    pub fn assemble(&self, tx: &Transaction, window_values: &[f64], out: &mut Vec<f32>) {
        debug_assert_eq!(window_values.len(), self.windows * 2);
        out.push((tx.amount.max(0.0)).ln_1p() as f32);
        out.push(tx.event_time.div_euclid(3_600_000).rem_euclid(24) as f32);
        out.push((tx.channel == "ecom") as u8 as f32);
        out.push((tx.channel == "atm") as u8 as f32);
        out.extend(window_values.iter().map(|&v| v as f32));
        let (count, sum) = (window_values[self.longest * 2], window_values[self.longest * 2 + 1]);
        let mean = if count > 0.0 { sum / count } else { 0.0 };
        out.push(if mean > 0.0 { (tx.amount / mean) as f32 } else { 1.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FeaturesConfig;

    fn tx(amount: f64, channel: &str, event_time: i64) -> Transaction {
        Transaction {
            event_id: "e".into(),
            card_id: "c".into(),
            merchant_id: "m".into(),
            device_id: "d".into(),
            amount,
            currency: "EUR".into(),
            country: "FR".into(),
            channel: channel.into(),
            customer_segment: "retail".into(),
            event_time,
        }
    }

    fn default_set() -> FeatureSet {
        FeatureSet::new(&FeaturesConfig::default().window_specs())
    }

    #[test]
    fn names_in_order() {
        let set = default_set();
        assert_eq!(
            set.names(),
            [
                "amount_log",
                "hour_of_day",
                "channel_ecom",
                "channel_atm",
                "card_count_1m",
                "card_amount_sum_1m",
                "card_count_1h",
                "card_amount_sum_1h",
                "amount_to_card_mean_1h",
            ]
        );
        assert_eq!(set.len(), 9);
        assert!(!set.is_empty());
    }

    #[test]
    fn longest_window_is_found_wherever_it_is() {
        let windows = vec![
            WindowSpec::new("1d", 86_400_000, 3_600_000, 0),
            WindowSpec::new("5m", 300_000, 10_000, 0),
        ];
        let set = FeatureSet::new(&windows);
        assert_eq!(set.names().last().unwrap(), "amount_to_card_mean_1d");
        let mut out = Vec::new();
        // 1d: 4 events summing 100 -> mean 25; 5m would give mean 50.
        set.assemble(&tx(50.0, "pos", 0), &[4.0, 100.0, 1.0, 50.0], &mut out);
        assert_eq!(out.last(), Some(&2.0));
    }

    #[test]
    fn no_windows() {
        let set = FeatureSet::new(&[]);
        assert_eq!(set.names(), ["amount_log", "hour_of_day", "channel_ecom", "channel_atm"]);
    }

    #[test]
    fn assemble_known_transaction() {
        let set = default_set();
        // 2026-01-01T13:45:00.5Z: hour 13.
        let t = 1_767_225_600_000 + 13 * 3_600_000 + 45 * 60_000 + 500;
        let mut out = vec![42.0]; // assemble appends
        // 1h window: 4 events summing 200 -> mean 50; amount 75 -> ratio 1.5.
        set.assemble(&tx(75.0, "ecom", t), &[2.0, 120.0, 4.0, 200.0], &mut out);
        let expected: Vec<f32> = vec![42.0, (76.0f64).ln() as f32, 13.0, 1.0, 0.0, 2.0, 120.0, 4.0, 200.0, 1.5];
        assert_eq!(out, expected);
    }

    #[test]
    fn channels_are_one_hot_with_pos_as_baseline() {
        let set = default_set();
        for (channel, ecom, atm) in [("pos", 0.0, 0.0), ("ecom", 1.0, 0.0), ("atm", 0.0, 1.0), ("other", 0.0, 0.0)] {
            let mut out = Vec::new();
            set.assemble(&tx(1.0, channel, 0), &[1.0, 1.0, 1.0, 1.0], &mut out);
            assert_eq!((out[2], out[3]), (ecom, atm), "{channel}");
        }
    }

    #[test]
    fn hour_of_day_in_utc_also_before_the_epoch() {
        let set = default_set();
        for (t, hour) in [(0, 0.0), (3_599_999, 0.0), (3_600_000, 1.0), (86_399_999, 23.0), (86_400_000, 0.0), (-1, 23.0), (-3_600_001, 22.0)] {
            let mut out = Vec::new();
            set.assemble(&tx(1.0, "pos", t), &[1.0, 1.0, 1.0, 1.0], &mut out);
            assert_eq!(out[1], hour, "t = {t}");
        }
    }

    #[test]
    fn amount_log_is_log1p_and_clamped_at_zero() {
        let set = default_set();
        for (amount, expected) in [(0.0, 0.0), (-3.0, 0.0), (std::f64::consts::E - 1.0, 1.0), (999.0, 1000f64.ln())] {
            let mut out = Vec::new();
            set.assemble(&tx(amount, "pos", 0), &[0.0, 0.0, 0.0, 0.0], &mut out);
            assert!((out[0] - expected as f32).abs() < 1e-6, "amount {amount}: {}", out[0]);
        }
    }

    #[test]
    fn ratio_is_one_when_the_mean_is_zero() {
        let set = default_set();
        for values in [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 5.0, 2.0, -4.0]] {
            let mut out = Vec::new();
            set.assemble(&tx(10.0, "pos", 0), &values, &mut out);
            assert_eq!(out.len(), 9);
            assert_eq!(out[8], 1.0, "{values:?}");
        }
        // The mean uses the longest window (1h), not the 1m one: 30 / (90 / 3) = 1.
        let mut out = Vec::new();
        set.assemble(&tx(30.0, "pos", 0), &[1.0, 10.0, 3.0, 90.0], &mut out);
        assert_eq!(out[8], 1.0);
        let mut out = Vec::new();
        set.assemble(&tx(0.0, "pos", 0), &[1.0, 10.0, 3.0, 90.0], &mut out);
        assert_eq!(out[8], 0.0);
    }
}
