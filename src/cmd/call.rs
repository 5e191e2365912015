//! `dialer call`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer call`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer call`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer call` is not built yet")
}
