//! A campaign whose carrier wants the trunk registered, through the engine and the HTTP API
//! against real peers: sipp as the carrier's registrar (digest, a 4-second binding, see
//! `crates/testkit/sipp/trunk_registrar.xml`), reached through the trunk's `registrar` key, and
//! the engine's sipp carrier answering the INVITEs at the trunk's URI. With the right password
//! the trunk registers (the campaign's figures and `/metrics` say so), the calls go out and are
//! answered, and stopping the campaign unregisters the trunk (Expires: 0 at the registrar). With
//! a wrong password the figures show the failure with the registrar's 403, and the running
//! campaign places no call: the carrier sees no INVITE while the registration is refused again
//! and again.

#[path = "../../engine/tests/support/peers.rs"]
mod peers;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use api::schema;
use peers::{carrier_calls, sipp_carrier};
use support::{Api, Db, conforms, valid_as};
use testkit::sipp::Sipp;
use testkit::wait_for;

const WAIT: Duration = Duration::from_secs(60);

// Trunk secrets live in the DIALER_TRUNK_ namespace (campaign files may name nothing else).
const USER_ENV: &str = "DIALER_TRUNK_REGTEST_USER";
const PASSWORD_ENV: &str = "DIALER_TRUNK_REGTEST_PASSWORD";
const WRONG_PASSWORD_ENV: &str = "DIALER_TRUNK_REGTEST_WRONG_PASSWORD";

/// The trunk's credentials, in the environment as campaign files require (never inline).
fn credentials_in_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Both tests call this first, before any thread of theirs could read the environment.
    ONCE.call_once(|| unsafe {
        std::env::set_var(USER_ENV, "trunkuser");
        std::env::set_var(PASSWORD_ENV, "trunkpass");
        std::env::set_var(WRONG_PASSWORD_ENV, "wrong");
    });
}

/// An agentless campaign (every answered call hears the message) whose trunk at `carrier`
/// registers at `registrar` with the password in `password_env`.
fn campaign_toml(name: &str, carrier: SocketAddr, registrar: &str, password_env: &str) -> String {
    format!(
        r#"
name = "{name}"
default_country = "US"
caller_id = "+12025550123"
ring_timeout = "15s"
agentless_message = "abandon.wav"

[pacing]
mode = "agentless"
max_lines = 3

[amd]
enabled = false

[calling_hours]
default = "00:00-24:00"
override_legal_limits = true

[retry]
max_attempts = 1

[trunk]
uri = "sip:{carrier}"
cps = 10
username_env = "{USER_ENV}"
password_env = "{password_env}"
register = true
register_expires = "10m"
registrar = "{registrar}"
"#
    )
}

/// Registration failures are retried quickly, so a refused trunk is refused several times
/// within the test.
async fn api() -> Option<Api> {
    Api::start_with(Db::Sqlite, |config, _| {
        config.register_retry = sip::RetryPolicy {
            base: Duration::from_millis(300),
            max: Duration::from_secs(1),
        };
    })
    .await
}

/// The campaign as the API shows it, valid against the OpenAPI document (its trunk figures
/// against `TrunkFigures` on their own too).
async fn campaign(api: &Api, name: &str) -> schema::CampaignView {
    let (status, body) = api.get(&format!("/api/v1/campaigns/{name}")).await;
    assert_eq!(status, 200, "{body:#}");
    valid_as("TrunkFigures", &body["figures"]["trunk"]);
    conforms(&body)
}

async fn metrics(api: &Api) -> String {
    api.http
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn upload_live_numbers(api: &Api, name: &str, n: usize) {
    // Every number answers live (the carrier's fate 1).
    let mut csv = String::from("phone,timezone\n");
    for i in 0..n {
        csv.push_str(&format!("+1312555{i:02}01,America/Chicago\n"));
    }
    let (status, report) = api.upload(name, "live.csv", &csv).await;
    assert_eq!(
        (status, report["imported"].as_u64()),
        (201, Some(n as u64)),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_trunk_dials_and_unregisters_when_the_campaign_stops() {
    credentials_in_env();
    // One "call" for sipp: the REGISTERs keep their Call-ID until the un-REGISTER ends it.
    let Some(registrar) = Sipp::carrier_with("trunk_registrar.xml", "u1", 1, &[], true, 600) else {
        return;
    };
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let Some(api) = api().await else {
        return;
    };
    let toml = campaign_toml("reg-ok", carrier.addr(), &registrar.uri("u1"), PASSWORD_ENV);
    let (status, body) = api.apply_toml(&toml).await;
    assert_eq!(status, 201, "{body:#}");
    upload_live_numbers(&api, "reg-ok", 3).await;
    let (status, body) = api.post("/api/v1/campaigns/reg-ok/start").await;
    assert_eq!(status, 200, "{body:#}");
    let _: schema::CampaignView = conforms(&body);

    let registered = wait_for(WAIT, || async {
        let view = campaign(&api, "reg-ok").await;
        view.figures.trunk.registration == schema::TrunkRegistrationState::Registered
    })
    .await;
    let view = campaign(&api, "reg-ok").await;
    assert!(
        registered,
        "not registered: {:?}\n{}",
        view.figures.trunk,
        registrar.diagnostics()
    );
    // The registrar grants 4 s of the 10 minutes asked for.
    assert_eq!(view.figures.trunk.expires_secs, Some(4));
    assert!(view.figures.trunk.last_refresh.is_some());
    assert!(view.figures.trunk.refreshes >= 1);
    assert_eq!(view.figures.trunk.code, None);
    let scrape = metrics(&api).await;
    assert!(
        scrape.contains(r#"dialer_trunk_registration{campaign="reg-ok",state="registered"} 1"#),
        "{scrape}"
    );
    assert!(
        scrape.contains(r#"dialer_trunk_registration{campaign="reg-ok",state="failed"} 0"#),
        "{scrape}"
    );

    // The calls go out to the carrier and are answered.
    let answered = wait_for(WAIT, || async {
        let view = campaign(&api, "reg-ok").await;
        view.figures.totals.answered >= 3 && view.figures.calls.in_flight == 0
    })
    .await;
    let view = campaign(&api, "reg-ok").await;
    assert!(
        answered,
        "calls not answered: {:?}\n{}",
        view.figures.totals,
        carrier.diagnostics()
    );
    assert_eq!(view.status, schema::CampaignStatus::Running);
    let calls = carrier_calls(&carrier.file("messages.log"));
    let mut numbers: Vec<&str> = calls.iter().map(|c| c.number.as_str()).collect();
    numbers.sort();
    assert_eq!(
        numbers,
        vec!["+13125550001", "+13125550101", "+13125550201"],
        "{calls:?}"
    );

    // Stopped: the registration is let go with Expires: 0, which ends the registrar's scenario.
    let (status, body) = api.post("/api/v1/campaigns/reg-ok/stop").await;
    assert_eq!(status, 200, "{body:#}");
    let run = registrar.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
    assert!(
        run.log.contains("Expires: 0"),
        "no un-REGISTER:\n{}",
        run.log
    );
    // Every REGISTER after the first challenge carried credentials the registrar accepted.
    assert!(!run.log.contains("403 Forbidden"), "{}", run.log);
    let view = campaign(&api, "reg-ok").await;
    assert_eq!(view.status, schema::CampaignStatus::Stopped);
    assert_eq!(
        view.figures.trunk.registration,
        schema::TrunkRegistrationState::Unregistered
    );
    let scrape = metrics(&api).await;
    assert!(
        scrape.contains(r#"dialer_trunk_registration{campaign="reg-ok",state="unregistered"} 1"#),
        "{scrape}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_holds_the_running_campaign_without_a_call() {
    credentials_in_env();
    // A refused registration starts over with a new Call-ID: a new "call" for sipp each time.
    let Some(registrar) = Sipp::carrier_with("trunk_registrar.xml", "u1", 1000, &[], true, 600)
    else {
        return;
    };
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let Some(api) = api().await else {
        return;
    };
    let toml = campaign_toml(
        "reg-wrong",
        carrier.addr(),
        &registrar.uri("u1"),
        WRONG_PASSWORD_ENV,
    );
    let (status, body) = api.apply_toml(&toml).await;
    assert_eq!(status, 201, "{body:#}");
    upload_live_numbers(&api, "reg-wrong", 3).await;
    let (status, body) = api.post("/api/v1/campaigns/reg-wrong/start").await;
    assert_eq!(status, 200, "{body:#}");

    // Refused, and refused again after each retry, while the campaign runs.
    let refused = wait_for(WAIT, || async {
        let view = campaign(&api, "reg-wrong").await;
        view.figures.trunk.registration == schema::TrunkRegistrationState::Failed
            && view.figures.trunk.failures >= 3
    })
    .await;
    let view = campaign(&api, "reg-wrong").await;
    assert!(
        refused,
        "not refused: {:?}\n{}",
        view.figures.trunk,
        registrar.diagnostics()
    );
    assert_eq!(view.status, schema::CampaignStatus::Running);
    assert_eq!(view.figures.trunk.code, Some(403));
    assert_eq!(view.figures.trunk.refreshes, 0);
    assert_eq!(view.figures.totals.placed, 0, "{:?}", view.figures.totals);
    assert_eq!(view.figures.calls.in_flight, 0);
    let scrape = metrics(&api).await;
    for line in [
        r#"dialer_trunk_registration{campaign="reg-wrong",state="failed"} 1"#,
        r#"dialer_trunk_registration{campaign="reg-wrong",state="registered"} 0"#,
        r#"dialer_trunk_registration_last_code{campaign="reg-wrong"} 403"#,
    ] {
        assert!(scrape.contains(line), "no `{line}` in:\n{scrape}");
    }
    // The carrier never saw an INVITE (nor anything else).
    let log = carrier.file("messages.log");
    assert!(carrier_calls(&log).is_empty(), "{log}");
    assert!(!log.contains("INVITE"), "{log}");
    // The registrar saw only the dialer's REGISTERs: the challenge, then the wrong answer.
    let registrar_log = registrar.file("messages.log");
    assert!(registrar_log.contains("403 Forbidden"), "{registrar_log}");
    assert!(!registrar_log.contains("INVITE sip:"), "{registrar_log}");

    let (status, _) = api.post("/api/v1/campaigns/reg-wrong/stop").await;
    assert_eq!(status, 200);
    let view = campaign(&api, "reg-wrong").await;
    assert_eq!(
        view.figures.trunk.registration,
        schema::TrunkRegistrationState::Unregistered
    );
    assert_eq!(view.figures.totals.placed, 0);
    api.stop().await;
}
