//! `dialer campaign`: apply campaign files, list and show campaigns, start and stop them.

use crate::Global;
use anyhow::Context as _;
use domain::{CampaignSpec, CampaignStatus};
use std::path::PathBuf;
use std::process::ExitCode;
use store::Applied;

/// Subcommands of `dialer campaign`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create or update campaigns from TOML files (see campaigns/README.md).
    Apply {
        /// Campaign files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check campaign files without touching the database.
    Check {
        /// Campaign files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List campaigns with their status and contact counts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one campaign: its settings and where its contacts stand.
    Show {
        /// Campaign name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start dialling.
    Start {
        /// Campaign name.
        name: String,
    },
    /// Stop dialling for now (calls in flight finish).
    Pause {
        /// Campaign name.
        name: String,
    },
    /// Stop the campaign.
    Stop {
        /// Campaign name.
        name: String,
    },
}

fn read_spec(path: &PathBuf) -> anyhow::Result<CampaignSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    CampaignSpec::from_toml(&text).map_err(|err| match err {
        domain::Error::InvalidSpec(errors) => {
            let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!(
                "{} is not a valid campaign:\n{}",
                path.display(),
                list.join("\n")
            )
        }
        other => anyhow::Error::new(other).context(path.display().to_string()),
    })
}

/// Runs `dialer campaign`.
pub async fn run(command: Command, global: &Global) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { files } => {
            for file in &files {
                let spec = read_spec(file)?;
                println!("{}: campaign `{}` is valid", file.display(), spec.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { files } => {
            // Every file is checked before any is applied: a typo in one changes nothing.
            let specs = files
                .iter()
                .map(read_spec)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let store = super::migrate::open(global).await?;
            for spec in &specs {
                let (campaign, applied) = store.apply_campaign(spec).await?;
                if applied != Applied::Unchanged {
                    store
                        .audit(
                            &store::Principal::cli(),
                            "campaign.apply",
                            &campaign.name,
                            serde_json::json!({"applied": applied, "spec": spec}),
                        )
                        .await?;
                }
                let what = match applied {
                    Applied::Created => "created (paused)",
                    Applied::Updated => "updated",
                    Applied::Unchanged => "unchanged",
                };
                println!("campaign `{}` (id {}) {what}", campaign.name, campaign.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { json } => {
            let store = super::migrate::open(global).await?;
            let mut rows = Vec::new();
            for campaign in store.campaigns().await? {
                let counts = store.contact_counts(campaign.id).await?;
                rows.push((campaign, counts));
            }
            if json {
                let value: Vec<_> = rows
                    .iter()
                    .map(|(c, counts)| {
                        serde_json::json!({
                            "id": c.id,
                            "name": c.name,
                            "status": c.status,
                            "mode": c.spec.pacing.mode,
                            "contacts": counts_json(counts),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else if rows.is_empty() {
                println!("no campaigns yet: `dialer campaign apply campaigns/<file>.toml`");
            } else {
                println!(
                    "{:<6} {:<28} {:<9} {:<12} {:>10}",
                    "ID", "NAME", "STATUS", "MODE", "CONTACTS"
                );
                for (c, counts) in &rows {
                    let total: u64 = counts.iter().map(|(_, n)| n).sum();
                    println!(
                        "{:<6} {:<28} {:<9} {:<12} {:>10}",
                        c.id,
                        c.name,
                        c.status.as_str(),
                        c.spec.pacing.mode.as_str(),
                        total
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { name, json } => {
            let store = super::migrate::open(global).await?;
            let campaign = store.require_campaign(&name).await?;
            let counts = store.contact_counts(campaign.id).await?;
            let window = campaign.spec.pacing.abandon_window.duration();
            let abandons = store.abandon_counts_over(campaign.id, window).await?;
            if json {
                let value = serde_json::json!({
                    "campaign": campaign,
                    "contacts": counts_json(&counts),
                    "abandon": {
                        "live_answers": abandons.live_answers,
                        "abandons": abandons.abandons,
                        "rate": abandons.rate(),
                    },
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            let s = &campaign.spec;
            println!(
                "campaign   {} (id {}), {}",
                campaign.name, campaign.id, campaign.status
            );
            if let Some(text) = &s.description {
                println!("           {text}");
            }
            println!(
                "dialling   {:?}, ratio {} ({}..{}), at most {} lines, abandon target {:.1}% over {}",
                s.pacing.mode,
                s.pacing.ratio,
                s.pacing.min_ratio,
                s.pacing.max_ratio,
                s.pacing.max_lines,
                s.pacing.abandon_target * 100.0,
                match s.pacing.abandon_window {
                    domain::AbandonWindow::Day => "24h",
                    domain::AbandonWindow::ThirtyDays => "30 days",
                }
            );
            println!(
                "calls      caller id {}, ring {}, trunk {} ({:?}, {} calls/s), AMD {}",
                s.caller_id,
                s.ring_timeout,
                s.trunk.uri,
                s.trunk.transport,
                s.trunk.cps,
                if s.amd.enabled { "on" } else { "off" }
            );
            println!(
                "hours      {} callee local time (default country {})",
                s.calling_hours.default, s.default_country
            );
            println!(
                "retries    up to {} attempts; busy {}, no answer {}, machine {}, failed {}, abandoned {}",
                s.retry.max_attempts,
                s.retry.busy.delay,
                s.retry.no_answer.delay,
                s.retry.machine.delay,
                s.retry.failed.delay,
                s.retry.abandoned.delay
            );
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            println!("contacts   {total}");
            for (status, n) in &counts {
                println!("  {:<10} {n:>10}", status.as_str());
            }
            println!(
                "abandons   {} of {} live answers ({:.2}%) in the window",
                abandons.abandons,
                abandons.live_answers,
                abandons.rate() * 100.0
            );
            let preview = store
                .contacts(&store::ContactQuery {
                    campaign_id: campaign.id,
                    limit: 5,
                    ..Default::default()
                })
                .await?;
            if !preview.is_empty() {
                println!("first contacts:");
                for c in preview {
                    println!(
                        "  {:<16} {:<9} {:<36} {}",
                        c.e164,
                        c.status.as_str(),
                        c.zones.join(","),
                        serde_json::Value::Object(c.extra)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Start { name } => set_status(global, &name, CampaignStatus::Running).await,
        Command::Pause { name } => set_status(global, &name, CampaignStatus::Paused).await,
        Command::Stop { name } => set_status(global, &name, CampaignStatus::Stopped).await,
    }
}

fn counts_json(counts: &[(domain::ContactStatus, u64)]) -> serde_json::Value {
    serde_json::Value::Object(
        counts
            .iter()
            .map(|(status, n)| (status.as_str().to_owned(), serde_json::Value::from(*n)))
            .collect(),
    )
}

async fn set_status(
    global: &Global,
    name: &str,
    status: CampaignStatus,
) -> anyhow::Result<ExitCode> {
    let store = super::migrate::open(global).await?;
    let campaign = store.require_campaign(name).await?;
    store.set_campaign_status(campaign.id, status).await?;
    println!("campaign `{name}` is {status}");
    Ok(ExitCode::SUCCESS)
}
