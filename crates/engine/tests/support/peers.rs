//! The engine's peers in sipp: the carrier, which answers each number by the fate of its last
//! digit with real audio, and the agents' phones. Shared with the API's end-to-end test
//! (`crates/api/tests/api_calls.rs` includes this file).

#![allow(dead_code)]

use std::net::SocketAddr;

use media::Codec;
use media::detect::{Channel, read_wav};
use testkit::sip_msg::{audio_port, header};
use testkit::sipp::{Sipp, args, loopback, scenario};

/// What the carrier does with a number ending in this digit (see
/// `crates/testkit/sipp/engine_carrier.xml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    Live = 1,
    Busy = 2,
    NoAnswer = 3,
    Failure = 4,
    Machine = 5,
    NotFound = 6,
    Sit = 7,
    Declined = 8,
    /// A live answer that offers telephone-event (payload type 101) and stays 30 s.
    LiveWithKeys = 9,
}

impl Fate {
    pub fn of(number: &str) -> Fate {
        match number.chars().last() {
            Some('1') => Fate::Live,
            Some('2') => Fate::Busy,
            Some('3') => Fate::NoAnswer,
            Some('5') => Fate::Machine,
            Some('6') => Fate::NotFound,
            Some('7') => Fate::Sit,
            Some('8') => Fate::Declined,
            Some('9') => Fate::LiveWithKeys,
            _ => Fate::Failure,
        }
    }
}

fn ulaw(samples: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; samples.len()];
    Codec::Pcmu.encode(samples, &mut out);
    out
}

fn clip(name: &str) -> Vec<i16> {
    let clips = testkit::workspace_dir().join("crates/media/corpus/clips");
    read_wav(&clips.join(name), Channel::Mix)
        .unwrap_or_else(|err| panic!("corpus clip {name}: {err}"))
}

/// A vacant-code special information tone (985.2 Hz 380 ms, 1370.6 Hz 274 ms, 1776.7 Hz 380
/// ms), then silence: what a network plays before "the number you have dialled...".
pub fn sit_tone() -> Vec<i16> {
    let mut s = vec![0i16; 1600];
    testkit::audio::tone(985.2, 380, 8000.0, &mut s);
    testkit::audio::tone(1370.6, 274, 8000.0, &mut s);
    testkit::audio::tone(1776.7, 380, 8000.0, &mut s);
    s.extend(vec![0i16; 8000]);
    s
}

/// sipp as the carrier: answers every INVITE by the fate of the dialled number.
pub fn sipp_carrier() -> Option<Sipp> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("human.ulaw"),
        ulaw(&clip("human_hello_001.wav")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("machine.ulaw"),
        ulaw(&clip("machine_long_greeting_131.wav")),
    )
    .unwrap();
    std::fs::write(dir.path().join("sit.ulaw"), ulaw(&sit_tone())).unwrap();
    let port = testkit::free_udp_port();
    let media_port = testkit::free_udp_port();
    let mut argv = args(&["-sf", &scenario("engine_carrier.xml").display().to_string()]);
    argv.extend(loopback(port, media_port));
    argv.extend(["-timeout".into(), "900s".into()]);
    Sipp::start(dir, argv, port, media_port, true)
}

/// sipp as the agents' phones, one call each: registers and calls `campaign` at `engine`.
pub fn sipp_agents(
    engine: SocketAddr,
    agents: &[(String, String)],
    campaign: &str,
) -> Option<Sipp> {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("SEQUENTIAL\n");
    for (user, password) in agents {
        // sipp expands a keyword held in a field, not fields inside the keyword.
        csv.push_str(&format!(
            "{user};{password};{campaign};[authentication username={user} password={password}]\n"
        ));
    }
    std::fs::write(dir.path().join("agents.csv"), csv).unwrap();
    let port = testkit::free_udp_port();
    let media_port = testkit::free_udp_port();
    let mut argv = args(&[
        &engine.to_string(),
        "-sf",
        &scenario("engine_agent.xml").display().to_string(),
        "-inf",
        "agents.csv",
    ]);
    argv.extend(loopback(port, media_port));
    argv.extend(args(&[
        "-m",
        &agents.len().to_string(),
        "-l",
        &agents.len().to_string(),
        "-r",
        "20",
        "-timeout",
        "900s",
    ]));
    Sipp::start(dir, argv, port, media_port, false)
}

/// One INVITE the carrier received.
#[derive(Debug, Clone)]
pub struct CarrierCall {
    pub number: String,
    pub call_id: String,
    /// Where the dialer's leg receives RTP (its SDP offer): the source of what it sends.
    pub media_port: u16,
}

/// The INVITEs in sipp's message log (retransmissions counted once).
pub fn carrier_calls(log: &str) -> Vec<CarrierCall> {
    let mut seen = std::collections::HashSet::new();
    let mut calls = Vec::new();
    for block in log.split("message received") {
        let Some(start) = block.find("INVITE sip:") else {
            continue;
        };
        let msg = &block[start..];
        let first = msg.lines().next().unwrap_or_default();
        let number = first
            .trim_start_matches("INVITE sip:")
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        let call_id = header(msg, "call-id");
        let media_port = audio_port(msg).unwrap_or(0);
        if seen.insert(call_id.clone()) {
            calls.push(CarrierCall {
                number,
                call_id,
                media_port,
            });
        }
    }
    calls
}
