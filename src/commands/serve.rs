//! `weir serve`: request-time scoring over HTTP (see [`crate::stages::serve`]).

use std::net::SocketAddr;

use crate::commands::startup::{start_scoring, Scoring};
use crate::config::WeirConfig;
use crate::stages::serve::bind_and_serve;

pub async fn execute(config: WeirConfig, listen: SocketAddr) -> anyhow::Result<()> {
    let Scoring { store, model, shutdown } = start_scoring(&config).await?;
    bind_and_serve(&config, listen, store, model, shutdown).await
}
