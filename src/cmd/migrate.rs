//! `dialer migrate`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer migrate`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer migrate` is not built yet")
}
