//! # weir
//!
//! The `weir` binary's library half: it wires the stage crates together. Stage crates
//! never depend on each other; this crate and `weir-tests` are where they meet.
//!
//! - [`config`]: `weir.toml`, layered and checked as a whole;
//! - [`pipeline`]: the scoring pipeline behind the consumer loop;
//! - [`demo`]: `weir demo` on the embedded default;
//! - [`produce`]: `weir produce`, the load generator's front end;
//! - [`monitor_stage`]: `[scores] + [labels] → monitor → [drift-alerts]`;
//! - [`learn`]: `weir learn`, the online learner's stage (and [`promote`], its registry side).

pub mod bench;
pub mod config;
pub mod demo;
pub mod input;
pub mod learn;
pub mod monitor_stage;
pub mod pipeline;
pub mod models_cmd;
pub mod produce;
pub mod promote;
pub mod serve;
pub mod shadow;
