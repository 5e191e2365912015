//! The dialer's SIP endpoint against sipp as the carrier and as an agent phone. Each test asserts
//! the exact wire sequence sipp saw, the events the engine got, and the outcome.

use sip::sdp::{Codec, LocalMedia};
use sip::{
    AuthConfig, CallEnd, CallEvent, CallerId, Credentials, EndCause, Endpoint, EndpointConfig,
    IncomingEvent, InviteResult, OutboundCall, RegistrationChange, TrunkConfig,
};
use std::sync::Arc;
use std::time::Duration;
use testkit::sipp::Sipp;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(30);

async fn endpoint() -> Endpoint {
    let (endpoint, _incoming) = Endpoint::bind(EndpointConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("bind");
    endpoint
}

async fn tcp_endpoint() -> Endpoint {
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    let (endpoint, _incoming) = Endpoint::bind(config).await.expect("bind");
    endpoint
}

fn outbound(media: LocalMedia, ring_timeout: Duration) -> OutboundCall {
    OutboundCall {
        number: "+15551234567".into(),
        caller_id: CallerId {
            number: "+15550001111".into(),
            name: Some("ACME Sales".into()),
        },
        media,
        ring_timeout,
        headers: vec![("X-Campaign".into(), "test".into())],
    }
}

/// A short name per event: `100`, `180`, `183+sdp`, `answered`, `ended ...`.
fn label(event: &CallEvent) -> String {
    match event {
        CallEvent::Progress { code, sdp, .. } => {
            format!("{code}{}", if sdp.is_some() { "+sdp" } else { "" })
        }
        CallEvent::Answered { .. } => "answered".into(),
        CallEvent::Confirmed { .. } => "confirmed".into(),
        CallEvent::MediaChanged { .. } => "media changed".into(),
        CallEvent::Ended(end) => format!("ended {:?} {:?} {:?}", end.outcome, end.cause, end.code),
    }
}

/// Collects events until `stop` says so (or the call ends).
async fn events_until(call: &mut sip::Call, stop: impl Fn(&CallEvent) -> bool) -> Vec<CallEvent> {
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(WAIT, call.next_event())
        .await
        .expect("call events stalled")
    {
        let done = stop(&event) || matches!(event, CallEvent::Ended(_));
        events.push(event);
        if done {
            break;
        }
    }
    events
}

fn labels(events: &[CallEvent]) -> Vec<String> {
    events.iter().map(label).collect()
}

async fn media_socket() -> (UdpSocket, LocalMedia) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = LocalMedia::new(socket.local_addr().unwrap());
    (socket, media)
}

#[tokio::test]
async fn answered_call_streams_audio_to_our_offer_and_we_hang_up() {
    let Some(sipp) = Sipp::carrier("carrier_answer.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(labels(&events), ["100", "180", "answered"]);
    let CallEvent::Answered { sdp: Some(sdp) } = &events[2] else {
        panic!("no SDP in the 200")
    };
    let remote = sdp.remote_media(&[Codec::Pcmu, Codec::Pcma]).unwrap();
    assert_eq!(
        (remote.codec, remote.payload_type, remote.telephone_event),
        (Codec::Pcma, 8, Some(101))
    );
    // The callee's audio reaches the address we offered, as PCMA.
    let mut packets = 0;
    let mut buf = [0u8; 2048];
    while packets < 25 {
        let (len, _) = tokio::time::timeout(Duration::from_secs(5), rtp.recv_from(&mut buf))
            .await
            .expect("no RTP from the carrier")
            .unwrap();
        assert!(len > 12);
        assert_eq!(buf[1] & 0x7f, 8, "payload type");
        packets += 1;
    }
    call.hangup();
    let end = call.wait_end().await.unwrap();
    assert_eq!(
        end,
        CallEnd {
            outcome: InviteResult::Answered,
            cause: EndCause::LocalHangup,
            code: Some(200)
        }
    );
    let run = sipp.finish().await;
    run.assert(&["<INVITE", ">100", ">180", ">200", "<ACK", "<BYE", ">200"]);
    // Caller ID in From and P-Asserted-Identity (RFC 3325), the offer with PCMU, PCMA and
    // telephone-event.
    for header in [
        "From: \"ACME Sales\" <sip:+15550001111@",
        "P-Asserted-Identity: \"ACME Sales\" <sip:+15550001111@",
        "m=audio ",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
    ] {
        assert!(run.log.contains(header), "{header} missing:\n{}", run.log);
    }
    let stats = endpoint.stats();
    assert_eq!(stats.invites_sent, 1);
    assert_eq!(stats.calls_answered, 1);
    assert_eq!(stats.transaction_timeouts, 0);
}

async fn refused(scenario: &str, expected: InviteResult, code: u16, status: &str) {
    let Some(sipp) = Sipp::carrier(scenario, "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |_| false).await;
    assert_eq!(
        labels(&events),
        [
            "100".to_owned(),
            format!("ended {expected:?} Rejected Some({code})")
        ]
    );
    sipp.finish()
        .await
        .assert(&["<INVITE", ">100", status, "<ACK"]);
}

#[tokio::test]
async fn busy_callee() {
    refused("carrier_busy.xml", InviteResult::Busy, 486, ">486").await;
}

#[tokio::test]
async fn carrier_unavailable() {
    refused(
        "carrier_unavailable.xml",
        InviteResult::Unavailable,
        503,
        ">503",
    )
    .await;
}

#[tokio::test]
async fn no_answer_is_cancelled_at_the_ring_timeout() {
    let Some(sipp) = Sipp::carrier("carrier_ring_no_answer.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (_rtp, media) = media_socket().await;
    let started = std::time::Instant::now();
    let mut call = endpoint
        .dial(&trunk, outbound(media, Duration::from_secs(2)))
        .await
        .unwrap();
    let events = events_until(&mut call, |_| false).await;
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        labels(&events),
        ["100", "180", "ended NoAnswer RingTimeout Some(487)"]
    );
    sipp.finish()
        .await
        .assert(&["<INVITE", ">100", ">180", "<CANCEL", ">200", ">487", "<ACK"]);
}

#[tokio::test]
async fn proxy_challenge_is_answered_with_the_trunk_credentials() {
    let Some(sipp) = Sipp::carrier("carrier_auth_407.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let mut config = TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10);
    config.credentials = Some(Credentials::new("trunkuser", "trunkpass"));
    let trunk = endpoint.trunk(config).await.unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(
        labels(&events),
        ["100", "answered"],
        "{}",
        sipp.diagnostics()
    );
    call.hangup();
    assert_eq!(call.wait_end().await.unwrap().cause, EndCause::LocalHangup);
    let run = sipp.finish().await;
    run.assert(&[
        "<INVITE", ">407", "<ACK", "<INVITE", ">100", ">200", "<ACK", "<BYE", ">200",
    ]);
    assert_eq!(endpoint.stats().auth_answered, 1);
    // sipp cannot check Proxy-Authorization; recompute the digest from its log (RFC 2617 without
    // qop, as challenged), independently of the crate's digest code.
    let param = |line: &str, name: &str| -> String {
        let start = line.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        line[start..].split('"').next().unwrap().to_owned()
    };
    let challenge = run
        .log
        .lines()
        .find(|l| l.starts_with("Proxy-Authenticate:"))
        .unwrap();
    let answer = run
        .log
        .lines()
        .find(|l| l.starts_with("Proxy-Authorization:"))
        .unwrap();
    let md5 = |text: String| {
        use md5::Digest as _;
        md5::Md5::digest(text.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let ha1 = md5("trunkuser:carrier.test:trunkpass".to_owned());
    let ha2 = md5(format!("INVITE:{}", param(answer, "uri")));
    let expected = md5(format!("{ha1}:{}:{ha2}", param(challenge, "nonce")));
    assert_eq!(param(answer, "nonce"), param(challenge, "nonce"));
    assert_eq!(param(answer, "response"), expected);
}

#[tokio::test]
async fn ringing_then_early_media_then_answer() {
    let Some(sipp) = Sipp::carrier("carrier_early_media.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(labels(&events), ["100", "180", "183+sdp", "answered"]);
    let CallEvent::Progress {
        sdp: Some(early), ..
    } = &events[2]
    else {
        unreachable!()
    };
    assert_eq!(
        early
            .remote_media(&[Codec::Pcmu, Codec::Pcma])
            .unwrap()
            .codec,
        Codec::Pcma
    );
    call.hangup();
    call.wait_end().await.unwrap();
    sipp.finish().await.assert(&[
        "<INVITE", ">100", ">180", ">183", ">200", "<ACK", "<BYE", ">200",
    ]);
}

#[tokio::test]
async fn a_retransmitted_200_is_acked_again_and_answers_once() {
    let Some(sipp) = Sipp::carrier("carrier_200_retransmit.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(labels(&events), ["100", "answered"]);
    // Let the retransmission arrive and be ACKed before hanging up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    call.hangup();
    let rest = events_until(&mut call, |_| false).await;
    assert_eq!(labels(&rest), ["ended Answered LocalHangup Some(200)"]);
    sipp.finish().await.assert(&[
        "<INVITE", ">100", ">200", "<ACK", ">OPTIONS", "<200", ">200", "<ACK", "<BYE", ">200",
    ]);
}

#[tokio::test]
async fn the_callee_hangs_up() {
    let Some(sipp) = Sipp::carrier("carrier_bye_from_callee.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |_| false).await;
    assert_eq!(
        labels(&events),
        [
            "100",
            "180",
            "answered",
            "ended Answered RemoteHangup Some(200)"
        ]
    );
    sipp.finish()
        .await
        .assert(&["<INVITE", ">100", ">180", ">200", "<ACK", ">BYE", "<200"]);
}

#[tokio::test]
async fn answered_call_over_tcp() {
    let Some(sipp) = Sipp::carrier("carrier_answer.xml", "t1", 1, &[]) else {
        return;
    };
    let endpoint = tcp_endpoint().await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("t1").parse().unwrap(), 10))
        .await
        .unwrap();
    assert_eq!(trunk.destination().transport, sip::Transport::Tcp);
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(labels(&events), ["100", "180", "answered"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.hangup();
    assert_eq!(
        call.wait_end().await.unwrap().outcome,
        InviteResult::Answered
    );
    sipp.finish()
        .await
        .assert(&["<INVITE", ">100", ">180", ">200", "<ACK", "<BYE", ">200"]);
    // No retransmissions on a reliable transport.
    assert_eq!(endpoint.stats().retransmissions, 0);
}

#[tokio::test]
async fn garbage_on_the_socket_is_counted_and_calls_go_on() {
    let Some(sipp) = Sipp::carrier("carrier_busy.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint().await;
    let target = endpoint.local_addr(sip::Transport::Udp).unwrap();
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let huge = format!(
        "OPTIONS sip:x SIP/2.0\r\n{}\r\n",
        "X-Pad: 0123456789012345678901234567890123456789012345678901234567890\r\n".repeat(900)
    );
    let bad_length = "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKq\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: q\r\nCSeq: 1 OPTIONS\r\nContent-Length: 99999999\r\n\r\n";
    let payloads: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00garbage".to_vec(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        huge.into_bytes(),
        bad_length.as_bytes().to_vec(),
        vec![0xc3; 1400],
    ];
    for payload in &payloads {
        attacker.send_to(payload, target).await.unwrap();
    }
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), 10))
        .await
        .unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = endpoint.dial(&trunk, outbound(media, WAIT)).await.unwrap();
    assert_eq!(call.wait_end().await.unwrap().outcome, InviteResult::Busy);
    sipp.finish()
        .await
        .assert(&["<INVITE", ">100", ">486", "<ACK"]);
    assert_eq!(endpoint.stats().parse_errors, payloads.len() as u64);
}

async fn next_incoming(incoming: &mut sip::Incoming, phone: &Sipp) -> Option<IncomingEvent> {
    match tokio::time::timeout(WAIT, incoming.next()).await {
        Ok(event) => event,
        Err(_) => panic!("nothing came in\n{}", phone.diagnostics()),
    }
}

#[tokio::test]
async fn an_agent_phone_registers_and_calls_in() {
    let secrets: Arc<dyn sip::SecretLookup> =
        Arc::new(|user: &str| (user == "agent1").then(|| sip::Secret::password("s3cret")));
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    let mut auth = AuthConfig::new("dialer.test", secrets);
    // sipp only speaks MD5 and reads only the first challenge header.
    auth.algorithms = vec![sip::digest::DigestAlgorithm::Md5];
    config.auth = Some(auth);
    let (endpoint, mut incoming) = Endpoint::bind(config).await.unwrap();
    let dialer = endpoint.local_addr(sip::Transport::Udp).unwrap();
    let Some(phone) = Sipp::phone("agent_phone.xml", dialer, "agent1", "s3cret") else {
        return;
    };
    let Some(IncomingEvent::Registration(RegistrationChange::Registered { user, expires, .. })) =
        next_incoming(&mut incoming, &phone).await
    else {
        panic!("expected a registration")
    };
    assert_eq!((user.as_str(), expires), ("agent1", 120));
    assert_eq!(endpoint.bindings("agent1").await.unwrap().len(), 1);
    let Some(IncomingEvent::Call(call)) = next_incoming(&mut incoming, &phone).await else {
        panic!("expected the agent's call")
    };
    assert_eq!(call.info().user.as_deref(), Some("agent1"));
    assert_eq!(call.info().from_display.as_deref(), Some("Agent One"));
    let offer = call.info().offer.clone().expect("the phone's offer");
    assert_eq!(
        offer.remote_media(&[Codec::Pcmu]).unwrap().codec,
        Codec::Pcmu
    );
    let (_rtp, media) = media_socket().await;
    let mut call = call.answer(media).await.unwrap();
    let events = events_until(&mut call, |_| false).await;
    assert_eq!(
        labels(&events),
        [
            "confirmed",
            "media changed",
            "ended Answered RemoteHangup Some(200)"
        ]
    );
    // The phone's hold (sendonly) was answered from our media, mirrored to recvonly.
    let CallEvent::MediaChanged { sdp, .. } = &events[1] else {
        unreachable!()
    };
    assert_eq!(
        sdp.remote_media(&[Codec::Pcmu]).unwrap().direction,
        sip::sdp::Direction::SendOnly
    );
    let Some(IncomingEvent::Registration(RegistrationChange::Unregistered {
        expired: false, ..
    })) = next_incoming(&mut incoming, &phone).await
    else {
        panic!("expected the phone to unregister")
    };
    let run = phone.finish().await;
    run.assert(&[
        ">REGISTER",
        "<401",
        ">REGISTER",
        "<200",
        ">INVITE",
        "<401",
        ">ACK",
        ">INVITE",
        "<100",
        "<200",
        ">ACK",
        ">INVITE",
        "<200",
        ">ACK",
        ">BYE",
        "<200",
        ">REGISTER",
        "<401",
        ">REGISTER",
        "<200",
    ]);
    // sipp's log: a dashed line before each message sent or received.
    let hold_answer = run
        .log
        .split("-----------------------------------------------")
        .find(|block| block.contains("SIP/2.0 200") && block.contains("CSeq: 3 INVITE"))
        .expect("our 200 to the re-INVITE in sipp's log");
    assert!(hold_answer.contains("a=recvonly"), "{hold_answer}");
    let stats = endpoint.stats();
    assert_eq!(stats.auth_challenges, 3);
    assert_eq!(stats.auth_failures, 0);
}

/// The lab's shape: our own endpoint as the carrier, scripting 180, 183 with early media, 200,
/// then hanging up; and the trunk's OPTIONS keepalive answered by it.
#[tokio::test]
async fn our_endpoint_as_the_carrier_scripts_the_call() {
    let dialer = endpoint().await;
    let (carrier, mut incoming) =
        Endpoint::bind(EndpointConfig::udp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
    let carrier_addr = carrier.local_addr(sip::Transport::Udp).unwrap();
    let mut config = TrunkConfig::new(format!("sip:{carrier_addr}").parse().unwrap(), 10);
    config.keepalive = Some(Duration::from_millis(100));
    let trunk = dialer.trunk(config).await.unwrap();
    let (_rtp, media) = media_socket().await;
    let mut call = dialer.dial(&trunk, outbound(media, WAIT)).await.unwrap();

    let ringing = tokio::time::timeout(WAIT, incoming.next_call())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ringing.info().to_user.as_deref(), Some("+15551234567"));
    assert_eq!(ringing.info().from_display.as_deref(), Some("ACME Sales"));
    assert_eq!(ringing.info().user, None);
    let (_carrier_rtp, carrier_media) = media_socket().await;
    ringing.ringing().await.unwrap();
    ringing.progress(183, Some(&carrier_media)).await.unwrap();
    let mut answered = ringing.answer(carrier_media).await.unwrap();
    let carrier_events =
        events_until(&mut answered, |e| matches!(e, CallEvent::Confirmed { .. })).await;
    assert_eq!(labels(&carrier_events), ["confirmed"]);

    let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(labels(&events), ["100", "180", "183+sdp", "answered"]);
    answered.hangup();
    assert_eq!(
        labels(&events_until(&mut call, |_| false).await),
        ["ended Answered RemoteHangup Some(200)"]
    );
    assert_eq!(
        labels(&events_until(&mut answered, |_| false).await),
        ["ended Answered LocalHangup Some(200)"]
    );
    let start = std::time::Instant::now();
    while trunk.is_up() != Some(true) {
        assert!(start.elapsed() < WAIT, "the keepalive never got an answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// TCP connections whose local port is `port`, established or closing (not the listener), from
/// `/proc/net/tcp`: the connections a TCP listener on that port accepted.
fn accepted_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit_once(':'))
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            // State 0A is LISTEN.
            local_port == Some(port) && fields.get(3) != Some(&"0A")
        })
        .count()
}

/// RFC 3261 section 18 over TCP: two calls to the same trunk share one connection, and the
/// carrier's requests (its BYE) come back on that connection instead of a new one to our
/// listener.
#[tokio::test]
async fn tcp_calls_share_one_connection_both_ways() {
    let dialer = tcp_endpoint().await;
    let dialer_port = dialer.local_addr(sip::Transport::Tcp).unwrap().port();
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    let (carrier, mut incoming) = Endpoint::bind(config).await.unwrap();
    let carrier_addr = carrier.local_addr(sip::Transport::Tcp).unwrap();
    let uri = format!("sip:{carrier_addr};transport=tcp").parse().unwrap();
    let trunk = dialer.trunk(TrunkConfig::new(uri, 10)).await.unwrap();
    let mut sources = Vec::new();
    for _ in 0..2 {
        let (_rtp, media) = media_socket().await;
        let mut call = dialer.dial(&trunk, outbound(media, WAIT)).await.unwrap();
        let offered = tokio::time::timeout(WAIT, incoming.next_call())
            .await
            .expect("no INVITE at the carrier")
            .unwrap();
        assert_eq!(offered.info().transport, sip::Transport::Tcp);
        sources.push(offered.info().source);
        let (_carrier_rtp, carrier_media) = media_socket().await;
        let mut answered = offered.answer(carrier_media).await.unwrap();
        let events = events_until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
        assert_eq!(labels(&events), ["100", "answered"]);
        events_until(&mut answered, |e| matches!(e, CallEvent::Confirmed { .. })).await;
        answered.hangup();
        assert_eq!(
            labels(&events_until(&mut call, |_| false).await),
            ["ended Answered RemoteHangup Some(200)"]
        );
    }
    assert_eq!(sources[0], sources[1], "one connection for both calls");
    assert_ne!(sources[0].port(), dialer_port, "our own connection");
    assert_eq!(
        accepted_on(dialer_port),
        0,
        "the carrier opened a connection"
    );
    assert_eq!(dialer.stats().transport_errors, 0);
    assert_eq!(dialer.stats().retransmissions, 0);
}

/// RFC 3581 and RFC 3261 section 18.2.2: the response to a request whose Via asks for `rport`
/// goes back to the address and port it came from, whatever the Via says, and the Via gets
/// `received` and `rport` filled in.
#[tokio::test]
async fn responses_follow_rport_to_the_source_port() {
    let endpoint = endpoint().await;
    let target = endpoint.local_addr(sip::Transport::Udp).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let options = "OPTIONS sip:dialer@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKrport1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:probe@192.0.2.1>;tag=p1\r\nTo: <sip:dialer@127.0.0.1>\r\nCall-ID: rport-test\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    socket.send_to(options.as_bytes(), target).await.unwrap();
    let mut buf = [0u8; 4096];
    let (len, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("no response at the source port")
        .unwrap();
    let response = String::from_utf8_lossy(&buf[..len]);
    assert!(response.starts_with("SIP/2.0 200 OK\r\n"), "{response}");
    let via = response
        .lines()
        .find(|line| line.starts_with("Via:"))
        .unwrap();
    assert!(via.contains("received=127.0.0.1"), "{via}");
    assert!(via.contains(&format!("rport={port}")), "{via}");
    assert_eq!(from, target);
}
