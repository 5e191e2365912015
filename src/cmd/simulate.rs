//! `dialer simulate`: a campaign's day with the real pacer, before a setting is changed for real.

use crate::Global;
use anyhow::Context;
use domain::{AbandonWindow, CampaignSpec, DialMode};
use pacing::sim::{self, Mix, Policy, Report, Scenario, VicidialSettings};
use pacing::{Config, NO_LINE_CAP};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `dialer simulate`.
///
/// The pacing settings (mode, ratios, target, window, lines, CPS) come from the flags, else from
/// `--campaign FILE.toml`, else from the defaults shown.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Take the pacing settings, the trunk's CPS and the ring timeout from this campaign file
    /// (flags given as well override it).
    #[arg(long, value_name = "FILE.toml")]
    pub campaign: Option<PathBuf>,
    /// Agents logged in all day.
    #[arg(long, default_value_t = 50)]
    pub agents: u32,
    /// Hours to simulate.
    #[arg(long, default_value_t = 8.0)]
    pub hours: f64,
    /// Dial mode: preview, progressive, predictive, agentless, or the references `vicidial`
    /// (VICIdial's adaptive dial level) and `foresight` (the perfect-foresight bound)
    /// [default: predictive].
    #[arg(long)]
    pub mode: Option<String>,
    /// Run every reference policy (progressive 1:1, ratio 2 and 3, VICIdial, predictive,
    /// perfect foresight) on the same contacts and compare them.
    #[arg(long)]
    pub compare: bool,
    /// The harder day: live answers falling from 30% to 12% over the afternoon, and 20% of the
    /// agents pausing 5 minutes at random each hour.
    #[arg(long)]
    pub hard_day: bool,
    /// Share of calls answered by a person.
    #[arg(long, default_value_t = 0.25)]
    pub live: f64,
    /// Share answered by a machine (hung up after AMD).
    #[arg(long, default_value_t = 0.10)]
    pub machine: f64,
    /// Share busy.
    #[arg(long, default_value_t = 0.10)]
    pub busy: f64,
    /// Share failed; no answer is the rest.
    #[arg(long, default_value_t = 0.15)]
    pub failed: f64,
    /// Median seconds from placing a call to a person answering.
    #[arg(long, default_value_t = 10.0)]
    pub ring: f64,
    /// Mean talk time in seconds (lognormal).
    #[arg(long, default_value_t = 120.0)]
    pub talk: f64,
    /// Mean wrap-up time in seconds (uniform, +-4 s).
    #[arg(long, default_value_t = 10.0)]
    pub wrap: f64,
    /// Progressive lines per ready agent [default: 1].
    #[arg(long)]
    pub ratio: Option<f64>,
    /// Most calls in progress per active agent [default: 3].
    #[arg(long)]
    pub max_ratio: Option<f64>,
    /// Abandon target (0.03 = 3% of live answers) [default: 0.03].
    #[arg(long)]
    pub target: Option<f64>,
    /// Share of the target the controller aims at.
    #[arg(long, default_value_t = 2.5 / 3.0)]
    pub setpoint: f64,
    /// Abandon window: 24h (UK) or 30d (US) [default: 24h].
    #[arg(long)]
    pub window: Option<String>,
    /// Fewest agents for predictive mode [default: 5].
    #[arg(long)]
    pub min_agents: Option<u32>,
    /// Most calls in progress at once (needed for agentless) [default: no cap].
    #[arg(long)]
    pub max_lines: Option<u32>,
    /// The carrier's calls-per-second cap [default: 50].
    #[arg(long)]
    pub cps: Option<f64>,
    /// Seed the abandon window with a previous day like this one at 2.5% (a running campaign);
    /// without it the campaign starts with an empty window, as on its first day.
    #[arg(long)]
    pub history: bool,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw occupancy and abandon rate over time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// The pacing settings in force: each from its flag, else the campaign file, else the default.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    mode: String,
    ratio: f64,
    max_ratio: f64,
    target: f64,
    window: AbandonWindow,
    min_agents: u32,
    max_lines: Option<u32>,
    cps: f64,
    /// The engine's ring timeout (no answer), seconds; `None` keeps the scenario's.
    ring_timeout: Option<f64>,
}

impl Settings {
    /// Flags over the campaign file over the defaults.
    fn resolve(args: &Args, spec: Option<&CampaignSpec>) -> anyhow::Result<Self> {
        let file = spec.map(|s| &s.pacing);
        let defaults = Config::default().settings;
        let window = match &args.window {
            Some(w) => match w.as_str() {
                "24h" | "1d" => AbandonWindow::Day,
                "30d" => AbandonWindow::ThirtyDays,
                other => anyhow::bail!("--window {other}: must be 24h or 30d"),
            },
            None => file.map_or(defaults.abandon_window, |p| p.abandon_window),
        };
        Ok(Settings {
            mode: args
                .mode
                .clone()
                .or(file.map(|p| p.mode.to_string()))
                .unwrap_or_else(|| defaults.mode.to_string()),
            ratio: args
                .ratio
                .or(file.map(|p| p.ratio))
                .unwrap_or(defaults.ratio),
            max_ratio: args
                .max_ratio
                .or(file.map(|p| p.max_ratio))
                .unwrap_or(defaults.max_ratio),
            target: args
                .target
                .or(file.map(|p| p.abandon_target))
                .unwrap_or(defaults.abandon_target),
            window,
            min_agents: args
                .min_agents
                .or(file.map(|p| p.min_agents))
                .unwrap_or(defaults.min_agents),
            max_lines: args.max_lines.or(file.map(|p| p.max_lines)),
            cps: args
                .cps
                .or(spec.map(|s| f64::from(s.trunk.cps)))
                .unwrap_or(50.0),
            ring_timeout: spec.map(|s| s.ring_timeout.0.as_secs_f64()),
        })
    }

    /// One line saying what is in force, for the table's header.
    fn describe(&self) -> String {
        let window = match self.window {
            AbandonWindow::Day => "24h",
            AbandonWindow::ThirtyDays => "30d",
        };
        let lines = self
            .max_lines
            .map_or("no line cap".to_string(), |n| format!("at most {n} lines"));
        format!(
            "{}, ratio {} (max {}), abandon target {}% over {window}, {lines}, {} CPS",
            self.mode,
            self.ratio,
            self.max_ratio,
            100.0 * self.target,
            self.cps
        )
    }
}

/// Reads and checks a campaign file, listing every refused field.
fn read_campaign(path: &Path) -> anyhow::Result<CampaignSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    CampaignSpec::from_toml(&text).map_err(|err| match err {
        domain::Error::InvalidSpec(fields) => anyhow::anyhow!(
            "{} is not a valid campaign:\n  {}",
            path.display(),
            fields
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
        other => anyhow::Error::new(other).context(path.display().to_string()),
    })
}

impl Args {
    fn scenario(&self, settings: &Settings) -> anyhow::Result<Scenario> {
        let mut s = if self.hard_day {
            Scenario::hard_day(self.agents, self.seed)
        } else {
            let mut s = Scenario::benchmark(self.agents, self.seed);
            s.mix = Mix {
                live: self.live,
                machine: self.machine,
                busy: self.busy,
                failed: self.failed,
            };
            s.ring_live_median = self.ring;
            s.talk_mean = self.talk;
            s.wrap = ((self.wrap - 4.0).max(0.0), self.wrap + 4.0);
            s
        };
        s.agents = self.agents;
        s.duration = self.hours * 3600.0;
        s.cps = Some(settings.cps);
        if let Some(timeout) = settings.ring_timeout {
            s.ring_timeout = timeout;
        }
        if self.history {
            let live = (26.0 * self.agents as f64 * 8.0).round() as u64;
            s.history = Some((live, (live as f64 * 0.025).round() as u64));
        }
        s.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(s)
    }

    fn config(&self, settings: &Settings, mode: DialMode) -> anyhow::Result<Config> {
        let defaults = Config::default();
        let pacing = domain::Pacing {
            mode,
            ratio: settings.ratio,
            max_ratio: settings.max_ratio,
            abandon_target: settings.target,
            abandon_window: settings.window,
            max_lines: settings.max_lines.unwrap_or(NO_LINE_CAP),
            min_agents: settings.min_agents,
            // A simulation places no call: a target above the legal 3% may be tried.
            override_legal_limits: true,
            ..defaults.settings
        };
        // The campaign file's rules, but for the line cap (none is the simulator's default) and
        // min_ratio (no flag sets it, and the pacer has no use for it).
        let problems: Vec<String> = pacing
            .problems()
            .into_iter()
            .filter(|(field, _)| match *field {
                "max_lines" => settings.max_lines.is_some(),
                "min_ratio" => false,
                _ => true,
            })
            .map(|(field, reason)| format!("setting `{field}`: {reason}"))
            .collect();
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        if mode == DialMode::Agentless && settings.max_lines.is_none() {
            anyhow::bail!(
                "setting `mode` = agentless conflicts with `max_lines` = unset: agentless mode \
                 needs a line cap: no agent paces it"
            );
        }
        let cfg = Config {
            settings: pacing,
            setpoint: self.setpoint,
            max_cps: Some(settings.cps),
            ..defaults
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn policies(&self, settings: &Settings) -> anyhow::Result<Vec<Policy>> {
        if self.compare {
            let progressive = |ratio: f64| -> anyhow::Result<Policy> {
                let mut c = self.config(settings, DialMode::Progressive)?;
                c.settings.ratio = ratio;
                c.settings.max_ratio = c.settings.max_ratio.max(ratio);
                Ok(Policy::Pacer(c))
            };
            return Ok(vec![
                progressive(1.0)?,
                progressive(2.0)?,
                progressive(3.0)?,
                Policy::Vicidial(VicidialSettings::default()),
                Policy::Pacer(self.config(settings, DialMode::Predictive)?),
                Policy::Foresight,
            ]);
        }
        Ok(vec![match settings.mode.as_str() {
            "vicidial" => Policy::Vicidial(VicidialSettings::default()),
            "foresight" => Policy::Foresight,
            other => Policy::Pacer(self.config(settings, other.parse::<DialMode>()?)?),
        }])
    }
}

/// Runs `dialer simulate`.
pub async fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let spec = args.campaign.as_deref().map(read_campaign).transpose()?;
    let settings = Settings::resolve(&args, spec.as_ref())?;
    let scenario = args.scenario(&settings)?;
    let policies = args.policies(&settings)?;
    // The simulation is CPU-bound: keep it off the async workers.
    let reports = tokio::task::spawn_blocking(move || {
        policies
            .iter()
            .map(|p| sim::run(&scenario, p))
            .collect::<Result<Vec<Report>, _>>()
    })
    .await
    .context("the simulation stopped")??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_table(&args, &settings, &reports);
    }
    if let Some(path) = &args.plot {
        plot(path, &reports).with_context(|| format!("cannot draw {}", path.display()))?;
        if !args.json {
            println!("plot written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(args: &Args, settings: &Settings, reports: &[Report]) {
    println!(
        "{} agents, {} h, seed {}{}",
        args.agents,
        args.hours,
        args.seed,
        if args.hard_day { ", harder day" } else { "" }
    );
    let from = args
        .campaign
        .as_ref()
        .map_or(String::new(), |p| format!(" (from {})", p.display()));
    println!("settings: {}{from}", settings.describe());
    println!(
        "{:<20} {:>9} {:>10} {:>9} {:>10} {:>11} {:>11} {:>12}",
        "policy",
        "occupancy",
        "wait (s)",
        "abandon",
        "worst hour",
        "max window",
        "calls/ag.h",
        "connects/ag.h"
    );
    for r in reports {
        println!(
            "{:<20} {:>9.3} {:>10.1} {:>8.2}% {:>9.2}% {:>10.2}% {:>11.1} {:>12.1}",
            r.policy,
            r.occupancy,
            r.agent_wait,
            100.0 * r.abandon_rate,
            100.0 * r.worst_hour_abandon_rate,
            100.0 * r.max_window_abandon_rate,
            r.calls_per_agent_hour,
            r.connects_per_agent_hour
        );
    }
}

fn plot(path: &Path, reports: &[Report]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    const WIDTH: u32 = 1100;
    // Room right of both charts for the policies' legend.
    const LEGEND_WIDTH: u32 = 170;
    let root = SVGBackend::new(path, (WIDTH, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    // The legend goes beside the charts, not over them: the lines worth reading (0.9 and up)
    // run along the occupancy chart's top.
    let (charts, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (top, bottom) = charts.split_vertically(350);
    let minutes = reports
        .iter()
        .flat_map(|r| r.timeline.last())
        .map(|s| s.minute)
        .fold(1.0, f64::max);
    let max_rate = reports
        .iter()
        .flat_map(|r| {
            r.timeline
                .iter()
                .map(|s| s.abandon_rate.max(s.window_abandon_rate))
        })
        .fold(0.04f64, f64::max)
        .min(0.2);
    let mut occ = ChartBuilder::on(&top)
        .caption("occupancy", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..minutes, 0.4..1.0)?;
    occ.configure_mesh().x_desc("minutes").draw()?;
    let mut ab = ChartBuilder::on(&bottom)
        .caption(
            "abandon rate (interval, and window dashed)",
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..minutes, 0.0..max_rate)?;
    ab.configure_mesh().x_desc("minutes").draw()?;
    for (i, r) in reports.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        occ.draw_series(LineSeries::new(
            r.timeline.iter().map(|s| (s.minute, s.occupancy)),
            color.stroke_width(2),
        ))?;
        ab.draw_series(LineSeries::new(
            r.timeline.iter().map(|s| (s.minute, s.abandon_rate)),
            color.stroke_width(1),
        ))?;
        ab.draw_series(DashedLineSeries::new(
            r.timeline.iter().map(|s| (s.minute, s.window_abandon_rate)),
            6,
            4,
            color.stroke_width(2),
        ))?;
        let y = 50 + 22 * i as i32;
        legend.draw(&PathElement::new(
            vec![(0, y), (24, y)],
            color.stroke_width(2),
        ))?;
        legend.draw(&Text::new(
            r.policy.clone(),
            (32, y - 7),
            ("sans-serif", 14),
        ))?;
    }
    root.present()?;
    Ok(())
}
