//! # weir-online-learner
//!
//! Keeps weir's models learning from labels that arrive late. It owns:
//!
//! - the delayed-label join ([`join`]): each `Label` joined to the `Score` the scorer wrote
//!   for that event — the served score and the exact feature values the model saw, so
//!   the join is point-in-time correct by construction (never the features as they are
//!   now) — with a bounded wait and bounded memory, evictions counted;
//! - the incremental learner ([`model`]): running standardization (Welford) in front of
//!   `linfa-ftrl`'s FTRL-Proximal, one `FitWith` step per joined label, seeded;
//! - prequential evaluation ([`eval`]) of champion (served score) and challenger (the
//!   learner's prediction before training) over rolling windows;
//! - promotion decisions with guard rails ([`promote`]) and export of the learned model
//!   to ONNX ([`onnx`]) for the model registry;
//! - the checkpoint ([`checkpoint`]) and the engine tying it together ([`learner`]).
//!
//! It does no Kafka I/O: `weir learn` (root package) consumes the scores and labels
//! topics with `weir-ingest`'s consumer loop, in its own consumer group, so learning can
//! never slow scoring.
//!
//! ## Why a restart neither relearns nor skips a label
//!
//! The learner's whole state — model, scaler, counters, watermark, the join buffers, the
//! evaluation ring **and the last offset applied per partition** — is written to Redis in
//! one atomic write per batch (a Lua script, [`checkpoint::RedisCheckpoint::commit`]). Only after that
//! transaction returns does the consumer loop store the batch's Kafka offsets. So:
//!
//! - a crash before the transaction: nothing of the batch is in Redis, Kafka's committed
//!   offsets are at or before the batch, the batch is consumed again and applied once;
//! - a crash after it: the batch is in Redis and may still be consumed again (Kafka's
//!   offsets lag the checkpoint); every record at or below its partition's checkpointed
//!   offset is skipped ([`learner::Learner::apply`]), so it is not applied twice.
//!
//! Kafka's committed offset is therefore never ahead of the checkpoint (no label
//! skipped), and the checkpoint's offsets fence off everything already applied (no label
//! learned twice). A label's learning is tied to the consumption of *that label record*:
//! it joins at most once, when it or its score is first applied; and a label or score
//! that a producer delivered twice is recognised by the remembered joined ids (bounded
//! like the pending scores) and counted as a duplicate. The counters
//! `learned` and `learned_fingerprint` (a sum of hashes of the learned event ids) are in
//! the same transaction, which is what `tests/tests/learner_restart.rs` checks after
//! SIGKILLs of the real `weir learn` process.
//!
//! One learner process per learner name, enforced: a process takes the learner's lease in
//! Redis first (with a fencing token, renewed while it runs) and restores only then; a
//! second one waits. The checkpoint write refuses a holder whose token is no longer the
//! newest, so a process paused past its lease and replaced cannot overwrite its
//! successor's checkpoint (see [`checkpoint`]; `tests/tests/learner_lease.rs`).
//!
//! ```
//! use weir_online_learner::{config::LearnerConfig, learner::{Input, Learner, Position}};
//! use weir_schemas::events::{FeatureValue, Label, ModelOutput, Score};
//!
//! let mut learner = Learner::restore(LearnerConfig::default(), None, vec![], vec![], vec![], vec![]).unwrap();
//! let score = Score {
//!     event_id: "e1".into(), key: "c1".into(), event_time: 1_000, model_name: "fraud".into(),
//!     model_version: "v1".into(), output: ModelOutput::binary(0.2), decision: "approve".into(),
//!     features: vec![FeatureValue { name: "amount_log".into(), value: 3.2 }],
//!     reasons: vec![], scored_at: 1_001, attributes: Default::default(),
//! };
//! let label = Label { event_id: "e1".into(), card_id: "c1".into(), is_fraud: false, event_time: 1_000, label_time: 60_000 };
//! let at = |topic: &str| Position { topic: topic.into(), partition: 0, offset: 0 };
//! let commit = learner.apply(vec![(at("scores"), Input::Score(score)), (at("labels"), Input::Label(label))]).unwrap();
//! assert_eq!(commit.learned, 1);
//! ```

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod eval;
pub mod join;
pub mod learner;
pub mod model;
pub mod onnx;
pub mod promote;

pub use error::{Error, Result};
