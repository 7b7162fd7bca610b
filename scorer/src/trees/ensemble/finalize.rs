//! A row's summed scores to its outputs: base values, aggregation, post-transforms and
//! the label, onnxruntime's rules as they read (the kernels and the reference share it).

use super::layout::{Ensemble, Label};
use super::real::Real;
use crate::trees::attrs::{Aggregate, PostTransform};

impl<T: Real> Ensemble<T> {
    /// onnxruntime's `TreeAggregatorClassifier::FinalizeScores`, rule for rule: the ONNX
    /// spec leaves two-class ensembles vague, and the exporters write their models for
    /// these rules.
    pub(crate) fn finalize_classifier(&self, s: &mut [T], h: &mut [bool], z: &mut [T]) -> Label {
        let base = &self.base_values;
        if s.len() > 2 {
            for (kk, &b) in base.iter().enumerate() {
                if h[kk] {
                    s[kk] += b;
                } else {
                    h[kk] = true;
                    s[kk] = b;
                }
            }
            let mut best: Option<usize> = None;
            for kk in 0..s.len() {
                if h[kk] && best.is_none_or(|b| s[kk] > s[b]) {
                    best = Some(kk);
                }
            }
            write_scores(s, self.post_transform, z, -1);
            return Label::Index(best.unwrap_or(0));
        }
        let mut size = 2;
        let mut add = -1;
        match base.len() {
            2 => {
                if h[1] {
                    // onnxruntime: base_values[0] unused, class 1 = base[1] + class 0.
                    s[1] = base[1] + s[0];
                    s[0] = -s[1];
                } else {
                    s[1] += base[1];
                    s[0] += base[0];
                }
            }
            1 => {
                s[0] += base[0];
                if !h[1] {
                    size = 1;
                }
            }
            _ => {
                add = 3;
                if !h[1] {
                    size = 1;
                }
            }
        }
        let pos = if size == 2 && h[1] {
            s[1]
        } else if h[0] {
            s[0]
        } else {
            T::ZERO
        };
        let label = if self.binary_case {
            if self.weights_are_all_positive {
                if pos > T::from_f64(0.5) {
                    add = 0;
                    Label::Index(1)
                } else {
                    add = 1;
                    Label::Index(0)
                }
            } else if pos > T::ZERO {
                add = 2;
                Label::Index(1)
            } else {
                add = 3;
                Label::Index(0)
            }
        } else {
            Label::Literal(i64::from(pos > T::ZERO))
        };
        write_scores(&mut s[..size], self.post_transform, z, add);
        label
    }

    /// onnxruntime's regressor aggregators (`FinalizeScores1` for one target, which
    /// applies only PROBIT, and `FinalizeScores` for several). A `TreeEnsemble` applies
    /// its post-transform to one target too, as the spec says (onnxruntime 1.32 does not:
    /// its issue #26596).
    pub(crate) fn finalize_regressor(&self, s: &mut [T], h: &mut [bool], z: &mut [T]) {
        let n_trees = T::from_f64(self.roots.len() as f64);
        let base = &self.base_values;
        if s.len() == 1 {
            let origin = if base.len() == 1 { base[0] } else { T::ZERO };
            let v = match self.aggregate {
                Aggregate::Sum => s[0] + origin,
                Aggregate::Average => s[0] / n_trees + origin,
                Aggregate::Min | Aggregate::Max => {
                    if h[0] {
                        s[0] + origin
                    } else {
                        origin
                    }
                }
            };
            z[0] = match self.post_transform {
                PostTransform::Probit => probit(v),
                _ if !self.v5 => v,
                PostTransform::None => v,
                PostTransform::Logistic => logistic(v),
                PostTransform::Softmax | PostTransform::SoftmaxZero => {
                    let mut one = [v];
                    if self.post_transform == PostTransform::Softmax { softmax(&mut one) } else { softmax_zero(&mut one) }
                    one[0]
                }
            };
            return;
        }
        let use_base = base.len() == s.len();
        for kk in 0..s.len() {
            let b = if use_base { base[kk] } else { T::ZERO };
            s[kk] = match self.aggregate {
                Aggregate::Sum => s[kk] + b,
                Aggregate::Average => s[kk] / n_trees + b,
                Aggregate::Min | Aggregate::Max => b + if h[kk] { s[kk] } else { T::ZERO },
            };
        }
        write_scores(s, self.post_transform, z, -1);
    }
}

/// onnxruntime's `ComputeLogistic`.
pub fn logistic<T: Real>(v: T) -> T {
    let e = T::ONE / (T::ONE + (-v.abs()).exp());
    if v < T::ZERO { T::ONE - e } else { e }
}

/// onnxruntime's `ComputeProbit` (in float): sqrt(2) × its closed-form approximation
/// of erf⁻¹.
pub fn probit<T: Real>(v: T) -> T {
    let v = v.to_f32();
    let x = 2.0 * v - 1.0;
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let a = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let b = 1.0 / 0.147f32 * log;
    let c = -a + (a * a - b).sqrt();
    T::from_f64(f64::from(std::f32::consts::SQRT_2 * (sgn * c.sqrt())))
}

fn softmax<T: Real>(s: &mut [T]) {
    let max = s.iter().fold(-T::MAX, |m, &v| if v > m { v } else { m });
    let mut sum = T::ZERO;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v = *v / sum;
    }
}

/// Softmax that leaves (near-)zero scores at zero weight.
fn softmax_zero<T: Real>(s: &mut [T]) {
    let max = s.iter().fold(-T::MAX, |m, &v| if v > m { v } else { m });
    let exp_neg_max = (-max).exp();
    let eps = T::from_f64(0.000_000_1);
    let mut sum = T::ZERO;
    for v in s.iter_mut() {
        if *v > eps || *v < -eps {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v = *v * exp_neg_max;
        }
    }
    for v in s.iter_mut() {
        *v = *v / sum;
    }
}

/// onnxruntime's `write_scores`: the post-transform, and the second column of a
/// one-score binary ensemble (`add` says how it is made).
fn write_scores<T: Real>(s: &mut [T], post: PostTransform, z: &mut [T], add: i32) {
    if s.len() >= 2 {
        match post {
            PostTransform::Probit => s.iter_mut().for_each(|v| *v = probit(*v)),
            PostTransform::Logistic => s.iter_mut().for_each(|v| *v = logistic(*v)),
            PostTransform::Softmax => softmax(s),
            PostTransform::SoftmaxZero => softmax_zero(s),
            PostTransform::None => {}
        }
        z[..s.len()].copy_from_slice(s);
        return;
    }
    let v = s[0];
    if post == PostTransform::Probit {
        z[0] = probit(v);
        if z.len() > 1 {
            z[1] = T::ZERO;
        }
        return;
    }
    match add {
        0 | 1 => {
            z[0] = T::ONE - v;
            z[1] = v;
        }
        2 | 3 if post == PostTransform::Logistic => {
            z[0] = logistic(-v);
            z[1] = logistic(v);
        }
        2 | 3 => {
            z[0] = -v;
            z[1] = v;
        }
        _ => {
            z[0] = v;
            if z.len() > 1 {
                z[1] = T::ZERO;
            }
        }
    }
}
