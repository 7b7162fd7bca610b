//! The tract side: a loader builder per op name, an inference-time expansion (shape and
//! type rules), and the typed op the optimized plan runs.

use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::{NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

use super::attrs::{self, Kind, Labels, TreeAttrs};
use super::ensemble::{Ensemble, Label};

/// Registers weir's `TreeEnsembleClassifier`, `TreeEnsembleRegressor` and `TreeEnsemble`
/// builders, replacing tract's.
pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleClassifier", build);
    reg.insert("TreeEnsembleRegressor", build);
    reg.insert("TreeEnsemble", build);
}

fn build(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let load = |t: &TensorProto| -> Result<Vec<f64>, String> {
        let tensor = ctx.load_tensor(t).map_err(|e| format!("{e:#}"))?;
        let doubles = tensor.cast_to::<f64>().map_err(|e| format!("{e:#}"))?;
        let view = doubles.try_as_plain_ram().map_err(|e| format!("{e:#}"))?;
        Ok(view.as_slice::<f64>().map_err(|e| format!("{e:#}"))?.to_vec())
    };
    let attrs = attrs::read(node, &load).map_err(|e| format_err!("{e}"))?;
    // Built now so that a malformed ensemble is refused at load. The f64 form, for a
    // double input, is built when the input type is known (`wire`).
    let ensemble = Ensemble::<f32>::build(&attrs).map_err(|e| format_err!("{e}"))?;
    let labels = match &attrs.kind {
        Kind::Classifier(labels) => Some(labels.clone()),
        Kind::Regressor { .. } => None,
    };
    let expansion = TreeExpansion { attrs: Arc::new(attrs), f32: Arc::new(ensemble), labels };
    Ok((expand(expansion), vec![]))
}

/// The ensemble in the number type of the input: onnxruntime compares and sums in f32
/// for float (and integer) inputs, in f64 for double inputs.
#[derive(Debug, Clone)]
enum Compiled {
    F32(Arc<Ensemble<f32>>),
    F64(Arc<Ensemble<f64>>),
}

/// The typed op: one ensemble, evaluated over the whole input batch.
#[derive(Debug, Clone)]
pub struct TreeOp {
    compiled: Compiled,
    /// `Some` for a classifier.
    labels: Option<Labels>,
    op_name: &'static str,
    /// The scores' type: f32, or for `TreeEnsemble` the input's type.
    scores_type: DatumType,
}

// Ops are compared by tract when it dedups nodes; an ensemble is only ever equal to
// itself (comparing thousands of floats to merge two ensembles is never worth it).
impl PartialEq for TreeOp {
    fn eq(&self, other: &Self) -> bool {
        match (&self.compiled, &other.compiled) {
            (Compiled::F32(a), Compiled::F32(b)) => Arc::ptr_eq(a, b),
            (Compiled::F64(a), Compiled::F64(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}
impl Eq for TreeOp {}

fn label_type(labels: &Option<Labels>) -> DatumType {
    match labels {
        Some(Labels::Strings(_)) => DatumType::String,
        _ => DatumType::I64,
    }
}

impl TreeOp {
    fn n_outputs(&self) -> usize {
        match &self.compiled {
            Compiled::F32(e) => e.n_outputs,
            Compiled::F64(e) => e.n_outputs,
        }
    }
}

impl Op for TreeOp {
    fn name(&self) -> StaticName {
        format!("weir.{}", self.op_name).into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (trees, outputs, features, layout, ty) = match &self.compiled {
            Compiled::F32(e) => (e.n_trees(), e.n_outputs, e.n_features, e.layout(), "f32"),
            Compiled::F64(e) => (e.n_trees(), e.n_outputs, e.n_features, e.layout(), "f64"),
        };
        Ok(vec![format!("{trees} trees, {outputs} outputs, {features} features, {layout} layout in {ty}")])
    }

    op_as_typed_op!();
}

/// Rows and columns of a rank-1 (one row) or rank-2 input.
fn rows_cols(op: &str, shape: &[usize]) -> TractResult<(usize, usize)> {
    match *shape {
        [n, cols] => Ok((n, cols)),
        [cols] => Ok((1, cols)),
        ref other => bail!("{op}: input must have rank 1 or 2, got shape {other:?}"),
    }
}

impl EvalOp for TreeOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let op = self.op_name;
        let (n, cols) = rows_cols(op, input.shape())?;
        let k = self.n_outputs();
        let mut labels = vec![Label::Index(0); if self.labels.is_some() { n } else { 0 }];
        let z = match &self.compiled {
            Compiled::F32(e) => {
                let input = input.cast_to::<f32>()?;
                let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
                let mut z = Tensor::zero::<f32>(&[n, k])?;
                {
                    let mut view = z.try_as_plain_ram_mut()?;
                    e.eval(x, cols, view.as_slice_mut::<f32>()?, &mut labels).map_err(|e| format_err!("{op}: {e}"))?;
                }
                z
            }
            Compiled::F64(e) => {
                let input = input.cast_to::<f64>()?;
                let x = input.try_as_plain_ram()?.as_slice::<f64>()?;
                let mut z = Tensor::zero::<f64>(&[n, k])?;
                {
                    let mut view = z.try_as_plain_ram_mut()?;
                    e.eval(x, cols, view.as_slice_mut::<f64>()?, &mut labels).map_err(|e| format_err!("{op}: {e}"))?;
                }
                // The classic ops' scores are float whatever the input; onnxruntime
                // sums in double and converts at the end.
                if self.scores_type == DatumType::F32 { z.cast_to::<f32>()?.into_owned() } else { z }
            }
        };
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
        let scores = TypedFact::dt_shape(self.scores_type, &[n.clone(), self.n_outputs().into()]);
        if self.labels.is_some() {
            Ok(tvec!(TypedFact::dt_shape(label_type(&self.labels), &[n]), scores))
        } else {
            Ok(tvec!(scores))
        }
    }

    as_op!();
}

/// The inference-model form: type and shape rules, then the typed op.
#[derive(Debug, Clone)]
struct TreeExpansion {
    attrs: Arc<TreeAttrs>,
    f32: Arc<Ensemble<f32>>,
    labels: Option<Labels>,
}

impl Expansion for TreeExpansion {
    fn name(&self) -> StaticName {
        self.attrs.op_name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(if self.labels.is_some() { 2 } else { 1 })
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
        let k = self.f32.n_outputs.to_dim();
        let scores = outputs.len() - 1;
        if self.attrs.v5 {
            s.equals(&outputs[scores].datum_type, &inputs[0].datum_type)?;
        } else {
            s.equals(&outputs[scores].datum_type, DatumType::F32)?;
        }
        s.equals(&outputs[scores].rank, 2)?;
        s.equals(&outputs[scores].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[scores].shape[1], k)?;
        if scores == 1 {
            s.equals(&outputs[0].datum_type, label_type(&self.labels))?;
            s.equals(&outputs[0].rank, 1)?;
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        }
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let op_name = self.attrs.op_name();
        let input_type = model.outlet_fact(inputs[0])?.datum_type;
        let compiled = if input_type == DatumType::F64 {
            Compiled::F64(Arc::new(Ensemble::<f64>::build(&self.attrs).map_err(|e| format_err!("{e}"))?))
        } else {
            // onnxruntime: TreeEnsemble takes float or double; the classic ops also take
            // int32/int64, compared as float.
            if self.attrs.v5 && input_type != DatumType::F32 {
                bail!("{op_name}: input type {input_type:?} is not supported (float and double are)");
            }
            Compiled::F32(self.f32.clone())
        };
        let scores_type = if self.attrs.v5 { input_type } else { DatumType::F32 };
        let op = TreeOp { compiled, labels: self.labels.clone(), op_name, scores_type };
        model.wire_node(prefix, op, inputs)
    }
}
