//! `dialer import`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer import`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer import`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer import` is not built yet")
}
