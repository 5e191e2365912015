//! `dialer export`: a campaign's contacts with status, attempts and last outcome, as CSV.

use crate::Global;
use anyhow::Context as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `dialer export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Campaign to export (by name).
    #[arg(long)]
    pub campaign: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Runs `dialer export`.
pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let store = super::migrate::open(global).await?;
    let campaign = store.require_campaign(&args.campaign).await?;
    let rows = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let rows = store.export_csv(campaign.id, &mut out).await?;
            out.flush()?;
            eprintln!("{rows} contacts written to {}", path.display());
            rows
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let rows = store.export_csv(campaign.id, &mut out).await?;
            out.flush()?;
            rows
        }
    };
    tracing::info!(campaign = %campaign.name, rows, "exported");
    Ok(ExitCode::SUCCESS)
}
