//! `dialer simulate`: a campaign's day with the real pacer, before a setting is changed for real.

use crate::Global;
use anyhow::Context;
use pacing::sim::{self, Mix, Policy, Report, Scenario, VicidialSettings};
use pacing::{Config, Mode, WINDOW_24H, WINDOW_30D};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `dialer simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agents logged in all day.
    #[arg(long, default_value_t = 50)]
    pub agents: u32,
    /// Hours to simulate.
    #[arg(long, default_value_t = 8.0)]
    pub hours: f64,
    /// Dial mode: preview, progressive, predictive, agentless, or the references `vicidial`
    /// (VICIdial's adaptive dial level) and `foresight` (the perfect-foresight bound).
    #[arg(long, default_value = "predictive")]
    pub mode: String,
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
    /// Progressive lines per ready agent.
    #[arg(long, default_value_t = 1.0)]
    pub ratio: f64,
    /// Most calls in progress per active agent.
    #[arg(long, default_value_t = 3.0)]
    pub max_ratio: f64,
    /// Abandon target (0.03 = 3% of live answers).
    #[arg(long, default_value_t = 0.03)]
    pub target: f64,
    /// Share of the target the controller aims at.
    #[arg(long, default_value_t = 2.5 / 3.0)]
    pub setpoint: f64,
    /// Abandon window: 24h (UK) or 30d (US).
    #[arg(long, default_value = "24h")]
    pub window: String,
    /// Fewest agents for predictive mode.
    #[arg(long, default_value_t = 5)]
    pub min_agents: u32,
    /// Most calls in progress at once (needed for agentless).
    #[arg(long)]
    pub max_lines: Option<u32>,
    /// The carrier's calls-per-second cap.
    #[arg(long, default_value_t = 50.0)]
    pub cps: f64,
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

impl Args {
    fn scenario(&self) -> anyhow::Result<Scenario> {
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
        s.cps = Some(self.cps);
        if self.history {
            let live = (26.0 * self.agents as f64 * 8.0).round() as u64;
            s.history = Some((live, (live as f64 * 0.025).round() as u64));
        }
        s.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(s)
    }

    fn config(&self, mode: Mode) -> anyhow::Result<Config> {
        let window = match self.window.as_str() {
            "24h" | "1d" => WINDOW_24H,
            "30d" => WINDOW_30D,
            other => anyhow::bail!("--window {other}: must be 24h or 30d"),
        };
        let cfg = Config {
            mode,
            ratio: self.ratio,
            max_ratio: self.max_ratio,
            abandon_target: self.target,
            setpoint: self.setpoint,
            abandon_window: window,
            max_in_flight: self.max_lines,
            min_agents_predictive: self.min_agents,
            max_cps: Some(self.cps),
            ..Config::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn policies(&self) -> anyhow::Result<Vec<Policy>> {
        if self.compare {
            let progressive = |ratio: f64| -> anyhow::Result<Policy> {
                let mut c = self.config(Mode::Progressive)?;
                c.ratio = ratio;
                c.max_ratio = c.max_ratio.max(ratio);
                Ok(Policy::Pacer(c))
            };
            return Ok(vec![
                progressive(1.0)?,
                progressive(2.0)?,
                progressive(3.0)?,
                Policy::Vicidial(VicidialSettings::default()),
                Policy::Pacer(self.config(Mode::Predictive)?),
                Policy::Foresight,
            ]);
        }
        Ok(vec![match self.mode.as_str() {
            "vicidial" => Policy::Vicidial(VicidialSettings::default()),
            "foresight" => Policy::Foresight,
            other => Policy::Pacer(self.config(other.parse::<Mode>()?)?),
        }])
    }
}

/// Runs `dialer simulate`.
pub async fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let scenario = args.scenario()?;
    let policies = args.policies()?;
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
        print_table(&args, &reports);
    }
    if let Some(path) = &args.plot {
        plot(path, &reports).with_context(|| format!("cannot draw {}", path.display()))?;
        if !args.json {
            println!("plot written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(args: &Args, reports: &[Report]) {
    println!(
        "{} agents, {} h, seed {}{}",
        args.agents,
        args.hours,
        args.seed,
        if args.hard_day { ", harder day" } else { "" }
    );
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
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
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
        ))?
        .label(r.policy.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
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
    }
    occ.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
