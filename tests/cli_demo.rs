//! `dialer demo` and `dialer lab` as a user runs them: the binary, real SIP and RTP over
//! loopback, a temporary SQLite database, the JSON summary at the end.

use std::process::Output;
use std::time::Duration;

async fn dialer(args: &[&str], limit: Duration) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .env("DIALER_LOG", "warn")
        .env_remove("DATABASE_URL")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dialer");
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("dialer ended by itself")
        .expect("dialer's output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in {v}", path.join(".")))
}

#[tokio::test]
async fn a_short_demo_places_calls_bridges_people_to_agents_and_sums_up_in_json() {
    // 30 s with 6 agents who talk briefly; the lab's people (more of them than by default)
    // answer after about 10 s.
    let out = dialer(
        &[
            "demo",
            "--agents",
            "6",
            "--minutes",
            "0.5",
            "--mix",
            "human=60,machine=10,busy=10,no-answer=20",
            "--talk",
            "4s..8s",
            "--wrap",
            "2s..3s",
            "--grace",
            "3s",
            "--listen",
            "127.0.0.1:0",
            "--json",
        ],
        Duration::from_secs(180),
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(summary["campaign"], "demo");
    assert_eq!(summary["agents"], 6);
    assert!(number(&summary, &["seconds"]) >= 30.0, "{summary}");
    assert!(number(&summary, &["contacts_added"]) >= 1000.0, "{summary}");
    assert!(
        summary["api"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let placed = number(&summary, &["calls", "placed"]);
    assert!(placed > 0.0, "{summary}");
    assert!(number(&summary, &["calls", "answered"]) > 0.0, "{summary}");
    assert!(number(&summary, &["calls", "connected"]) > 0.0, "{summary}");
    // The carrier took every call the engine placed (the engine's count is taken first).
    assert!(
        number(&summary, &["carrier", "calls"]) >= placed,
        "{summary}"
    );
    // The lab's people heard agents; the phones heard the people and pressed keys.
    assert!(
        number(&summary, &["carrier", "connected"]) > 0.0,
        "{summary}"
    );
    assert!(number(&summary, &["phones", "calls"]) > 0.0, "{summary}");
    assert!(number(&summary, &["phones", "logins"]) >= 6.0, "{summary}");
    assert!(
        number(&summary, &["pacing", "decisions"]) > 0.0,
        "{summary}"
    );
    let occupancy = number(&summary, &["occupancy"]);
    assert!(
        (0.0..=1.0).contains(&occupancy) && occupancy > 0.0,
        "{summary}"
    );
    let rate = number(&summary, &["abandon", "rate"]);
    assert!((0.0..=1.0).contains(&rate), "{summary}");
    // The live view went to stderr as progress lines.
    assert!(stderr.contains("placed"), "{stderr}");
}

#[tokio::test]
async fn the_demo_refuses_bad_minutes() {
    let out = dialer(&["demo", "--minutes", "0"], Duration::from_secs(60)).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("--minutes"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn the_lab_alone_prints_its_addresses_and_counters() {
    let out = dialer(
        &["lab", "--sip", "127.0.0.1:0", "--minutes", "0.05", "--json"],
        Duration::from_secs(60),
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("lab carrier: sip:127.0.0.1:"),
        "{stdout}"
    );
    let json = &stdout[stdout.find('{').expect("a JSON report")..];
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(report["carrier"]["calls"], 0);
    assert!(report["phones"].is_null());
}
