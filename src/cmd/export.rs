//! `dialer export`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer export`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer export`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer export` is not built yet")
}
