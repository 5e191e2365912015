//! What the real softphones' tests share: a sipp callee who talks to the agent, and checks of
//! what a phone heard and what it said.

#![allow(dead_code)]

use crate::api_support::{Api, Db};
use media::detect::{Channel, read_wav};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::sipp::{Sipp, args, loopback, scenario};

/// The microphone's tone (Hz).
pub const MIC_HZ: f64 = 440.0;

/// A clip of the media corpus as linear samples.
pub fn clip(name: &str) -> Vec<i16> {
    let path = testkit::workspace_dir()
        .join("crates/media/corpus/clips")
        .join(name);
    read_wav(&path, Channel::Mix).unwrap_or_else(|err| panic!("corpus clip {name}: {err}"))
}

pub fn ulaw(samples: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; samples.len()];
    media::Codec::Pcmu.encode(samples, &mut out);
    out
}

/// sipp as a callee who says hello, then `words`, then is silent (no RTP) until it hangs up.
pub fn talking_carrier(words: &[i16]) -> Option<Sipp> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("greeting.ulaw"),
        ulaw(&clip("human_hello_001.wav")),
    )
    .unwrap();
    std::fs::write(dir.path().join("words.ulaw"), ulaw(words)).unwrap();
    let port = testkit::free_udp_port();
    let media_port = testkit::sipp::free_media_base();
    let mut argv = args(&[
        "-sf",
        &scenario("carrier_talks_to_agent.xml").display().to_string(),
    ]);
    argv.extend(loopback(port, media_port));
    argv.extend(args(&["-m", "1", "-timeout", "120s"]));
    Sipp::start(dir, argv, port, media_port, true)
}

/// Energy per 10 ms frame.
pub fn envelope(samples: &[i16]) -> Vec<f64> {
    samples
        .chunks(80)
        .map(|frame| frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>())
        .collect()
}

pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let mean = |x: &[f64]| x[..n].iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (x, y) = (a[i] - ma, b[i] - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// Where `clip`'s loudness contour (10 ms energies) best matches in `heard` (in 10 ms frames)
/// and how well (1.0 for the same contour): what a listener would recognise, even through a
/// receiver that stretches or conceals audio under load, as a browser's jitter buffer does.
pub fn envelope_match(heard: &[i16], clip: &[i16]) -> (usize, f64) {
    let (he, ce) = (envelope(heard), envelope(clip));
    let mut best = (0, f64::MIN);
    for lag in 0..he.len().saturating_sub(ce.len()) {
        let c = correlation(&he[lag..], &ce);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// Where `clip` best matches in `heard` (in samples) and how well (normalized correlation of
/// the samples there, 1.0 for the same audio): found by the 10 ms energy envelopes, then
/// refined sample by sample around it.
pub fn find_clip(heard: &[i16], clip: &[i16]) -> (usize, f64) {
    let best = envelope_match(heard, clip);
    let to_f = |x: &[i16]| x.iter().map(|&s| f64::from(s)).collect::<Vec<f64>>();
    let clip_f = to_f(clip);
    let centre = best.0 * 80;
    let mut fine = (centre, f64::MIN);
    for lag in centre.saturating_sub(160)..=centre + 160 {
        if lag + clip.len() > heard.len() {
            break;
        }
        let c = correlation(&to_f(&heard[lag..lag + clip.len()]), &clip_f);
        if c > fine.1 {
            fine = (lag, c);
        }
    }
    fine
}

/// The share of `samples`' energy at `hz` (Goertzel over 20 ms frames), among frames with any
/// sound; and how many such frames there were.
pub fn tone_share(samples: &[i16], hz: f64) -> (f64, usize) {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut tone, mut total, mut frames) = (0.0, 0.0, 0);
    for frame in samples.chunks_exact(160) {
        let energy: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
        if energy < 160.0 * 100.0 * 100.0 {
            continue;
        }
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in frame {
            let s0 = f64::from(x) + coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
        // A pure tone's Goertzel power is N/2 times its energy.
        tone += power / (frame.len() as f64 / 2.0);
        total += energy;
        frames += 1;
    }
    (if total > 0.0 { tone / total } else { 0.0 }, frames)
}

/// The bridged-call campaign of these tests: `interop`, its trunk the talking carrier, calls
/// recorded, a wrap-up long enough for a key to end it, one contact to call.
pub async fn bridged_campaign(api: &Api, carrier: &Sipp) {
    let toml = crate::api_support::campaign_toml("interop", carrier.addr())
        .replace("abandon_message = ", "recording = true\nabandon_message = ")
        .replace("timeout = \"30s\"", "timeout = \"120s\"");
    let (status, body) = api.apply_toml(&toml).await;
    assert!(status == 200 || status == 201, "{body:#}");
    let (status, body) = api
        .upload(
            "interop",
            "one.csv",
            "phone,timezone\n+13125550101,America/Chicago\n",
        )
        .await;
    assert!(status == 200 || status == 201, "{body:#}");
}

/// Creates an agent over the API; its id.
pub async fn create_agent(api: &Api, body: serde_json::Value) -> i64 {
    let (status, agent) = api.post_json("/api/v1/agents", &body).await;
    assert_eq!(status, 201, "{agent:#}");
    agent["id"].as_i64().unwrap()
}

/// The agent's state as the API shows it.
pub async fn state(api: &Api, agent: i64) -> serde_json::Value {
    api.get(&format!("/api/v1/agents/{agent}")).await.1["state"].clone()
}

/// Waits for the agent to be in `wanted` (within `secs`); fails with `log()` (the phone's).
pub async fn expect_state(
    api: &Api,
    agent: i64,
    wanted: &str,
    secs: u64,
    log: impl Fn() -> String,
) {
    let reached = testkit::wait_for(std::time::Duration::from_secs(secs), || async {
        state(api, agent).await == wanted
    })
    .await;
    assert!(
        reached,
        "agent not {wanted}: {}\n{}",
        state(api, agent).await,
        log()
    );
}

/// The agent's channel of the call's recording: the share of the microphone's tone in it.
pub async fn microphone_in_recording(api: &Api) -> (f64, usize) {
    let (_, attempts) = api.get("/api/v1/campaigns/interop/attempts").await;
    let recording = attempts["items"][0]["recording_path"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording: {attempts:#}"))
        .to_owned();
    let agent_side = read_wav(std::path::Path::new(&recording), Channel::Index(1)).unwrap();
    tone_share(&agent_side, MIC_HZ)
}

/// What a bridged-call test runs on: a talking carrier, the service with the `interop` campaign
/// and one agent of it.
pub struct Bridged {
    /// The words the callee says.
    pub words: Vec<i16>,
    /// The sipp carrier whose callee says them.
    pub carrier: Sipp,
    /// The service (SQLite).
    pub api: Api,
    /// The agent's id.
    pub agent: i64,
    /// The engine's SIP address over UDP, for the phone to call.
    pub sip: SocketAddr,
}

/// Starts a talking carrier and the service with the `interop` campaign and an agent
/// `username`/`password` of it; `None` when a peer is missing (skipped, or failed under CI).
pub async fn bridged(username: &str, password: &str) -> Option<Bridged> {
    let words = clip("human_hello_004.wav");
    let carrier = talking_carrier(&words)?;
    let api = Api::start(Db::Sqlite).await?;
    bridged_campaign(&api, &carrier).await;
    let agent = create_agent(
        &api,
        serde_json::json!({"username": username, "password": password, "campaigns": ["interop"]}),
    )
    .await;
    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    Some(Bridged {
        words,
        carrier,
        api,
        agent,
        sip,
    })
}

impl Bridged {
    /// Starts the campaign and waits for its callee to be bridged to the agent and to hang up
    /// (the agent in wrap-up); fails with the carrier's and the phone's (`log()`) logs.
    pub async fn call_until_wrap_up(&self, log: impl Fn() -> String) {
        let (status, body) = self.api.post("/api/v1/campaigns/interop/start").await;
        assert_eq!(status, 200, "{body:#}");
        expect_state(&self.api, self.agent, "on_call", 30, &log).await;
        let reached = testkit::wait_for(Duration::from_secs(40), || async {
            state(&self.api, self.agent).await == "wrap_up"
        })
        .await;
        assert!(
            reached,
            "no wrap-up: {}\n{}\n{}",
            state(&self.api, self.agent).await,
            self.carrier.diagnostics(),
            log()
        );
    }
}

/// Checks that `heard` (what the phone decoded) holds the callee's `words`; where (in samples)
/// and how alike.
pub fn assert_heard(heard: &[i16], words: &[i16], log: &str) -> (usize, f64) {
    let (at, similarity) = find_clip(heard, words);
    assert!(
        similarity > 0.8,
        "the callee's words not heard: best match {similarity:.2} at {:.2} s of {:.2} s\n{log}",
        at as f64 / 8000.0,
        heard.len() as f64 / 8000.0,
    );
    (at, similarity)
}

/// Checks that the phone's microphone reached the call: the agent's channel of the dialer's
/// recording is its tone. The tone's share and the sounding frames.
pub async fn assert_microphone_reached(api: &Api) -> (f64, usize) {
    let (share, frames) = microphone_in_recording(api).await;
    assert!(
        frames > 50 && share > 0.8,
        "the microphone's tone is {:.0}% of {frames} sounding frames on the agent's channel",
        share * 100.0
    );
    (share, frames)
}

/// Starts baresip with the config and accounts already in `dir`, bound to loopback, its output
/// in `dir/baresip.log`, and `command` (`-e`) run once it is up.
pub fn spawn_baresip(
    program: &std::path::Path,
    dir: &std::path::Path,
    command: Option<&str>,
) -> std::process::Child {
    use std::process::{Command, Stdio};
    let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
    let mut cmd = Command::new(program);
    cmd.args(["-f", dir.to_str().unwrap(), "-n", "127.0.0.1", "-s"]);
    if let Some(command) = command {
        cmd.args(["-e", command]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("baresip starts")
}
