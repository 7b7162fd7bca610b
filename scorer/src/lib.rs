//! # weir-scorer
//!
//! Scores events with ONNX models through tract. It owns:
//!
//! - loading a model version (`.onnx` + `metadata.json`, the format in
//!   [`weir_schemas::model`]) and validating it before it may serve: checksum, feature
//!   list, canary rows ([`model`]);
//! - batched scoring with fixed-shape optimized plans ([`model::LoadedModel::score`]);
//! - decisions from thresholds ([`config`]);
//! - the serving model behind an `ArcSwap` and the watcher that follows the registry's
//!   champion pointer, swapping in only validated versions ([`live`]);
//! - reason codes: exact for linear models, occlusion for others ([`reasons`]);
//! - weir's own ONNX-ML tree-ensemble ops registered into tract's loader, fast
//!   enough to serve forests and boosted trees ([`trees`]);
//! - the baseline model compiled into weir for `weir demo` ([`baseline`]).
//!
//! ```no_run
//! # fn names() -> Vec<String> { vec![] }
//! let model = weir_scorer::baseline::load(&names(), &[1, 64]).unwrap();
//! let k = model.feature_count();
//! let scores = model.score(&vec![0.0; 3 * k]).unwrap();
//! assert_eq!(scores.len(), 3);
//! ```

pub mod baseline;
pub mod config;
pub mod error;
pub mod live;
pub mod model;
pub mod reasons;
pub mod trees;

pub use error::{Error, Result};
