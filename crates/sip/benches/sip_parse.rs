//! SIP messages per second on one core, with rsip underneath: parsing a typical INVITE (with
//! SDP) and its 200, and building them the way the dialer does (the endpoint core placing a call:
//! headers, SDP offer, client transaction; answering one: SDP answer, 200, server transaction).
//!
//!     cargo bench -p sip --bench sip_parse

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sip::core::{CallKey, Core, CoreConfig, Event, Input, InviteSpec, Listener};
use sip::message::Message;
use sip::sdp::LocalMedia;
use sip::{Destination, NameAddr, Transport};
use std::hint::black_box;
use std::time::{Duration, Instant};

const LOCAL: &str = "192.0.2.10:5060";
const PEER: &str = "198.51.100.7:5060";

/// An INVITE as a carrier-facing dialer sends it (about 1 KB with its SDP offer).
const INVITE: &str = "INVITE sip:+15551234567@198.51.100.7:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK4b43c2ff8.1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"ACME Sales\" <sip:+15550001111@198.51.100.7>;tag=9fxced76sl\r\n\
To: <sip:+15551234567@198.51.100.7:5060>\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:dialer@192.0.2.10:5060>\r\n\
P-Asserted-Identity: \"ACME Sales\" <sip:+15550001111@198.51.100.7>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REGISTER\r\n\
Supported: timer\r\n\
Session-Expires: 1800\r\n\
Min-SE: 90\r\n\
User-Agent: dialer/0.1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 244\r\n\
\r\n\
v=0\r\n\
o=dialer 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=dialer\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// The carrier's 200 to it.
const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK4b43c2ff8.1;rport=5060;received=192.0.2.10\r\n\
Record-Route: <sip:198.51.100.7;lr>\r\n\
From: \"ACME Sales\" <sip:+15550001111@198.51.100.7>;tag=9fxced76sl\r\n\
To: <sip:+15551234567@198.51.100.7:5060>;tag=8321234356\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+15551234567@198.51.100.7:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n\
Supported: timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 189\r\n\
\r\n\
v=0\r\n\
o=carrier 53655765 2353687637 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\n";

fn core() -> Core {
    Core::new(
        CoreConfig::new(vec![Listener::new(Transport::Udp, LOCAL.parse().unwrap())]),
        Instant::now(),
    )
}

fn spec() -> InviteSpec {
    let caller = NameAddr {
        display: Some("ACME Sales".into()),
        uri: "sip:+15550001111@198.51.100.7".parse().unwrap(),
    };
    InviteSpec {
        request_uri: "sip:+15551234567@198.51.100.7:5060".parse().unwrap(),
        dest: Destination::new(Transport::Udp, PEER.parse().unwrap()),
        from: caller.clone(),
        to: NameAddr::new("sip:+15551234567@198.51.100.7:5060".parse().unwrap()),
        asserted_identity: Some(caller),
        credentials: None,
        media: LocalMedia::new("192.0.2.10:40000".parse().unwrap()),
        ring_timeout: Some(Duration::from_secs(25)),
        headers: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    assert!(Message::parse(INVITE.as_bytes()).is_ok());
    assert!(Message::parse(OK.as_bytes()).is_ok());
    let mut group = c.benchmark_group("sip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse INVITE", |b| {
        b.iter(|| Message::parse(black_box(INVITE.as_bytes())).unwrap())
    });
    group.bench_function("parse 200", |b| {
        b.iter(|| Message::parse(black_box(OK.as_bytes())).unwrap())
    });
    group.bench_function(
        "build INVITE (core.invite: offer, headers, transaction)",
        |b| {
            b.iter_batched(
                || (core(), spec()),
                |(mut core, spec)| {
                    core.invite(Instant::now(), CallKey(1), spec).unwrap();
                    (core.poll_transmit().unwrap(), core)
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_function("build 200 (core.answer: SDP answer, headers)", |b| {
        b.iter_batched(
            || {
                let mut core = core();
                core.handle_input(
                    Instant::now(),
                    Input {
                        local: LOCAL.parse().unwrap(),
                        remote: PEER.parse().unwrap(),
                        transport: Transport::Udp,
                        conn: None,
                        data: INVITE.as_bytes(),
                    },
                );
                while core.poll_transmit().is_some() {}
                let key = loop {
                    match core.poll_event() {
                        Some(Event::Incoming { call, .. }) => break call,
                        Some(_) => continue,
                        None => panic!("no incoming call"),
                    }
                };
                (core, key)
            },
            |(mut core, key)| {
                core.answer(
                    Instant::now(),
                    key,
                    LocalMedia::new("198.51.100.7:30000".parse().unwrap()),
                )
                .unwrap();
                (core.poll_transmit().unwrap(), core)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("INVITE in, 100 out (core.handle_input)", |b| {
        b.iter_batched(
            core,
            |mut core| {
                core.handle_input(
                    Instant::now(),
                    Input {
                        local: LOCAL.parse().unwrap(),
                        remote: PEER.parse().unwrap(),
                        transport: Transport::Udp,
                        conn: None,
                        data: INVITE.as_bytes(),
                    },
                );
                (core.poll_transmit().unwrap(), core)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
