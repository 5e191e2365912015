//! Occupancy against the setpoint: the predictive pacer on the benchmark day (running campaign,
//! first day) and the harder day, per seed. The measurements behind "The setpoint" in
//! `docs/pacing.md`.
//!
//! `cargo run --release -p pacing --example setpoint_sweep` (env: `SWEEP_SETPOINTS=2.5,2.75`
//! in percent of live answers, `PACING_AGENTS=50,200`, `PACING_SEEDS=5`, `PACING_HOURS=8`,
//! `SWEEP_DAYS=running,first,hard`).
use pacing::Config;
use pacing::sim::{Policy, Report, Scenario, run};

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn main() {
    let setpoints: Vec<f64> = list("SWEEP_SETPOINTS", "2.5,2.6,2.7,2.8");
    let agents: Vec<u32> = list("PACING_AGENTS", "50,200");
    let seeds: u64 = list("PACING_SEEDS", "5")[0];
    let hours: f64 = list("PACING_HOURS", "8")[0];
    let days: Vec<String> = list("SWEEP_DAYS", "running,first,hard");
    println!(
        "| day | agents | setpoint | occupancy mean (min) | abandons mean (max) | worst hour max | window max | per seed occupancy / abandons / window max |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for day in &days {
        for &n in &agents {
            for &sp in &setpoints {
                let mut config = Config {
                    setpoint: sp / 3.0,
                    ..Config::default()
                };
                if let Some(c) = list::<f64>("SWEEP_CANCEL", "").first() {
                    config.cancel_after = Some(std::time::Duration::from_secs_f64(*c));
                }
                if let Some(m) = list::<f64>("SWEEP_MEMORY", "").first() {
                    config.memory = std::time::Duration::from_secs_f64(*m);
                }
                let reports: Vec<Report> = (1..=seeds)
                    .map(|seed| {
                        let mut s = if day == "hard" {
                            Scenario::hard_day(n, seed)
                        } else {
                            Scenario::benchmark(n, seed)
                        };
                        s.duration = hours * 3600.0;
                        if day == "running" {
                            let live = (26.0 * n as f64 * 8.0).round() as u64;
                            s.history = Some((live, (live as f64 * 0.025).round() as u64));
                        }
                        run(&s, &Policy::Pacer(config.clone())).unwrap()
                    })
                    .collect();
                let k = reports.len() as f64;
                let occ = reports.iter().map(|r| r.occupancy).sum::<f64>() / k;
                let occ_min = reports
                    .iter()
                    .map(|r| r.occupancy)
                    .fold(f64::INFINITY, f64::min);
                let ab = reports.iter().map(|r| r.abandon_rate).sum::<f64>() / k;
                let ab_max = reports.iter().map(|r| r.abandon_rate).fold(0.0, f64::max);
                let worst = reports
                    .iter()
                    .map(|r| r.worst_hour_abandon_rate)
                    .fold(0.0, f64::max);
                let win = reports
                    .iter()
                    .map(|r| r.max_window_abandon_rate)
                    .fold(0.0, f64::max);
                let per: Vec<String> = reports
                    .iter()
                    .map(|r| {
                        format!(
                            "{:.4}/{:.2}/{:.2}",
                            r.occupancy,
                            100.0 * r.abandon_rate,
                            100.0 * r.max_window_abandon_rate
                        )
                    })
                    .collect();
                println!(
                    "| {day} | {n} | {sp:.2}% | {occ:.4} ({occ_min:.4}) | {:.2}% ({:.2}%) | {:.2}% | {:.2}% | {} |",
                    100.0 * ab,
                    100.0 * ab_max,
                    100.0 * worst,
                    100.0 * win,
                    per.join(" ")
                );
            }
        }
    }
}
