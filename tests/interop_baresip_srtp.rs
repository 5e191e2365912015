//! SRTP (SDES, RFC 4568) over SIP over TLS against a peer nobody here wrote: Debian's baresip
//! with its `srtp` module and `;mediaenc=srtp-mand` (it offers and accepts only RTP/SAVP).
//!
//! - As a carrier: `dialer call` places a call through a campaign trunk with
//!   `transport = "tls"` and `srtp = "required"`; baresip answers, the dialer's leg receives its
//!   tone as SRTP that authenticates (none dropped) and sends a 1 kHz tone that baresip decodes
//!   and records (`sndfile`).
//! - As an agent's phone: the service with `phone_srtp = required` answers baresip's SAVP offer
//!   over TLS with SRTP; a sipp callee is bridged to it; baresip hears the callee's words and
//!   its microphone reaches the dialer's recording, so SRTP works both ways through the bridge.
//! - Over UDP, the same service refuses the phone with 488: its keys would cross in clear.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

mod phones;

use api_support::{Api, Db};
use media::detect::{Channel, read_wav};
use phones::{MIC_HZ, bridged_campaign, clip, create_agent, find_clip, state, talking_carrier};
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;
use testkit::tls::TestCa;
use testkit::wait_for;

/// A baresip process, killed on drop.
struct Baresip {
    child: Child,
    dir: PathBuf,
    cons: SocketAddr,
}

impl Baresip {
    /// Starts baresip in `dir` with SRTP, G.711, a tone of `mic_hz` as its microphone,
    /// `sndfile` recording what it hears, the console on a UDP port, and `extra` config lines.
    fn start(
        program: &Path,
        dir: &Path,
        mic_hz: f64,
        extra: &str,
        account: &str,
        command: Option<&str>,
    ) -> Baresip {
        std::fs::create_dir_all(dir.join("heard")).unwrap();
        let mic = dir.join("mic.wav");
        testkit::audio::write_tone(&mic, mic_hz, 60.0, 6000.0);
        let cons = SocketAddr::from(([127, 0, 0, 1], testkit::free_udp_port()));
        std::fs::write(
            dir.join("config"),
            format!(
                "module_path /usr/lib/baresip/modules\n\
                 module g711.so\n\
                 module aufile.so\n\
                 module sndfile.so\n\
                 module cons.so\n\
                 module srtp.so\n\
                 module_app account.so\n\
                 module_app menu.so\n\
                 audio_source aufile,{mic}\n\
                 audio_player aufile,/dev/null\n\
                 audio_alert aufile,/dev/null\n\
                 snd_path {heard}\n\
                 cons_listen {cons}\n\
                 net_interface lo\n\
                 {extra}",
                mic = mic.display(),
                heard = dir.join("heard").display(),
            ),
        )
        .unwrap();
        std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
        let child = phones::spawn_baresip(program, dir, command);
        Baresip {
            child,
            dir: dir.to_path_buf(),
            cons,
        }
    }

    fn keys(&self, keys: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(keys.as_bytes(), self.cons).unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// What it heard and decoded (`sndfile`).
    fn heard(&self) -> Option<Vec<i16>> {
        let path = std::fs::read_dir(self.dir.join("heard"))
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|path| path.to_string_lossy().ends_with("-dec.wav"))?;
        read_wav(&path, Channel::Mix).ok()
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

/// The SDP of the INVITE (or its answer) in baresip's SIP trace carried SAVP and a crypto line.
fn assert_savp(trace: &str) {
    assert!(
        trace.contains("RTP/SAVP"),
        "no RTP/SAVP in the trace:\n{trace}"
    );
    assert!(
        trace.contains("a=crypto:"),
        "no a=crypto in the trace:\n{trace}"
    );
}

async fn dialer(args: &[&str]) -> std::process::Output {
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

/// Zero crossings per second of the sounding part of `samples`: a frequency estimate.
fn frequency(samples: &[i16]) -> f64 {
    let loud: Vec<i16> = samples
        .chunks(80)
        .filter(|frame| frame.iter().map(|&s| (s as i64).abs()).sum::<i64>() > 80 * 500)
        .flatten()
        .copied()
        .collect();
    if loud.len() < 800 {
        return 0.0;
    }
    let n = loud.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    n as f64 / (loud.len() as f64 / 8000.0) / 2.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialer_calls_a_tls_srtp_carrier_with_audio_both_ways() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("carrier CA");
    let carrier_dir = dir.path().join("carrier");
    std::fs::create_dir_all(&carrier_dir).unwrap();
    let pem = ca
        .leaf(&["localhost"])
        .write_combined(&carrier_dir, "carrier.pem");
    let port = testkit::free_phone_port();
    let carrier = Baresip::start(
        &program,
        &carrier_dir,
        MIC_HZ,
        &format!(
            "sip_listen 127.0.0.1:{port}\nsip_certificate {}\n",
            pem.display()
        ),
        "<sip:+12025550123@localhost>;regint=0;answermode=auto;audio_codecs=pcmu,pcma;\
         mediaenc=srtp-mand",
        None,
    );
    let tls = port + 1;
    let listening = wait_for(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", tls))
            .await
            .is_ok()
    })
    .await;
    assert!(
        listening,
        "baresip not listening for TLS\n{}",
        carrier.log()
    );

    let database = testkit::sqlite_url(&dir.path().join("dialer.db"));
    let campaign = dir.path().join("srtp-call.toml");
    std::fs::write(
        &campaign,
        format!(
            "name = \"srtp-call\"\ndefault_country = \"US\"\ncaller_id = \"+12025550100\"\n\
             ring_timeout = \"20s\"\nabandon_message = \"prompts/abandon.wav\"\n\n\
             [trunk]\nuri = \"sip:localhost:{tls}\"\ntransport = \"tls\"\nsrtp = \"required\"\n\
             ca_file = \"carrier-ca.pem\"\ncps = 5\n"
        ),
    )
    .unwrap();
    // The CA file is named relative to the prompts directory `call` is given (the campaign
    // check refuses paths that lead out of it).
    ca.write(dir.path(), "carrier-ca.pem");
    let applied = dialer(&[
        "--database-url",
        &database,
        "campaign",
        "apply",
        campaign.to_str().unwrap(),
    ])
    .await;
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let speech = dir.path().join("speech.wav");
    testkit::audio::write_tone(&speech, 1000.0, 2.5, 6000.0);
    let out = dialer(&[
        "--database-url",
        &database,
        "call",
        "--prompts-dir",
        dir.path().to_str().unwrap(),
        "(202) 555-0123",
        "--campaign",
        "srtp-call",
        "--bind",
        "127.0.0.1:0",
        "--talk",
        "3",
        "--play",
        speech.to_str().unwrap(),
        "--json",
    ])
    .await;
    let stdout = text(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("one JSON object: {stdout}{}", text(&out.stderr)));
    let trace = carrier.log();
    assert_eq!(
        report["outcome"],
        "answered",
        "{report:#}\n{}\n{trace}",
        text(&out.stderr)
    );
    assert_eq!(report["code"], 200);
    assert!(report["srtp"].is_string(), "{report:#}");
    assert_eq!(report["srtp_dropped"], 0, "{report:#}");
    // Three seconds of the carrier's tone at 50 packets a second, each authenticated.
    let received = report["rtp_packets"].as_u64().unwrap_or(0);
    assert!(received > 100, "{report:#}\n{trace}");
    assert!(report["rtp_sent"].as_u64().unwrap_or(0) > 100, "{report:#}");
    assert!(trace.contains("SIP/2.0/TLS"), "{trace}");
    assert_savp(&trace);
    // baresip decrypted and decoded our tone.
    let heard = wait_for(Duration::from_secs(5), || async {
        carrier.heard().is_some_and(|h| h.len() > 8000)
    })
    .await;
    let mut carrier = carrier;
    carrier.stop();
    assert!(heard, "baresip recorded nothing\n{}", carrier.log());
    let samples = carrier.heard().unwrap();
    let hz = frequency(&samples);
    eprintln!(
        "srtp carrier: suite {}, {received} packets received, {} sent; baresip heard {:.1} s, \
         {hz:.0} Hz",
        report["srtp"],
        report["rtp_sent"],
        samples.len() as f64 / 8000.0
    );
    assert!((980.0..1020.0).contains(&hz), "baresip heard {hz:.0} Hz");
}

/// The service with a TLS listener and `phone_srtp` as given.
async fn srtp_service(policy: domain::SrtpPolicy, leaf: &testkit::tls::Leaf) -> Option<Api> {
    Api::start_with(Db::Sqlite, |config, dir| {
        let (cert, key) = leaf.write(dir, "dialer");
        config.sip_tls = vec!["127.0.0.1:0".parse().unwrap()];
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.phone_srtp = policy;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_as_an_srtp_agent_over_tls_takes_a_bridged_call_with_audio_both_ways() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let words = clip("human_hello_004.wav");
    let Some(carrier) = talking_carrier(&words) else {
        return;
    };
    let ca = TestCa::new("dialer test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let Some(api) = srtp_service(domain::SrtpPolicy::Required, &leaf).await else {
        return;
    };
    bridged_campaign(&api, &carrier).await;
    let agent_id = create_agent(
        &api,
        json!({"username": "srtpagent", "password": "srtp-secret-1", "campaigns": ["interop"]}),
    )
    .await;
    let sip = api.engine.sip_addr(sip::Transport::Tls).unwrap();
    let ca_file = ca.write(api.dir.path(), "ca.pem");
    let port = testkit::free_phone_port();
    let mut phone = Baresip::start(
        &program,
        &api.dir.path().join("baresip"),
        MIC_HZ,
        &format!(
            "sip_listen 127.0.0.1:{port}\nsip_cafile {}\n",
            ca_file.display()
        ),
        &format!(
            "<sip:srtpagent@{sip};transport=tls>;auth_user=srtpagent;auth_pass=srtp-secret-1;\
             regint=0;audio_codecs=pcmu,pcma;mediaenc=srtp-mand"
        ),
        Some(&format!("/dial sip:interop@{sip};transport=tls")),
    );
    phones::expect_state(&api, agent_id, "ready", 20, || phone.log()).await;
    assert_savp(&phone.log());

    let (status, body) = api.post("/api/v1/campaigns/interop/start").await;
    assert_eq!(status, 200, "{body:#}");
    phones::expect_state(&api, agent_id, "on_call", 30, || phone.log()).await;
    let reached = wait_for(Duration::from_secs(40), || async {
        state(&api, agent_id).await == "wrap_up"
    })
    .await;
    assert!(
        reached,
        "no wrap-up: {}\n{}\n{}",
        state(&api, agent_id).await,
        carrier.diagnostics(),
        phone.log()
    );
    phone.keys("/hangup\n");
    phones::expect_state(&api, agent_id, "logged_out", 20, || phone.log()).await;
    let run = carrier.finish_within(Duration::from_secs(5)).await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
    // sndfile writes the WAV header's sizes when the call closes, which may come a moment after
    // the logout: killed before that, the file reads as empty.
    let closed = wait_for(Duration::from_secs(10), || async {
        phone.heard().is_some_and(|h| !h.is_empty())
    })
    .await;
    let log = phone.log();
    phone.stop();
    assert!(closed, "sndfile's recording never closed\n{log}");

    // SRTP towards the phone: it decrypted the callee's words.
    let heard = phone
        .heard()
        .unwrap_or_else(|| panic!("sndfile wrote nothing\n{log}"));
    let (at, similarity) = find_clip(&heard, &words);
    assert!(
        similarity > 0.8,
        "the callee's words not heard over SRTP: best match {similarity:.2} at {:.2} s",
        at as f64 / 8000.0
    );
    // SRTP from the phone: its microphone reached the call's recording.
    let (share, frames) = phones::microphone_in_recording(&api).await;
    assert!(
        frames > 50 && share > 0.8,
        "the microphone's tone is {:.0}% of {frames} sounding frames on the agent's channel",
        share * 100.0
    );
    eprintln!(
        "srtp agent: words heard at {:.2} s, similarity {similarity:.3}; microphone tone {:.0}% \
         of {frames} frames",
        at as f64 / 8000.0,
        share * 100.0
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_over_udp_is_refused_when_srtp_is_required() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let ca = TestCa::new("dialer test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let Some(api) = srtp_service(domain::SrtpPolicy::Required, &leaf).await else {
        return;
    };
    let (status, body) = api
        .apply_toml(&api_support::campaign_toml(
            "interop",
            api_support::nowhere(),
        ))
        .await;
    assert!(status == 200 || status == 201, "{body:#}");
    let agent_id = create_agent(
        &api,
        json!({"username": "udpagent", "password": "udp-secret-1", "campaigns": ["interop"]}),
    )
    .await;
    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    let port = testkit::free_phone_port();
    let phone = Baresip::start(
        &program,
        &api.dir.path().join("baresip"),
        MIC_HZ,
        &format!("sip_listen 127.0.0.1:{port}\n"),
        &format!(
            "<sip:udpagent@{sip}>;auth_user=udpagent;auth_pass=udp-secret-1;regint=0;\
             audio_codecs=pcmu,pcma;mediaenc=srtp-mand"
        ),
        Some(&format!("/dial sip:interop@{sip}")),
    );
    let refused = wait_for(Duration::from_secs(20), || async {
        phone.log().contains("SIP/2.0 488")
    })
    .await;
    assert!(refused, "no 488\n{}", phone.log());
    assert_ne!(state(&api, agent_id).await, "ready");
    api.stop().await;
}
