//! Export of a learned linear model to ONNX, with standard operators only (opset 13:
//! `Cast`, `MatMul`, `Add`, `Neg`, `Exp`, `Div`, `Sub`, `Concat`) so that tract and onnxruntime both
//! run it, in the layout the scorer expects: float input `[batch, k]`, float output
//! `probabilities` `[batch, 2]` with the positive class in column 1.
//!
//! The arithmetic is done in double precision: the input is cast to f64 and the weights
//! are stored as f64, so the only roundings against the in-memory learner are the
//! features' own f32 values (the scorer hands the model f32, and the `Score` event carries
//! those same values) and the final f32 probability. That keeps the exported model within
//! 1e-6 of [`crate::model::LinearModel::predict`] even for features in the thousands.
//!
//! ```text
//! input f32[N,k] ─Cast(f64)─ MatMul(W f64[k,1]) ─ Add(b f64[1]) ─ logit
//! p1 = Div(1, Add(1, Exp(Neg(logit))))      (tract has no f64 Sigmoid kernel)
//! p0 = Sub(1, p1);  probabilities = Cast(f32, Concat([p0, p1], axis 1))
//! ```

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use crate::model::LinearModel;

pub const INPUT: &str = "input";
pub const OUTPUT: &str = "probabilities";

fn tensor_type(elem: DataType, dims: &[Option<i64>]) -> Option<pb::TypeProto> {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Some(n) => Value::DimValue(*n),
                None => Value::DimParam("N".into()),
            }),
        })
        .collect();
    Some(pb::TypeProto {
        denotation: String::new(),
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: elem as i32,
            shape: Some(pb::TensorShapeProto { dim }),
        })),
    })
}

fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    pb::ValueInfoProto { name: name.into(), r#type: tensor_type(elem, dims), ..Default::default() }
}

fn doubles(name: &str, dims: &[i64], data: Vec<f64>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Double as i32,
        double_data: data,
        ..Default::default()
    }
}

fn int_attr(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        name: output.to_string(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    }
}

/// The ONNX bytes of `model` (`doc` goes into the model's doc string).
pub fn export(model: &LinearModel, doc: &str) -> Vec<u8> {
    let k = model.weights.len() as i64;
    let graph = pb::GraphProto {
        name: "weir_online_linear".into(),
        node: vec![
            node("Cast", &[INPUT], "x64", vec![int_attr("to", DataType::Double as i64)]),
            node("MatMul", &["x64", "W"], "xw", vec![]),
            node("Add", &["xw", "b"], "logit", vec![]),
            // The logistic function spelled out: tract's Sigmoid has no f64 kernel.
            node("Neg", &["logit"], "neg_logit", vec![]),
            node("Exp", &["neg_logit"], "exp_neg", vec![]),
            node("Add", &["one", "exp_neg"], "denominator", vec![]),
            node("Div", &["one", "denominator"], "p1", vec![]),
            node("Sub", &["one", "p1"], "p0", vec![]),
            node("Concat", &["p0", "p1"], "p64", vec![int_attr("axis", 1)]),
            node("Cast", &["p64"], OUTPUT, vec![int_attr("to", DataType::Float as i64)]),
        ],
        initializer: vec![
            doubles("W", &[k, 1], model.weights.clone()),
            doubles("b", &[1], vec![model.bias]),
            doubles("one", &[1], vec![1.0]),
        ],
        input: vec![value_info(INPUT, DataType::Float, &[None, Some(k)])],
        output: vec![value_info(OUTPUT, DataType::Float, &[None, Some(2)])],
        ..Default::default()
    };
    let m = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
        producer_name: "weir-online-learner".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(graph),
        ..Default::default()
    };
    m.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use tract_onnx::prelude::*;

    use super::*;

    /// tract runs the export and agrees with the model in memory.
    #[test]
    fn tract_runs_the_export_and_agrees() {
        let model = LinearModel { weights: vec![0.5, -0.002, 3.0], bias: -1.25 };
        let bytes = export(&model, "test");
        let rows: Vec<[f32; 3]> = vec![[1.0, 2000.0, 0.0], [0.0, 0.0, 1.0], [-3.5, 12.25, 1.0], [40.0, 10000.0, 0.0]];
        let plan = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(&bytes))
            .unwrap()
            .with_input_fact(0, f32::fact([rows.len(), 3]).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let input = Tensor::from_shape(&[rows.len(), 3], &flat).unwrap();
        let out = plan.run(tvec!(input.into_tvalue())).unwrap();
        let probs = out[0].to_plain_array_view::<f32>().unwrap();
        for (i, r) in rows.iter().enumerate() {
            let x: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
            let expected = model.predict(&x);
            assert!((f64::from(probs[[i, 1]]) - expected).abs() < 1e-6, "row {i}: {} vs {expected}", probs[[i, 1]]);
            assert!((f64::from(probs[[i, 0]]) - (1.0 - expected)).abs() < 1e-6);
        }
    }
}
