//! `dialer demo`.

use crate::Global;
use std::process::ExitCode;

/// Options of `dialer demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer demo`.
pub async fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dialer demo` is not built yet")
}
