//! `dialer lab`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer lab`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer lab`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer lab` is not built yet")
}
