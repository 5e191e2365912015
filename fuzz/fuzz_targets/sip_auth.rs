//! The server side of digest authentication and the registrar: REGISTERs and INVITEs with
//! Authorization headers against a core with authentication on (agent `agent1`, password
//! `secret-1`, MD5 and SHA-256 offered), as NUL-separated UDP datagrams; timers then run out.
//!
//! A fuzzer cannot guess a nonce the core issued or a digest over it, so the input may name
//! them: in each datagram `{NONCE}` becomes the nonce of a challenge the core just sent, and
//! `{AUTH}` a correct Authorization value for the datagram's method and Request-URI (agent1's
//! password over that nonce). Every step of the check is then reachable: good and bad
//! responses, replayed nonce counts, wrong realms and algorithms, bindings added and removed,
//! authenticated INVITEs. The digest server's `verify` also gets the raw bytes as a header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::core::{AuthConfig, Core, CoreConfig, Input, Listener};
use sip::digest::{Challenge, Credentials, DigestAlgorithm, Secret, Server};
use sip::Transport;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOCAL: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.1:5080";

fn input(data: &[u8]) -> Input<'_> {
    Input {
        local: LOCAL.parse().unwrap(),
        remote: PEER.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
        data,
    }
}

fn secret(user: &str) -> Option<Secret> {
    (user == "agent1").then(|| Secret::password("secret-1"))
}

fn core(now: Instant) -> Core {
    let mut config = CoreConfig::new(vec![Listener::new(Transport::Udp, LOCAL.parse().unwrap())]);
    let mut auth = AuthConfig::new("dialer", Arc::new(secret));
    auth.algorithms = vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5];
    config.auth = Some(auth);
    Core::new(config, now)
}

/// The first challenge in what the core sent since the last call, if any.
fn challenge(core: &mut Core) -> Option<Challenge> {
    let mut found = None;
    while let Some(transmit) = core.poll_transmit() {
        if found.is_some() {
            continue;
        }
        let text = String::from_utf8_lossy(&transmit.payload).into_owned();
        let values: Vec<&str> = text
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("WWW-Authenticate")
                    .then_some(value.trim())
            })
            .collect();
        found = Challenge::pick(values);
    }
    found
}

const REGISTER: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKreg0;rport\r\n\
From: <sip:agent1@127.0.0.1>;tag=r1\r\nTo: <sip:agent1@127.0.0.1>\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:agent1@127.0.0.1:5080>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut core = core(now);
    // A first REGISTER without credentials: the core challenges it.
    core.handle_input(now, input(REGISTER.as_bytes()));
    let mut last = challenge(&mut core);
    let mut server = Server::new("dialer", vec![DigestAlgorithm::Md5], 300);
    let _ = server.verify(&String::from_utf8_lossy(data), "REGISTER", b"", 1, &secret);
    for (nc, datagram) in (1u32..).zip(data.split(|b| *b == 0)) {
        let mut text = String::from_utf8_lossy(datagram).into_owned();
        if let Some(challenge) = &last {
            text = text.replace("{NONCE}", &challenge.nonce);
            if text.contains("{AUTH}") {
                let mut words = text.split_whitespace();
                let method = words.next().unwrap_or("REGISTER").to_owned();
                let uri = words.next().unwrap_or("sip:127.0.0.1").to_owned();
                let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
                let value = sip::digest::authorization(
                    challenge,
                    &Credentials::new("agent1", "secret-1"),
                    &method,
                    &uri,
                    body.as_bytes(),
                    nc,
                    "0a4f113b",
                );
                text = text.replace("{AUTH}", &value);
            }
        }
        core.handle_input(now, input(text.as_bytes()));
        if let Some(fresh) = challenge(&mut core) {
            last = Some(fresh);
        }
        while core.poll_event().is_some() {}
        now += Duration::from_millis(250);
        core.handle_timeout(now);
    }
    // Let every timer run out: retransmissions, binding expiry.
    for _ in 0..64 {
        match core.poll_timeout() {
            Some(at) if at < now + Duration::from_secs(4000) => {
                now = now.max(at);
                core.handle_timeout(now);
            }
            _ => break,
        }
    }
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
});
