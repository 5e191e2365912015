//! `dialer migrate`, and opening the contact base for the other commands.

use crate::Global;
use anyhow::Context as _;
use std::process::ExitCode;

/// Options of `dialer migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dialer migrate`.
pub async fn run(_args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    open(global).await?;
    println!(
        "database is up to date ({})",
        redacted(&global.database_url)
    );
    Ok(ExitCode::SUCCESS)
}

/// Connects to the contact base and applies pending migrations (every command that uses the
/// database starts here, so a fresh machine needs no separate setup step).
pub async fn open(global: &Global) -> anyhow::Result<store::Store> {
    let url = redacted(&global.database_url);
    let store = store::Store::connect(&global.database_url)
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot apply the migrations to {url}"))?;
    Ok(store)
}

/// The database URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}
