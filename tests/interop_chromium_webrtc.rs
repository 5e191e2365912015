//! A real browser as an agent's phone: Debian's headless Chromium (WebDriver, `testkit::browser`)
//! opens an RTCPeerConnection with a fake microphone playing a tone, and its offer logs the
//! agent in (`POST /api/v1/agents/{id}/webrtc`). A sipp carrier's callee is bridged into the
//! browser:
//!
//! - the page hears the callee's words (the loudness over time of what WebAudio decoded
//!   matches the clip sipp sent, where the callee says it);
//! - the microphone reaches the call (the dialer's stereo recording holds its tone on the
//!   agent's channel);
//! - a second offer (the page reconnecting) replaces the browser's connection and the agent
//!   keeps its state.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

mod phones;

use phones::{MIC_HZ, assert_microphone_reached, bridged, state};
use serde_json::json;
use std::time::Duration;
use testkit::browser::{Browser, BrowserOptions};

/// Opens an RTCPeerConnection with the microphone (no echo cancellation, noise suppression or
/// gain control: the tone must reach the call as it is), records what it receives at 8 kHz
/// into `window.heard`, and returns the offer once ICE gathering is complete.
const OFFER_JS: &str = r#"
const stream = await navigator.mediaDevices.getUserMedia({audio: {
    echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
const pc = new RTCPeerConnection();
window.pcs = (window.pcs || []).concat([pc]);
window.pc = pc;
stream.getTracks().forEach(t => pc.addTrack(t, stream));
window.heard = window.heard || [];
pc.ontrack = (e) => {
    const remote = e.streams[0] || new MediaStream([e.track]);
    // Chromium feeds a remote stream to WebAudio only while a media element plays it.
    const el = new Audio();
    el.srcObject = remote;
    el.muted = true;
    el.play();
    const ctx = new AudioContext();
    const step = ctx.sampleRate / 8000;
    const src = ctx.createMediaStreamSource(remote);
    const proc = ctx.createScriptProcessor(4096, 1, 1);
    let acc = 0, n = 0;
    proc.onaudioprocess = (ev) => {
        const d = ev.inputBuffer.getChannelData(0);
        for (let i = 0; i < d.length; i++) {
            acc += d[i]; n++;
            if (n >= step) { window.heard.push(Math.round(acc / n * 32767)); acc = 0; n = 0; }
        }
    };
    src.connect(proc);
    proc.connect(ctx.destination);
};
await pc.setLocalDescription(await pc.createOffer());
await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
});
return pc.localDescription.sdp;
"#;

/// Gives the latest connection the dialer's answer.
const ANSWER_JS: &str = r#"
await window.pc.setRemoteDescription({type: 'answer', sdp: arguments[0]});
return true;
"#;

async fn offer_and_answer(browser: &Browser, api: &api_support::Api, agent: i64) -> String {
    let offer = browser.eval_async(OFFER_JS, vec![]).await;
    let offer = offer.as_str().expect("the page's offer").to_owned();
    assert!(offer.contains("PCMU"), "{offer}");
    let (status, body) = api
        .post_json(
            &format!("/api/v1/agents/{agent}/webrtc"),
            &json!({"sdp": offer}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    let answer = body["sdp"].as_str().expect("an answer").to_owned();
    browser.eval_async(ANSWER_JS, vec![json!(answer)]).await;
    browser
        .wait_for(
            "window.pc.connectionState === 'connected'",
            Duration::from_secs(15),
            "the browser's connection up (ICE and DTLS)",
        )
        .await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_is_an_agents_phone_over_webrtc_audio_both_ways() {
    let Some(b) = bridged("webagent", "web-agent-pass").await else {
        return;
    };
    let mic = b.api.dir.path().join("mic.wav");
    testkit::audio::write_tone(&mic, MIC_HZ, 120.0, 6000.0);
    let Some(browser) = Browser::start(BrowserOptions {
        fake_mic: Some(mic),
        ..BrowserOptions::default()
    })
    .await
    else {
        return;
    };
    // A page of the service's origin: loopback is a secure context, so the microphone works.
    browser.goto(&b.api.url("/healthz")).await;
    let answer = offer_and_answer(&browser, &b.api, b.agent).await;
    assert!(answer.contains("a=ice-lite"), "{answer}");
    phones::expect_state(&b.api, b.agent, "ready", 10, String::new).await;

    let log = || b.carrier.diagnostics();
    b.call_until_wrap_up(log).await;

    let (share, frames) = assert_microphone_reached(&b.api).await;
    eprintln!(
        "the fake microphone's tone is {:.0}% of {frames} sounding frames of the agent's channel",
        share * 100.0
    );
    let heard: Vec<i16> = browser
        .eval("return window.heard", vec![])
        .await
        .as_array()
        .expect("samples")
        .iter()
        .map(|v| v.as_i64().unwrap_or(0) as i16)
        .collect();
    let loud = heard.iter().filter(|s| s.unsigned_abs() > 500).count();
    eprintln!(
        "the page recorded {} samples, {loud} of them above 500",
        heard.len()
    );
    let (he, ce) = (phones::envelope(&heard), phones::envelope(&b.words));
    let (lag, envelope) = (0..he.len().saturating_sub(ce.len()))
        .map(|lag| (lag, phones::correlation(&he[lag..], &ce)))
        .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best });
    let (at, similarity) = phones::find_clip(&heard, &b.words);
    eprintln!(
        "the page heard the callee's words at {:.2} s: energy envelope correlation {envelope:.3} (10 ms frames), samples {similarity:.3} at {:.2} s",
        lag as f64 / 100.0,
        at as f64 / 8000.0
    );
    // Chromium's jitter buffer (NetEq) and WebAudio's resampling do not keep the samples'
    // waveform (their correlation with the clip stays near 0), but the words' loudness over
    // time is the clip's (0.73 measured where the callee says them).
    assert!(
        envelope > 0.6,
        "the callee's words not heard by the page: {envelope:.2}\n{}",
        b.carrier.diagnostics()
    );

    // The page reconnects: a new offer replaces the connection, the agent stays in wrap-up.
    assert_eq!(state(&b.api, b.agent).await, "wrap_up");
    offer_and_answer(&browser, &b.api, b.agent).await;
    assert_eq!(state(&b.api, b.agent).await, "wrap_up");
    let (status, body) = b
        .api
        .post(&format!("/api/v1/agents/{}/ready", b.agent))
        .await;
    assert_eq!(status, 200, "{body:#}");
    let (status, body) = b
        .api
        .post(&format!("/api/v1/agents/{}/logout", b.agent))
        .await;
    assert_eq!(status, 200, "{body:#}");
    phones::expect_state(&b.api, b.agent, "logged_out", 10, String::new).await;
    browser.close().await;
}
