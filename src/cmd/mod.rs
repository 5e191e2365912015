//! One module per subcommand, dispatched from [`Command`].

use crate::Global;
use std::process::ExitCode;

pub mod accounts;
pub mod amd;
pub mod call;
pub mod campaign;
pub mod demo;
pub mod dnc;
pub mod export;
pub mod import;
pub mod lab;
pub mod migrate;
pub mod serve;
pub mod simulate;

/// Every subcommand of `dialer`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Apply the database migrations (serve and import also do this on start).
    Migrate(migrate::Args),
    /// Create, update and show campaigns from their TOML files.
    #[command(subcommand)]
    Campaign(campaign::Command),
    /// Upload a call list (CSV) into a campaign.
    Import(import::Args),
    /// Manage do-not-call lists.
    #[command(subcommand)]
    Dnc(dnc::Command),
    /// Write a campaign's contacts with their status and last outcome as CSV.
    Export(export::Args),
    /// Simulate a campaign's day with the real pacer and print occupancy and abandons.
    Simulate(simulate::Args),
    /// Place one test call through a trunk and print every step.
    Call(call::Args),
    /// Classify WAV recordings as human or answering machine.
    Amd(amd::Args),
    /// Run the dialer service: campaigns, SIP, media, the HTTP API.
    Serve(serve::Args),
    /// Run the dialer against the built-in lab network with a live terminal view.
    Demo(demo::Args),
    /// Run the lab network alone (a carrier and agent phones) for a dialer to call.
    Lab(lab::Args),
    /// Users of the HTTP API: add (the first admin, say), list, delete, password.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// API tokens: add (printed once), list, revoke.
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// The audit log: who changed what, when.
    Audit(accounts::AuditArgs),
}

/// Runs one subcommand; the exit code says whether it did its job.
pub async fn run(command: Command, global: Global) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate(args) => migrate::run(args, &global).await,
        Command::Campaign(command) => campaign::run(command, &global).await,
        Command::Import(args) => import::run(args, &global).await,
        Command::Dnc(command) => dnc::run(command, &global).await,
        Command::Export(args) => export::run(args, &global).await,
        Command::Simulate(args) => simulate::run(args, &global).await,
        Command::Call(args) => call::run(args, &global).await,
        Command::Amd(args) => amd::run(args, &global).await,
        Command::Serve(args) => serve::run(args, &global).await,
        Command::Demo(args) => demo::run(args, &global).await,
        Command::Lab(args) => lab::run(args, &global).await,
        Command::User(command) => accounts::run_user(command, &global).await,
        Command::Token(command) => accounts::run_token(command, &global).await,
        Command::Audit(args) => accounts::run_audit(args, &global).await,
    }
}
