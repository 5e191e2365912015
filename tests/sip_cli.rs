//! `dialer call` against sipp as the carrier: through `--trunk` and through a campaign's trunk.

use std::process::Output;
use testkit::sipp::Sipp;

async fn dialer(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .env("DIALER_LOG", "warn")
        .output()
        .await
        .expect("run dialer")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn json_report_of_an_answered_call() {
    let Some(sipp) = Sipp::carrier("carrier_answer.xml", "u1", 1, &[]) else {
        return;
    };
    let trunk = sipp.uri("u1").to_string();
    let out = dialer(&[
        "call",
        "+15551234567",
        "--trunk",
        &trunk,
        "--bind",
        "127.0.0.1:0",
        "--talk",
        "1",
        "--json",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["outcome"], "answered");
    assert_eq!(report["code"], 200);
    assert_eq!(report["cause"], "we hung up");
    assert_eq!(report["media"]["codec"], "PCMA");
    assert!(report["rtp_packets"].as_u64().unwrap() > 10, "{report}");
    let events: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| match step["code"].as_u64() {
            Some(code) => format!("{} {code}", step["event"].as_str().unwrap()),
            None => step["event"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(
        events,
        [
            "invite",
            "progress 100",
            "progress 180",
            "answered",
            "bye",
            "ended"
        ]
    );
    sipp.finish()
        .await
        .assert(&["<INVITE", ">100", ">180", ">200", "<ACK", "<BYE", ">200"]);
}

#[tokio::test]
async fn steps_of_a_busy_call_through_a_campaign() {
    let Some(sipp) = Sipp::carrier("carrier_busy.xml", "u1", 1, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("dialer.db").display()
    );
    let campaign = dir.path().join("test-call.toml");
    std::fs::write(
        &campaign,
        format!(
            "name = \"test-call\"\ndefault_country = \"US\"\ncaller_id = \"+12025550100\"\n\
             ring_timeout = \"20s\"\nabandon_message = \"prompts/abandon.wav\"\n\n\
             [trunk]\nuri = \"sip:{}\"\ncps = 5\n",
            sipp.addr()
        ),
    )
    .unwrap();
    let applied = dialer(&[
        "--database-url",
        &database,
        "campaign",
        "apply",
        campaign.to_str().unwrap(),
    ])
    .await;
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    // A national number: normalised with the campaign's country.
    let out = dialer(&[
        "--database-url",
        &database,
        "call",
        "(202) 555-0123",
        "--campaign",
        "test-call",
        "--bind",
        "127.0.0.1:0",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("INVITE +12025550123 via sip:"),
        "{stdout}"
    );
    assert!(lines[1].ends_with("100 Trying"), "{stdout}");
    assert!(
        lines[2].contains("outcome: busy, SIP 486 (final response)"),
        "{stdout}"
    );
    let run = sipp.finish().await;
    run.assert(&["<INVITE", ">100", ">486", "<ACK"]);
    assert!(
        run.log.contains("From: <sip:+12025550100@127.0.0.1>"),
        "caller ID from the campaign"
    );
}
