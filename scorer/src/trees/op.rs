//! The tract side: a loader builder per op name, an inference-time expansion (shape and
//! type rules), and the typed op the optimized plan runs.

use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::{NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

use super::attrs::{self, Kind, Labels};
use super::ensemble::{Ensemble, Label};

/// Registers weir's `TreeEnsembleClassifier` and `TreeEnsembleRegressor` builders,
/// replacing tract's.
pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleClassifier", build);
    reg.insert("TreeEnsembleRegressor", build);
}

fn build(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let load = |t: &TensorProto| -> Result<Vec<f64>, String> {
        let tensor = ctx.load_tensor(t).map_err(|e| format!("{e:#}"))?;
        let doubles = tensor.cast_to::<f64>().map_err(|e| format!("{e:#}"))?;
        let view = doubles.try_as_plain_ram().map_err(|e| format!("{e:#}"))?;
        Ok(view.as_slice::<f64>().map_err(|e| format!("{e:#}"))?.to_vec())
    };
    let attrs = attrs::read(node, &load).map_err(|e| format_err!("{e}"))?;
    let ensemble = Ensemble::build(&attrs).map_err(|e| format_err!("{e}"))?;
    let labels = match attrs.kind {
        Kind::Classifier(labels) => Some(labels),
        Kind::Regressor { .. } => None,
    };
    let op = TreeOp { ensemble: Arc::new(ensemble), labels };
    Ok((expand(TreeExpansion(op)), vec![]))
}

/// The typed op: one ensemble, evaluated over the whole input batch.
#[derive(Debug, Clone)]
pub struct TreeOp {
    ensemble: Arc<Ensemble>,
    /// `Some` for a classifier.
    labels: Option<Labels>,
}

// Ops are compared by tract when it dedups nodes; an ensemble is only ever equal to
// itself (comparing thousands of floats to merge two ensembles is never worth it).
impl PartialEq for TreeOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.ensemble, &other.ensemble)
    }
}
impl Eq for TreeOp {}

impl TreeOp {
    fn op_name(&self) -> &'static str {
        if self.labels.is_some() { "TreeEnsembleClassifier" } else { "TreeEnsembleRegressor" }
    }

    fn label_type(&self) -> DatumType {
        match self.labels {
            Some(Labels::Strings(_)) => DatumType::String,
            _ => DatumType::I64,
        }
    }
}

impl Op for TreeOp {
    fn name(&self) -> StaticName {
        format!("weir.{}", self.op_name()).into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let e = &self.ensemble;
        Ok(vec![format!("{} trees, {} outputs, {} features", e.n_trees(), e.n_outputs, e.n_features)])
    }

    op_as_typed_op!();
}

impl EvalOp for TreeOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let (n, cols) = match *input.shape() {
            [n, cols] => (n, cols),
            [cols] => (1, cols),
            ref other => bail!("{}: input must have rank 1 or 2, got shape {other:?}", self.op_name()),
        };
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let k = self.ensemble.n_outputs;
        let mut z = Tensor::zero::<f32>(&[n, k])?;
        let mut labels = vec![Label::Index(0); if self.labels.is_some() { n } else { 0 }];
        {
            let mut view = z.try_as_plain_ram_mut()?;
            let zs = view.as_slice_mut::<f32>()?;
            self.ensemble.eval(x, cols, zs, &mut labels).map_err(|e| format_err!("{}: {e}", self.op_name()))?;
        }
        let Some(names) = &self.labels else { return Ok(tvec!(z.into_tvalue())) };
        let label = match names {
            Labels::Int64(v) => {
                let out: Vec<i64> = labels
                    .iter()
                    .map(|l| match *l {
                        Label::Index(i) => v[i],
                        Label::Literal(x) => x,
                    })
                    .collect();
                tensor1(&out)
            }
            Labels::Strings(v) => {
                let out: Vec<String> = labels
                    .iter()
                    .map(|l| match *l {
                        Label::Index(i) => v[i].clone(),
                        Label::Literal(x) => v[x as usize].clone(),
                    })
                    .collect();
                tensor1(&out)
            }
        };
        Ok(tvec!(label.into_tvalue(), z.into_tvalue()))
    }
}

impl TypedOp for TreeOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n: TDim = if inputs[0].rank() == 1 { 1.into() } else { inputs[0].shape[0].clone() };
        let scores = f32::fact(&[n.clone(), self.ensemble.n_outputs.into()]);
        if self.labels.is_some() {
            Ok(tvec!(TypedFact::dt_shape(self.label_type(), &[n]), scores))
        } else {
            Ok(tvec!(scores))
        }
    }

    as_op!();
}

/// The inference-model form: type and shape rules, then the typed op.
#[derive(Debug, Clone)]
struct TreeExpansion(TreeOp);

impl Expansion for TreeExpansion {
    fn name(&self) -> StaticName {
        self.0.op_name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(if self.0.labels.is_some() { 2 } else { 1 })
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, self.nboutputs()?)?;
        s.equals(&inputs[0].rank, 2)?;
        let k = self.0.ensemble.n_outputs.to_dim();
        let scores = outputs.len() - 1;
        s.equals(&outputs[scores].datum_type, DatumType::F32)?;
        s.equals(&outputs[scores].rank, 2)?;
        s.equals(&outputs[scores].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[scores].shape[1], k)?;
        if scores == 1 {
            s.equals(&outputs[0].datum_type, self.0.label_type())?;
            s.equals(&outputs[0].rank, 1)?;
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        }
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.0.clone(), inputs)
    }
}
