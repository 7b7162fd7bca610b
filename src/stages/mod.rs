//! The stages `weir` runs, each taking the components `crate::wiring` builds: the
//! scoring pipeline ([`score`], with its challenger's [`shadow`] scoring), the drift
//! [`monitor`], the online learner ([`learn`], publishing through [`promote`]), request-time
//! scoring over HTTP ([`serve`]), the model registry's watcher ([`registry_watch`]) and the
//! consumer-lag gauge ([`lag_watch`]).
//!
//! Dependencies point one way: `score` uses `shadow` and `registry_watch`, `serve` uses
//! `score`'s scoring step, `learn` uses `promote`; none of them uses a command.

pub mod lag_watch;
pub mod learn;
pub mod local_state;
pub mod monitor;
pub mod promote;
pub mod registry_watch;
pub mod score;
pub mod serve;
pub mod shadow;
