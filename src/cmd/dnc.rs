//! `dialer dnc`.

use crate::Global;
use std::process::ExitCode;

/// Subcommands of `dialer dnc`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `dialer dnc`.
pub async fn run(command: Command, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {}
}
