//! `weir check-config`: load a configuration file and report every problem at once.

use std::path::Path;

use anyhow::Context;

use crate::config::WeirConfig;

pub fn execute(path: &Path) -> anyhow::Result<()> {
    let config = WeirConfig::load(path)?;
    // What the file alone cannot say: a secret's variable unset, its file unreadable.
    if config.schemas.registry_url.is_some() {
        crate::wiring::client_settings(&config)
            .and_then(|s| Ok(weir_schema_registry::rest::RestClient::new(&s)?))
            .with_context(|| format!("{}: the schema registry settings", path.display()))?;
    }
    println!("{}: ok", path.display());
    Ok(())
}
