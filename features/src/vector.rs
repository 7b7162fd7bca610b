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
