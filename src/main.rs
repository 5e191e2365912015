//! `dialer`: the command line of the outbound predictive dialer.
//!
//! One binary, one subcommand per job (see `src/cmd/`): the campaign manager's list and campaign
//! tools, the pacing simulator, a test call through a trunk, the answering-machine classifier, and
//! (later) the service itself.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

/// Options every subcommand shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Contact base. SQLite by default (a file next to you, created on first use); give
    /// `postgres://user@host/db` for a shared PostgreSQL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://dialer.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// Log filter in `tracing` syntax (for example `info,sip=debug`). Logs go to stderr.
    #[arg(long, env = "DIALER_LOG", default_value = "warn", global = true)]
    pub log: String,
}

#[derive(Debug, Parser)]
#[command(name = "dialer", version, about = "Outbound predictive dialer")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli.command, cli.global)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
