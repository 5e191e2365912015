//! `dialer campaign`.

use crate::Global;
use std::process::ExitCode;

/// Subcommands of `dialer campaign`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `dialer campaign`.
pub async fn run(command: Command, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {}
}
