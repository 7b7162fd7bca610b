//! `weir check-config`: load a configuration file and report every problem at once.

use std::path::Path;

use crate::config::WeirConfig;

pub fn execute(path: &Path) -> anyhow::Result<()> {
    WeirConfig::load(path)?;
    println!("{}: ok", path.display());
    Ok(())
}
