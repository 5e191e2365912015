//! The pacing comparison of issue 3: every reference policy over 5 seeds, 8 hours, for 10, 50
//! and 200 agents, then the harder day. Prints Markdown tables (the ones in `docs/pacing.md`).
//!
//! `cargo bench -p pacing --bench pacing_table` (env: `PACING_SEEDS=5`, `PACING_AGENTS=10,50,200`,
//! `PACING_HOURS=8`).

use domain::DialMode;
use pacing::Config;
use pacing::sim::{Policy, Report, Scenario, reference_policies, run};
use std::time::Instant;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A running campaign: yesterday's live answers and abandons (2.5%) are in the 24-hour window.
fn with_history(mut s: Scenario) -> Scenario {
    let live = (26.0 * s.agents as f64 * 8.0).round() as u64;
    s.history = Some((live, (live as f64 * 0.025).round() as u64));
    s
}

fn stats(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let v: Vec<f64> = values.collect();
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, min, max)
}

fn row(agents: u32, label: &str, reports: &[Report]) {
    let (occ, lo, hi) = stats(reports.iter().map(|r| r.occupancy));
    let (ab, _, ab_hi) = stats(reports.iter().map(|r| r.abandon_rate));
    let (_, _, worst) = stats(reports.iter().map(|r| r.worst_hour_abandon_rate));
    let (_, _, window) = stats(reports.iter().map(|r| r.max_window_abandon_rate));
    let (calls, _, _) = stats(reports.iter().map(|r| r.calls_per_agent_hour));
    let (conn, _, _) = stats(reports.iter().map(|r| r.connects_per_agent_hour));
    let (wait, _, _) = stats(reports.iter().map(|r| r.agent_wait));
    // The abandons the model predicted for the calls it placed, against those that happened.
    let checks: Vec<_> = reports
        .iter()
        .filter_map(|r| r.model_check.as_ref())
        .collect();
    let check = if checks.is_empty() {
        "-".to_string()
    } else {
        let predicted: f64 = checks.iter().map(|c| c.predicted_abandons).sum();
        let observed: u64 = checks.iter().map(|c| c.abandons).sum();
        format!("{predicted:.0} / {observed}")
    };
    println!(
        "| {agents} | {label} | {occ:.4} ({lo:.4}-{hi:.4}) | {:.2}% (max {:.2}%) | {:.2}% | {:.2}% | {wait:.1} | {calls:.1} | {conn:.1} | {check} |",
        100.0 * ab,
        100.0 * ab_hi,
        100.0 * worst,
        100.0 * window
    );
}

fn header(title: &str) {
    println!("\n### {title}\n");
    println!(
        "| agents | policy | occupancy mean (min-max) | abandons overall mean (max) | worst hour (max) | window max | agent wait s | calls / agent h | connects / agent h | model: abandons predicted / observed |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
}

fn main() {
    let seeds: u64 = env("PACING_SEEDS", 5);
    let hours: f64 = env("PACING_HOURS", 8.0);
    let agents: Vec<u32> = std::env::var("PACING_AGENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|a| a.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 50, 200]);
    let started = Instant::now();
    let scenario = |n: u32, seed: u64, hard: bool| {
        let mut s = if hard {
            Scenario::hard_day(n, seed)
        } else {
            Scenario::benchmark(n, seed)
        };
        s.duration = hours * 3600.0;
        s
    };

    header(&format!(
        "Benchmark day, running campaign (window seeded with a day at 2.5%), {seeds} seeds, {hours} h"
    ));
    for &n in &agents {
        for policy in reference_policies() {
            let reports: Vec<Report> = (1..=seeds)
                .map(|seed| run(&with_history(scenario(n, seed, false)), &policy).unwrap())
                .collect();
            row(n, &policy.label(), &reports);
        }
    }

    header("First day (empty window: the guard holds predictive back until it has headroom)");
    for &n in &agents {
        let reports: Vec<Report> = (1..=seeds)
            .map(|seed| run(&scenario(n, seed, false), &Policy::Pacer(Config::default())).unwrap())
            .collect();
        row(n, "predictive", &reports);
    }

    header(
        "Harder day (live 30% -> 12% over the afternoon, 20% of agents pause 5 min each hour), empty window",
    );
    let mut progressive = Config::default();
    progressive.settings.mode = DialMode::Progressive;
    for &n in &agents {
        for policy in [
            Policy::Pacer(progressive.clone()),
            Policy::Vicidial(Default::default()),
            Policy::Pacer(Config::default()),
        ] {
            let reports: Vec<Report> = (1..=seeds)
                .map(|seed| run(&scenario(n, seed, true), &policy).unwrap())
                .collect();
            row(n, &policy.label(), &reports);
        }
    }

    println!("\nSimulation speed: one 8-hour day of 200 agents, predictive (3 runs, median):");
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            run(
                &Scenario::benchmark(200, 1),
                &Policy::Pacer(Config::default()),
            )
            .unwrap();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{:.2} s", times[1]);
    eprintln!(
        "(all of the above took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
}
