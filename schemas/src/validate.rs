//! Validation at the boundary: a decoded event is checked before anything downstream sees it.
//! A failure is an [`EventError`] of class `Invalid` naming the field and the bad value.

use serde::{Deserialize, Serialize};

use crate::error::EventError;
use crate::events::Transaction;

/// Rules for incoming transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRules {
    /// Largest accepted amount, in the currency's major unit. Default 1 000 000.
    #[serde(default = "default_max_amount")]
    pub max_amount: f64,
    /// How far in the past an event time may lie, in seconds. Default 604 800 (7 days):
    /// replays of a week of traffic are accepted, a zero or garbage timestamp is not.
    #[serde(default = "default_max_past_skew_secs")]
    pub max_past_skew_secs: u64,
    /// How far in the future an event time may lie, in seconds (producer clock skew).
    /// Default 300.
    #[serde(default = "default_max_future_skew_secs")]
    pub max_future_skew_secs: u64,
    /// Longest accepted id (event, card, merchant, device), in bytes. Default 128.
    #[serde(default = "default_max_id_len")]
    pub max_id_len: usize,
}

fn default_max_amount() -> f64 {
    1_000_000.0
}
fn default_max_past_skew_secs() -> u64 {
    7 * 24 * 3600
}
fn default_max_future_skew_secs() -> u64 {
    300
}
fn default_max_id_len() -> usize {
    128
}

impl Default for ValidationRules {
    fn default() -> Self {
        ValidationRules {
            max_amount: default_max_amount(),
            max_past_skew_secs: default_max_past_skew_secs(),
            max_future_skew_secs: default_max_future_skew_secs(),
            max_id_len: default_max_id_len(),
        }
    }
}

impl ValidationRules {
    /// Problems with the rules themselves, all of them.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.max_amount.is_finite() && self.max_amount > 0.0) {
            problems.push(format!("validation.max_amount must be finite and > 0, got {}", self.max_amount));
        }
        if self.max_id_len == 0 {
            problems.push("validation.max_id_len must be > 0".to_string());
        }
        problems
    }

    /// Checks one transaction against the rules, with `now_ms` as the wall clock.
    pub fn check(&self, tx: &Transaction, now_ms: i64) -> Result<(), EventError> {
        self.check_id("event_id", &tx.event_id)?;
        self.check_id("card_id", &tx.card_id)?;
        self.check_id("merchant_id", &tx.merchant_id)?;
        self.check_id("device_id", &tx.device_id)?;
        if !tx.amount.is_finite() {
            return Err(EventError::invalid("amount", format!("amount {} is not finite", tx.amount)));
        }
        if tx.amount < 0.0 || tx.amount > self.max_amount {
            return Err(EventError::invalid(
                "amount",
                format!("amount {} is outside [0, {}]", tx.amount, self.max_amount),
            ));
        }
        if tx.currency.len() != 3 || !tx.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EventError::invalid("currency", format!("currency {:?} is not an iso 4217 code", tx.currency)));
        }
        if tx.country.len() != 2 || !tx.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EventError::invalid("country", format!("country {:?} is not an iso 3166 alpha-2 code", tx.country)));
        }
        if !matches!(tx.channel.as_str(), "pos" | "ecom" | "atm") {
            return Err(EventError::invalid("channel", format!("channel {:?} is not one of pos, ecom, atm", tx.channel)));
        }
        let earliest = now_ms.saturating_sub((self.max_past_skew_secs as i64).saturating_mul(1000));
        let latest = now_ms.saturating_add((self.max_future_skew_secs as i64).saturating_mul(1000));
        if tx.event_time < earliest || tx.event_time > latest {
            return Err(EventError::invalid(
                "event_time",
                format!(
                    "event_time {} is outside the accepted skew [{earliest}, {latest}] around now {now_ms}",
                    tx.event_time
                ),
            ));
        }
        Ok(())
    }

    fn check_id(&self, field: &'static str, value: &str) -> Result<(), EventError> {
        if value.is_empty() {
            return Err(EventError::invalid(field, format!("{field} is empty")));
        }
        if value.len() > self.max_id_len {
            return Err(EventError::invalid(
                field,
                format!("{field} is {} bytes long, more than {}", value.len(), self.max_id_len),
            ));
        }
        Ok(())
    }
}
