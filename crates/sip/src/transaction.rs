//! The four transaction state machines of RFC 3261 section 17, with RFC 6026's Accepted state
//! for INVITE 2xx. Sans-IO: they take the current time and return what to send; the endpoint
//! core owns them, routes messages to them and calls [`ClientTx::on_timeout`] /
//! [`ServerTx::on_timeout`] when their [`deadline`](ClientTx::deadline) passes.
//!
//! | timer | transaction | what it does | value |
//! | --- | --- | --- | --- |
//! | A | INVITE client | retransmit INVITE (UDP) | T1, doubling |
//! | B | INVITE client | give up waiting for any response | 64*T1 |
//! | D | INVITE client | absorb retransmitted non-2xx finals | 32 s UDP, 0 TCP |
//! | M | INVITE client | absorb retransmitted (forked) 2xx | 64*T1 |
//! | E | non-INVITE client | retransmit request (UDP) | T1, doubling to T2 |
//! | F | non-INVITE client | give up | 64*T1 |
//! | K | non-INVITE client | absorb retransmitted finals | T4 UDP, 0 TCP |
//! | G | INVITE server | retransmit a final response (UDP; 2xx on any transport) | T1, doubling to T2 |
//! | H | INVITE server | give up waiting for the ACK | 64*T1 |
//! | I | INVITE server | absorb retransmitted ACKs | T4 UDP, 0 TCP |
//! | L | INVITE server | absorb retransmitted INVITEs after a 2xx | 64*T1 |
//! | J | non-INVITE server | absorb retransmitted requests | 64*T1 UDP, 0 TCP |

use crate::message::{headers_of, make_header, request_bytes};
use crate::types::{Destination, Method};
use bytes::Bytes;
use rsip::headers::UntypedHeader;
use std::time::{Duration, Instant};

/// What names a server transaction (RFC 3261 17.2.3). A request whose top Via branch carries the
/// magic cookie belongs to the transaction of the same branch, sent-by and method, where ACK
/// and CANCEL look for the INVITE's (the caller passes [`Method::Invite`] for them): two clients
/// that happen to pick one branch get a transaction each. Without the cookie (an RFC 2543
/// client) the Request-URI, From tag, Call-ID, CSeq number and the whole top Via name it, and
/// the To tag too except for INVITE, whose ACK carries the tag of our response and the INVITE
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261: branch, sent-by and method; with the Call-ID and CSeq number, which a
    /// retransmission, the ACK and the CANCEL all share, so that a client reusing a branch for a
    /// new request (as RFC 4475's messages do) is not taken for a retransmission.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
        call_id: String,
        cseq: u32,
    },
    /// The RFC 2543 fallback.
    Legacy {
        request_uri: String,
        from_tag: Option<String>,
        to_tag: Option<String>,
        call_id: String,
        cseq: u32,
        top_via: String,
        method: Method,
    },
}

impl ServerKey {
    /// The key of `message`'s transaction, as the request of `method` (its own method, or
    /// INVITE for an ACK or a CANCEL looking for the INVITE it belongs to).
    pub(crate) fn of(message: &crate::message::Message, method: Method) -> ServerKey {
        let via = &message.head.via;
        if via.has_rfc3261_branch() {
            return ServerKey::Branch {
                branch: via.branch.clone(),
                sent_by: via.sent_by(),
                method,
                call_id: message.call_id().to_owned(),
                cseq: message.cseq().0,
            };
        }
        ServerKey::Legacy {
            request_uri: message
                .request_uri()
                .map(|uri| uri.to_string())
                .unwrap_or_default(),
            from_tag: message.from_tag().map(str::to_owned),
            to_tag: (method != Method::Invite)
                .then(|| message.to_tag().map(str::to_owned))
                .flatten(),
            call_id: message.call_id().to_owned(),
            cseq: message.cseq().0,
            top_via: via.raw.clone(),
            method,
        }
    }
}

/// The RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate (500 ms).
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: timers B, F, H, J (UDP), L, M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a client transaction says about a response it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientVerdict {
    /// Pass it to the transaction user.
    Deliver,
    /// A retransmission the transaction handled (or an unexpected one): drop it.
    Absorb,
}

/// What a timeout did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimerOutcome {
    /// Nothing was due.
    Nothing,
    /// Send these bytes again (a retransmission).
    Retransmit(Bytes),
    /// The transaction timed out (B, F, H): tell the transaction user.
    TimedOut,
    /// The transaction ended quietly (D, K, I, J, L, M).
    Terminated,
}

/// States of both client transactions (RFC 3261 figures 5 and 6; Accepted from RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// INVITE sent, nothing heard (`Trying` for non-INVITE).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions.
    Completed,
    /// A 2xx to INVITE arrived; further 2xx go to the transaction user.
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE or non-INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientTx {
    pub method: Method,
    pub state: ClientState,
    pub dest: Destination,
    /// The request, for retransmission.
    bytes: Bytes,
    /// The INVITE itself, kept to build the ACK for a non-2xx final.
    invite: Option<rsip::Request>,
    ack: Option<Bytes>,
    timers: TimerConfig,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    linger_until: Option<Instant>,
    /// How many times the request went out again.
    pub retransmissions: u32,
}

impl ClientTx {
    /// A new transaction for `request`, which the caller sends right away (the returned bytes).
    pub(crate) fn new(
        now: Instant,
        mut request: rsip::Request,
        dest: Destination,
        timers: TimerConfig,
    ) -> (ClientTx, Bytes) {
        let method = Method::from_rsip(request.method);
        let bytes = request_bytes(&mut request);
        let unreliable = dest.transport.is_unreliable();
        let tx = ClientTx {
            method,
            state: ClientState::Calling,
            dest,
            bytes: bytes.clone(),
            invite: (method == Method::Invite).then_some(request),
            ack: None,
            timers,
            interval: timers.t1,
            retransmit_at: unreliable.then(|| now + timers.t1),
            timeout_at: Some(now + timers.timeout()),
            linger_until: None,
            retransmissions: 0,
        };
        (tx, bytes)
    }

    /// When [`on_timeout`](Self::on_timeout) must next run.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    fn unreliable(&self) -> bool {
        self.dest.transport.is_unreliable()
    }

    /// Feeds a response whose top Via branch and CSeq method match this transaction. Returns
    /// what to do with it and, for a non-2xx final to INVITE, the ACK to send.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        response: &rsip::Response,
    ) -> (ClientVerdict, Option<Bytes>) {
        use ClientState::*;
        let provisional = status < 200;
        if self.method == Method::Invite {
            match (self.state, status) {
                (Calling | Proceeding, _) if provisional => {
                    self.state = Proceeding;
                    self.retransmit_at = None;
                    // Timer B only guards Calling; in Proceeding the TU's own timers (ring
                    // timeout, CANCEL) bound the wait.
                    self.timeout_at = None;
                    (ClientVerdict::Deliver, None)
                }
                (Calling | Proceeding, 200..=299) => {
                    self.state = Accepted;
                    self.invite = None;
                    self.bytes = Bytes::new();
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    self.linger_until = Some(now + self.timers.timeout());
                    (ClientVerdict::Deliver, None)
                }
                (Calling | Proceeding, _) => {
                    self.state = Completed;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    self.linger_until = Some(
                        now + if self.unreliable() {
                            Duration::from_secs(32).max(self.timers.timeout() / 2)
                        } else {
                            Duration::ZERO
                        },
                    );
                    let ack = self.build_ack(response);
                    self.ack = Some(ack.clone());
                    self.invite = None;
                    self.bytes = Bytes::new();
                    (ClientVerdict::Deliver, Some(ack))
                }
                (Completed, 300..) => (ClientVerdict::Absorb, self.ack.clone()),
                (Accepted, 200..=299) => (ClientVerdict::Deliver, None),
                _ => (ClientVerdict::Absorb, None),
            }
        } else {
            match self.state {
                Calling | Proceeding if provisional => {
                    self.state = Proceeding;
                    if self.unreliable() {
                        // Retransmissions continue, at T2 (RFC 3261 17.1.2.2).
                        self.interval = self.timers.t2;
                    }
                    (ClientVerdict::Deliver, None)
                }
                Calling | Proceeding => {
                    self.state = Completed;
                    self.bytes = Bytes::new();
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    self.linger_until = Some(
                        now + if self.unreliable() {
                            self.timers.t4
                        } else {
                            Duration::ZERO
                        },
                    );
                    (ClientVerdict::Deliver, None)
                }
                _ => (ClientVerdict::Absorb, None),
            }
        }
    }

    /// Runs the timers that are due at `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> TimerOutcome {
        if self.state == ClientState::Terminated {
            return TimerOutcome::Nothing;
        }
        if self.timeout_at.is_some_and(|at| at <= now) {
            self.state = ClientState::Terminated;
            self.retransmit_at = None;
            self.timeout_at = None;
            self.linger_until = None;
            return TimerOutcome::TimedOut;
        }
        if self.linger_until.is_some_and(|at| at <= now) {
            self.state = ClientState::Terminated;
            self.linger_until = None;
            return TimerOutcome::Terminated;
        }
        if let Some(at) = self.retransmit_at.filter(|at| *at <= now) {
            self.interval = if self.method == Method::Invite {
                self.interval * 2
            } else {
                (self.interval * 2).min(self.timers.t2)
            };
            // Schedule from the due time, not from `now`, so a late wake-up does not stretch
            // the whole series.
            self.retransmit_at = Some((at + self.interval).max(now));
            self.retransmissions += 1;
            return TimerOutcome::Retransmit(self.bytes.clone());
        }
        TimerOutcome::Nothing
    }

    /// The transport reported the request undeliverable (RFC 3261 17.1.1.2 / 17.1.2.2).
    pub(crate) fn on_transport_error(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.linger_until = None;
    }

    /// The ACK for a non-2xx final response (RFC 3261 17.1.1.3): the INVITE's Request-URI,
    /// top Via, From, Call-ID, CSeq number and Route, with the response's To.
    fn build_ack(&self, response: &rsip::Response) -> Bytes {
        let Some(invite) = &self.invite else {
            return Bytes::new();
        };
        let mut headers = rsip::Headers::default();
        let mut via_done = false;
        for header in invite.headers.iter() {
            match header {
                rsip::Header::Via(via) if !via_done => {
                    via_done = true;
                    let top = crate::message::split_list(via.value())
                        .first()
                        .map(|top| top.to_string())
                        .unwrap_or_default();
                    headers.push(make_header("Via", top));
                }
                rsip::Header::MaxForwards(_)
                | rsip::Header::From(_)
                | rsip::Header::CallId(_)
                | rsip::Header::Route(_) => headers.push(header.clone()),
                rsip::Header::CSeq(cseq) => {
                    let number = cseq.value().split_whitespace().next().unwrap_or("1");
                    headers.push(make_header("CSeq", format!("{number} ACK")));
                }
                _ => {}
            }
        }
        if let Some(to) = headers_of(&rsip::SipMessage::Response(response.clone()))
            .iter()
            .find(|header| matches!(header, rsip::Header::To(_)))
        {
            headers.push(to.clone());
        }
        let mut ack = rsip::Request {
            method: rsip::Method::Ack,
            uri: invite.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        request_bytes(&mut ack)
    }
}

/// States of both server transactions (RFC 3261 figures 7 and 8; Accepted from RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerState {
    /// Request received, no final response yet (`Trying` until a provisional for non-INVITE).
    Proceeding,
    /// A non-2xx final was sent (INVITE: waiting for the ACK).
    Completed,
    /// INVITE: the ACK arrived.
    Confirmed,
    /// INVITE: a 2xx was sent; it is retransmitted until the dialog sees the ACK.
    Accepted,
    /// Done.
    Terminated,
}

/// What a server transaction makes of a request that matched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerVerdict {
    /// A retransmission of the request: send this response again.
    Resend(Bytes),
    /// A retransmission with nothing to answer yet: drop it.
    Absorb,
    /// The ACK for our non-2xx final arrived (INVITE server in Completed).
    Acked,
}

/// An INVITE or non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerTx {
    pub method: Method,
    pub state: ServerState,
    /// Where responses go (the request's source, per RFC 3261 18.2.2 and RFC 3581).
    pub reply_to: Destination,
    /// The request, to build responses from; dropped once a final response is sent.
    pub request: Option<rsip::Request>,
    last_response: Option<Bytes>,
    last_status: u16,
    timers: TimerConfig,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    linger_until: Option<Instant>,
    /// How many times a response went out again on our own timer.
    pub retransmissions: u32,
}

impl ServerTx {
    /// A transaction for a new request.
    pub(crate) fn new(
        request: rsip::Request,
        reply_to: Destination,
        timers: TimerConfig,
    ) -> ServerTx {
        ServerTx {
            method: Method::from_rsip(request.method),
            state: ServerState::Proceeding,
            reply_to,
            request: Some(request),
            last_response: None,
            last_status: 0,
            timers,
            interval: timers.t1,
            retransmit_at: None,
            timeout_at: None,
            linger_until: None,
            retransmissions: 0,
        }
    }

    /// When [`on_timeout`](Self::on_timeout) must next run.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    fn unreliable(&self) -> bool {
        self.reply_to.transport.is_unreliable()
    }

    /// Records a response the transaction user sends (the caller transmits the bytes). Returns
    /// false if the transaction can no longer send it (a final was already sent).
    pub(crate) fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> bool {
        if self.state != ServerState::Proceeding {
            return false;
        }
        self.last_response = Some(bytes);
        self.last_status = status;
        if status < 200 {
            return true;
        }
        // Retransmissions are answered from `last_response`; the request is no longer needed.
        self.request = None;
        if self.method == Method::Invite {
            if status < 300 {
                // RFC 3261 13.3.1.4: the 2xx is retransmitted until the ACK, on every transport
                // (the ACK is end to end); RFC 6026: the transaction stays to absorb retransmitted
                // INVITEs.
                self.state = ServerState::Accepted;
                self.retransmit_at = Some(now + self.timers.t1);
                self.timeout_at = Some(now + self.timers.timeout());
            } else {
                self.state = ServerState::Completed;
                self.retransmit_at = self.unreliable().then(|| now + self.timers.t1);
                self.timeout_at = Some(now + self.timers.timeout());
            }
        } else {
            self.state = ServerState::Completed;
            self.linger_until = Some(
                now + if self.unreliable() {
                    self.timers.timeout()
                } else {
                    Duration::ZERO
                },
            );
        }
        true
    }

    /// Feeds a retransmission of the request (or, for INVITE, the ACK of a non-2xx final).
    pub(crate) fn on_request(&mut self, now: Instant, method: Method) -> ServerVerdict {
        match (self.state, method) {
            (ServerState::Completed, Method::Ack) if self.method == Method::Invite => {
                self.state = ServerState::Confirmed;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.linger_until = Some(
                    now + if self.unreliable() {
                        self.timers.t4
                    } else {
                        Duration::ZERO
                    },
                );
                ServerVerdict::Acked
            }
            (_, Method::Ack) => ServerVerdict::Absorb,
            // RFC 6026: in Accepted, a retransmitted INVITE is absorbed; our 2xx timer keeps
            // resending the 2xx.
            (ServerState::Accepted, _) => ServerVerdict::Absorb,
            (ServerState::Proceeding | ServerState::Completed, _) => match &self.last_response {
                Some(bytes) => ServerVerdict::Resend(bytes.clone()),
                None => ServerVerdict::Absorb,
            },
            _ => ServerVerdict::Absorb,
        }
    }

    /// The dialog saw the ACK for our 2xx: stop retransmitting it, absorb stray INVITEs a while.
    pub(crate) fn on_2xx_acked(&mut self, now: Instant) {
        if self.state == ServerState::Accepted {
            self.retransmit_at = None;
            self.timeout_at = None;
            self.linger_until = Some(now + self.timers.timeout());
        }
    }

    /// Runs the timers that are due at `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> TimerOutcome {
        if self.state == ServerState::Terminated {
            return TimerOutcome::Nothing;
        }
        if self.timeout_at.is_some_and(|at| at <= now) {
            self.state = ServerState::Terminated;
            self.retransmit_at = None;
            self.timeout_at = None;
            self.linger_until = None;
            return TimerOutcome::TimedOut;
        }
        if self.linger_until.is_some_and(|at| at <= now) {
            self.state = ServerState::Terminated;
            self.linger_until = None;
            return TimerOutcome::Terminated;
        }
        if let Some(at) = self.retransmit_at.filter(|at| *at <= now) {
            self.interval = (self.interval * 2).min(self.timers.t2);
            self.retransmit_at = Some((at + self.interval).max(now));
            self.retransmissions += 1;
            if let Some(bytes) = &self.last_response {
                return TimerOutcome::Retransmit(bytes.clone());
            }
        }
        TimerOutcome::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::types::Transport;

    fn request(method: &str) -> rsip::Request {
        let text = format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest\r\n\
Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\n\
Call-ID: tx-test\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap().inner {
            rsip::SipMessage::Request(request) => request,
            rsip::SipMessage::Response(_) => unreachable!(),
        }
    }

    fn response(status: u16, method: &str) -> rsip::Response {
        let text = format!(
            "SIP/2.0 {status} Whatever\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest\r\n\
To: <sip:bob@127.0.0.1>;tag=b\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\n\
Call-ID: tx-test\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap().inner {
            rsip::SipMessage::Response(response) => response,
            rsip::SipMessage::Request(_) => unreachable!(),
        }
    }

    fn dest(transport: Transport) -> Destination {
        Destination::new(transport, "127.0.0.1:5080".parse().unwrap())
    }

    /// Runs every timer of `tx` up to `until`, returning the offsets (from `start`) at which
    /// retransmissions happened and how the transaction ended.
    fn run_client(
        tx: &mut ClientTx,
        start: Instant,
        until: Duration,
    ) -> (Vec<u64>, Option<(u64, TimerOutcome)>) {
        let mut sent = Vec::new();
        while let Some(at) = tx.deadline() {
            if at > start + until {
                break;
            }
            match tx.on_timeout(at) {
                TimerOutcome::Retransmit(_) => sent.push((at - start).as_millis() as u64),
                TimerOutcome::Nothing => {}
                end => return (sent, Some(((at - start).as_millis() as u64, end))),
            }
        }
        (sent, None)
    }

    #[test]
    fn timer_a_doubles_and_timer_b_gives_up_after_64_t1() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("INVITE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        let (sent, end) = run_client(&mut tx, start, Duration::from_secs(60));
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(end, Some((32_000, TimerOutcome::TimedOut)));
        assert_eq!(tx.retransmissions, 6);
    }

    #[test]
    fn tcp_invite_is_not_retransmitted() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("INVITE"),
            dest(Transport::Tcp),
            TimerConfig::default(),
        );
        let (sent, end) = run_client(&mut tx, start, Duration::from_secs(60));
        assert!(sent.is_empty());
        assert_eq!(end, Some((32_000, TimerOutcome::TimedOut)));
    }

    #[test]
    fn provisional_stops_timer_a_and_b() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("INVITE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        let ringing = response(180, "INVITE");
        assert_eq!(
            tx.on_response(start + Duration::from_millis(100), 180, &ringing),
            (ClientVerdict::Deliver, None)
        );
        assert_eq!(tx.deadline(), None);
        assert_eq!(tx.state, ClientState::Proceeding);
    }

    #[test]
    fn non_2xx_final_is_acked_by_the_transaction_and_absorbed_for_timer_d() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("INVITE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        let busy = response(486, "INVITE");
        let (verdict, ack) = tx.on_response(start, 486, &busy);
        assert_eq!(verdict, ClientVerdict::Deliver);
        let ack = Message::parse(&ack.unwrap()).unwrap();
        assert_eq!(ack.method(), Some(Method::Ack));
        assert_eq!(ack.cseq(), (1, Method::Ack));
        assert_eq!(ack.to_tag(), Some("b"));
        assert_eq!(ack.branch(), "z9hG4bKtest");
        // A retransmitted 486 is answered with the same ACK and not delivered again.
        let (verdict, again) = tx.on_response(start + Duration::from_secs(1), 486, &busy);
        assert_eq!(verdict, ClientVerdict::Absorb);
        assert!(again.is_some());
        let (_, end) = run_client(&mut tx, start, Duration::from_secs(60));
        assert_eq!(end, Some((32_000, TimerOutcome::Terminated)));
    }

    #[test]
    fn forked_2xx_are_all_delivered_in_accepted_until_timer_m() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("INVITE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        let ok = response(200, "INVITE");
        assert_eq!(tx.on_response(start, 200, &ok).0, ClientVerdict::Deliver);
        assert_eq!(tx.state, ClientState::Accepted);
        assert_eq!(tx.on_response(start, 200, &ok).0, ClientVerdict::Deliver);
        assert_eq!(tx.on_response(start, 180, &ok).0, ClientVerdict::Absorb);
        let (_, end) = run_client(&mut tx, start, Duration::from_secs(60));
        assert_eq!(end, Some((32_000, TimerOutcome::Terminated)));
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f_gives_up() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("OPTIONS"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        let (sent, end) = run_client(&mut tx, start, Duration::from_secs(60));
        assert_eq!(
            sent,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(end, Some((32_000, TimerOutcome::TimedOut)));
    }

    #[test]
    fn timer_e_goes_to_t2_after_a_provisional_and_timer_k_absorbs() {
        let start = Instant::now();
        let (mut tx, _) = ClientTx::new(
            start,
            request("BYE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        tx.on_response(
            start + Duration::from_millis(10),
            100,
            &response(100, "BYE"),
        );
        let (sent, _) = run_client(&mut tx, start, Duration::from_millis(5000));
        assert_eq!(sent, vec![500, 4500]);
        let at = start + Duration::from_secs(6);
        assert_eq!(
            tx.on_response(at, 200, &response(200, "BYE")).0,
            ClientVerdict::Deliver
        );
        assert_eq!(
            tx.on_response(at, 200, &response(200, "BYE")).0,
            ClientVerdict::Absorb
        );
        assert_eq!(tx.deadline(), Some(at + Duration::from_secs(5)));
        assert_eq!(
            tx.on_timeout(at + Duration::from_secs(5)),
            TimerOutcome::Terminated
        );
    }

    #[test]
    fn timer_g_retransmits_final_until_ack_then_timer_i() {
        let start = Instant::now();
        let mut tx = ServerTx::new(
            request("INVITE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        assert!(tx.respond(start, 486, Bytes::from_static(b"486")));
        let mut sent = Vec::new();
        while let Some(at) = tx.deadline() {
            if at > start + Duration::from_secs(9) {
                break;
            }
            if let TimerOutcome::Retransmit(_) = tx.on_timeout(at) {
                sent.push((at - start).as_millis());
            }
        }
        assert_eq!(sent, vec![500, 1500, 3500, 7500]);
        // A retransmitted INVITE gets the 486 again.
        assert_eq!(
            tx.on_request(start, Method::Invite),
            ServerVerdict::Resend(Bytes::from_static(b"486"))
        );
        let acked_at = start + Duration::from_secs(9);
        assert_eq!(tx.on_request(acked_at, Method::Ack), ServerVerdict::Acked);
        assert_eq!(tx.on_request(acked_at, Method::Ack), ServerVerdict::Absorb);
        assert_eq!(tx.deadline(), Some(acked_at + Duration::from_secs(5)));
        assert_eq!(
            tx.on_timeout(acked_at + Duration::from_secs(5)),
            TimerOutcome::Terminated
        );
    }

    #[test]
    fn timer_h_gives_up_waiting_for_the_ack() {
        let start = Instant::now();
        let mut tx = ServerTx::new(
            request("INVITE"),
            dest(Transport::Udp),
            TimerConfig::default(),
        );
        tx.respond(start, 503, Bytes::from_static(b"503"));
        let mut last = TimerOutcome::Nothing;
        while let Some(at) = tx.deadline() {
            last = tx.on_timeout(at);
            if !matches!(last, TimerOutcome::Retransmit(_)) {
                assert_eq!(at - start, Duration::from_secs(32));
                break;
            }
        }
        assert_eq!(last, TimerOutcome::TimedOut);
    }

    #[test]
    fn invite_2xx_is_retransmitted_until_the_dialog_sees_the_ack() {
        let start = Instant::now();
        let mut tx = ServerTx::new(
            request("INVITE"),
            dest(Transport::Tcp),
            TimerConfig::default(),
        );
        tx.respond(start, 200, Bytes::from_static(b"200"));
        assert_eq!(tx.state, ServerState::Accepted);
        assert_eq!(
            tx.on_timeout(start + Duration::from_millis(500)),
            TimerOutcome::Retransmit(Bytes::from_static(b"200"))
        );
        assert_eq!(tx.on_request(start, Method::Invite), ServerVerdict::Absorb);
        tx.on_2xx_acked(start + Duration::from_secs(1));
        assert_eq!(tx.deadline(), Some(start + Duration::from_secs(33)));
        assert_eq!(
            tx.on_timeout(start + Duration::from_secs(33)),
            TimerOutcome::Terminated
        );
    }

    #[test]
    fn timer_j_absorbs_retransmitted_requests() {
        let start = Instant::now();
        let mut tx = ServerTx::new(request("BYE"), dest(Transport::Udp), TimerConfig::default());
        tx.respond(start, 200, Bytes::from_static(b"200"));
        assert_eq!(
            tx.on_request(start + Duration::from_secs(1), Method::Bye),
            ServerVerdict::Resend(Bytes::from_static(b"200"))
        );
        assert_eq!(tx.deadline(), Some(start + Duration::from_secs(32)));
        assert!(!tx.respond(start, 500, Bytes::new()));
    }
}
