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
    // Text is drawn as SVG <text> (plotters without its font-kit backend): the captions, axis
    // names and each policy in the legend must be there.
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("<svg"), "not an SVG");
    // Each text with its x position.
    let texts: Vec<(f64, &str)> = drawn
        .split("<text")
        .skip(1)
        .filter_map(|t| {
            let (attrs, rest) = t.split_once('>')?;
            let label = rest.split_once("</text>")?.0.trim();
            let x = attrs
                .split_once("x=\"")?
                .1
                .split_once('"')?
                .0
                .parse()
                .ok()?;
            Some((x, label))
        })
        .collect();
    for label in [
        "occupancy",
        "abandon rate (interval, and window dashed)",
        "minutes",
        "predictive",
        "perfect foresight",
        "0.5",
    ] {
        assert!(
            texts.iter().any(|&(_, text)| text == label),
            "{label} missing from {texts:?}"
        );
    }
    // The legend stands beside the charts (1,100 px wide, the charts the left 930), not over the
    // occupancy lines near the chart's top.
    let legend_x: Vec<&(f64, &str)> = texts
        .iter()
        .filter(|(_, label)| label.starts_with("predictive") || label.starts_with("perfect"))
        .collect();
    assert_eq!(legend_x.len(), 2, "legend entries: {legend_x:?}");
    for &(x, label) in legend_x {
        assert!(
            x >= 930.0,
            "legend entry {label} drawn over the charts at x = {x}"
        );
    }
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = dialer().arg("simulate").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn simulate_takes_settings_from_a_campaign_file_and_flags_override_it() {
    // Progressive at one line per ready agent, at most 20 lines, a 24-hour window, 5 CPS.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/campaigns/uk-survey.toml");
    let day = ["--agents", "40", "--hours", "0.5", "--seed", "2", "--json"];
    let from_file = json(&[&["--campaign", file][..], &day].concat());
    let r = &from_file[0];
    assert_eq!(r["policy"], "progressive 1:1");
    // Twenty lines (bridged calls included) for forty agents: at most half of them talk.
    let capped = r["occupancy"].as_f64().unwrap();
    assert!(capped < 0.6, "{capped}");

    let overridden = json(
        &[
            &[
                "--campaign",
                file,
                "--mode",
                "predictive",
                "--max-lines",
                "400",
            ][..],
            &day,
        ]
        .concat(),
    );
    let r = &overridden[0];
    assert_eq!(r["policy"], "predictive");
    let free = r["occupancy"].as_f64().unwrap();
    assert!(free > capped + 0.2, "{free} vs {capped}");

    // The table says what is in force and where it came from.
    let out = dialer()
        .args([
            "simulate",
            "--campaign",
            file,
            "--agents",
            "10",
            "--hours",
            "0.1",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("progressive, ratio 1 (max 3)")
            && table.contains("over 24h, at most 20 lines, 5 CPS")
            && table.contains("uk-survey.toml"),
        "{table}"
    );
}

#[test]
fn simulate_reports_a_bad_campaign_file_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    let spring = include_str!("../campaigns/spring-renewals.toml");
    std::fs::write(&file, spring.replace("max_ratio = 3.0", "max_ratoi = 3.0")).unwrap();
    let out = dialer()
        .arg("simulate")
        .arg("--campaign")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.toml") && err.contains("max_ratoi"),
        "{err}"
    );

    let out = dialer()
        .args(["simulate", "--campaign", "/nonexistent/campaign.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/campaign.toml"));
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
