//! `dialer serve`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer serve`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer serve` is not built yet")
}
