//! `dialer amd`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer amd`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer amd`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer amd` is not built yet")
}
