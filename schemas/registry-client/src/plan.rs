//! [`SubjectPlan`]: which of weir's subjects live in the registry, and under which
//! registry subjects.
//!
//! weir's code names subjects by role ([`weir_schemas::wire::subjects`]: `score`,
//! `drift-alert`, the `[input] subject`); a registry names them after topics
//! (TopicNameStrategy: `<topic>-value`). The plan is the map between the two, made by the
//! binary's wiring from the configuration.

use std::sync::Arc;

use weir_schemas::wire::RegisteredSchema;

/// A subject weir writes: its schema is registered at start-up under each registry
/// subject (the scores topic and the shadow scores topic share the score schema), and
/// weir frames what it writes with the id the registry gives.
#[derive(Debug, Clone)]
pub struct Output {
    /// weir's name for the subject (`score`).
    pub subject: String,
    /// Registry subjects (`scores-value`, `scores.shadow-value`), at least one.
    pub registry_subjects: Vec<String>,
    /// weir's schema for it (its local id is not used).
    pub schema: Arc<RegisteredSchema>,
}

/// A subject weir reads and someone else writes: its latest schema is fetched at
/// start-up (the configured field paths are checked against it) and its later versions
/// by id, as messages name them.
#[derive(Debug, Clone)]
pub struct Input {
    /// weir's name for the subject (the `[input] subject`, e.g. `transaction`).
    pub subject: String,
    /// The registry subject (`transactions-value`).
    pub registry_subject: String,
}

/// Every subject weir uses with the registry.
#[derive(Debug, Clone, Default)]
pub struct SubjectPlan {
    pub outputs: Vec<Output>,
    pub inputs: Vec<Input>,
}

/// TopicNameStrategy: the value subject of `topic`.
pub fn topic_value_subject(topic: &str) -> String {
    format!("{topic}-value")
}
