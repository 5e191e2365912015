//! The core driven by a virtual clock, with no sockets: two cores (the dialer and a carrier or
//! phone) wired through a simulated network that can lose, hold back or inject messages.

use super::*;
use crate::sdp::{Codec, Direction, LocalMedia};
use std::sync::Arc;

const A: &str = "127.0.0.1:5060";
const B: &str = "127.0.0.1:5080";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

struct Peer {
    core: Core,
    addr: SocketAddr,
    events: Vec<Event>,
}

type DropRule = Box<dyn FnMut(Side, &Message) -> bool>;

/// Two cores and the wire between them. Messages from `A` go to `B` and back; `log` records
/// each delivered message as `A>B INVITE` or `B>A 180`.
struct Net {
    now: Instant,
    start: Instant,
    a: Peer,
    b: Peer,
    log: Vec<String>,
    drop: DropRule,
    /// Messages sent by A that go to a raw test peer instead of B.
    raw_from_a: Vec<Message>,
    raw: bool,
}

fn config(addr: &str) -> CoreConfig {
    CoreConfig::new(vec![Listener::new(Transport::Udp, addr.parse().unwrap())])
}

fn passwords() -> Arc<dyn SecretLookup> {
    Arc::new(|user: &str| (user == "agent1").then(|| Secret::password("secret")))
}

impl Net {
    fn new(a: CoreConfig, b: CoreConfig) -> Net {
        let now = Instant::now();
        Net {
            now,
            start: now,
            a: Peer {
                core: Core::new(a, now),
                addr: A.parse().unwrap(),
                events: Vec::new(),
            },
            b: Peer {
                core: Core::new(b, now),
                addr: B.parse().unwrap(),
                events: Vec::new(),
            },
            log: Vec::new(),
            drop: Box::new(|_, _| false),
            raw_from_a: Vec::new(),
            raw: false,
        }
    }

    fn pair() -> Net {
        Net::new(config(A), config(B))
    }

    fn label(message: &Message) -> String {
        match message.method() {
            Some(method) => method.to_string(),
            None => message.status().unwrap_or(0).to_string(),
        }
    }

    /// Delivers everything in flight once. True if anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        for side in [Side::A, Side::B] {
            let (from, to) = match side {
                Side::A => (&mut self.a, &mut self.b),
                Side::B => (&mut self.b, &mut self.a),
            };
            let mut sends = Vec::new();
            while let Some(transmit) = from.core.poll_transmit() {
                sends.push(transmit);
            }
            while let Some(event) = from.core.poll_event() {
                from.events.push(event);
            }
            for transmit in sends {
                moved = true;
                let Ok(message) = Message::parse(&transmit.payload) else {
                    // Our 400 to a request without CSeq has none either.
                    let text = String::from_utf8_lossy(&transmit.payload);
                    let status = text.split(' ').nth(1).unwrap_or("?").to_owned();
                    self.log.push(format!(
                        "{side:?}>{} {status}",
                        if side == Side::A { "B" } else { "A" }
                    ));
                    continue;
                };
                if side == Side::A && self.raw {
                    self.raw_from_a.push(message);
                    continue;
                }
                if (self.drop)(side, &message) {
                    self.log.push(format!(
                        "{side:?}>{} {} (lost)",
                        if side == Side::A { "B" } else { "A" },
                        Net::label(&message)
                    ));
                    continue;
                }
                assert_eq!(transmit.dest.addr, to.addr, "sent to the wrong address");
                self.log.push(format!(
                    "{side:?}>{} {}",
                    if side == Side::A { "B" } else { "A" },
                    Net::label(&message)
                ));
                to.core.handle_input(
                    self.now,
                    Input {
                        local: to.addr,
                        remote: from.addr,
                        transport: transmit.dest.transport,
                        conn: None,
                        data: &transmit.payload,
                    },
                );
            }
        }
        for peer in [&mut self.a, &mut self.b] {
            while let Some(event) = peer.core.poll_event() {
                peer.events.push(event);
            }
        }
        moved
    }

    fn settle(&mut self) {
        while self.step() {}
    }

    /// Runs the network and both cores' timers until `duration` of virtual time passed.
    fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            self.settle();
            let next = [self.a.core.poll_timeout(), self.b.core.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.a.core.handle_timeout(self.now);
                    self.b.core.handle_timeout(self.now);
                }
                _ => {
                    self.now = until;
                    self.settle();
                    return;
                }
            }
        }
    }

    fn secs(&self) -> u64 {
        (self.now - self.start).as_secs()
    }

    /// Injects raw bytes into A as if from B.
    fn inject_into_a(&mut self, text: &str) {
        self.a.core.handle_input(
            self.now,
            Input {
                local: self.a.addr,
                remote: self.b.addr,
                transport: Transport::Udp,
                conn: None,
                data: text.as_bytes(),
            },
        );
        self.settle();
    }
}

fn call_events(events: &[Event], key: CallKey) -> Vec<CallEvent> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Call { call, event } if *call == key => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn incoming(events: &[Event]) -> Vec<(CallKey, IncomingInfo)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Incoming { call, info } => Some((*call, info.clone())),
            _ => None,
        })
        .collect()
}

fn spec(ring_timeout: Option<Duration>) -> InviteSpec {
    InviteSpec {
        request_uri: "sip:+15551234567@127.0.0.1:5080".parse().unwrap(),
        dest: Destination::new(Transport::Udp, B.parse().unwrap()),
        from: NameAddr {
            display: Some("ACME".into()),
            uri: "sip:+15550001111@127.0.0.1".parse().unwrap(),
        },
        to: NameAddr::new("sip:+15551234567@127.0.0.1".parse().unwrap()),
        asserted_identity: Some(NameAddr::new("sip:+15550001111@127.0.0.1".parse().unwrap())),
        credentials: None,
        media: LocalMedia::new("127.0.0.1:40000".parse().unwrap()),
        ring_timeout,
        headers: Vec::new(),
    }
}

fn media_b() -> LocalMedia {
    LocalMedia::new("127.0.0.1:42000".parse().unwrap())
}

fn names(events: &[CallEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event {
            CallEvent::Progress { code, .. } => format!("progress {code}"),
            CallEvent::Answered { .. } => "answered".into(),
            CallEvent::Confirmed { .. } => "confirmed".into(),
            CallEvent::MediaChanged { .. } => "media changed".into(),
            CallEvent::Ended(end) => {
                format!("ended {:?} {:?} {:?}", end.outcome, end.cause, end.code)
            }
        })
        .collect()
}

const CALL: CallKey = CallKey(1);

fn answered_call(net: &mut Net) -> CallKey {
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.settle();
    let (key, info) = incoming(&net.b.events).pop().expect("B got the INVITE");
    assert_eq!(info.to_user.as_deref(), Some("+15551234567"));
    assert!(info.offer.is_some());
    net.b.core.progress(net.now, key, 180, None).unwrap();
    net.settle();
    net.b.core.answer(net.now, key, media_b()).unwrap();
    net.settle();
    key
}

#[test]
fn a_call_is_set_up_and_hung_up_with_the_exact_message_sequence() {
    let mut net = Net::pair();
    let b_key = answered_call(&mut net);
    net.a.core.hangup(net.now, CALL);
    net.run_for(Duration::from_secs(40));
    assert_eq!(
        net.log,
        vec![
            "A>B INVITE",
            "B>A 100",
            "B>A 180",
            "B>A 200",
            "A>B ACK",
            "A>B BYE",
            "B>A 200"
        ]
    );
    let a = call_events(&net.a.events, CALL);
    assert_eq!(
        names(&a),
        vec![
            "progress 100",
            "progress 180",
            "answered",
            "ended Answered LocalHangup Some(200)"
        ]
    );
    let CallEvent::Answered { sdp: Some(sdp) } = &a[2] else {
        panic!("no SDP answer")
    };
    let remote = sdp.remote_media(&[Codec::Pcmu, Codec::Pcma]).unwrap();
    assert_eq!(remote.addr, "127.0.0.1:42000".parse().unwrap());
    assert_eq!(remote.codec, Codec::Pcmu);
    assert_eq!(
        names(&call_events(&net.b.events, b_key)),
        vec!["confirmed", "ended Answered RemoteHangup Some(200)"]
    );
    // Everything is forgotten once the transactions' timers ran out.
    assert_eq!(net.a.core.call_count(), 0);
    assert_eq!(net.b.core.call_count(), 0);
    assert_eq!(net.a.core.transaction_count(), (0, 0));
    assert_eq!(net.b.core.transaction_count(), (0, 0));
}

#[test]
fn lost_invites_are_retransmitted_by_timer_a_and_absorbed_by_the_server() {
    let mut net = Net::pair();
    let mut lost = 0;
    net.drop = Box::new(move |side, message| {
        if side == Side::A && message.method() == Some(Method::Invite) && lost < 2 {
            lost += 1;
            return true;
        }
        false
    });
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        net.log,
        vec![
            "A>B INVITE (lost)",
            "A>B INVITE (lost)",
            "A>B INVITE",
            "B>A 100"
        ]
    );
    assert_eq!(net.secs(), 2);
    assert_eq!(net.a.core.stats().snapshot().retransmissions, 2);
    // A retransmission that crosses the 100 is absorbed, not a second call.
    net.drop = Box::new(|_, _| false);
    assert_eq!(incoming(&net.b.events).len(), 1);
}

#[test]
fn the_200_is_retransmitted_until_acked_and_each_copy_reacked() {
    let mut net = Net::pair();
    let mut lost = 0;
    net.drop = Box::new(move |side, message| {
        if side == Side::A && message.method() == Some(Method::Ack) && lost < 2 {
            lost += 1;
            return true;
        }
        false
    });
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.settle();
    let (key, _) = incoming(&net.b.events).pop().unwrap();
    net.b.core.answer(net.now, key, media_b()).unwrap();
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        net.log,
        vec![
            "A>B INVITE",
            "B>A 100",
            "B>A 200",
            "A>B ACK (lost)",
            "B>A 200",
            "A>B ACK (lost)",
            "B>A 200",
            "A>B ACK"
        ]
    );
    assert_eq!(
        names(&call_events(&net.a.events, CALL)),
        vec!["progress 100", "answered"]
    );
    assert_eq!(names(&call_events(&net.b.events, key)), vec!["confirmed"]);
    assert_eq!(net.b.core.stats().snapshot().retransmissions, 2);
}

#[test]
fn timer_b_ends_a_call_nobody_answers() {
    let mut net = Net::pair();
    net.drop = Box::new(|side, _| side == Side::A);
    net.a
        .core
        .invite(net.now, CALL, spec(Some(Duration::from_secs(60))))
        .unwrap();
    net.run_for(Duration::from_secs(40));
    assert_eq!(
        net.log
            .iter()
            .filter(|line| line.contains("INVITE"))
            .count(),
        7
    );
    let events = call_events(&net.a.events, CALL);
    assert_eq!(
        names(&events),
        vec!["ended Failed { code: 408, reason: \"Request Timeout\" } NoResponse None"]
    );
    assert_eq!(net.a.core.stats().snapshot().transaction_timeouts, 1);
}

#[test]
fn ring_timeout_cancels_and_the_callee_answers_487() {
    let mut net = Net::pair();
    net.a
        .core
        .invite(net.now, CALL, spec(Some(Duration::from_secs(20))))
        .unwrap();
    net.settle();
    let (key, _) = incoming(&net.b.events).pop().unwrap();
    net.run_for(Duration::from_secs(3));
    net.b.core.progress(net.now, key, 180, None).unwrap();
    // Counted again from the 180: no CANCEL at 20 s, one at 23 s.
    net.run_for(Duration::from_secs(19));
    assert!(!net.log.iter().any(|line| line.contains("CANCEL")));
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        net.log,
        vec![
            "A>B INVITE",
            "B>A 100",
            "B>A 180",
            "A>B CANCEL",
            "B>A 200",
            "B>A 487",
            "A>B ACK"
        ]
    );
    assert_eq!(
        names(&call_events(&net.a.events, CALL)),
        vec![
            "progress 100",
            "progress 180",
            "ended NoAnswer RingTimeout Some(487)"
        ]
    );
    assert_eq!(
        names(&call_events(&net.b.events, key)),
        vec!["ended Cancelled RemoteCancel Some(487)"]
    );
}

#[test]
fn hangup_before_any_provisional_waits_for_one_before_cancelling() {
    let mut net = Net::pair();
    net.drop = Box::new(|side, message| side == Side::B && message.status() == Some(100));
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.settle();
    net.a.core.hangup(net.now, CALL);
    net.settle();
    assert!(!net.log.iter().any(|line| line.contains("CANCEL")));
    let (key, _) = incoming(&net.b.events).pop().unwrap();
    net.b
        .core
        .progress(net.now, key, 183, Some(&media_b()))
        .unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.log,
        vec![
            "A>B INVITE",
            "B>A 100 (lost)",
            "B>A 183",
            "A>B CANCEL",
            "B>A 200",
            "B>A 487",
            "A>B ACK"
        ]
    );
    let events = call_events(&net.a.events, CALL);
    let CallEvent::Progress {
        code: 183,
        sdp: Some(_),
        ..
    } = &events[0]
    else {
        panic!("no early media: {events:?}")
    };
    assert_eq!(names(&events)[1], "ended Cancelled LocalHangup Some(487)");
}

#[test]
fn a_200_that_crosses_our_cancel_gets_ack_then_bye() {
    let mut net = Net::pair();
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.settle();
    let (key, _) = incoming(&net.b.events).pop().unwrap();
    // Both sides act before either hears the other: CANCEL and 200 cross on the wire.
    net.a.core.hangup(net.now, CALL);
    net.b.core.answer(net.now, key, media_b()).unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.log,
        vec![
            "A>B INVITE",
            "B>A 100",
            "A>B CANCEL",
            "B>A 200",
            "B>A 200",
            "A>B ACK",
            "A>B BYE",
            "B>A 200"
        ]
    );
    assert_eq!(
        names(&call_events(&net.a.events, CALL)),
        vec!["progress 100", "ended Cancelled LocalHangup Some(200)"]
    );
    assert_eq!(
        names(&call_events(&net.b.events, key)),
        vec!["confirmed", "ended Answered RemoteHangup Some(200)"]
    );
}

fn raw_response(
    invite: &Message,
    status: u16,
    reason: &str,
    to_tag: &str,
    contact_port: u16,
    body: &str,
) -> String {
    let via = invite.header("Via").unwrap();
    format!(
        "SIP/2.0 {status} {reason}\r\nVia: {via}\r\nFrom: {}\r\nTo: {};tag={to_tag}\r\n\
Call-ID: {}\r\nCSeq: {} INVITE\r\nContact: <sip:callee@127.0.0.1:{contact_port}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        invite.header("From").unwrap(),
        invite.header("To").unwrap(),
        invite.call_id(),
        invite.cseq().0,
        body.len()
    )
}

const PEER_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

#[test]
fn forked_2xx_the_first_wins_the_second_gets_ack_and_bye() {
    let mut net = Net::pair();
    net.raw = true;
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.settle();
    let invite = net.raw_from_a.remove(0);
    net.inject_into_a(&raw_response(&invite, 180, "Ringing", "fork1", 5080, ""));
    net.inject_into_a(&raw_response(&invite, 180, "Ringing", "fork2", 5080, ""));
    net.inject_into_a(&raw_response(&invite, 200, "OK", "fork1", 5080, PEER_SDP));
    net.inject_into_a(&raw_response(&invite, 200, "OK", "fork2", 5080, PEER_SDP));
    // fork1's 200 again (lost ACK): ACKed again, no second "answered".
    net.inject_into_a(&raw_response(&invite, 200, "OK", "fork1", 5080, PEER_SDP));
    net.settle();
    let sent: Vec<(String, Option<String>)> = net
        .raw_from_a
        .iter()
        .map(|m| (Net::label(m), m.to_tag().map(str::to_owned)))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("ACK".into(), Some("fork1".into())),
            ("ACK".into(), Some("fork2".into())),
            ("BYE".into(), Some("fork2".into())),
            ("ACK".into(), Some("fork1".into())),
        ]
    );
    let events = call_events(&net.a.events, CALL);
    assert_eq!(
        names(&events),
        vec!["progress 180", "progress 180", "answered"]
    );
    let CallEvent::Answered { sdp: Some(sdp) } = &events[2] else {
        panic!()
    };
    assert_eq!(
        sdp.remote_media(&[Codec::Pcmu, Codec::Pcma]).unwrap().codec,
        Codec::Pcma
    );
    // In-dialog requests now go to fork1's Contact.
    net.a.core.hangup(net.now, CALL);
    net.settle();
    let bye = net.raw_from_a.last().unwrap();
    assert_eq!(bye.method(), Some(Method::Bye));
    assert_eq!(bye.to_tag(), Some("fork1"));
    assert_eq!(
        bye.request_uri().unwrap().to_string(),
        "sip:callee@127.0.0.1:5080"
    );
}

#[test]
fn a_hold_reinvite_from_the_callee_is_answered_recvonly() {
    let mut net = Net::pair();
    net.raw = true;
    net.a.core.invite(net.now, CALL, spec(None)).unwrap();
    net.settle();
    let invite = net.raw_from_a.remove(0);
    net.inject_into_a(&raw_response(&invite, 200, "OK", "t1", 5080, PEER_SDP));
    net.raw_from_a.clear();
    let hold_sdp = PEER_SDP.replace("o=- 1 1", "o=- 1 2").to_owned() + "a=sendonly\r\n";
    let reinvite = format!(
        "INVITE sip:dialer@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKre1\r\n\
From: <sip:+15551234567@127.0.0.1>;tag=t1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 INVITE\r\n\
Contact: <sip:callee@127.0.0.1:5080>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold_sdp}",
        invite.header("From").unwrap(),
        invite.call_id(),
        hold_sdp.len()
    );
    net.inject_into_a(&reinvite);
    let ok = net.raw_from_a.remove(0);
    assert_eq!(ok.status(), Some(200));
    let answer = String::from_utf8_lossy(ok.body()).into_owned();
    assert!(answer.contains("a=recvonly"), "{answer}");
    let events = call_events(&net.a.events, CALL);
    let Some(CallEvent::MediaChanged { sdp, .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(
        sdp.remote_media(&[Codec::Pcma]).unwrap().direction,
        Direction::SendOnly
    );
    // The same re-INVITE again (our 200 was lost) is absorbed by the transaction, not re-run.
    net.inject_into_a(&reinvite);
    assert_eq!(call_events(&net.a.events, CALL).len(), events.len());
    assert_eq!(net.a.core.stats().snapshot().retransmissions_absorbed, 1);
}

#[test]
fn digest_challenge_is_answered_once_for_agent_invites() {
    let mut b = config(B);
    b.auth = Some(AuthConfig::new("dialer", passwords()));
    let mut net = Net::new(config(A), b);
    let mut invite = spec(None);
    invite.credentials = Some(Credentials::new("agent1", "secret"));
    net.a.core.invite(net.now, CALL, invite).unwrap();
    net.settle();
    assert_eq!(
        net.log,
        vec!["A>B INVITE", "B>A 401", "A>B ACK", "A>B INVITE", "B>A 100"]
    );
    let (_, info) = incoming(&net.b.events).pop().unwrap();
    assert_eq!(info.user.as_deref(), Some("agent1"));

    let mut bad = spec(None);
    bad.credentials = Some(Credentials::new("agent1", "wrong"));
    net.a.core.invite(net.now, CallKey(3), bad).unwrap();
    net.settle();
    assert_eq!(
        names(&call_events(&net.a.events, CallKey(3))),
        vec!["ended Failed { code: 401, reason: \"Unauthorized\" } Rejected Some(401)"]
    );
    assert_eq!(net.b.core.stats().snapshot().auth_failures, 1);
}

/// Secrets of `agent1` (whose phone is offered MD5 alone) and `agent2` (the service's list).
struct OwnAlgorithms;

impl SecretLookup for OwnAlgorithms {
    fn secret(&self, user: &str) -> Option<Secret> {
        matches!(user, "agent1" | "agent2").then(|| Secret::password("secret"))
    }

    fn algorithms(&self, user: &str) -> Option<Vec<DigestAlgorithm>> {
        (user == "agent1").then(|| vec![DigestAlgorithm::Md5])
    }
}

#[test]
fn an_agent_with_its_own_algorithms_gets_only_those_challenges() {
    let mut b = config(B);
    // The service offers SHA-256 then MD5.
    b.auth = Some(AuthConfig::new("dialer", Arc::new(OwnAlgorithms)));
    let mut net = Net::new(config(A), b);
    let challenges = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let seen = challenges.clone();
    net.drop = Box::new(move |side, message| {
        if side == Side::B && message.status() == Some(401) {
            let values = message.headers("WWW-Authenticate").map(str::to_owned);
            seen.lock().unwrap().push(values.collect());
        }
        false
    });
    for (key, user) in [(CALL, "agent1"), (CallKey(3), "agent2")] {
        let mut invite = spec(None);
        invite.from = NameAddr::new(format!("sip:{user}@127.0.0.1").parse().unwrap());
        invite.credentials = Some(Credentials::new(user, "secret"));
        net.a.core.invite(net.now, key, invite).unwrap();
        net.settle();
    }
    let challenges = challenges.lock().unwrap().clone();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert_eq!(challenges[0].len(), 1, "{challenges:?}");
    assert!(challenges[0][0].contains("algorithm=MD5"), "{challenges:?}");
    assert_eq!(challenges[1].len(), 2, "{challenges:?}");
    assert!(
        challenges[1][0].contains("algorithm=SHA-256"),
        "{challenges:?}"
    );
    // Both logged in: agent1 with MD5, agent2 with the first it was offered.
    let users: Vec<Option<String>> = incoming(&net.b.events)
        .into_iter()
        .map(|(_, info)| info.user)
        .collect();
    assert_eq!(
        users,
        vec![Some("agent1".to_owned()), Some("agent2".to_owned())]
    );
}

#[test]
fn the_user_of_a_challenge_comes_from_credentials_or_the_uri() {
    assert_eq!(
        uri_user_of("\"Bare\" <sip:bareagent@127.0.0.1:5060>;tag=1").as_deref(),
        Some("bareagent")
    );
    assert_eq!(
        uri_user_of("<sips:a.b-c@host;transport=tls>").as_deref(),
        Some("a.b-c")
    );
    assert_eq!(
        uri_user_of("sip:alice:pw@h;tag=x").as_deref(),
        Some("alice")
    );
    assert_eq!(uri_user_of("<sip:127.0.0.1>;tag=1"), None);
    assert_eq!(uri_user_of("garbage"), None);
    assert_eq!(
        digest_param("Digest username=\"agent1\", realm=\"dialer\"", "username").as_deref(),
        Some("agent1")
    );
    assert_eq!(
        digest_param("Digest realm=dialer,username=bob", "username").as_deref(),
        Some("bob")
    );
    assert_eq!(digest_param("Digest realm=\"dialer\"", "username"), None);
}

#[test]
fn a_too_brief_register_reports_the_registrars_min_expires() {
    let mut b = config(B);
    b.auth = Some(AuthConfig::new("dialer", passwords()));
    let mut net = Net::new(config(A), b);
    let aor = NameAddr::new("sip:agent1@127.0.0.1".parse().unwrap());
    let request = RequestSpec {
        method: Method::Register,
        uri: "sip:127.0.0.1".parse().unwrap(),
        dest: Destination::new(Transport::Udp, B.parse().unwrap()),
        from: aor.clone(),
        to: aor,
        call_id: None,
        cseq: 1,
        credentials: Some(Credentials::new("agent1", "secret")),
        // Shorter than the registrar's 60 s minimum.
        expires: Some(30),
        contact: true,
        headers: Vec::new(),
    };
    net.a.core.request(net.now, 9, request).unwrap();
    net.settle();
    let result = net.a.events.iter().find_map(|event| match event {
        Event::Response { token: 9, result } => Some(result.clone()),
        _ => None,
    });
    let result = result.expect("an answer");
    assert_eq!(
        (result.code, result.expires),
        (423, Some(60)),
        "{:?}",
        net.log
    );
    assert!(net.b.core.bindings("agent1").is_empty());
}

#[test]
fn an_agent_phone_registers_with_digest_and_the_binding_lapses() {
    let mut b = config(B);
    b.auth = Some(AuthConfig::new("dialer", passwords()));
    let mut net = Net::new(config(A), b);
    let aor = NameAddr::new("sip:agent1@127.0.0.1".parse().unwrap());
    let request = RequestSpec {
        method: Method::Register,
        uri: "sip:127.0.0.1".parse().unwrap(),
        dest: Destination::new(Transport::Udp, B.parse().unwrap()),
        from: aor.clone(),
        to: aor,
        call_id: None,
        cseq: 1,
        credentials: Some(Credentials::new("agent1", "secret")),
        expires: Some(120),
        contact: true,
        headers: Vec::new(),
    };
    net.a.core.request(net.now, 9, request).unwrap();
    net.settle();
    assert_eq!(
        net.log,
        vec!["A>B REGISTER", "B>A 401", "A>B REGISTER", "B>A 200"]
    );
    let result = net.a.events.iter().find_map(|event| match event {
        Event::Response { token: 9, result } => Some(result.clone()),
        _ => None,
    });
    assert_eq!(
        result,
        Some(RequestResult {
            code: 200,
            reason: "OK".into(),
            expires: Some(120),
            cseq: 2
        })
    );
    assert_eq!(net.b.core.bindings("agent1").len(), 1);
    net.run_for(Duration::from_secs(121));
    assert!(net.b.core.bindings("agent1").is_empty());
    let changes: Vec<&RegistrationChange> = net
        .b
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Registration(change) => Some(change),
            _ => None,
        })
        .collect();
    assert!(matches!(
        changes[0],
        RegistrationChange::Registered { expires: 120, .. }
    ));
    assert!(matches!(
        changes[1],
        RegistrationChange::Unregistered { expired: true, .. }
    ));
}

#[test]
fn session_timer_is_refreshed_by_update_and_expires_without_refresh() {
    let mut net = Net::pair();
    let b_key = answered_call(&mut net);
    // A asked for 1800 s; B (a core like ours) agreed with refresher=uac: A refreshes at 900 s.
    net.run_for(Duration::from_secs(3600));
    let updates = net
        .log
        .iter()
        .filter(|line| line.as_str() == "A>B UPDATE")
        .count();
    assert_eq!(updates, 4);
    assert_eq!(net.a.core.stats().snapshot().session_refreshes, 4);
    assert_eq!(names(&call_events(&net.b.events, b_key)), vec!["confirmed"]);
    // The link from A breaks: A's next refresh times out (timer F), so A sends BYE (RFC 4028
    // section 10); B hears nothing and gives up 1800 - 32 s after the last refresh.
    net.drop = Box::new(|side, _| side == Side::A);
    let last_refresh = net.secs();
    net.run_for(Duration::from_secs(1800));
    assert_eq!(
        names(&call_events(&net.a.events, CALL)).last().unwrap(),
        "ended Answered SessionExpired Some(200)"
    );
    assert_eq!(
        names(&call_events(&net.b.events, b_key)),
        vec!["confirmed", "ended Answered SessionExpired Some(200)"]
    );
    assert!(net.log.iter().any(|line| line == "B>A BYE"));
    assert_eq!(last_refresh, 3600);
}

#[test]
fn malformed_requests_get_400_and_garbage_is_counted() {
    let mut net = Net::pair();
    net.raw = false;
    let no_cseq = "OPTIONS sip:dialer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKx;rport\r\n\
From: <sip:x@y>;tag=1\r\nTo: <sip:dialer@127.0.0.1>\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n";
    net.inject_into_a(no_cseq);
    for garbage in [
        &b"\x00\x01\x02"[..],
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200\r\n\r\n",
        &[0xff; 300][..],
    ] {
        net.a.core.handle_input(
            net.now,
            Input {
                local: net.a.addr,
                remote: net.b.addr,
                transport: Transport::Udp,
                conn: None,
                data: garbage,
            },
        );
    }
    net.settle();
    assert_eq!(net.log, vec!["A>B 400"]);
    let stats = net.a.core.stats().snapshot();
    assert_eq!(stats.parse_errors, 5);
    assert_eq!(stats.bad_requests, 1);
}

#[test]
fn unknown_dialogs_get_481_and_unsupported_extensions_420() {
    let mut net = Net::pair();
    let bye = "BYE sip:dialer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKb1\r\n\
From: <sip:x@y>;tag=1\r\nTo: <sip:dialer@127.0.0.1>;tag=nope\r\nCall-ID: gone\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    net.inject_into_a(bye);
    let prack = "INVITE sip:dialer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKb2\r\n\
From: <sip:x@y>;tag=1\r\nTo: <sip:dialer@127.0.0.1>\r\nCall-ID: new\r\nCSeq: 1 INVITE\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n";
    net.inject_into_a(prack);
    assert_eq!(net.log, vec!["A>B 481", "A>B 420"]);
}

fn options_from(via_host: &str, branch: &str, call_id: &str, cseq: u32) -> String {
    let branch = if branch.is_empty() {
        String::new()
    } else {
        format!(";branch={branch}")
    };
    format!(
        "OPTIONS sip:dialer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host}{branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:dialer@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Feeds `text` to `core` as a datagram from `remote`; what the core sends back, as
/// (destination, status, Call-ID).
fn exchange(core: &mut Core, now: Instant, remote: &str, text: &str) -> Vec<(String, u16, String)> {
    core.handle_input(
        now,
        Input {
            local: A.parse().unwrap(),
            remote: remote.parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
            data: text.as_bytes(),
        },
    );
    let mut sent = Vec::new();
    while let Some(transmit) = core.poll_transmit() {
        let message = Message::parse(&transmit.payload).unwrap();
        sent.push((
            transmit.dest.addr.to_string(),
            message.status().unwrap_or(0),
            message.call_id().to_owned(),
        ));
    }
    sent
}

#[test]
fn two_clients_reusing_one_branch_get_a_transaction_each() {
    // RFC 3261 17.2.3: branch, sent-by and method name a server transaction, so a second client
    // that happens to pick the same branch is not taken for a retransmission of the first.
    let now = Instant::now();
    let mut core = Core::new(config(A), now);
    // Even the Call-ID and CSeq are the same: only the sent-by tells them apart.
    let one = options_from("192.0.2.1:5070", "z9hG4bKsame", "same", 1);
    let two = options_from("192.0.2.2:5070", "z9hG4bKsame", "same", 1);
    assert_eq!(
        exchange(&mut core, now, "192.0.2.1:5070", &one),
        [("192.0.2.1:5070".to_owned(), 200, "same".to_owned())]
    );
    assert_eq!(
        exchange(&mut core, now, "192.0.2.2:5070", &two),
        [("192.0.2.2:5070".to_owned(), 200, "same".to_owned())]
    );
    assert_eq!(core.transaction_count().1, 2);
    // A retransmission from the first client is its own transaction's: the same 200 again.
    assert_eq!(
        exchange(&mut core, now, "192.0.2.1:5070", &one),
        [("192.0.2.1:5070".to_owned(), 200, "same".to_owned())]
    );
    assert_eq!(core.stats().snapshot().retransmissions_absorbed, 1);
    assert_eq!(core.transaction_count().1, 2);
}

#[test]
fn rfc2543_requests_without_a_branch_are_matched_by_their_fields() {
    let now = Instant::now();
    let mut core = Core::new(config(A), now);
    let first = options_from("192.0.2.1:5070", "", "old", 7);
    assert_eq!(exchange(&mut core, now, "192.0.2.1:5070", &first).len(), 1);
    // The same request again is a retransmission (Request-URI, tags, Call-ID, CSeq, top Via).
    assert_eq!(exchange(&mut core, now, "192.0.2.1:5070", &first).len(), 1);
    assert_eq!(core.stats().snapshot().retransmissions_absorbed, 1);
    assert_eq!(core.transaction_count().1, 1);
    // The next CSeq is a new transaction; so is a bare magic cookie, matched the same old way.
    let next = options_from("192.0.2.1:5070", "", "old", 8);
    assert_eq!(exchange(&mut core, now, "192.0.2.1:5070", &next).len(), 1);
    let cookie_only = options_from("192.0.2.1:5070", "z9hG4bK", "old", 9);
    assert_eq!(
        exchange(&mut core, now, "192.0.2.1:5070", &cookie_only).len(),
        1
    );
    assert_eq!(core.transaction_count().1, 3);
    assert_eq!(core.stats().snapshot().retransmissions_absorbed, 1);
}
