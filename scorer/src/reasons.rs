//! Reason codes: the features that pushed each score up or down, measured in log-odds
//! against the training data's means (`metadata.json` → `reference.means`).
//!
//! - **Linear models** (a single logistic `LinearClassifier`): exact. The positive class's
//!   log-odds is `w · x + b`, so feature `j` contributes `w_j × (x_j − mean_j)`, and the
//!   contributions sum to `logit(score(x)) − logit(score(mean))`. No extra model runs.
//! - **Anything else** (trees, MLPs): occlusion, an approximation. Feature `j`'s
//!   contribution is `logit(score(x)) − logit(score(x with x_j := mean_j))`: how much the
//!   log-odds would fall if that one feature were average. It ignores interactions (the
//!   contributions need not sum to the total). Cost: `k` extra rows per event for `k`
//!   features, scored in the same batched plans — a micro-batch of `n` events runs
//!   `n × (k + 1)` rows instead of `n`.
//!
//! A model whose metadata has no reference means gets no reasons (an empty list), never
//! made-up ones.

use weir_schemas::events::Reason;

use crate::error::Result;
use crate::model::LoadedModel;

/// How reasons are computed for one model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact contributions of a linear model.
    Linear,
    /// Single-feature occlusion against the reference means.
    Occlusion,
    /// No reference means in the metadata: no reasons.
    None,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Linear => "linear",
            Method::Occlusion => "occlusion",
            Method::None => "none",
        }
    }
}

/// Probabilities are clamped this far from 0 and 1 before taking log-odds, so a model
/// that says exactly 0 or 1 gives large finite contributions, not infinities.
const EPS: f64 = 1e-7;

fn logit(p: f64) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    (p / (1.0 - p)).ln()
}

/// The method this model's reasons are computed with.
pub fn method(model: &LoadedModel) -> Method {
    match (reference_means(model), model.linear_form()) {
        (None, _) => Method::None,
        (Some(_), Some(_)) => Method::Linear,
        (Some(_), None) => Method::Occlusion,
    }
}

fn reference_means(model: &LoadedModel) -> Option<&[f64]> {
    let r = model.metadata().reference.as_ref()?;
    (r.means.len() == model.feature_count()).then_some(r.means.as_slice())
}

/// The top `top_k` reasons for each row of `rows` (row-major, `feature_count` columns),
/// largest absolute contribution first; `scores` are the model's scores for those rows.
/// CPU-bound (occlusion runs the model): call it off the async threads.
pub fn explain(model: &LoadedModel, rows: &[f32], scores: &[f32], top_k: usize) -> Result<Vec<Vec<Reason>>> {
    let k = model.feature_count();
    let n = scores.len();
    if top_k == 0 || k == 0 {
        return Ok(vec![Vec::new(); n]);
    }
    let Some(means) = reference_means(model) else { return Ok(vec![Vec::new(); n]) };
    let names = &model.metadata().feature_names;
    let contributions: Vec<f64> = match model.linear_form() {
        Some(linear) => rows
            .chunks_exact(k)
            .flat_map(|row| (0..k).map(move |j| linear.weights[j] * (f64::from(row[j]) - means[j])))
            .collect(),
        None => occlusion(model, means, rows, scores)?,
    };
    Ok((0..n)
        .map(|r| {
            let row = &contributions[r * k..(r + 1) * k];
            let mut order: Vec<usize> = (0..k).collect();
            // Largest magnitude first; ties by column, so the order is deterministic.
            order.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
            order
                .into_iter()
                .take(top_k)
                .map(|j| Reason {
                    feature: names[j].clone(),
                    value: f64::from(rows[r * k + j]),
                    contribution: row[j],
                })
                .collect()
        })
        .collect())
}

/// Occlusion contributions, row-major `n × k`: one batch of `n × k` rows, row `r` with
/// feature `j` set to its mean.
fn occlusion(model: &LoadedModel, means: &[f64], rows: &[f32], scores: &[f32]) -> Result<Vec<f64>> {
    let k = model.feature_count();
    let n = scores.len();
    let mut occluded = Vec::with_capacity(n * k * k);
    for row in rows.chunks_exact(k) {
        for (j, mean) in means.iter().enumerate() {
            occluded.extend_from_slice(row);
            let at = occluded.len() - k + j;
            occluded[at] = *mean as f32;
        }
    }
    let without = model.score(&occluded)?;
    Ok((0..n * k).map(|i| logit(f64::from(scores[i / k])) - logit(f64::from(without[i]))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline;

    fn names() -> Vec<String> {
        baseline::metadata().unwrap().feature_names
    }

    fn row(i: usize) -> Vec<f32> {
        let f = i as f32;
        vec![1.0 + f % 7.0, (i % 24) as f32, (i % 3 == 1) as u8 as f32, 0.0, 1.0 + f % 5.0, 40.0 * f, 3.0 + f, 90.0 * f, 0.3 + f % 4.0]
    }

    #[test]
    fn the_baseline_is_explained_exactly() {
        let m = baseline::load(&names(), &[1, 16]).unwrap();
        assert_eq!(method(&m), Method::Linear);
        let means = m.metadata().reference.as_ref().unwrap().means.clone();
        let rows: Vec<f32> = (0..20).flat_map(row).collect();
        let scores = m.score(&rows).unwrap();
        let at_mean = m.score(&means.iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap()[0];
        let all = explain(&m, &rows, &scores, 9).unwrap();
        for (r, reasons) in all.iter().enumerate() {
            assert_eq!(reasons.len(), 9);
            // Exact: the contributions add up to the log-odds distance from the mean row.
            let sum: f64 = reasons.iter().map(|x| x.contribution).sum();
            let expected = logit(f64::from(scores[r])) - logit(f64::from(at_mean));
            assert!((sum - expected).abs() <= 1e-3 * (1.0 + expected.abs()), "row {r}: {sum} vs {expected}");
            // Sorted by magnitude, values are the row's.
            for w in reasons.windows(2) {
                assert!(w[0].contribution.abs() >= w[1].contribution.abs());
            }
            for reason in reasons {
                let j = names().iter().position(|n| *n == reason.feature).unwrap();
                assert_eq!(reason.value, f64::from(rows[r * 9 + j]));
            }
        }
        let top3 = explain(&m, &rows, &scores, 3).unwrap();
        assert!(top3.iter().zip(&all).all(|(t, a)| t[..] == a[..3]));
        assert!(explain(&m, &rows, &scores, 0).unwrap().iter().all(Vec::is_empty));
    }

    #[test]
    fn occlusion_agrees_with_the_exact_linear_reasons() {
        // For a linear model, occluding one feature moves the log-odds by exactly
        // w_j × (x_j − mean_j): the approximation is exact there, which pins its arithmetic.
        let m = baseline::load(&names(), &[1, 16, 64]).unwrap();
        let rows: Vec<f32> = (0..10).flat_map(row).collect();
        let scores = m.score(&rows).unwrap();
        let exact = explain(&m, &rows, &scores, 9).unwrap();
        let means = m.metadata().reference.as_ref().unwrap().means.clone();
        let occluded = occlusion(&m, &means, &rows, &scores).unwrap();
        let names = names();
        for (r, e) in exact.iter().enumerate() {
            for reason in e {
                let j = names.iter().position(|n| *n == reason.feature).unwrap();
                let other = occluded[r * 9 + j];
                // f32 scores through a logit: agree to a few thousandths of a log-odds unit.
                assert!((reason.contribution - other).abs() < 5e-3 * (1.0 + reason.contribution.abs()),
                    "row {r} {}: exact {} occlusion {other}", reason.feature, reason.contribution);
            }
        }
    }

    #[test]
    fn no_reference_means_no_reasons() {
        let mut meta = baseline::metadata().unwrap();
        meta.reference = None;
        let m = LoadedModel::load(meta, baseline::ONNX, &names(), &[1]).unwrap();
        assert_eq!(method(&m), Method::None);
        let rows = row(3);
        let scores = m.score(&rows).unwrap();
        assert_eq!(explain(&m, &rows, &scores, 3).unwrap(), vec![Vec::<Reason>::new()]);
    }
}
