//! Promotion of the learner's challenger through the model registry
//! (`weir_schemas::registry`): export to ONNX, publish with lineage, promote, watch the
//! promoted version's live metrics, roll back. The decisions (and their guard rails) are
//! `weir_online_learner::promote`'s; this module does the registry I/O after each batch.
//!
//! Runs before the batch's checkpoint transaction, so the promotion state that says what
//! was published lands together with the batch. A crash between the registry write and
//! the transaction replays the batch: the version name then exists already and the next
//! free one is used (the registry never overwrites a version).

use std::collections::BTreeMap;

use anyhow::Context;
use tracing::{info, warn};
use weir_online_learner::config::{Metric, PromotionConfig};
use weir_online_learner::learner::Learner;
use weir_monitor::metrics::{LEARNER_PROMOTIONS, LEARNER_ROLLBACKS};
use weir_online_learner::onnx;
use weir_online_learner::promote::Decision;
use weir_schemas::model::{FeatureReference, Lineage, ModelMetadata};
use weir_schemas::registry::{ModelRegistry, RegistryError};

pub const ACTOR: &str = "weir-online-learner";

pub struct Promoter {
    registry: ModelRegistry,
    cfg: PromotionConfig,
    learner_name: String,
    /// Wall clock in ms; a function so tests can move time.
    clock: fn() -> i64,
}

impl Promoter {
    /// `None` when promotion is disabled.
    pub fn new(config: &weir_online_learner::config::LearnerConfig) -> anyhow::Result<Option<Self>> {
        let cfg = &config.promotion;
        if !cfg.enabled {
            return Ok(None);
        }
        let dir = cfg.registry_dir.as_ref().context("learner.promotion.registry_dir")?;
        let registry = ModelRegistry::open(dir).with_context(|| format!("opening the model registry {}", dir.display()))?;
        Ok(Some(Promoter { registry, cfg: cfg.clone(), learner_name: config.name.clone(), clock: weir_schemas::now_ms }))
    }

    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// One decision step after a batch; `true` when the learner's promotion state changed
    /// beyond what the batch itself recorded.
    pub fn step(&mut self, learner: &mut Learner) -> anyhow::Result<bool> {
        let model = self.cfg.model.clone();
        let Some(champion) = self.registry.champion(&model)? else {
            return Ok(false); // nothing serves: nothing to compare against
        };
        let now = (self.clock)();
        let learned = learner.counters().learned;
        let before = learner.state().promotion.clone();
        {
            let p = &mut learner.state_mut().promotion;
            p.set_champion(&champion);
            // Someone else changed the champion (a rollback by hand): the watch is moot.
            if p.watch.as_ref().is_some_and(|w| w.version != champion) {
                p.end_watch(false);
            }
        }
        let decision = learner.state().promotion.decide(now, learned, &self.cfg);
        match decision {
            Decision::Hold(_) => {}
            Decision::Promote { champion: cm, challenger: ch } => {
                let version = self.publish(learner, &champion, cm, ch)?;
                let reason = format!(
                    "challenger {} {ch:.4} vs champion {champion} {cm:.4} over the last {} labels it served (margin {})",
                    metric_name(self.cfg.metric()),
                    self.cfg.compare_labels,
                    self.cfg.margin
                );
                self.registry.promote(&model, &version, &reason, ACTOR)?;
                learner.state_mut().promotion.promoted(&version, &champion, cm, now);
                metrics::counter!(LEARNER_PROMOTIONS).increment(1);
                info!(%version, parent = %champion, %reason, "promoted");
            }
            Decision::Rollback { from, to, live, baseline } => {
                let reason = format!(
                    "{from} live {} {live:.4} over {} labels, worse than {to}'s {baseline:.4} by more than {}",
                    metric_name(self.cfg.metric()),
                    self.cfg.rollback_labels,
                    self.cfg.rollback_margin
                );
                let entry = self.registry.rollback(&model, &reason, ACTOR)?;
                let p = &mut learner.state_mut().promotion;
                p.end_watch(true);
                p.set_champion(&entry.to);
                metrics::counter!(LEARNER_ROLLBACKS).increment(1);
                warn!(%from, to = %entry.to, %reason, "rolled back");
            }
            Decision::Keep { version, live, baseline } => {
                learner.state_mut().promotion.end_watch(false);
                info!(%version, live, baseline, "promoted version held up; watch ended");
            }
        }
        Ok(learner.state().promotion != before)
    }

    /// Exports the learner and publishes it under the next free version name.
    fn publish(&self, learner: &mut Learner, parent: &str, champion_metric: f64, challenger_metric: f64) -> anyhow::Result<String> {
        let model = learner.model().context("no model learned yet")?;
        let linear = model.linear();
        let h = &model.hyperparameters;
        let state = learner.state();
        let c = learner.counters();
        let (first, last) = state.label_time_range.unwrap_or((0, 0));
        let mut hyperparameters = BTreeMap::new();
        for (k, v) in [("alpha", h.alpha), ("beta", h.beta), ("l1", h.l1), ("l2", h.l2)] {
            hyperparameters.insert(k.to_string(), serde_json::json!(v));
        }
        hyperparameters.insert("scaling".into(), serde_json::json!("running standardization (Welford), folded into the weights"));
        let metric = metric_name(self.cfg.metric());
        let mut metrics = BTreeMap::new();
        metrics.insert(format!("prequential_{metric}_challenger"), challenger_metric);
        metrics.insert(format!("prequential_{metric}_champion"), champion_metric);
        metrics.insert("prequential_labels".into(), self.cfg.compare_labels as f64);
        let mut n = state.promotion.published + 1;
        loop {
            let version = format!("{}-{n:04}", self.learner_name);
            let doc = format!("{} learned by {ACTOR} from {} labels, parent {parent}", version, c.learned);
            let meta = ModelMetadata {
                name: self.cfg.model.clone(),
                version: version.clone(),
                kind: "ftrl_logistic_regression".into(),
                created_at: rfc3339((self.clock)()),
                onnx_file: "model.onnx".into(),
                sha256: String::new(),
                input_name: onnx::INPUT.into(),
                feature_names: model.feature_names.clone(),
                output_name: onnx::OUTPUT.into(),
                positive_class_index: 1,
                lineage: Lineage {
                    trained_by: ACTOR.into(),
                    training_data: format!(
                        "{} labels joined to their scores, label time {first}..{last} ms; offsets {:?}",
                        c.learned, state.offsets
                    ),
                    training_rows: c.learned,
                    seed: Some(h.seed),
                    parent_version: Some(parent.to_string()),
                    hyperparameters: hyperparameters.clone(),
                },
                metrics: metrics.clone(),
                // The running means the learner standardizes with: what reason codes
                // measure contributions against. No histograms are kept online.
                reference: Some(FeatureReference { means: model.scaler.mean.clone(), histograms: Vec::new() }),
            };
            match self.registry.publish(&meta, &onnx::export(&linear, &doc)) {
                Ok(_) => {
                    learner.state_mut().promotion.published = n;
                    return Ok(version);
                }
                Err(RegistryError::VersionExists { .. }) => n += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Auc => "auc",
        Metric::LogLoss => "log_loss",
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for ms since the epoch (civil-from-days, proleptic Gregorian).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use weir_online_learner::config::LearnerConfig;
    use weir_online_learner::learner::{Input, Position};
    use weir_schemas::events::{FeatureValue, Label, ModelOutput, Score};

    use super::*;

    #[test]
    fn rfc3339_by_hand() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000 + 3_723_000), "2000-02-29T01:02:03Z");
    }

    /// Labels served by `version`, the feature `x` deciding fraud; the served score is
    /// right for every other event (`half`: AUC about 0.5) or always inverted (AUC 0).
    fn batch(version: &str, from: usize, n: usize, half: bool) -> Vec<(Position, Input)> {
        let mut out = Vec::new();
        for i in from..from + n {
            let y = i % 5 == 0;
            let x = if y { 2.0 + (i % 7) as f64 / 10.0 } else { (i % 11) as f64 / 10.0 };
            let right = half && i % 2 == 0;
            let served = if y == right { 0.9 } else { 0.1 };
            let id = format!("e{i}");
            let t = i as i64 * 1000;
            out.push((Position { topic: "scores".into(), partition: 0, offset: i as i64 }, Input::Score(Score {
                event_id: id.clone(), key: "c".into(), event_time: t, model_name: "fraud".into(),
                model_version: version.into(), output: ModelOutput::binary(served), decision: "approve".into(),
                features: vec![FeatureValue { name: "x".into(), value: x }, FeatureValue { name: "noise".into(), value: (i % 3) as f64 }],
                reasons: vec![], scored_at: t, attributes: Default::default(),
            })));
            out.push((Position { topic: "labels".into(), partition: 0, offset: i as i64 }, Input::Label(Label {
                event_id: id, card_id: "c".into(), is_fraud: y, event_time: t, label_time: t + 1,
            })));
        }
        out
    }

    /// The whole loop on a real registry: a bad champion is replaced by the learner (with
    /// lineage), a deliberately bad promotion is rolled back, the hourly cap holds.
    #[test]
    fn promotes_with_lineage_and_rolls_back_a_bad_promotion() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::create(dir.path()).unwrap();
        let mut v1 = weir_schemas::registry::tests_support::metadata("fraud", "v1");
        v1.feature_names = vec!["x".into(), "noise".into()];
        registry.publish(&v1, b"not a real model: the scorer is not in this test").unwrap();
        registry.promote("fraud", "v1", "first", "test").unwrap();

        let lc = LearnerConfig { promotion: PromotionConfig {
            enabled: true,
            registry_dir: Some(dir.path().to_path_buf()),
            min_labels: 300,
            compare_labels: 200,
            rollback_labels: 100,
            max_per_hour: 1,
            ..PromotionConfig::default()
        }, ..LearnerConfig::default() };
        let mut learner = Learner::restore(lc.clone(), None, vec![], vec![], vec![], vec![]).unwrap();
        let mut p = Promoter::new(&lc).unwrap().unwrap().with_clock(|| 1_767_225_600_000);

        // v1 serves coin flips; the learner learns the rule.
        learner.apply(batch("v1", 0, 100, true)).unwrap();
        p.step(&mut learner).unwrap(); // learns that v1 is the champion
        learner.apply(batch("v1", 100, 400, true)).unwrap();
        assert!(p.step(&mut learner).unwrap());
        let champion = registry.champion("fraud").unwrap().unwrap();
        assert_eq!(champion, "fraud-ftrl-0001");
        let meta = registry.metadata("fraud", &champion).unwrap();
        assert_eq!(meta.lineage.parent_version.as_deref(), Some("v1"));
        assert_eq!(meta.lineage.training_rows, 500);
        assert_eq!(meta.lineage.seed, Some(42));
        assert_eq!(meta.feature_names, vec!["x".to_string(), "noise".to_string()]);
        assert!(meta.metrics["prequential_auc_challenger"] > meta.metrics["prequential_auc_champion"]);
        assert_eq!(meta.created_at, "2026-01-01T00:00:00Z");

        // The promoted version now serves — deliberately badly: rolled back to v1.
        learner.apply(batch(&champion, 500, 60, false)).unwrap();
        assert!(!p.step(&mut learner).unwrap() || registry.champion("fraud").unwrap().unwrap() == champion);
        learner.apply(batch(&champion, 560, 60, false)).unwrap();
        p.step(&mut learner).unwrap();
        assert_eq!(registry.champion("fraud").unwrap().as_deref(), Some("v1"));
        assert_eq!(learner.state().promotion.rollbacks, 1);

        // v1 still serves coin flips, but one promotion per hour: held.
        learner.apply(batch("v1", 620, 300, true)).unwrap();
        p.step(&mut learner).unwrap();
        assert_eq!(registry.champion("fraud").unwrap().as_deref(), Some("v1"));
        assert!(matches!(
            learner.state().promotion.decide(1_767_225_600_000, 1_000, &lc.promotion),
            Decision::Hold("max promotions per hour reached")
        ));
    }
}
