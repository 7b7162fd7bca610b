//! The input plan: what the pipeline decodes of each input event, and the checks every
//! event passes before anything downstream sees it, compiled once from `[input]`,
//! `[validation]` and the feature definitions.
//!
//! A failed check is an `Invalid` [`EventError`] naming the field: the event goes to the
//! dead-letter topic with that reason, and the partition keeps moving.

use weir_schemas::EventError;
use weir_schemas::bounded::quote;
use weir_schemas::validate::ValidationRules;
use weir_schemas::record::{EventRecord, FieldValue, intern_path};

use crate::config::input::{transaction_rules, FieldRule, InputConfig};

/// Bad values are quoted by a short prefix ([`quote`]): a 600 KB field must not make a
/// 600 KB message (issue 24).
///
/// The checks of [`InputConfig::rules`], compiled against the positions of their fields
/// in the decoded record.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    rules: Vec<(usize, &'static str, FieldRule)>,
}

impl CompiledRules {
    /// `index_of(path)` gives the path's position in the decoded record.
    pub fn new(rules: &[FieldRule], mut index_of: impl FnMut(&str) -> usize) -> Self {
        CompiledRules { rules: rules.iter().map(|r| (index_of(&r.path), intern_path(&r.path), r.clone())).collect() }
    }

    /// The first failed check, naming the field and the bad value.
    pub fn check(&self, record: &EventRecord) -> Result<(), EventError> {
        for (index, path, rule) in &self.rules {
            let value = record.get(*index);
            if value.is_absent() {
                if rule.required {
                    return Err(EventError::invalid(path, format!("{path} is missing")));
                }
                continue;
            }
            if rule.min.is_some() || rule.max.is_some() {
                let Some(x) = value.as_f64().filter(|x| x.is_finite()) else {
                    return Err(EventError::invalid(path, format!("{path} {} is not a finite number", show(value))));
                };
                let (lo, hi) = (rule.min.unwrap_or(f64::NEG_INFINITY), rule.max.unwrap_or(f64::INFINITY));
                if x < lo || x > hi {
                    return Err(EventError::invalid(path, format!("{path} {x} is outside [{lo}, {hi}]")));
                }
            }
            if rule.one_of.is_some() || rule.upper_code_len.is_some() {
                let Some(text) = value.as_key() else {
                    return Err(EventError::invalid(path, format!("{path} {} is not text", show(value))));
                };
                if let Some(allowed) = &rule.one_of
                    && !allowed.iter().any(|a| a == text.as_ref())
                {
                    return Err(EventError::invalid(path, format!("{path} {} is not one of {}", quote(&text), allowed.join(", "))));
                }
                if let Some(n) = rule.upper_code_len
                    && (text.len() != n || !text.bytes().all(|b| b.is_ascii_uppercase()))
                {
                    return Err(EventError::invalid(path, format!("{path} {} is not {n} upper-case letters", quote(&text))));
                }
            }
        }
        Ok(())
    }
}

/// Everything the pipeline reads of an input event, compiled once: the paths to decode
/// (the feature definitions' first, in their order, so that their indices hold; then the
/// event id, primary key, attributes and ruled fields not among them) and the checks.
#[derive(Debug, Clone)]
pub struct InputPlan {
    paths: Vec<String>,
    event_id: usize,
    primary_key: usize,
    attributes: Vec<(String, usize)>,
    /// Event time and entity keys, checked by the feature definitions; here for the
    /// skew and length checks.
    event_time: usize,
    keys: Vec<usize>,
    rules: CompiledRules,
    validation: ValidationRules,
    names: Vec<&'static str>,
}

impl InputPlan {
    /// `feature_paths`: the definitions' paths (event time first); `key_paths`: their
    /// entity keys.
    pub fn new(input: &InputConfig, validation: &ValidationRules, feature_paths: &[String], key_paths: &[String]) -> Self {
        let mut paths: Vec<String> = feature_paths.to_vec();
        let mut index_of = |p: &str| match paths.iter().position(|q| q == p) {
            Some(i) => i,
            None => {
                paths.push(p.to_string());
                paths.len() - 1
            }
        };
        let event_id = index_of(&input.event_id);
        let primary_key = index_of(&input.primary_key);
        let attributes = input.attributes.iter().map(|(name, path)| (name.clone(), index_of(path))).collect();
        let event_time = 0;
        let keys = key_paths.iter().map(|p| index_of(p)).collect();
        let rules = match &input.rules {
            Some(rules) => rules.clone(),
            None => transaction_rules(validation.max_amount),
        };
        let rules = CompiledRules::new(&rules, &mut index_of);
        let names = paths.iter().map(|p| intern_path(p)).collect();
        InputPlan { paths, event_id, primary_key, attributes, event_time, keys, rules, validation: validation.clone(), names }
    }

    /// The paths to decode, in record order.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Checks a decoded event (after the feature definitions' own check): event id and
    /// primary key, key lengths, event time within the skew of `now_ms`, the field rules.
    pub fn check(&self, record: &EventRecord, now_ms: i64) -> Result<(), EventError> {
        for &i in [self.event_id, self.primary_key].iter().chain(&self.keys) {
            let path = self.names[i];
            match record.get(i).as_key() {
                None => return Err(EventError::invalid(path, format!("{path} is missing or not text"))),
                Some(k) if k.is_empty() => return Err(EventError::invalid(path, format!("{path} is empty"))),
                Some(k) if k.len() > self.validation.max_id_len => {
                    return Err(EventError::invalid(
                        path,
                        format!("{path} is {} bytes long, more than {}", k.len(), self.validation.max_id_len),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(t) = record.get(self.event_time).as_i64() {
            let skew_ms = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
            let earliest = now_ms.saturating_sub(skew_ms(self.validation.max_past_skew_secs));
            let latest = now_ms.saturating_add(skew_ms(self.validation.max_future_skew_secs));
            if t < earliest || t > latest {
                let path = self.names[self.event_time];
                return Err(EventError::invalid(
                    path,
                    format!("{path} {t} is outside the accepted skew [{earliest}, {latest}] around now {now_ms}"),
                ));
            }
        }
        self.rules.check(record)
    }

    /// The event id of a checked record.
    pub fn event_id(&self, record: &EventRecord) -> String {
        record.get(self.event_id).as_key().map(|k| k.into_owned()).unwrap_or_default()
    }

    /// The primary key of a checked record.
    pub fn primary_key(&self, record: &EventRecord) -> String {
        record.get(self.primary_key).as_key().map(|k| k.into_owned()).unwrap_or_default()
    }

    /// The attributes present in the record, as text.
    pub fn attributes(&self, record: &EventRecord) -> std::collections::BTreeMap<String, String> {
        self.attributes
            .iter()
            .filter_map(|(name, i)| record.get(*i).as_key().map(|v| (name.clone(), v.into_owned())))
            .collect()
    }
}

fn show(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(s) => quote(s),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Float(f) => f.to_string(),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Bytes(b) => format!("<{} bytes>", b.len()),
        FieldValue::Null => "null".into(),
        FieldValue::Missing => "missing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::input::rule;

    fn compiled(rules: &[FieldRule], paths: &[&str]) -> CompiledRules {
        CompiledRules::new(rules, |p| paths.iter().position(|q| *q == p).unwrap())
    }

    fn record(values: Vec<FieldValue>) -> EventRecord {
        EventRecord::new(values)
    }

    #[test]
    fn defaults_have_no_problems_and_cover_the_transaction_checks() {
        let c = InputConfig::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let paths = ["amount", "currency", "country", "channel"];
        let rules = compiled(&transaction_rules(1_000_000.0), &paths);
        let ok = || vec![FieldValue::Float(12.5), FieldValue::Str("EUR".into()), FieldValue::Str("FR".into()), FieldValue::Str("pos".into())];
        assert_eq!(rules.check(&record(ok())), Ok(()));
        for (i, bad, needle) in [
            (0, FieldValue::Float(-1.0), "amount -1 is outside [0, 1000000]"),
            (0, FieldValue::Float(f64::NAN), "amount NaN is not a finite number"),
            (0, FieldValue::Str("12".into()), "amount \"12\" is not a finite number"),
            (1, FieldValue::Str("eur".into()), "currency \"eur\" is not 3 upper-case letters"),
            (2, FieldValue::Str("FRA".into()), "country \"FRA\" is not 2 upper-case letters"),
            (3, FieldValue::Str("web".into()), "channel \"web\" is not one of pos, ecom, atm"),
            (3, FieldValue::Missing, "channel is missing"),
            (3, FieldValue::Null, "channel is missing"),
        ] {
            let mut v = ok();
            v[i] = bad;
            let err = rules.check(&record(v)).unwrap_err();
            assert_eq!(err.class, weir_schemas::ErrorClass::Invalid);
            assert_eq!(err.field, Some(paths[i]));
            assert!(err.message.contains(needle), "{} does not contain {needle}", err.message);
        }
    }

    #[test]
    fn optional_fields_pass_when_absent_and_are_checked_when_present() {
        let r = FieldRule { required: false, min: Some(0.0), ..rule("dwell_ms") };
        let rules = compiled(&[r], &["dwell_ms"]);
        assert_eq!(rules.check(&record(vec![FieldValue::Null])), Ok(()));
        assert_eq!(rules.check(&record(vec![FieldValue::Int(5)])), Ok(()));
        assert!(rules.check(&record(vec![FieldValue::Int(-5)])).is_err());
    }
}
