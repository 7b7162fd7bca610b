//! # weir
//!
//! The `weir` binary's library half: it wires the stage crates together. Stage crates
//! never depend on each other; this crate and `weir-tests` are where they meet.
//!
//! In layers, each using only the ones above it (ripgrep's `lowargs` → `hiargs`):
//!
//! - [`config`]: `weir.toml`, layered and checked as a whole; imports nothing else here;
//! - [`wiring`]: configuration in, components out — schema registry, model, feature and
//!   input plans, the online store, the registry watcher;
//! - [`stages`]: what runs — scoring (+ shadow), monitor, learner (+ promotion), the HTTP
//!   scorer, the registry watcher, the lag gauge;
//! - [`commands`]: one file per `weir` subcommand; `main.rs` parses and dispatches.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! let config = weir::config::WeirConfig::load("weir.toml".as_ref())?;
//! let store = Arc::new(weir::wiring::connect_redis_store(&config).await?);
//! let model = Arc::new(weir::wiring::load_model(&config)?);
//! let stats = Arc::new(weir::stages::score::PipelineStats::default());
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! weir::stages::score::run_pipeline(&config, store, model, stats, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod commands;
pub mod config;
pub mod stages;
pub mod wiring;
