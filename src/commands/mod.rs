//! The `weir` subcommands' bodies, one file each; `main.rs` only parses the command line
//! and dispatches here. Commands take the configuration, build components through
//! `crate::wiring` and run `crate::stages`; nothing below imports a command.

pub mod bench;
pub mod check_config;
pub mod demo;
pub mod learn;
pub mod models;
pub mod monitor;
pub mod produce;
pub mod run;
pub mod serve;
pub mod startup;
