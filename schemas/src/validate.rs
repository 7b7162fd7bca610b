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
            return Err(EventError::invalid("currency", format!("currency {} is not an iso 4217 code", crate::bounded::quote(&tx.currency))));
        }
        if tx.country.len() != 2 || !tx.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EventError::invalid("country", format!("country {} is not an iso 3166 alpha-2 code", crate::bounded::quote(&tx.country))));
        }
        if !matches!(tx.channel.as_str(), "pos" | "ecom" | "atm") {
            return Err(EventError::invalid("channel", format!("channel {} is not one of pos, ecom, atm", crate::bounded::quote(&tx.channel))));
        }
        // `as i64` would wrap skews above i64::MAX seconds to negative ones.
        let skew_ms = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
        let earliest = now_ms.saturating_sub(skew_ms(self.max_past_skew_secs));
        let latest = now_ms.saturating_add(skew_ms(self.max_future_skew_secs));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    const NOW: i64 = 1_767_225_600_000;

    fn good() -> Transaction {
        Transaction {
            event_id: "tx-1".into(),
            card_id: "card-1".into(),
            merchant_id: "m-1".into(),
            device_id: "dev-1".into(),
            amount: 12.5,
            currency: "EUR".into(),
            country: "FR".into(),
            channel: "pos".into(),
            customer_segment: "retail".into(),
            event_time: NOW,
        }
    }

    #[track_caller]
    fn assert_invalid(rules: &ValidationRules, tx: &Transaction, field: &str) -> EventError {
        let err = rules.check(tx, NOW).expect_err("must be refused");
        assert_eq!(err.class, ErrorClass::Invalid, "{err}");
        assert_eq!(err.field, Some(field), "{err}");
        err
    }

    #[test]
    fn good_transaction_passes() {
        let rules = ValidationRules::default();
        assert_eq!(rules.check(&good(), NOW), Ok(()));
        for channel in ["pos", "ecom", "atm"] {
            assert_eq!(rules.check(&Transaction { channel: channel.into(), ..good() }, NOW), Ok(()));
        }
        // The customer segment is free text.
        assert_eq!(rules.check(&Transaction { customer_segment: String::new(), ..good() }, NOW), Ok(()));
    }

    #[test]
    fn empty_ids_are_invalid() {
        let rules = ValidationRules::default();
        let cases: [(&str, fn(&mut Transaction) -> &mut String); 4] = [
            ("event_id", |t| &mut t.event_id),
            ("card_id", |t| &mut t.card_id),
            ("merchant_id", |t| &mut t.merchant_id),
            ("device_id", |t| &mut t.device_id),
        ];
        for (field, get) in cases {
            let mut tx = good();
            get(&mut tx).clear();
            let err = assert_invalid(&rules, &tx, field);
            assert!(err.message.contains("is empty"), "{err}");

            let mut tx = good();
            *get(&mut tx) = "x".repeat(rules.max_id_len);
            assert_eq!(rules.check(&tx, NOW), Ok(()), "{field} at the limit");
            *get(&mut tx) = "x".repeat(rules.max_id_len + 1);
            let err = assert_invalid(&rules, &tx, field);
            assert!(err.message.contains("129 bytes"), "{err}");
        }
        // Length is in bytes, not chars.
        let tx = Transaction { card_id: "é".repeat(65), ..good() };
        assert_invalid(&rules, &tx, "card_id");
        let tight = ValidationRules { max_id_len: 3, ..ValidationRules::default() };
        assert_invalid(&tight, &Transaction { event_id: "abcd".into(), ..good() }, "event_id");
        // The first bad field is named.
        assert_invalid(&rules, &Transaction { event_id: String::new(), amount: f64::NAN, ..good() }, "event_id");
    }

    #[test]
    fn bad_amounts_are_invalid() {
        let rules = ValidationRules::default();
        for amount in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01, -1e9, 1_000_000.01, 1e300] {
            let err = assert_invalid(&rules, &Transaction { amount, ..good() }, "amount");
            assert!(err.message.contains("amount"), "{err}");
        }
        for amount in [0.0, -0.0, 0.01, 1_000_000.0] {
            assert_eq!(rules.check(&Transaction { amount, ..good() }, NOW), Ok(()), "amount {amount}");
        }
        let small = ValidationRules { max_amount: 10.0, ..ValidationRules::default() };
        assert_invalid(&small, &Transaction { amount: 10.5, ..good() }, "amount");
    }

    #[test]
    fn bad_codes_are_invalid() {
        let rules = ValidationRules::default();
        for currency in ["", "EU", "EURO", "eur", "EU1", "E R", "ÉUR"] {
            assert_invalid(&rules, &Transaction { currency: currency.into(), ..good() }, "currency");
        }
        for country in ["", "F", "FRA", "fr", "F1", "É"] {
            assert_invalid(&rules, &Transaction { country: country.into(), ..good() }, "country");
        }
        for channel in ["", "POS", "web", "ecom ", "mail"] {
            assert_invalid(&rules, &Transaction { channel: channel.into(), ..good() }, "channel");
        }
    }

    #[test]
    fn event_time_skew_limits() {
        let rules = ValidationRules::default();
        let past = 7 * 24 * 3600 * 1000;
        let future = 300 * 1000;
        for event_time in [NOW - past, NOW, NOW + future] {
            assert_eq!(rules.check(&Transaction { event_time, ..good() }, NOW), Ok(()), "at {event_time}");
        }
        for event_time in [NOW - past - 1, NOW + future + 1, 0, i64::MIN, i64::MAX] {
            let err = assert_invalid(&rules, &Transaction { event_time, ..good() }, "event_time");
            assert!(err.message.contains(&event_time.to_string()), "{err}");
        }
        // Huge skews saturate instead of wrapping around to a negative skew: the accepted
        // range is [NOW - i64::MAX, i64::MAX].
        let lax = ValidationRules { max_past_skew_secs: u64::MAX, max_future_skew_secs: u64::MAX, ..rules.clone() };
        for event_time in [NOW - i64::MAX, -1_000_000_000_000_000, 0, i64::MAX] {
            assert_eq!(lax.check(&Transaction { event_time, ..good() }, NOW), Ok(()), "at {event_time}");
        }
        let wide = ValidationRules { max_past_skew_secs: i64::MAX as u64 + 1, max_future_skew_secs: 1 << 62, ..rules };
        assert_eq!(wide.check(&Transaction { event_time: 0, ..good() }, NOW), Ok(()));
        let strict = ValidationRules { max_past_skew_secs: 0, max_future_skew_secs: 0, ..ValidationRules::default() };
        assert_eq!(strict.check(&good(), NOW), Ok(()));
        assert_invalid(&strict, &Transaction { event_time: NOW - 1, ..good() }, "event_time");
        assert_invalid(&strict, &Transaction { event_time: NOW + 1, ..good() }, "event_time");
    }

    #[test]
    fn problems_of_the_rules() {
        assert!(ValidationRules::default().problems().is_empty());
        for max_amount in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let p = ValidationRules { max_amount, ..ValidationRules::default() }.problems();
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].contains("max_amount"), "{p:?}");
        }
        let p = ValidationRules { max_id_len: 0, ..ValidationRules::default() }.problems();
        assert_eq!(p, vec!["validation.max_id_len must be > 0".to_string()]);
        let both = ValidationRules { max_amount: f64::NAN, max_id_len: 0, ..ValidationRules::default() };
        assert_eq!(both.problems().len(), 2);
    }

    #[test]
    fn rules_deserialize_with_defaults_and_refuse_unknown_fields() {
        let rules: ValidationRules = serde_json::from_str(r#"{"max_amount": 5.0}"#).unwrap();
        assert_eq!(rules, ValidationRules { max_amount: 5.0, ..ValidationRules::default() });
        assert!(serde_json::from_str::<ValidationRules>(r#"{"max_amout": 5.0}"#).is_err());
    }
}
