//! The agent desktop (`/agent`) in a real browser: Debian's headless Chromium under
//! chromedriver, its microphone a WAV file, against a running engine and API.
//!
//! Screenshots of each state go to `$DIALER_SCREENSHOTS` when it is set (the ones in
//! `docs/agent-desktop/` come from `DIALER_SCREENSHOTS=docs/agent-desktop cargo test --test
//! agent_desktop`), else to a temporary directory.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

mod phones;

use api_support::{Api, Db, campaign_toml, nowhere};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use testkit::browser::{Browser, BrowserOptions, Kind};

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

/// A browser whose microphone plays `mic`, logged in to the desktop as `user`, started work
/// (its WebRTC leg up); `None` when Chromium is missing (outside CI).
async fn at_work(api: &Api, user: &str, mic: PathBuf) -> Option<Browser> {
    let browser = Browser::start(BrowserOptions {
        fake_mic: Some(mic),
        ..BrowserOptions::default()
    })
    .await?;
    log_in(&browser, api, user).await;
    browser
        .wait_for(
            "!document.querySelector('#setup-view').hidden && !document.querySelector('#start').disabled",
            Duration::from_secs(10),
            "the setup view with a microphone",
        )
        .await;
    browser.click("#start").await;
    browser
        .wait_for(
            "window.desk.audio === 'up'",
            Duration::from_secs(20),
            "the WebRTC leg to come up",
        )
        .await;
    Some(browser)
}

/// Waits for the page's own view of the agent to be in `state`.
async fn page_state(browser: &Browser, state: &str, secs: u64) {
    browser
        .wait_for(
            &format!("window.desk.agent && window.desk.agent.state === '{state}'"),
            Duration::from_secs(secs),
            &format!("the page to show {state}"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_takes_a_bridged_call_over_webrtc_and_sets_a_callback() {
    let Some(setup) = phones::bridged("deskagent", "desk-secret-1").await else {
        return;
    };
    setup
        .api
        .user("deskagent", store::Role::Agent, Some(setup.agent))
        .await;
    // The campaign of the phones' tests, with a script for the screen pop.
    let toml = api_support::campaign_toml("interop", setup.carrier.addr())
        .replace(
            "abandon_message = ",
            "recording = true\nscript = '''Good day, this is {{agent_username}} calling {{phone}}.'''\nabandon_message = ",
        )
        .replace("timeout = \"30s\"", "timeout = \"120s\"");
    let (status, body) = setup.api.apply_toml(&toml).await;
    assert_eq!(status, 200, "{body:#}");
    let mic = setup.api.dir.path().join("mic.wav");
    testkit::audio::write_tone(&mic, phones::MIC_HZ, 4.0, 8000.0);
    let Some(browser) = at_work(&setup.api, "deskagent", mic).await else {
        return;
    };
    let (_, agent) = setup
        .api
        .get(&format!("/api/v1/agents/{}", setup.agent))
        .await;
    assert_ne!(agent["state"], "logged_out", "{agent:#}");
    browser.click("#ready").await;
    page_state(&browser, "ready", 10).await;
    browser.screenshot(shots().join("ready.png")).await;

    // What the page hears, from before the call to its end.
    browser
        .eval_async("await window.desk.startRecording()", vec![])
        .await;
    let (status, body) = setup.api.post("/api/v1/campaigns/interop/start").await;
    assert_eq!(status, 200, "{body:#}");
    page_state(&browser, "on_call", 30).await;
    browser
        .wait_for(
            "document.querySelector('#card-fields').textContent.includes('+13125550101')",
            Duration::from_secs(5),
            "the contact's card on the call",
        )
        .await;
    browser.screenshot(shots().join("on-call.png")).await;
    page_state(&browser, "wrap_up", 40).await;
    let heard: Vec<i16> = serde_json::from_value(
        browser
            .eval("return window.desk.stopRecording()", vec![])
            .await,
    )
    .unwrap();
    page_state(&browser, "wrap_up", 10).await;
    browser
        .wait_for(
            "!document.querySelector('#wrapup').hidden",
            Duration::from_secs(5),
            "the wrap-up panel",
        )
        .await;
    // The screen pop: the contact's card and the script filled from it.
    let card = browser
        .wait_for(
            "document.querySelector('#card-fields').textContent.includes('+13125550101') && document.querySelector('#card-fields').textContent",
            Duration::from_secs(5),
            "the contact's card",
        )
        .await;
    assert!(card.as_str().unwrap().contains("America/Chicago"), "{card}");
    let script = browser.text("#script").await.unwrap_or_default();
    assert_eq!(script, "Good day, this is deskagent calling +13125550101.");
    browser.screenshot(shots().join("wrap-up.png")).await;
    // Chromium's jitter buffer stretches and conceals audio when the machine is loaded, which
    // spoils a sample-by-sample comparison but not the words' loudness contour.
    let (frame, contour) = phones::envelope_match(&heard, &setup.words);
    let (_, similarity) = phones::find_clip(&heard, &setup.words);
    let wav = std::env::temp_dir().join(format!(
        "dialer-heard-in-the-page-{}.wav",
        std::process::id()
    ));
    testkit::audio::write_samples(&wav, &heard);
    assert!(
        contour > 0.85,
        "the callee's words not heard in the page: contour match {contour:.2} at {:.2} s of {:.2} s (samples {similarity:.2}); {}",
        frame as f64 / 100.0,
        heard.len() as f64 / 8000.0,
        wav.display()
    );
    eprintln!(
        "desktop: the callee's words heard in the page at {:.2} s: contour match {contour:.3}, samples {similarity:.3}",
        frame as f64 / 100.0
    );

    // A callback tomorrow at 10:30 in the callee's time zone, for this agent only.
    browser.fill("#note", "Call back about the renewal").await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .with_timezone(&chrono_tz::America::Chicago)
        .date_naive();
    browser
        .eval(
            "document.querySelector('#callback-at').value = arguments[0]",
            vec![json!(format!("{tomorrow}T10:30"))],
        )
        .await;
    browser.click("#dispose-callback").await;
    page_state(&browser, "ready", 10).await;
    let (_, page) = setup
        .api
        .get("/api/v1/campaigns/interop/contacts?status=callback")
        .await;
    let contact = &page["items"][0];
    let expected = tomorrow
        .and_hms_opt(10, 30, 0)
        .unwrap()
        .and_local_timezone(chrono_tz::America::Chicago)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let next: chrono::DateTime<chrono::Utc> = contact["next_attempt_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no callback stored: {page:#}"))
        .parse()
        .unwrap();
    assert_eq!(next, expected, "{contact:#}");
    // The fake microphone reached the call: the agent's channel of the recording is its tone.
    let (share, frames) = phones::assert_microphone_reached(&setup.api).await;
    eprintln!(
        "desktop: the microphone's tone is {:.0}% of {frames} frames",
        share * 100.0
    );
    browser.click("#logout").await;
    phones::expect_state(&setup.api, setup.agent, "logged_out", 10, String::new).await;
    browser.close().await;
    setup.api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_comes_back_by_itself_after_the_node_restarts() {
    let Some((mut api, agent)) = desk(Db::Sqlite).await else {
        return;
    };
    let mic = mic_wav(api.dir.path());
    let Some(browser) = at_work(&api, "desk1", mic).await else {
        return;
    };
    // The keyboard: P pauses (with the chosen reason), R makes ready, P again.
    browser.press('p').await;
    page_state(&browser, "paused", 10).await;
    browser.press('r').await;
    page_state(&browser, "ready", 10).await;
    browser.press('p').await;
    page_state(&browser, "paused", 10).await;

    // The node restarts under the page: a new engine on the same database and address.
    api.restart().await;
    let back = testkit::wait_for(Duration::from_secs(60), || async {
        let (_, view) = api.get(&format!("/api/v1/agents/{agent}")).await;
        view["state"] == "paused" && view["pause_reason"] == "break"
    })
    .await;
    let (_, view) = api.get(&format!("/api/v1/agents/{agent}")).await;
    assert!(back, "the page did not log its agent back in: {view:#}");
    browser
        .wait_for(
            "window.desk.audio === 'up' && window.desk.link === 'up' && window.desk.reconnects > 0",
            Duration::from_secs(30),
            "the page's audio and live links back",
        )
        .await;
    browser.screenshot(shots().join("reconnected.png")).await;
    browser.click("#logout").await;
    api.stop().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Firefox ESR and geckodriver (apt-get install firefox-esr; cargo install geckodriver): cargo test --test agent_desktop -- --ignored"]
async fn desktop_logs_in_and_opens_the_microphone_in_firefox() {
    let Some((api, _agent)) = desk(Db::Sqlite).await else {
        return;
    };
    let Some(browser) = Browser::start(BrowserOptions {
        kind: Kind::Firefox,
        ..BrowserOptions::default()
    })
    .await
    else {
        return;
    };
    log_in(&browser, &api, "desk1").await;
    browser
        .wait_for(
            "!document.querySelector('#setup-view').hidden",
            Duration::from_secs(15),
            "the setup view",
        )
        .await;
    // Firefox's fake microphone is opened and offered (its level is not checked: the fake
    // device of a headless Firefox gives the analyser silence).
    browser
        .wait_for(
            "window.desk.stream && window.desk.stream.getAudioTracks().length === 1 && document.querySelectorAll('#mic option').length > 0 && !document.querySelector('#start').disabled",
            Duration::from_secs(15),
            "the microphone opened",
        )
        .await;
    browser.screenshot(shots().join("setup-firefox.png")).await;
    browser.close().await;
    api.stop().await;
}
