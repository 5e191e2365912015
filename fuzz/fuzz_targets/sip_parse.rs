//! Arbitrary bytes into the SIP endpoint core's parse-and-dispatch path, as UDP datagrams or as
//! a TCP byte stream cut by the framer, against a core that already holds a ringing incoming
//! call, an answered one and an outbound call (so CANCEL, ACK, retransmission and response
//! matching all have something to find). Timers run between inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::core::{CallKey, Core, CoreConfig, Input, InviteSpec, Listener};
use sip::sdp::LocalMedia;
use sip::transport::Framer;
use sip::{Destination, NameAddr, Transport};
use std::time::{Duration, Instant};

const LOCAL: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.1:5080";

fn invite(branch: &str, call_id: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    format!(
        "INVITE sip:dialer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch={branch};rport\r\n\
From: <sip:agent@127.0.0.1>;tag=ft\r\nTo: <sip:dialer@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\nContact: <sip:agent@127.0.0.1:5080>\r\nSession-Expires: 120\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn input(data: &[u8]) -> Input<'_> {
    Input {
        local: LOCAL.parse().unwrap(),
        remote: PEER.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
        data,
    }
}

fn core(now: Instant) -> Core {
    let listeners = vec![
        Listener::new(Transport::Udp, LOCAL.parse().unwrap()),
        Listener::new(Transport::Tcp, LOCAL.parse().unwrap()),
    ];
    let mut core = Core::new(CoreConfig::new(listeners), now);
    // A ringing incoming call and an answered one.
    core.handle_input(now, input(invite("z9hG4bKring", "ringing").as_bytes()));
    core.handle_input(now, input(invite("z9hG4bKtalk", "talking").as_bytes()));
    let mut keys = Vec::new();
    while let Some(event) = core.poll_event() {
        if let sip::core::Event::Incoming { call, .. } = event {
            keys.push(call);
        }
    }
    if let Some(key) = keys.first() {
        let _ = core.progress(now, *key, 180, None);
    }
    if let Some(key) = keys.get(1) {
        let _ = core.answer(now, *key, LocalMedia::new("127.0.0.1:40000".parse().unwrap()));
    }
    // An outbound call waiting for answers.
    let _ = core.invite(
        now,
        CallKey(1),
        InviteSpec {
            request_uri: "sip:+15551234567@127.0.0.1:5080".parse().unwrap(),
            dest: Destination::new(Transport::Udp, PEER.parse().unwrap()),
            from: NameAddr::new("sip:+15550001111@127.0.0.1".parse().unwrap()),
            to: NameAddr::new("sip:+15551234567@127.0.0.1".parse().unwrap()),
            asserted_identity: None,
            credentials: Some(sip::Credentials::new("u", "p")),
            media: LocalMedia::new("127.0.0.1:40002".parse().unwrap()),
            ring_timeout: Some(Duration::from_secs(30)),
            headers: Vec::new(),
        },
    );
    while core.poll_transmit().is_some() {}
    core
}


fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let mut core = core(now);
    let _ = sip::message::Message::parse(data);
    if mode & 1 == 0 {
        // Datagrams separated by a NUL byte.
        for datagram in data.split(|b| *b == 0) {
            core.handle_input(
                now,
                Input {
                    local: LOCAL.parse().unwrap(),
                    remote: PEER.parse().unwrap(),
                    transport: Transport::Udp,
                    conn: None,
                    data: datagram,
                },
            );
            now += Duration::from_millis(250);
            core.handle_timeout(now);
        }
    } else {
        // One TCP stream in chunks of (mode >> 1) + 1 bytes.
        let mut framer = Framer::new(Default::default());
        for chunk in data.chunks(((mode >> 1) as usize) + 1) {
            framer.push(chunk);
            loop {
                match framer.next_frame() {
                    Ok(Some(frame)) => core.handle_input(
                        now,
                        Input {
                            local: LOCAL.parse().unwrap(),
                            remote: PEER.parse().unwrap(),
                            transport: Transport::Tcp,
                            conn: Some(sip::ConnId(1)),
                            data: &frame,
                        },
                    ),
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    }
    // Let every timer run out: retransmissions, timeouts, session timers.
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
