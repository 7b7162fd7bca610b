//! Promotion of the learner's challenger through the model registry: export to ONNX,
//! publish with lineage, promote, watch, roll back. The decisions themselves are
//! `weir_online_learner::promote`'s; this module does the registry I/O.

use weir_online_learner::config::LearnerConfig;
use weir_online_learner::learner::Learner;

pub struct Promoter {}

impl Promoter {
    /// `None` when promotion is disabled.
    pub fn new(config: &LearnerConfig) -> anyhow::Result<Option<Self>> {
        if !config.promotion.enabled {
            return Ok(None);
        }
        anyhow::bail!("learner.promotion needs the model registry, which this build does not have yet")
    }

    /// One decision step after a batch; `true` when the learner's promotion state changed.
    pub fn step(&mut self, _learner: &mut Learner) -> anyhow::Result<bool> {
        Ok(false)
    }
}
