//! The reference profile: what drift is measured against, as given at start or saved
//! after a warm-up (serialized as JSON by the stage).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The reference distributions drift is measured against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// A sample of each numeric feature, by name.
    #[serde(default)]
    pub numeric: BTreeMap<String, Vec<f64>>,
    /// Category counts of each attribute, by name.
    #[serde(default)]
    pub categorical: BTreeMap<String, BTreeMap<String, u64>>,
    /// A sample of the model's scores.
    #[serde(default)]
    pub score: Vec<f64>,
}
