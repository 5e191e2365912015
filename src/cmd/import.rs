//! `dialer import`: upload a call list (CSV) into a campaign.

use crate::Global;
use anyhow::Context as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `dialer import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Campaign to import into (by name).
    #[arg(long)]
    pub campaign: String,
    /// CSV file with a header line.
    pub file: PathBuf,
    /// Header of the phone column (default: phone, phone_number, number, telephone, tel, mobile).
    #[arg(long)]
    pub phone_column: Option<String>,
    /// Header of a time-zone column with IANA names (default: timezone, time_zone or tz if
    /// present; otherwise the zone comes from the number).
    #[arg(long)]
    pub timezone_column: Option<String>,
    /// Field delimiter (one character).
    #[arg(long, default_value = ",")]
    pub delimiter: char,
    /// Print the summary as JSON (imported, duplicates, dnc, rejected, errors with line and reason).
    #[arg(long)]
    pub json: bool,
    /// Print at most this many row errors (all are in --json).
    #[arg(long, default_value_t = 20)]
    pub show_errors: usize,
}

/// Runs `dialer import`.
pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let delimiter = u8::try_from(args.delimiter)
        .ok()
        .filter(u8::is_ascii)
        .context("--delimiter must be one ASCII character")?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let store = super::migrate::open(global).await?;
    let campaign = store.require_campaign(&args.campaign).await?;

    let bar = if !args.json && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let options = store::ImportOptions {
        phone_column: args.phone_column,
        timezone_column: args.timezone_column,
        list_name: args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into()),
        delimiter,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let summary = store
        .import_csv(campaign.id, bar.wrap_read(file), &options)
        .await
        .with_context(|| format!("importing {}", args.file.display()))?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} rows in {:.1}s into `{}`: {} imported, {} duplicates, {} on do-not-call lists, {} rejected",
        args.file.display(),
        summary.rows,
        elapsed.as_secs_f64(),
        campaign.name,
        summary.imported,
        summary.duplicates,
        summary.dnc,
        summary.rejected
    );
    for error in summary.errors.iter().take(args.show_errors) {
        println!("  line {}: {}", error.line, error.reason);
    }
    let hidden = summary.rejected.saturating_sub(args.show_errors as u64);
    if hidden > 0 {
        println!("  ... and {hidden} more rejected rows (--json lists them all)");
    }
    Ok(ExitCode::SUCCESS)
}
