//! `dialer simulate`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer simulate`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer simulate` is not built yet")
}
