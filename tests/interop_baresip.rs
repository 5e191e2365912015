//! A softphone nobody here wrote as an agent's phone: Debian's baresip 1.0.0, headless (its
//! microphone a WAV file through `aufile`, what it hears written by `sndfile`, keys typed into
//! its `cons` socket), against the engine with the default settings.
//!
//! - It logs in (it gives up on a challenge that names any algorithm it does not know, so it
//!   logs in only while MD5 alone is offered, or while its agent is set to MD5 alone).
//! - It takes a bridged call from a sipp carrier: it hears the callee's words (its recording
//!   matches the clip the carrier sent), its microphone reaches the call (the dialer's stereo
//!   recording holds its tone on the agent's channel), RTP keeps coming while the callee is
//!   silent, a key pressed in wrap-up (RFC 4733) sets the disposition, and the jitter the dialer
//!   reports in RTCP stays near the real one after that key press (baresip's `rtcpsummary`).
//! - It logs out by hanging up.
//!
//! The configuration written here is the one `docs/agent-phones.md` gives phone owners.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

mod phones;

use api_support::{Api, Db, campaign_toml, nowhere};
use media::detect::{Channel, read_wav};
use phones::{MIC_HZ, create_agent};
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A baresip process, killed on drop.
struct Baresip {
    child: Child,
    dir: PathBuf,
    cons: SocketAddr,
}

impl Baresip {
    /// Starts baresip with its configuration and `account` in `dir`, dialling `target` at once;
    /// its microphone plays a steady tone.
    fn start(program: &Path, dir: &Path, account: &str, target: &str) -> Self {
        std::fs::create_dir_all(dir.join("heard")).unwrap();
        let mic = dir.join("mic.wav");
        // A minute of a steady tone: still playing when a call is bridged.
        testkit::audio::write_tone(&mic, MIC_HZ, 60.0, 6000.0);
        // A port taken between the choice and baresip's bind (tests run in parallel) stops
        // baresip at start; it is tried again on another.
        for _attempt in 0..3 {
            let port = testkit::free_phone_port();
            let cons = SocketAddr::from(([127, 0, 0, 1], testkit::free_udp_port()));
            std::fs::write(
                dir.join("config"),
                config(port, cons, &mic, &dir.join("heard")),
            )
            .unwrap();
            std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
            let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
            let child = Command::new(program)
                .args(["-f", dir.to_str().unwrap(), "-n", "127.0.0.1", "-s"])
                .args(["-e", &format!("/dial {target}")])
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("baresip starts");
            let mut phone = Baresip {
                child,
                dir: dir.to_path_buf(),
                cons,
            };
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(5) {
                let log = phone.log();
                if log.contains("Address already in use") {
                    break;
                }
                if log.contains("baresip is ready") {
                    return phone;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if !phone.log().contains("Address already in use") {
                return phone;
            }
            phone.stop();
        }
        panic!("baresip found no free port in 3 tries");
    }

    /// Types `keys` into baresip's console (`/hangup\n`, or a digit sent as DTMF in a call).
    fn keys(&self, keys: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(keys.as_bytes(), self.cons).unwrap();
    }

    /// Its log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// What it heard (sndfile's recording of the decoded audio).
    fn heard(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.join("heard"))
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|path| path.to_string_lossy().ends_with("-dec.wav"))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
    }
}

/// baresip's `config`: G.711 only, the WAV microphone, sndfile's recordings in `heard`, the
/// console on `cons`, the call summary at hang-up.
fn config(sip_port: u16, cons: SocketAddr, mic: &Path, heard: &Path) -> String {
    format!(
        "module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module aufile.so\n\
         module sndfile.so\n\
         module cons.so\n\
         module rtcpsummary.so\n\
         module_app account.so\n\
         module_app menu.so\n\
         sip_listen 127.0.0.1:{sip_port}\n\
         audio_source aufile,{mic}\n\
         audio_player aufile,/dev/null\n\
         audio_alert aufile,/dev/null\n\
         snd_path {heard}\n\
         cons_listen {cons}\n\
         net_interface lo\n",
        mic = mic.display(),
        heard = heard.display(),
    )
}

/// baresip's account line for an agent at the engine's SIP address.
fn account(user: &str, password: &str, sip: SocketAddr) -> String {
    format!(
        "<sip:{user}@{sip}>;auth_user={user};auth_pass={password};regint=0;audio_codecs=pcmu,pcma"
    )
}

/// Waits for the agent to be in `wanted`; fails with baresip's log.
async fn expect_state(api: &Api, agent: i64, wanted: &str, phone: &Baresip, within: u64) {
    phones::expect_state(api, agent, wanted, within, || phone.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_logs_in_as_an_agent_with_the_default_settings() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    let (status, body) = api.apply_toml(&campaign_toml("interop", nowhere())).await;
    assert!(status == 200 || status == 201, "{body:#}");
    let agent_id = create_agent(
        &api,
        json!({"username": "bareagent", "display_name": "Bare Agent", "password": "bare-secret-1", "campaigns": ["interop"]}),
    )
    .await;
    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    let mut phone = Baresip::start(
        &program,
        &api.dir.path().join("baresip"),
        &account("bareagent", "bare-secret-1", sip),
        &format!("sip:interop@{sip}"),
    );
    expect_state(&api, agent_id, "ready", &phone, 20).await;
    // It answered the challenge with MD5, the one algorithm offered.
    let trace = phone.log();
    assert!(trace.contains("401"), "{trace}");
    assert!(
        !trace.to_ascii_lowercase().contains("algorithm=sha-256"),
        "{trace}"
    );
    // Hanging up logs the agent out.
    phone.keys("/hangup\n");
    expect_state(&api, agent_id, "logged_out", &phone, 20).await;
    phone.stop();
    api.stop().await;
}

/// The service offers SHA-256 and MD5, which baresip cannot log in with; its agent is set to
/// MD5 alone, so its phone gets one MD5 challenge and logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_logs_in_where_its_agent_is_offered_md5_alone() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let Some(api) = Api::start_with(Db::Sqlite, |config, _| {
        config.digest_algorithms = vec![
            sip::digest::DigestAlgorithm::Sha256,
            sip::digest::DigestAlgorithm::Md5,
        ];
    })
    .await
    else {
        return;
    };
    let (status, body) = api.apply_toml(&campaign_toml("interop", nowhere())).await;
    assert!(status == 200 || status == 201, "{body:#}");
    let agent_id = create_agent(
        &api,
        json!({"username": "md5agent", "password": "bare-secret-2", "campaigns": ["interop"], "digest_algorithms": ["MD5"]}),
    )
    .await;
    let (_, view) = api.get(&format!("/api/v1/agents/{agent_id}")).await;
    api_support::valid_as("AgentView", &view);
    assert_eq!(view["digest_algorithms"], json!(["MD5"]), "{view:#}");
    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    let mut phone = Baresip::start(
        &program,
        &api.dir.path().join("baresip"),
        &account("md5agent", "bare-secret-2", sip),
        &format!("sip:interop@{sip}"),
    );
    expect_state(&api, agent_id, "ready", &phone, 20).await;
    let trace = phone.log();
    let challenges: Vec<&str> = trace
        .lines()
        .filter(|line| line.to_ascii_lowercase().starts_with("www-authenticate:"))
        .collect();
    assert!(!challenges.is_empty(), "{trace}");
    assert!(
        challenges.iter().all(|c| c.contains("algorithm=MD5")),
        "{challenges:?}"
    );
    // One challenge per 401.
    let refusals = trace
        .lines()
        .filter(|l| l.starts_with("SIP/2.0 401"))
        .count();
    assert_eq!(challenges.len(), refusals, "{trace}");
    phone.keys("/hangup\n");
    expect_state(&api, agent_id, "logged_out", &phone, 20).await;
    phone.stop();
    api.stop().await;
}

/// baresip's call summary (`rtcpsummary`): the jitter it measured on what it received and the
/// jitter the dialer reported about what it sent (RTCP receiver reports), in ms.
fn rtcp_jitter(log: &str) -> Option<(f64, f64)> {
    let line = log.lines().find(|l| l.contains("EX=BareSip"))?;
    let field = line.split(';').find_map(|f| f.strip_prefix("JI="))?;
    let (rx, tx) = field.split_once(',')?;
    Some((rx.trim().parse().ok()?, tx.trim().parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_takes_a_bridged_call_hears_it_speaks_and_sets_the_disposition() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let Some(setup) = phones::bridged("bareagent", "bare-secret-1").await else {
        return;
    };
    let (api, agent_id, sip) = (&setup.api, setup.agent, setup.sip);
    let mut phone = Baresip::start(
        &program,
        &api.dir.path().join("baresip"),
        &account("bareagent", "bare-secret-1", sip),
        &format!("sip:interop@{sip}"),
    );
    expect_state(api, agent_id, "ready", &phone, 20).await;
    let logged_in = Instant::now();

    // The carrier's callee is bridged to baresip, talks, falls silent and hangs up.
    setup.call_until_wrap_up(|| phone.log()).await;
    let phones::Bridged {
        words,
        carrier,
        api,
        ..
    } = setup;

    // Key 3 in wrap-up (an RFC 4733 event from baresip): a callback; the agent is ready again.
    phone.keys("3");
    expect_state(&api, agent_id, "ready", &phone, 20).await;
    let (_, page) = api
        .get("/api/v1/campaigns/interop/contacts?status=callback")
        .await;
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(1),
        "the disposition did not land: {page:#}"
    );
    // Long enough for RTCP reports sent after the key press (baresip reports every 5 s) to
    // reach the call's summary.
    tokio::time::sleep(Duration::from_secs(7)).await;

    // Hanging up logs out; the summary is printed at hang-up.
    phone.keys("/hangup\n");
    expect_state(&api, agent_id, "logged_out", &phone, 20).await;
    let session = logged_in.elapsed();
    let run = carrier.finish_within(Duration::from_secs(5)).await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
    // sndfile writes the WAV header's sizes when the call closes, which may come a moment after
    // the logout: killed before that, the file reads as empty.
    let closed = testkit::wait_for(Duration::from_secs(10), || async {
        phone
            .heard()
            .and_then(|path| read_wav(&path, Channel::Mix).ok())
            .is_some_and(|samples| !samples.is_empty())
    })
    .await;
    let log = phone.log();
    phone.stop();
    assert!(closed, "sndfile's recording never closed\n{log}");

    // It heard the callee's words.
    let heard_path = phone
        .heard()
        .unwrap_or_else(|| panic!("sndfile wrote nothing\n{log}"));
    let heard = read_wav(&heard_path, Channel::Mix).unwrap();
    let (at, similarity) = phones::assert_heard(&heard, &words, &log);
    // RTP kept coming the whole session, the callee's silence included: what it decoded covers
    // nearly all of the time it was logged in.
    let decoded = heard.len() as f64 / 8000.0;
    assert!(
        decoded > 0.9 * session.as_secs_f64(),
        "{decoded:.1} s decoded in a {:.1} s session",
        session.as_secs_f64()
    );
    let (share, frames) = phones::assert_microphone_reached(&api).await;
    eprintln!(
        "baresip: words heard at {:.2} s, similarity {similarity:.3}; {decoded:.1} s decoded in a \
         {:.1} s session; microphone tone {:.0}% of {frames} frames",
        at as f64 / 8000.0,
        session.as_secs_f64(),
        share * 100.0
    );
    // The jitter the dialer reported about baresip's audio after the key press stays near the
    // real one (loopback: a few ms at most, where counting the key's events made it climb).
    let (received, reported) =
        rtcp_jitter(&log).unwrap_or_else(|| panic!("no call summary in baresip's log\n{log}"));
    eprintln!("baresip: RTCP jitter {received} ms measured, {reported} ms reported by the dialer");
    assert!(
        reported < 20.0,
        "reported jitter {reported} ms (baresip measured {received} ms on what it received)"
    );
    api.stop().await;
}
