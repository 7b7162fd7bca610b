//! The incremental learner: running standardization (Welford) in front of linfa's
//! FTRL-Proximal, with a constant bias column (linfa's FTRL has no intercept).
//!
//! Order per label (test-then-train is the caller's business: it asks [`OnlineModel::predict`]
//! before [`OnlineModel::learn`]): the scaler first takes the new row into its running mean
//! and variance, then FTRL takes one `FitWith` step on the row standardized with the
//! updated statistics. The weights therefore live in a slowly moving standardized space;
//! [`OnlineModel::linear`] folds the current scaling into raw-feature weights, which is
//! exactly what [`OnlineModel::predict`] computes and what the ONNX export carries.

use linfa::prelude::*;
use linfa::Dataset;
use linfa_ftrl::Ftrl;
use linfa_ndarray::{Array1, Array2};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

use crate::config::FtrlConfig;
use crate::error::{Error, Result};

/// Running mean and variance per feature (Welford's algorithm: numerically stable, one
/// pass, O(1) per row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningScaler {
    pub count: u64,
    pub mean: Vec<f64>,
    /// Sum of squared deviations from the mean.
    pub m2: Vec<f64>,
}

impl RunningScaler {
    pub fn new(features: usize) -> Self {
        RunningScaler { count: 0, mean: vec![0.0; features], m2: vec![0.0; features] }
    }

    pub fn update(&mut self, x: &[f64]) {
        self.count += 1;
        let n = self.count as f64;
        for ((m, s), &v) in self.mean.iter_mut().zip(&mut self.m2).zip(x) {
            let d = v - *m;
            *m += d / n;
            *s += d * (v - *m);
        }
    }

    /// Population standard deviation of feature `i`; 1 while it is (nearly) constant, so
    /// a feature that never varied is centred but not blown up.
    pub fn std(&self, i: usize) -> f64 {
        if self.count < 2 {
            return 1.0;
        }
        let s = (self.m2[i] / self.count as f64).sqrt();
        if s > 1e-9 { s } else { 1.0 }
    }
}

/// The linear model in raw feature space: `p = sigmoid(weights · x + bias)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl LinearModel {
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + self.bias
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.logit(x))
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}

type Params = linfa_ftrl::FtrlParams<f64, Xoshiro256Plus>;

/// FTRL-Proximal plus running scaling, checkpointable as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnlineModel {
    pub feature_names: Vec<String>,
    pub scaler: RunningScaler,
    ftrl: Ftrl<f64>,
    pub hyperparameters: FtrlConfig,
    /// Labels learned.
    pub updates: u64,
    #[serde(skip)]
    params: Option<Params>,
}

impl OnlineModel {
    /// A fresh model over `feature_names` (plus the bias column), linfa's initial state
    /// drawn from `config.seed`.
    pub fn new(feature_names: Vec<String>, config: &FtrlConfig) -> Result<Self> {
        let params = Self::params(config)?;
        let ftrl = Ftrl::new(params.check_ref().map_err(|e| Error::Config(vec![format!("ftrl: {e}")]))?.clone(), feature_names.len() + 1);
        Ok(OnlineModel {
            scaler: RunningScaler::new(feature_names.len()),
            feature_names,
            ftrl,
            hyperparameters: config.clone(),
            updates: 0,
            params: Some(params),
        })
    }

    fn params(config: &FtrlConfig) -> Result<Params> {
        let p = Ftrl::params_with_rng(Xoshiro256Plus::seed_from_u64(config.seed))
            .alpha(config.alpha)
            .beta(config.beta)
            .l1_ratio(config.l1)
            .l2_ratio(config.l2);
        p.check_ref().map_err(|e| Error::Config(vec![format!("ftrl: {e}")]))?;
        Ok(p)
    }

    fn params_ref(&mut self) -> Result<&Params> {
        if self.params.is_none() {
            self.params = Some(Self::params(&self.hyperparameters)?);
        }
        Ok(self.params.as_ref().expect("set above"))
    }

    pub fn nfeatures(&self) -> usize {
        self.feature_names.len()
    }

    /// The row as FTRL sees it: standardized with the current statistics, bias last.
    fn standardized(&self, x: &[f64]) -> Vec<f64> {
        let mut row: Vec<f64> =
            x.iter().enumerate().map(|(i, v)| (v - self.scaler.mean[i]) / self.scaler.std(i)).collect();
        row.push(1.0);
        row
    }

    /// Probability of the positive class for a raw row, in f64.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let w = self.ftrl.get_weights();
        let row = self.standardized(x);
        sigmoid(row.iter().zip(w.iter()).map(|(a, b)| a * b).sum())
    }

    /// linfa's own prediction (`Pr`, an f32) for the same row: the number its update uses.
    pub fn predict_linfa(&self, x: &[f64]) -> f32 {
        let row = self.standardized(x);
        let records = Array2::from_shape_vec((1, row.len()), row).expect("1 x n");
        let p: Array1<linfa::dataset::Pr> = self.ftrl.predict(&records);
        *p[0]
    }

    /// One test-then-train step's "train": scaler update, then one FTRL `fit_with`.
    pub fn learn(&mut self, x: &[f64], y: bool) -> Result<()> {
        if x.len() != self.nfeatures() {
            return Err(Error::Features(format!("row has {} values, model has {} features", x.len(), self.nfeatures())));
        }
        self.scaler.update(x);
        let row = self.standardized(x);
        let records = Array2::from_shape_vec((1, row.len()), row).map_err(|e| Error::Learn(e.to_string()))?;
        let dataset = Dataset::new(records, Array1::from_elem(1, y));
        let params = self.params_ref()?.clone();
        let valid = params.check_ref().map_err(|e| Error::Learn(e.to_string()))?;
        let ftrl = std::mem::replace(&mut self.ftrl, Ftrl::new(valid.clone(), 0));
        self.ftrl = valid.fit_with(Some(ftrl), &dataset).map_err(|e| Error::Learn(e.to_string()))?;
        self.updates += 1;
        Ok(())
    }

    /// The current model folded into raw feature space:
    /// `w·(x−μ)/σ + b = (w/σ)·x + (b − Σ w μ/σ)`.
    pub fn linear(&self) -> LinearModel {
        let w = self.ftrl.get_weights();
        let k = self.nfeatures();
        let mut weights = Vec::with_capacity(k);
        let mut bias = w[k];
        for i in 0..k {
            let s = self.scaler.std(i);
            weights.push(w[i] / s);
            bias -= w[i] * self.scaler.mean[i] / s;
        }
        LinearModel { weights, bias }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let rows = [[1.0, 10.0], [2.0, 10.0], [4.0, 10.0], [8.0, 10.0]];
        let mut s = RunningScaler::new(2);
        rows.iter().for_each(|r| s.update(r));
        let mean = 15.0 / 4.0;
        let var = rows.iter().map(|r| (r[0] - mean) * (r[0] - mean)).sum::<f64>() / 4.0;
        assert!((s.mean[0] - mean).abs() < 1e-12);
        assert!((s.std(0) - var.sqrt()).abs() < 1e-12);
        assert_eq!(s.std(1), 1.0, "constant feature is not scaled");
    }

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("f{i}")).collect()
    }

    #[test]
    fn learns_a_separable_rule_and_folding_is_exact() {
        let mut m = OnlineModel::new(names(2), &FtrlConfig::default()).unwrap();
        let mut state = 7u64;
        let mut rnd = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..3000 {
            let x = [rnd() * 100.0, rnd()];
            m.learn(&x, x[0] > 70.0).unwrap();
        }
        assert!(m.predict(&[95.0, 0.5]) > 0.8, "{}", m.predict(&[95.0, 0.5]));
        assert!(m.predict(&[10.0, 0.5]) < 0.2, "{}", m.predict(&[10.0, 0.5]));
        let lin = m.linear();
        for x in [[0.0, 0.0], [50.0, 0.3], [99.0, 1.0]] {
            assert!((lin.predict(&x) - m.predict(&x)).abs() < 1e-12);
            assert!((f64::from(m.predict_linfa(&x)) - m.predict(&x)).abs() < 1e-6);
        }
    }

    #[test]
    fn same_seed_same_model_and_checkpoint_round_trips_exactly() {
        let run = |seed| {
            let mut m = OnlineModel::new(names(3), &FtrlConfig { seed, ..FtrlConfig::default() }).unwrap();
            for i in 0..200 {
                let x = [i as f64, (i % 7) as f64, 0.5];
                m.learn(&x, i % 3 == 0).unwrap();
            }
            m
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(a.linear(), b.linear());
        assert_ne!(a.linear(), c.linear());
        let text = serde_json::to_string(&a).unwrap();
        let mut back: OnlineModel = serde_json::from_str(&text).unwrap();
        assert_eq!(back.linear(), a.linear());
        // And it keeps learning identically after the round trip.
        let mut a = a;
        a.learn(&[3.0, 1.0, 0.5], true).unwrap();
        back.learn(&[3.0, 1.0, 0.5], true).unwrap();
        assert_eq!(back.linear(), a.linear());
    }
}
