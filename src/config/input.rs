//! `[input]`: what the input topic carries, and the checks every event must pass.
//!
//! weir does not need its own event type. The input topic carries records of one schema
//! subject (weir's `transaction`, the `interaction` example, or a user's own, registered in
//! the schema map); each message names its writer schema by id, and weir reads, through
//! that writer schema, only the fields it needs, by path: the feature definitions' fields
//! (`[features]`), the event id carried on scores, the primary key scores are keyed by,
//! the attributes the monitor groups by, and the fields the rules below check. The
//! compiled form is `crate::wiring::InputPlan`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `[input]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Schema subject of the input topic's records: each message's writer schema must be
    /// registered under it. Default `transaction`.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Path of the event's unique id, carried on its score (labels join on it). Default
    /// `event_id`.
    #[serde(default = "default_event_id")]
    pub event_id: String,
    /// Path of the key scores are keyed by on the scores topic (and carried in the score's
    /// `card_id` field): the entity decisions are about. Default `card_id`.
    #[serde(default = "default_primary_key")]
    pub primary_key: String,
    /// Categorical attributes carried on each score, for drift and fairness by group:
    /// name → path. Default, for transactions: `customer_segment`, `channel`, `country`,
    /// `currency`, each at the path of the same name.
    #[serde(default = "default_attributes")]
    pub attributes: BTreeMap<String, String>,
    /// Checks on single fields (`[[input.rules]]`). Default (none given): the transaction
    /// rules, amount in [0, `validation.max_amount`], currency 3 upper-case letters,
    /// country 2, channel one of pos/ecom/atm. Besides these, every event's time must lie
    /// within `[validation]`'s skew of now, and its event id, primary key and entity keys
    /// must be present, non-empty and at most `validation.max_id_len` bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<FieldRule>>,
}

/// One check on one field. Every given condition must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The field's path.
    pub path: String,
    /// The field must be present and not null. Default true. When false, an absent field
    /// passes and the other conditions apply to present values only.
    #[serde(default = "yes")]
    pub required: bool,
    /// Smallest accepted number (the field must be a finite number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest accepted number (the field must be a finite number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Accepted values of a text field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// Exact length of a text field, in bytes, all ASCII upper-case letters (ISO codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_code_len: Option<usize>,
}

fn default_subject() -> String {
    weir_schemas::wire::subjects::TRANSACTION.to_string()
}
fn default_event_id() -> String {
    "event_id".into()
}
fn default_primary_key() -> String {
    "card_id".into()
}
fn default_attributes() -> BTreeMap<String, String> {
    ["customer_segment", "channel", "country", "currency"].into_iter().map(|a| (a.to_string(), a.to_string())).collect()
}
fn yes() -> bool {
    true
}
pub(crate) fn rule(path: &str) -> FieldRule {
    FieldRule { path: path.into(), required: true, min: None, max: None, one_of: None, upper_code_len: None }
}
/// The rules for weir's own transactions.
pub fn transaction_rules(max_amount: f64) -> Vec<FieldRule> {
    vec![
        FieldRule { min: Some(0.0), max: Some(max_amount), ..rule("amount") },
        FieldRule { upper_code_len: Some(3), ..rule("currency") },
        FieldRule { upper_code_len: Some(2), ..rule("country") },
        FieldRule { one_of: Some(vec!["pos".into(), "ecom".into(), "atm".into()]), ..rule("channel") },
    ]
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            subject: default_subject(),
            event_id: default_event_id(),
            primary_key: default_primary_key(),
            attributes: default_attributes(),
            rules: None,
        }
    }
}

fn path_problem(at: &str, path: &str) -> Option<String> {
    let ok = !path.is_empty()
        && path.split('.').all(|s| {
            let mut b = s.bytes();
            matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
                && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        });
    (!ok).then(|| format!("{at} {path:?} is not a field path (Avro names joined by dots, e.g. user.id)"))
}

impl InputConfig {
    /// Every problem with this section, each naming the entry.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.subject.is_empty() {
            p.push("input.subject is empty".to_string());
        }
        p.extend(path_problem("input.event_id", &self.event_id));
        p.extend(path_problem("input.primary_key", &self.primary_key));
        for (name, path) in &self.attributes {
            if name.is_empty() {
                p.push("input.attributes: an attribute name is empty".to_string());
            }
            p.extend(path_problem(&format!("input.attributes.{name}"), path));
        }
        for (i, r) in self.rules.iter().flatten().enumerate() {
            let at = format!("input.rules[{i}] ({:?})", r.path);
            p.extend(path_problem(&format!("{at}: path"), &r.path));
            for (what, v) in [("min", r.min), ("max", r.max)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    p.push(format!("{at}: {what} must be finite"));
                }
            }
            if let (Some(lo), Some(hi)) = (r.min, r.max)
                && lo > hi
            {
                p.push(format!("{at}: min {lo} is above max {hi}"));
            }
            if r.one_of.as_ref().is_some_and(|v| v.is_empty()) {
                p.push(format!("{at}: one_of is empty: nothing could pass"));
            }
            if r.upper_code_len == Some(0) {
                p.push(format!("{at}: upper_code_len must be > 0"));
            }
            let numeric = r.min.is_some() || r.max.is_some();
            let text = r.one_of.is_some() || r.upper_code_len.is_some();
            if numeric && text {
                p.push(format!("{at}: a rule checks a number (min/max) or a text (one_of/upper_code_len), not both"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named() {
        let c = InputConfig {
            subject: String::new(),
            event_id: "a..b".into(),
            primary_key: "1x".into(),
            attributes: [("seg".to_string(), "user segment".to_string())].into(),
            rules: Some(vec![
                FieldRule { min: Some(2.0), max: Some(1.0), ..rule("x") },
                FieldRule { one_of: Some(vec![]), ..rule("y") },
                FieldRule { min: Some(f64::NAN), one_of: Some(vec!["a".into()]), ..rule("z") },
            ]),
        };
        let p = c.problems();
        assert_eq!(p.len(), 8, "{p:#?}");
        assert!(p.iter().any(|m| m.contains("input.rules[0] (\"x\"): min 2 is above max 1")));
        assert!(p.iter().any(|m| m.contains("input.attributes.seg \"user segment\" is not a field path")));
    }
}
