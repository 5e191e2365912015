//! `dialer simulate` run as a user would: the built binary, its table, JSON and plot.

use std::process::Command;

fn dialer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialer"))
}

#[test]
fn simulate_prints_json_reports() {
    let out = dialer()
        .args([
            "simulate", "--agents", "10", "--hours", "0.5", "--seed", "3", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &reports[0];
    assert_eq!(r["policy"], "predictive");
    assert_eq!(r["agents"], 10);
    let occupancy = r["occupancy"].as_f64().unwrap();
    assert!(occupancy > 0.5 && occupancy <= 1.0, "{occupancy}");
    assert!(r["timeline"].as_array().unwrap().len() >= 6);
}

#[test]
fn simulate_compares_policies_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("day.svg");
    let out = dialer()
        .args([
            "simulate",
            "--agents",
            "10",
            "--hours",
            "0.25",
            "--compare",
            "--plot",
        ])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for policy in [
        "progressive 1:1",
        "ratio 2",
        "ratio 3",
        "vicidial adaptive",
        "predictive",
        "perfect foresight",
    ] {
        assert!(table.contains(policy), "{policy} missing from:\n{table}");
    }
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("<svg") && drawn.contains("occupancy"));
}

#[test]
fn simulate_refuses_nonsense_settings_by_name() {
    let out = dialer()
        .args(["simulate", "--target", "1.5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("abandon_target"), "{err}");

    let out = dialer()
        .args(["simulate", "--mode", "turbo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mode"));
}
