//! `dialer dnc`: do-not-call lists (global, or per campaign).

use crate::Global;
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;
use store::DncScope;

/// Subcommands of `dialer dnc`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load numbers from a file: one per line, or a CSV whose first column is the number.
    Import {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        scope: Scope,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add numbers.
    Add {
        /// Numbers (national ones use --country).
        #[arg(required = true)]
        numbers: Vec<String>,
        #[command(flatten)]
        scope: Scope,
    },
    /// Remove a number.
    Remove {
        /// The number.
        number: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Tell whether a number may be called in a campaign.
    Check {
        /// The number.
        number: String,
        /// Campaign (its list and the global one apply).
        #[arg(long)]
        campaign: String,
    },
}

/// Which list, and how to read national numbers.
#[derive(Debug, clap::Args)]
pub struct Scope {
    /// The campaign's own list (default: the global list, which every campaign honours).
    #[arg(long)]
    campaign: Option<String>,
    /// Country of numbers written without a country code (default: the campaign's, else US).
    #[arg(long)]
    country: Option<String>,
}

async fn resolve(
    store: &store::Store,
    scope: &Scope,
) -> anyhow::Result<(DncScope, domain::Country)> {
    let (dnc_scope, campaign_country) = match &scope.campaign {
        Some(name) => {
            let campaign = store.require_campaign(name).await?;
            (
                DncScope::Campaign(campaign.id),
                Some(campaign.spec.default_country.clone()),
            )
        }
        None => (DncScope::Global, None),
    };
    let code = scope
        .country
        .clone()
        .or(campaign_country)
        .unwrap_or_else(|| "US".to_owned());
    let country = domain::spec::parse_country(&code).map_err(anyhow::Error::msg)?;
    Ok((dnc_scope, country))
}

fn normalize(country: domain::Country, number: &str) -> anyhow::Result<String> {
    domain::phone::Normalizer::new(country)
        .normalize(number)
        .map_err(anyhow::Error::msg)
}

/// Notes a change of a do-not-call list in the audit log, as the command line's.
async fn audit(
    store: &store::Store,
    action: &str,
    scope: DncScope,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    let target = match scope {
        DncScope::Global => "global".to_owned(),
        DncScope::Campaign(id) => format!("campaign {id}"),
    };
    store
        .audit(&store::Principal::cli(), action, &target, detail)
        .await?;
    Ok(())
}

/// Runs `dialer dnc`.
pub async fn run(command: Command, global: &Global) -> anyhow::Result<ExitCode> {
    let store = super::migrate::open(global).await?;
    match command {
        Command::Import { file, scope, json } => {
            let (dnc_scope, country) = resolve(&store, &scope).await?;
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let source = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let summary = store
                .import_dnc(
                    reader,
                    dnc_scope,
                    country,
                    source.as_deref().unwrap_or("file"),
                )
                .await?;
            audit(
                &store,
                "dnc.import",
                dnc_scope,
                serde_json::json!({"file": file.display().to_string(), "added": summary.added,
                    "already": summary.already, "rejected": summary.rejected}),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "{}: {} added, {} already listed, {} rejected",
                    file.display(),
                    summary.added,
                    summary.already,
                    summary.rejected
                );
                for error in summary.errors.iter().take(20) {
                    println!("  line {}: {}", error.line, error.reason);
                }
            }
        }
        Command::Add { numbers, scope } => {
            let (dnc_scope, country) = resolve(&store, &scope).await?;
            let numbers = numbers
                .iter()
                .map(|n| normalize(country, n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let added = store.add_dnc(dnc_scope, &numbers, "cli").await?;
            audit(
                &store,
                "dnc.add",
                dnc_scope,
                serde_json::json!({"numbers": numbers, "added": added}),
            )
            .await?;
            println!(
                "{added} added, {} already listed",
                numbers.len() as u64 - added
            );
        }
        Command::Remove { number, scope } => {
            let (dnc_scope, country) = resolve(&store, &scope).await?;
            let e164 = normalize(country, &number)?;
            if store.remove_dnc(dnc_scope, &e164).await? {
                audit(
                    &store,
                    "dnc.remove",
                    dnc_scope,
                    serde_json::json!({"number": e164}),
                )
                .await?;
                println!("{e164} removed");
            } else {
                println!("{e164} was not listed");
            }
        }
        Command::Check { number, campaign } => {
            let campaign = store.require_campaign(&campaign).await?;
            let country = campaign.spec.country()?;
            let e164 = normalize(country, &number)?;
            if store.is_dnc(campaign.id, &e164).await? {
                println!("{e164} is on a do-not-call list: never dialled");
                return Ok(ExitCode::from(1));
            }
            println!("{e164} may be called");
        }
    }
    Ok(ExitCode::SUCCESS)
}
