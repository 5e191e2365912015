//! The agent desktop (`/agent`) in a real browser: Debian's headless Chromium under
//! chromedriver, its microphone a WAV file, against a running engine and API.
//!
//! Screenshots of each state go to `$DIALER_SCREENSHOTS` when it is set (the ones in
//! `docs/agent-desktop/` come from `DIALER_SCREENSHOTS=docs/agent-desktop cargo test --test
//! agent_desktop`), else to a temporary directory.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

use api_support::{Api, Db, campaign_toml, nowhere};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use testkit::browser::{Browser, BrowserOptions};

/// Where this run's screenshots go.
fn shots() -> PathBuf {
    match std::env::var_os("DIALER_SCREENSHOTS") {
        Some(dir) => testkit::workspace_dir().join(dir),
        None => std::env::temp_dir().join("dialer-screenshots"),
    }
}

/// An engine with a campaign, an agent on it and that agent's user (`desk1`,
/// password `password-desk1`); the agent's id.
async fn desk(db: Db) -> Option<(Api, i64)> {
    let api = Api::start(db).await?;
    let (status, body) = api.apply_toml(&campaign_toml("desk-camp", nowhere())).await;
    assert_eq!(status, 201, "{body:#}");
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "desk1", "password": "sip-secret-1",
                    "display_name": "Desk One", "campaigns": ["desk-camp"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    let id = agent["id"].as_i64().unwrap();
    api.user("desk1", store::Role::Agent, Some(id)).await;
    Some((api, id))
}

/// A microphone: a 440 Hz tone, 4 seconds, looped by Chromium.
fn mic_wav(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("mic.wav");
    testkit::audio::write_tone(&path, 440.0, 4.0, 8000.0);
    path
}

async fn log_in(browser: &Browser, api: &Api, user: &str) {
    browser.goto(&api.url("/agent/")).await;
    browser
        .wait_for(
            "!document.querySelector('#login-view').hidden",
            Duration::from_secs(10),
            "the login form",
        )
        .await;
    browser.fill("#username", user).await;
    browser.fill("#password", &format!("password-{user}")).await;
    browser.click("#login").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_logs_in_and_opens_the_microphone() {
    let Some((api, _agent)) = desk(Db::Sqlite).await else {
        return;
    };
    let wav = mic_wav(api.dir.path());
    let Some(browser) = Browser::start(BrowserOptions {
        fake_mic: Some(wav),
        ..BrowserOptions::default()
    })
    .await
    else {
        return;
    };
    browser.goto(&api.url("/agent/")).await;
    browser
        .wait_for(
            "!document.querySelector('#login-view').hidden",
            Duration::from_secs(10),
            "the login form",
        )
        .await;
    browser.screenshot(shots().join("login.png")).await;

    // A wrong password is refused on the page, and nothing else happens.
    browser.fill("#username", "desk1").await;
    browser.fill("#password", "not-the-password").await;
    browser.click("#login").await;
    let error = browser
        .wait_for(
            "document.querySelector('#login-error').textContent",
            Duration::from_secs(10),
            "the login error",
        )
        .await;
    assert_eq!(error, "wrong username or password");

    log_in(&browser, &api, "desk1").await;
    browser
        .wait_for(
            "!document.querySelector('#setup-view').hidden",
            Duration::from_secs(10),
            "the setup view",
        )
        .await;
    let campaigns = browser
        .eval(
            "return [...document.querySelectorAll('#campaign option')].map(o => o.value)",
            vec![],
        )
        .await;
    assert_eq!(campaigns, json!(["desk-camp"]));
    // The fake microphone's tone moves the level meter.
    let level = browser
        .wait_for(
            "window.desk.micLevel > 0.01 && window.desk.micLevel",
            Duration::from_secs(10),
            "the microphone's level",
        )
        .await;
    assert!(level.as_f64().unwrap() > 0.01, "{level}");
    let mics = browser
        .eval(
            "return document.querySelectorAll('#mic option').length",
            vec![],
        )
        .await;
    assert!(mics.as_u64().unwrap() >= 1, "{mics}");
    browser.screenshot(shots().join("setup.png")).await;
    browser.close().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_says_when_the_microphone_is_refused() {
    let Some((api, _agent)) = desk(Db::Sqlite).await else {
        return;
    };
    let Some(browser) = Browser::start(BrowserOptions {
        allow_mic: false,
        ..BrowserOptions::default()
    })
    .await
    else {
        return;
    };
    log_in(&browser, &api, "desk1").await;
    let error = browser
        .wait_for(
            "document.querySelector('#mic-error').textContent",
            Duration::from_secs(10),
            "the microphone's refusal",
        )
        .await;
    assert!(
        error.as_str().unwrap().contains("microphone is blocked"),
        "{error}"
    );
    let start_disabled = browser
        .eval("return document.querySelector('#start').disabled", vec![])
        .await;
    assert_eq!(start_disabled, json!(true));
    let retry_shown = browser
        .eval(
            "return !document.querySelector('#mic-retry').hidden",
            vec![],
        )
        .await;
    assert_eq!(retry_shown, json!(true));
    browser
        .screenshot(shots().join("microphone-refused.png"))
        .await;
    browser.close().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_sends_other_roles_to_the_console() {
    let Some((api, _agent)) = desk(Db::Sqlite).await else {
        return;
    };
    api.user("sup1", store::Role::Supervisor, None).await;
    let Some(browser) = Browser::start(BrowserOptions::default()).await else {
        return;
    };
    log_in(&browser, &api, "sup1").await;
    let error = browser
        .wait_for(
            "document.querySelector('#login-error').textContent",
            Duration::from_secs(10),
            "the page's answer to a supervisor",
        )
        .await;
    assert!(
        error.as_str().unwrap().contains("this page is for agents"),
        "{error}"
    );
    browser.close().await;
    api.stop().await;
}

#[tokio::test]
async fn desktop_pages_are_served_with_a_strict_policy() {
    let Some((api, _agent)) = desk(Db::Sqlite).await else {
        return;
    };
    let plain = reqwest::Client::new();
    for (path, kind) in [
        ("/agent/", "text/html"),
        ("/agent/app.js", "text/javascript"),
        ("/agent/app.css", "text/css"),
    ] {
        let answer = plain.get(api.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {:?}",
            headers["content-type"]
        );
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    // The page itself holds no data: the API behind it still needs a login.
    let answer = plain.get(api.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    let answer = plain.get(api.url("/agent")).send().await.unwrap();
    assert_eq!(answer.status(), 200, "/agent redirects to /agent/");
    api.stop().await;
}
