//! One call: the INVITE dialog usage of RFC 3261 (sections 12 to 15), outbound (we are the UAC)
//! or incoming (we are the UAS), with early dialogs, forked 2xx, CANCEL and the CANCEL/200 race,
//! digest retries, re-INVITE and UPDATE from the peer, and session timers (RFC 4028).

use super::{Ctx, Owner, TxId};
use crate::digest::{self, Challenge, Credentials};
use crate::message::{self, Message, make_header, request_bytes, response_to};
use crate::sdp::{self, LocalMedia, Origin, RemoteMedia, Sdp};
use crate::stats::Stats;
use crate::types::{Destination, Method, NameAddr, Transport, Uri};
use bytes::Bytes;
use rsip::headers::UntypedHeader;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::CallKey;

/// What an outbound INVITE needs.
#[derive(Debug, Clone)]
pub struct InviteSpec {
    /// The Request-URI (`sip:+15551234567@carrier.example.com`).
    pub request_uri: Uri,
    /// The next hop.
    pub dest: Destination,
    /// From (our tag is added): the caller ID.
    pub from: NameAddr,
    /// To: the callee.
    pub to: NameAddr,
    /// P-Asserted-Identity (RFC 3325), the caller ID a trusted carrier passes on.
    pub asserted_identity: Option<NameAddr>,
    /// Credentials for a 401/407 challenge, answered once (again only for a stale nonce).
    pub credentials: Option<Credentials>,
    /// Our RTP leg: the offer is built from it.
    pub media: LocalMedia,
    /// How long to let it ring: counted from the INVITE and started again at the first 180/183,
    /// so the callee's phone rings at least this long. Then we CANCEL (outcome no answer).
    pub ring_timeout: Option<Duration>,
    /// Extra headers (name, value), checked for line breaks by the caller.
    pub headers: Vec<(String, String)>,
}

/// How a call ended, in the few cases the campaign engine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteResult {
    /// A 2xx: someone (or something) picked up.
    Answered,
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// Rang until our ring timeout, or the network gave up (408).
    NoAnswer,
    /// 403, 603: refused.
    Rejected,
    /// 404, 410, 484, 604: no such number.
    NotFound,
    /// 480, 502, 503, 504: the callee or the network cannot take the call now.
    Unavailable,
    /// We hung up before an answer (or the caller cancelled an incoming call).
    Cancelled,
    /// Anything else, with the status that ended it (408 when nothing answered at all).
    Failed {
        /// The status code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
}

impl InviteResult {
    /// The outcome a final response status means.
    pub fn from_status(code: u16, reason: &str) -> InviteResult {
        match code {
            200..=299 => InviteResult::Answered,
            486 | 600 => InviteResult::Busy,
            408 => InviteResult::NoAnswer,
            403 | 603 => InviteResult::Rejected,
            404 | 410 | 484 | 604 => InviteResult::NotFound,
            480 | 502 | 503 | 504 => InviteResult::Unavailable,
            code => InviteResult::Failed {
                code,
                reason: reason.to_owned(),
            },
        }
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The peer answered our INVITE with a final non-2xx response.
    Rejected,
    /// We hung up (or rejected an incoming call).
    LocalHangup,
    /// The ring timeout passed and we cancelled.
    RingTimeout,
    /// The peer sent BYE.
    RemoteHangup,
    /// The caller cancelled an incoming call.
    RemoteCancel,
    /// No response at all (timer B), or none to our CANCEL.
    NoResponse,
    /// Our 2xx was never ACKed (timer H).
    NoAck,
    /// The session timer ran out, or a refresh failed (RFC 4028).
    SessionExpired,
    /// The transport could not deliver our request.
    TransportError,
    /// The peer's TLS certificate was refused (wrong name, unknown CA, expired), so no request
    /// was sent: a setting to fix, not a network fault to retry elsewhere.
    TlsRefused,
}

/// The end of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// What the call came to.
    pub outcome: InviteResult,
    /// What ended it.
    pub cause: EndCause,
    /// The final status of the INVITE, if one was received or sent.
    pub code: Option<u16>,
}

/// What happens to a call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A provisional response to our INVITE: 100, 180, 183 (with SDP for early media).
    Progress {
        /// The status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
        /// Early media SDP, if any.
        sdp: Option<Sdp>,
    },
    /// Our INVITE was answered (the ACK is sent). The SDP is the peer's answer.
    Answered {
        /// The peer's SDP.
        sdp: Option<Sdp>,
    },
    /// Our 2xx to an incoming call was ACKed (with the peer's answer if our 2xx carried the offer).
    Confirmed {
        /// SDP in the ACK, if any.
        sdp: Option<Sdp>,
    },
    /// The peer changed the session (re-INVITE or UPDATE with a new offer, hold/resume); we
    /// answered it.
    MediaChanged {
        /// The peer's new SDP.
        sdp: Sdp,
        /// Our answer.
        answer: Sdp,
    },
    /// The call is over. Nothing follows.
    Ended(CallEnd),
}

/// An incoming call, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingInfo {
    /// The Call-ID.
    pub call_id: String,
    /// The Request-URI.
    pub request_uri: String,
    /// The From URI.
    pub from: String,
    /// The From display name.
    pub from_display: Option<String>,
    /// The user part of the From URI.
    pub from_user: Option<String>,
    /// The user part of the To URI (the number called).
    pub to_user: Option<String>,
    /// The username that authenticated, when the endpoint authenticates INVITEs.
    pub user: Option<String>,
    /// The SDP offer, if the INVITE carried one.
    pub offer: Option<Sdp>,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// The transport it came on.
    pub transport: Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// UAC: INVITE sent, no final response yet.
    Calling,
    /// UAS: INVITE received, no final response sent.
    Offered,
    /// UAS: 2xx sent, waiting for the ACK.
    AwaitingAck,
    /// The dialog is up.
    Confirmed,
    /// Over (transactions may still be finishing).
    Ended,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Calling => "ringing",
            Phase::Offered => "ringing",
            Phase::AwaitingAck => "answered",
            Phase::Confirmed => "answered",
            Phase::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    No,
    /// Wanted, but RFC 3261 9.1 waits for a provisional response first.
    Pending,
    Sent,
}

/// Dialog state (RFC 3261 section 12): enough to build requests inside it.
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local_tag: String,
    /// Our name-addr with our tag, as From in our requests.
    local: String,
    /// The peer's name-addr with its tag (once known), as To in our requests.
    remote: String,
    remote_tag: Option<String>,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: rsip::Uri,
    route_set: Vec<String>,
    /// Fallback next hop (and, for incoming calls, the only one: phones behind NAT are reached
    /// where their packets come from).
    peer: Destination,
    symmetric: bool,
}

impl Dialog {
    /// Where in-dialog requests go: the first route, else the remote target, when they name an
    /// IP address; else the peer we have been talking to.
    fn next_hop(&self) -> Destination {
        if self.symmetric {
            return self.peer;
        }
        let uri = match self.route_set.first() {
            Some(route) => rsip::Uri::try_from(message::uri_of(route)).ok(),
            None => Some(self.remote_target.clone()),
        };
        let Some(uri) = uri else {
            return self.peer;
        };
        let rsip::Host::IpAddr(ip) = uri.host_with_port.host else {
            return self.peer;
        };
        let transport = Uri(uri.clone()).transport().unwrap_or(self.peer.transport);
        let port = uri
            .host_with_port
            .port
            .map(|port| *port.value())
            .unwrap_or(transport.default_port());
        let addr = SocketAddr::new(ip, port);
        Destination {
            transport,
            addr,
            conn: (addr == self.peer.addr && transport == self.peer.transport)
                .then_some(self.peer.conn)
                .flatten(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Session {
    interval: Duration,
    we_refresh: bool,
    next: Instant,
}

impl Session {
    fn new(now: Instant, interval: Duration, we_refresh: bool) -> Session {
        // RFC 4028 section 10: the refresher refreshes at half the interval; the other side
        // gives up at the interval minus min(32 s, interval/3).
        let next = if we_refresh {
            now + interval / 2
        } else {
            now + interval - (interval / 3).min(Duration::from_secs(32))
        };
        Session {
            interval,
            we_refresh,
            next,
        }
    }
}

/// Parses `Session-Expires: 1800;refresher=uac`.
fn session_expires(message: &Message) -> Option<(u32, Option<String>)> {
    let value = message.header("Session-Expires")?;
    let seconds = value.split(';').next()?.trim().parse().ok()?;
    let refresher = message::param_value(value, "refresher")
        .flatten()
        .map(str::to_ascii_lowercase);
    Some((seconds, refresher))
}

fn has_option(message: &Message, header: &str, tag: &str) -> bool {
    message
        .headers(header)
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(tag))
}

fn sdp_body(message: &Message) -> Option<Sdp> {
    let body = message.body();
    if body.is_empty() {
        return None;
    }
    let is_sdp = message
        .header("Content-Type")
        .is_none_or(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"));
    (is_sdp).then(|| Sdp::new(String::from_utf8_lossy(body).into_owned()))
}

/// The call, with its dialog.
pub(crate) struct Call {
    key: CallKey,
    uac: bool,
    phase: Phase,
    dialog: Dialog,
    /// The INVITE transaction: client (UAC) or server (UAS).
    invite_tx: Option<TxId>,
    /// UAC: the INVITE last sent, until its final response (for CANCEL and retries).
    invite: Option<rsip::Request>,
    cancel: Cancel,
    cancel_reason: (InviteResult, EndCause),
    cancel_tx: Option<TxId>,
    cancel_deadline: Option<Instant>,
    ring_timeout: Option<Duration>,
    ring_deadline: Option<Instant>,
    ringing: bool,
    got_provisional: bool,
    credentials: Option<Credentials>,
    auth_tries: u8,
    nonce_count: u32,
    asked_session: bool,
    /// The last ACK we sent for a 2xx (its CSeq), resent when that 2xx is retransmitted.
    last_ack: Option<(u32, Bytes, Destination)>,
    media: LocalMedia,
    origin: Origin,
    local_sdp: Option<Sdp>,
    remote_media: Option<RemoteMedia>,
    session: Option<Session>,
    peer_allows_update: bool,
    refresh_tx: Option<(TxId, Method, u32)>,
    refresh_retry_at: Option<Instant>,
    bye_tx: Option<TxId>,
    /// UAS: the server transaction whose 2xx waits for an ACK.
    pending_2xx: Option<TxId>,
    hangup_on_ack: bool,
    /// UAS: the incoming INVITE's offer.
    offer: Option<Sdp>,
    /// UAS: the session interval the caller asked for, and who refreshes.
    requested_session: Option<(u32, bool)>,
    ended: bool,
}

impl Call {
    fn new(key: CallKey, uac: bool, phase: Phase, dialog: Dialog, media: LocalMedia) -> Call {
        Call {
            key,
            uac,
            phase,
            dialog,
            invite_tx: None,
            invite: None,
            cancel: Cancel::No,
            cancel_reason: (InviteResult::Cancelled, EndCause::LocalHangup),
            cancel_tx: None,
            cancel_deadline: None,
            ring_timeout: None,
            ring_deadline: None,
            ringing: false,
            got_provisional: false,
            credentials: None,
            auth_tries: 0,
            nonce_count: 0,
            asked_session: false,
            last_ack: None,
            media,
            origin: Origin::new(),
            local_sdp: None,
            remote_media: None,
            session: None,
            peer_allows_update: false,
            refresh_tx: None,
            refresh_retry_at: None,
            bye_tx: None,
            pending_2xx: None,
            hangup_on_ack: false,
            offer: None,
            requested_session: None,
            ended: false,
        }
    }

    pub(crate) fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    pub(crate) fn local_tag(&self) -> &str {
        &self.dialog.local_tag
    }

    /// Starts an outbound call: builds and sends the INVITE.
    pub(crate) fn outgoing(
        ctx: &mut Ctx,
        now: Instant,
        key: CallKey,
        spec: InviteSpec,
    ) -> Result<Call, crate::Error> {
        let listener = ctx
            .listener_for(spec.dest.transport)
            .ok_or(crate::Error::NoListener(spec.dest.transport))?;
        let local_tag = Ctx::new_tag();
        let dialog = Dialog {
            call_id: ctx.new_call_id(),
            local: format!("{};tag={local_tag}", spec.from),
            local_tag,
            remote: spec.to.to_string(),
            remote_tag: None,
            local_seq: 1,
            remote_seq: None,
            remote_target: spec.request_uri.0.clone(),
            route_set: Vec::new(),
            peer: spec.dest,
            symmetric: false,
        };
        let mut call = Call::new(key, true, Phase::Calling, dialog, spec.media.clone());
        let offer = sdp::offer(&call.media, &call.origin);
        let mut headers = rsip::Headers::default();
        headers.push(make_header("Via", Ctx::via(&listener, &Ctx::new_branch())));
        headers.push(make_header("Max-Forwards", "70"));
        headers.push(make_header("From", call.dialog.local.clone()));
        headers.push(make_header("To", call.dialog.remote.clone()));
        headers.push(make_header("Call-ID", call.dialog.call_id.clone()));
        headers.push(make_header("CSeq", "1 INVITE"));
        headers.push(make_header(
            "Contact",
            ctx.contact_for(&listener, spec.request_uri.is_sips()),
        ));
        if let Some(identity) = &spec.asserted_identity {
            headers.push(make_header("P-Asserted-Identity", identity.to_string()));
        }
        headers.push(make_header("Allow", super::ALLOW));
        headers.push(make_header("Supported", super::SUPPORTED));
        if let Some(interval) = ctx.config().session_expires {
            call.asked_session = true;
            headers.push(make_header(
                "Session-Expires",
                interval.as_secs().to_string(),
            ));
            headers.push(make_header(
                "Min-SE",
                ctx.config().min_se.as_secs().to_string(),
            ));
        }
        headers.push(make_header("User-Agent", ctx.config().user_agent.clone()));
        for (name, value) in &spec.headers {
            headers.push(make_header(name, value.clone()));
        }
        headers.push(make_header("Content-Type", "application/sdp"));
        let request = rsip::Request {
            method: rsip::Method::Invite,
            uri: spec.request_uri.0.clone(),
            version: rsip::Version::V2,
            headers,
            body: offer.as_str().as_bytes().to_vec(),
        };
        call.local_sdp = Some(offer);
        call.credentials = spec.credentials;
        call.ring_timeout = spec.ring_timeout;
        call.ring_deadline = spec.ring_timeout.map(|timeout| now + timeout);
        let tx = ctx.start_client(now, request.clone(), spec.dest, Owner::Call(key))?;
        call.invite_tx = Some(tx);
        call.invite = Some(request);
        ctx.index_dialog(&call.dialog.call_id, &call.dialog.local_tag, key);
        ctx.schedule_call(call.deadline(), key);
        tracing::debug!(call = key.0, call_id = %call.dialog.call_id, uri = %spec.request_uri, "INVITE sent");
        Ok(call)
    }

    /// Accepts a new incoming INVITE (already authenticated). Answers 100 and reports it, or
    /// refuses it (and returns `None`).
    pub(crate) fn incoming(
        ctx: &mut Ctx,
        now: Instant,
        key: CallKey,
        tx: TxId,
        message: &Message,
        user: Option<String>,
        input: &super::Input<'_>,
    ) -> Option<Call> {
        let content_type = message.header("Content-Type").unwrap_or("application/sdp");
        if !message.body().is_empty()
            && !content_type
                .to_ascii_lowercase()
                .starts_with("application/sdp")
        {
            ctx.respond_code(
                now,
                tx,
                415,
                None,
                vec![make_header("Accept", "application/sdp")],
            );
            return None;
        }
        let min_se = ctx.config().min_se.as_secs() as u32;
        let requested_session = match session_expires(message) {
            Some((seconds, _)) if seconds < min_se => {
                ctx.respond_code(
                    now,
                    tx,
                    422,
                    None,
                    vec![make_header("Min-SE", min_se.to_string())],
                );
                return None;
            }
            Some((seconds, refresher)) => {
                let uac_refreshes = match refresher.as_deref() {
                    Some("uas") => false,
                    Some(_) => true,
                    None => has_option(message, "Supported", "timer"),
                };
                Some((seconds, uac_refreshes))
            }
            None => None,
        };
        let (reply_to, _) = ctx.server_reply_to(tx)?;
        let from = message.header("From").unwrap_or_default().to_owned();
        let to = message.header("To").unwrap_or_default().to_owned();
        let local_tag = Ctx::new_tag();
        let contact_uri = message
            .header("Contact")
            .and_then(|contact| rsip::Uri::try_from(message::uri_of(contact)).ok());
        let request_uri = match &message.inner {
            rsip::SipMessage::Request(request) => request.uri.clone(),
            rsip::SipMessage::Response(_) => return None,
        };
        let dialog = Dialog {
            call_id: message.call_id().to_owned(),
            local: format!("{to};tag={local_tag}"),
            local_tag,
            remote: from.clone(),
            remote_tag: message.from_tag().map(str::to_owned),
            local_seq: rand::random::<u16>() as u32 + 1,
            remote_seq: Some(message.cseq().0),
            remote_target: contact_uri.unwrap_or_else(|| request_uri.clone()),
            route_set: message
                .headers("Record-Route")
                .flat_map(message::split_list)
                .map(str::to_owned)
                .collect(),
            peer: reply_to,
            symmetric: true,
        };
        let mut call = Call::new(
            key,
            false,
            Phase::Offered,
            dialog,
            LocalMedia::new(input.local),
        );
        call.invite_tx = Some(tx);
        call.offer = sdp_body(message);
        call.requested_session = requested_session;
        ctx.index_dialog(&call.dialog.call_id, &call.dialog.local_tag, key);
        ctx.respond_code(now, tx, 100, None, Vec::new());
        let from_uri = message::uri_of(&from).to_owned();
        let from_display = from
            .split('<')
            .next()
            .map(|name| name.trim().trim_matches('"').to_owned())
            .filter(|name| !name.is_empty() && from.contains('<'));
        let user_of = |value: &str| {
            rsip::Uri::try_from(message::uri_of(value))
                .ok()
                .and_then(|uri| uri.user().map(str::to_owned))
        };
        let info = IncomingInfo {
            call_id: message.call_id().to_owned(),
            request_uri: request_uri.to_string(),
            from_user: user_of(&from),
            from: from_uri,
            from_display,
            to_user: user_of(&to),
            user,
            offer: call.offer.clone(),
            source: input.remote,
            transport: input.transport,
        };
        ctx.emit_event(super::Event::Incoming { call: key, info });
        tracing::debug!(call = key.0, call_id = %call.dialog.call_id, "incoming INVITE");
        Some(call)
    }

    /// The earliest of the call's own timers.
    fn deadline(&self) -> Option<Instant> {
        [
            self.ring_deadline,
            self.cancel_deadline,
            self.session.map(|session| session.next),
            self.refresh_retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether nothing refers to the call any more, so the core may forget it.
    pub(crate) fn is_finished(&self, ctx: &Ctx) -> bool {
        if self.phase != Phase::Ended || self.hangup_on_ack {
            return false;
        }
        let client_live = [
            self.cancel_tx,
            self.bye_tx,
            self.refresh_tx.map(|(id, _, _)| id),
        ]
        .into_iter()
        .flatten()
        .chain(self.invite_tx.filter(|_| self.uac))
        .any(|id| ctx.client_alive(id));
        let server_live = [self.pending_2xx, self.invite_tx.filter(|_| !self.uac)]
            .into_iter()
            .flatten()
            .any(|id| ctx.server_alive(id));
        !client_live && !server_live
    }

    pub(crate) fn unindex(&self, ctx: &mut Ctx) {
        ctx.unindex_dialog(&self.dialog.call_id, &self.dialog.local_tag);
    }

    fn end(&mut self, ctx: &mut Ctx, outcome: InviteResult, cause: EndCause, code: Option<u16>) {
        self.phase = Phase::Ended;
        self.ring_deadline = None;
        self.cancel_deadline = None;
        self.session = None;
        self.refresh_retry_at = None;
        self.invite = None;
        if self.ended {
            return;
        }
        self.ended = true;
        tracing::debug!(call = self.key.0, call_id = %self.dialog.call_id, ?outcome, ?cause, "call ended");
        ctx.emit(
            self.key,
            CallEvent::Ended(CallEnd {
                outcome,
                cause,
                code,
            }),
        );
    }

    /// Builds a request inside the dialog. `cseq` is the CSeq number to use.
    fn dialog_request(
        &self,
        ctx: &Ctx,
        method: Method,
        cseq: u32,
        body: Option<&Sdp>,
        extra: Vec<rsip::Header>,
    ) -> Option<(rsip::Request, Destination)> {
        let dest = self.dialog.next_hop();
        let listener = ctx.listener_for(dest.transport)?;
        let mut headers = rsip::Headers::default();
        headers.push(make_header("Via", Ctx::via(&listener, &Ctx::new_branch())));
        headers.push(make_header("Max-Forwards", "70"));
        headers.push(make_header("From", self.dialog.local.clone()));
        headers.push(make_header("To", self.dialog.remote.clone()));
        headers.push(make_header("Call-ID", self.dialog.call_id.clone()));
        headers.push(make_header("CSeq", format!("{cseq} {method}")));
        for route in &self.dialog.route_set {
            headers.push(make_header("Route", route.clone()));
        }
        if matches!(method, Method::Invite | Method::Update) {
            headers.push(make_header("Contact", ctx.contact(&listener)));
        }
        if method != Method::Ack {
            headers.push(make_header("User-Agent", ctx.config().user_agent.clone()));
        }
        for header in extra {
            headers.push(header);
        }
        if body.is_some() {
            headers.push(make_header("Content-Type", "application/sdp"));
        }
        Some((
            rsip::Request {
                method: method.to_rsip(),
                uri: self.dialog.remote_target.clone(),
                version: rsip::Version::V2,
                headers,
                body: body
                    .map(|sdp| sdp.as_str().as_bytes().to_vec())
                    .unwrap_or_default(),
            },
            dest,
        ))
    }

    fn send_ack(&mut self, ctx: &mut Ctx, cseq: u32) {
        if let Some((mut ack, dest)) = self.dialog_request(ctx, Method::Ack, cseq, None, Vec::new())
        {
            let bytes = request_bytes(&mut ack);
            if let Some(listener) = ctx.listener_for(dest.transport) {
                ctx.send(listener.bound, dest, bytes.clone(), None);
            }
            self.last_ack = Some((cseq, bytes, dest));
        }
    }

    fn send_bye(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.bye_tx.is_some() {
            return;
        }
        self.dialog.local_seq += 1;
        let cseq = self.dialog.local_seq;
        if let Some((bye, dest)) = self.dialog_request(ctx, Method::Bye, cseq, None, Vec::new()) {
            self.bye_tx = ctx.start_client(now, bye, dest, Owner::Call(self.key)).ok();
        }
    }

    /// CANCEL for the pending INVITE (RFC 3261 9.1): same Request-URI, Call-ID, From, To, CSeq
    /// number, top Via and Route as the INVITE.
    fn send_cancel(&mut self, ctx: &mut Ctx, now: Instant) {
        let (Some(invite), Some(tx)) = (&self.invite, self.invite_tx) else {
            return;
        };
        let Some((dest, _)) = ctx.client_dest(tx) else {
            return;
        };
        let mut headers = rsip::Headers::default();
        let mut via_done = false;
        for header in invite.headers.iter() {
            match header {
                rsip::Header::Via(_) if !via_done => {
                    via_done = true;
                    headers.push(header.clone());
                }
                rsip::Header::MaxForwards(_)
                | rsip::Header::From(_)
                | rsip::Header::To(_)
                | rsip::Header::CallId(_)
                | rsip::Header::Route(_) => headers.push(header.clone()),
                rsip::Header::CSeq(cseq) => {
                    let number = cseq.value().split_whitespace().next().unwrap_or("1");
                    headers.push(make_header("CSeq", format!("{number} CANCEL")));
                }
                _ => {}
            }
        }
        headers.push(make_header("User-Agent", ctx.config().user_agent.clone()));
        let cancel = rsip::Request {
            method: rsip::Method::Cancel,
            uri: invite.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        self.cancel_tx = ctx
            .start_client(now, cancel, dest, Owner::Call(self.key))
            .ok();
        self.cancel = Cancel::Sent;
        // RFC 3261 9.1: without a final response 64*T1 after the CANCEL, give up on the INVITE.
        self.cancel_deadline = Some(now + ctx.config().timers.timeout());
        ctx.schedule_call(self.deadline(), self.key);
    }

    /// Resends the INVITE with a new branch and CSeq, after `edit` changed its headers.
    fn reissue(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        edit: impl FnOnce(&mut rsip::Headers, u32),
    ) -> bool {
        let (Some(mut invite), Some(old_tx)) = (self.invite.clone(), self.invite_tx) else {
            return false;
        };
        let Some((dest, _)) = ctx
            .client_dest(old_tx)
            .or(Some((self.dialog.peer, self.dialog.peer.addr)))
        else {
            return false;
        };
        let Some(listener) = ctx.listener_for(dest.transport) else {
            return false;
        };
        self.dialog.local_seq += 1;
        let cseq = self.dialog.local_seq;
        let mut headers = rsip::Headers::default();
        for header in invite.headers.iter() {
            match header {
                rsip::Header::Via(_) => {
                    headers.push(make_header("Via", Ctx::via(&listener, &Ctx::new_branch())))
                }
                rsip::Header::CSeq(_) => {
                    headers.push(make_header("CSeq", format!("{cseq} INVITE")))
                }
                rsip::Header::Authorization(_) | rsip::Header::ProxyAuthorization(_) => {}
                other => headers.push(other.clone()),
            }
        }
        edit(&mut headers, cseq);
        invite.headers = headers;
        match ctx.start_client(now, invite.clone(), dest, Owner::Call(self.key)) {
            Ok(tx) => {
                self.invite_tx = Some(tx);
                self.invite = Some(invite);
                self.got_provisional = false;
                true
            }
            Err(_) => false,
        }
    }

    /// Hangs up: CANCEL before an answer, BYE after, 480 to an unanswered incoming call.
    pub(crate) fn hangup(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        reason: Option<(InviteResult, EndCause)>,
    ) {
        let reason = reason.unwrap_or((InviteResult::Cancelled, EndCause::LocalHangup));
        match self.phase {
            Phase::Calling => {
                if self.cancel != Cancel::No {
                    return;
                }
                self.cancel_reason = reason;
                self.ring_deadline = None;
                if self.got_provisional {
                    self.send_cancel(ctx, now);
                } else {
                    self.cancel = Cancel::Pending;
                }
            }
            Phase::Offered => {
                if let Some(tx) = self.invite_tx {
                    let tag = self.dialog.local_tag.clone();
                    ctx.respond_code(now, tx, 480, Some(&tag), Vec::new());
                }
                self.end(ctx, reason.0, reason.1, Some(480));
            }
            Phase::AwaitingAck => {
                // RFC 3261 15.1.1: no BYE before the ACK (or its timeout).
                self.hangup_on_ack = true;
                self.end(
                    ctx,
                    InviteResult::Answered,
                    EndCause::LocalHangup,
                    Some(200),
                );
            }
            Phase::Confirmed => {
                self.send_bye(ctx, now);
                self.end(
                    ctx,
                    InviteResult::Answered,
                    EndCause::LocalHangup,
                    Some(200),
                );
            }
            Phase::Ended => {}
        }
    }

    /// Runs the call's own timers.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.ring_deadline.is_some_and(|at| at <= now) {
            self.ring_deadline = None;
            tracing::debug!(call = self.key.0, "ring timeout");
            self.hangup(
                ctx,
                now,
                Some((InviteResult::NoAnswer, EndCause::RingTimeout)),
            );
        }
        if self.cancel_deadline.is_some_and(|at| at <= now) {
            self.cancel_deadline = None;
            if self.phase == Phase::Calling {
                // The INVITE transaction waits in Proceeding with no timer of its own.
                if let Some(tx) = self.invite_tx {
                    ctx.abandon_client(tx);
                }
                let (outcome, cause) = self.cancel_reason.clone();
                self.end(ctx, outcome, cause, None);
            }
        }
        if let Some(session) = self.session.filter(|session| session.next <= now) {
            if session.we_refresh {
                self.session = Some(Session {
                    next: now + session.interval / 2,
                    ..session
                });
                self.send_refresh(ctx, now);
            } else {
                tracing::info!(call = self.key.0, call_id = %self.dialog.call_id, "session expired without refresh");
                self.send_bye(ctx, now);
                self.end(
                    ctx,
                    InviteResult::Answered,
                    EndCause::SessionExpired,
                    Some(200),
                );
            }
        }
        if self.refresh_retry_at.is_some_and(|at| at <= now) {
            self.refresh_retry_at = None;
            self.send_refresh(ctx, now);
        }
        ctx.schedule_call(self.deadline(), self.key);
    }

    /// A session refresh (RFC 4028 section 7.4): UPDATE when the peer allows it (no SDP), else a
    /// re-INVITE with our unchanged SDP.
    fn send_refresh(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.phase != Phase::Confirmed
            || self
                .refresh_tx
                .is_some_and(|(id, _, _)| ctx.client_pending(id))
        {
            return;
        }
        let Some(session) = self.session else {
            return;
        };
        let method = if self.peer_allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        self.dialog.local_seq += 1;
        let cseq = self.dialog.local_seq;
        let extra = vec![
            make_header(
                "Session-Expires",
                format!("{};refresher=uac", session.interval.as_secs()),
            ),
            make_header("Min-SE", ctx.config().min_se.as_secs().to_string()),
            make_header("Supported", super::SUPPORTED),
        ];
        let body = if method == Method::Invite {
            self.local_sdp.clone()
        } else {
            None
        };
        if let Some((request, dest)) = self.dialog_request(ctx, method, cseq, body.as_ref(), extra)
            && let Ok(tx) = ctx.start_client(now, request, dest, Owner::Call(self.key))
        {
            Stats::bump(&ctx.stats().session_refreshes);
            self.refresh_tx = Some((tx, method, cseq));
        }
    }

    /// A response delivered by one of the call's client transactions.
    pub(crate) fn on_response(&mut self, ctx: &mut Ctx, now: Instant, tx: TxId, message: &Message) {
        if Some(tx) == self.invite_tx && self.uac {
            self.on_invite_response(ctx, now, message);
        } else if self.refresh_tx.is_some_and(|(id, _, _)| id == tx) {
            self.on_refresh_response(ctx, now, message);
        }
        ctx.schedule_call(self.deadline(), self.key);
    }

    fn on_invite_response(&mut self, ctx: &mut Ctx, now: Instant, message: &Message) {
        let status = message.status().unwrap_or(0);
        let reason = message.reason().unwrap_or_default();
        match status {
            100..=199 => {
                if self.phase != Phase::Calling {
                    return;
                }
                self.got_provisional = true;
                if status != 100 && !self.ringing && self.cancel == Cancel::No {
                    self.ringing = true;
                    self.ring_deadline = self.ring_timeout.map(|timeout| now + timeout);
                }
                ctx.emit(
                    self.key,
                    CallEvent::Progress {
                        code: status,
                        reason,
                        sdp: sdp_body(message),
                    },
                );
                if self.cancel == Cancel::Pending {
                    self.send_cancel(ctx, now);
                }
            }
            200..=299 => self.on_invite_2xx(ctx, now, message),
            _ => {
                if self.phase != Phase::Calling {
                    return;
                }
                if self.cancel == Cancel::No && self.retry_after_failure(ctx, now, status, message)
                {
                    return;
                }
                let (outcome, cause) = if self.cancel != Cancel::No && status == 487 {
                    self.cancel_reason.clone()
                } else if self.cancel != Cancel::No {
                    (self.cancel_reason.0.clone(), EndCause::Rejected)
                } else {
                    (
                        InviteResult::from_status(status, &reason),
                        EndCause::Rejected,
                    )
                };
                self.end(ctx, outcome, cause, Some(status));
            }
        }
    }

    /// Answers a digest challenge or a 422 by sending the INVITE again. True if it did.
    fn retry_after_failure(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        status: u16,
        message: &Message,
    ) -> bool {
        match status {
            401 | 407 => {
                let Some(credentials) = self.credentials.clone() else {
                    return false;
                };
                let header = if status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let Some(challenge) = Challenge::pick(message.headers(header)) else {
                    return false;
                };
                // Once; once more only if the server says our nonce was merely stale.
                if self.auth_tries >= 2 || (self.auth_tries == 1 && !challenge.stale) {
                    return false;
                }
                self.auth_tries += 1;
                self.nonce_count += 1;
                let Some(invite) = &self.invite else {
                    return false;
                };
                let value = digest::authorization(
                    &challenge,
                    &credentials,
                    "INVITE",
                    &invite.uri.to_string(),
                    &invite.body,
                    1,
                    &Ctx::new_tag(),
                );
                let name = if status == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                let sent = self.reissue(ctx, now, |headers, _| {
                    headers.push(make_header(name, value))
                });
                if sent {
                    Stats::bump(&ctx.stats().auth_answered);
                }
                sent
            }
            422 if self.asked_session => {
                let Some(min_se) = message
                    .header("Min-SE")
                    .and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok())
                else {
                    return false;
                };
                self.asked_session = false; // once
                self.reissue(ctx, now, |headers, _| {
                    headers.retain(|header| {
                        !matches!(header, rsip::Header::Other(name, _) if name.eq_ignore_ascii_case("Session-Expires") || name.eq_ignore_ascii_case("Min-SE"))
                    });
                    headers.push(make_header("Session-Expires", min_se.to_string()));
                    headers.push(make_header("Min-SE", min_se.to_string()));
                })
            }
            _ => false,
        }
    }

    /// A 2xx to our INVITE: the first confirms the dialog; a retransmission gets the same ACK;
    /// a 2xx from another fork is ACKed and hung up on (RFC 3261 13.2.2.4).
    fn on_invite_2xx(&mut self, ctx: &mut Ctx, now: Instant, message: &Message) {
        let tag = message.to_tag().map(str::to_owned);
        let cseq = message.cseq().0;
        if self.dialog.remote_tag.is_some() && self.phase != Phase::Calling {
            if self.dialog.remote_tag == tag {
                if let Some((ack_cseq, bytes, dest)) = &self.last_ack
                    && *ack_cseq == cseq
                    && let Some(listener) = ctx.listener_for(dest.transport)
                {
                    ctx.send(listener.bound, *dest, bytes.clone(), None);
                }
            } else {
                self.hang_up_fork(ctx, now, message);
            }
            return;
        }
        if self.phase != Phase::Calling {
            return;
        }
        self.establish(message);
        self.send_ack(ctx, cseq);
        self.invite = None;
        self.ring_deadline = None;
        self.cancel_deadline = None;
        if self.cancel != Cancel::No {
            // The CANCEL/200 race: the callee answered as we cancelled. ACK, then BYE.
            tracing::debug!(call = self.key.0, "200 crossed our CANCEL: ACK and BYE");
            self.phase = Phase::Confirmed;
            self.send_bye(ctx, now);
            let (outcome, cause) = self.cancel_reason.clone();
            self.end(ctx, outcome, cause, Some(message.status().unwrap_or(200)));
            return;
        }
        self.phase = Phase::Confirmed;
        Stats::bump(&ctx.stats().calls_answered);
        let sdp = sdp_body(message);
        if let Some(sdp) = &sdp {
            self.remote_media = sdp.remote_media(&self.media.codecs).ok();
        }
        self.session = self.session_from_2xx(now, message);
        ctx.emit(self.key, CallEvent::Answered { sdp });
    }

    /// Fills the dialog from the 2xx (RFC 3261 12.1.2).
    fn establish(&mut self, message: &Message) {
        self.dialog.remote_tag = message.to_tag().map(str::to_owned);
        if let Some(to) = message.header("To") {
            self.dialog.remote = to.to_owned();
        }
        if let Some(target) = message
            .header("Contact")
            .and_then(|contact| rsip::Uri::try_from(message::uri_of(contact)).ok())
        {
            self.dialog.remote_target = target;
        }
        let mut routes: Vec<String> = message
            .headers("Record-Route")
            .flat_map(message::split_list)
            .map(str::to_owned)
            .collect();
        routes.reverse();
        self.dialog.route_set = routes;
        self.peer_allows_update = has_option(message, "Allow", "UPDATE");
    }

    /// RFC 4028 section 7.2: the 2xx's Session-Expires decides; `refresher=uac` is us.
    fn session_from_2xx(&self, now: Instant, message: &Message) -> Option<Session> {
        let (seconds, refresher) = session_expires(message)?;
        let we_refresh = refresher.as_deref() != Some("uas");
        Some(Session::new(
            now,
            Duration::from_secs(seconds.max(1).into()),
            we_refresh,
        ))
    }

    fn hang_up_fork(&mut self, ctx: &mut Ctx, now: Instant, message: &Message) {
        let mut fork = self.clone_for_fork();
        fork.establish(message);
        let cseq = message.cseq().0;
        tracing::debug!(call = self.key.0, tag = ?fork.dialog.remote_tag, "2xx from a second fork: ACK and BYE");
        if let Some((mut ack, dest)) = fork.dialog_request(ctx, Method::Ack, cseq, None, Vec::new())
        {
            let bytes = request_bytes(&mut ack);
            if let Some(listener) = ctx.listener_for(dest.transport) {
                ctx.send(listener.bound, dest, bytes, None);
            }
        }
        if let Some((bye, dest)) = fork.dialog_request(ctx, Method::Bye, cseq + 1, None, Vec::new())
        {
            let _ = ctx.start_client(now, bye, dest, Owner::None);
        }
    }

    fn clone_for_fork(&self) -> Call {
        let mut fork = Call::new(
            self.key,
            true,
            Phase::Confirmed,
            self.dialog.clone(),
            self.media.clone(),
        );
        fork.dialog.route_set.clear();
        fork
    }

    fn on_refresh_response(&mut self, ctx: &mut Ctx, now: Instant, message: &Message) {
        let Some((_, method, cseq)) = self.refresh_tx else {
            return;
        };
        let status = message.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        if method == Method::Invite && (200..300).contains(&status) {
            self.send_ack(ctx, cseq);
        }
        if self.phase != Phase::Confirmed {
            return;
        }
        match status {
            200..=299 => {
                if let Some(session) = self.session_from_2xx(now, message) {
                    self.session = Some(session);
                }
                if let Some(sdp) = sdp_body(message) {
                    self.remote_media = sdp
                        .remote_media(&self.media.codecs)
                        .ok()
                        .or(self.remote_media);
                }
            }
            408 | 481 => {
                tracing::info!(
                    call = self.key.0,
                    status,
                    "session refresh failed: ending the call"
                );
                if status == 408 {
                    self.send_bye(ctx, now);
                }
                self.end(
                    ctx,
                    InviteResult::Answered,
                    EndCause::SessionExpired,
                    Some(200),
                );
            }
            491 => {
                // RFC 3261 14.1: glare; retry after 2.1 to 4 s.
                self.refresh_retry_at =
                    Some(now + Duration::from_millis(2100 + rand::random::<u64>() % 1900));
            }
            405 | 501 if method == Method::Update => {
                self.peer_allows_update = false;
                self.refresh_tx = None;
                self.send_refresh(ctx, now);
            }
            422 => {
                if let Some(min_se) = message
                    .header("Min-SE")
                    .and_then(|v| v.split(';').next()?.trim().parse::<u64>().ok())
                {
                    if let Some(session) = &mut self.session {
                        session.interval = Duration::from_secs(min_se);
                    }
                    self.refresh_retry_at = Some(now);
                }
            }
            _ => {
                // The session goes on; the peer may still end it at expiry.
                self.refresh_retry_at = Some(now + Duration::from_secs(10));
            }
        }
    }

    /// A client transaction of the call got no final response.
    pub(crate) fn on_client_failure(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        tx: TxId,
        code: u16,
        reason: &str,
        cause: EndCause,
    ) {
        if Some(tx) == self.invite_tx && self.uac && self.phase == Phase::Calling {
            let outcome = if self.cancel != Cancel::No {
                self.cancel_reason.0.clone()
            } else {
                InviteResult::Failed {
                    code,
                    reason: reason.to_owned(),
                }
            };
            self.end(ctx, outcome, cause, None);
        } else if self.refresh_tx.is_some_and(|(id, _, _)| id == tx)
            && self.phase == Phase::Confirmed
        {
            self.send_bye(ctx, now);
            self.end(
                ctx,
                InviteResult::Answered,
                EndCause::SessionExpired,
                Some(200),
            );
        }
        ctx.schedule_call(self.deadline(), self.key);
    }

    /// A 2xx the INVITE transaction no longer matches (it arrived after timer M): re-ACK it.
    pub(crate) fn on_stray_2xx(&mut self, ctx: &mut Ctx, now: Instant, message: &Message) {
        if self.uac && message.cseq().1 == Method::Invite {
            self.on_invite_2xx(ctx, now, message);
        }
    }

    /// A request inside the dialog, already given server transaction `tx`.
    pub(crate) fn on_request(&mut self, ctx: &mut Ctx, now: Instant, tx: TxId, message: &Message) {
        let method = message.method().unwrap_or(Method::Options);
        let tag = self.dialog.local_tag.clone();
        if self.dialog.remote_tag.is_some()
            && self.dialog.remote_tag.as_deref() != message.from_tag()
        {
            ctx.respond_code(now, tx, 481, Some(&tag), Vec::new());
            return;
        }
        let cseq = message.cseq().0;
        if self.dialog.remote_seq.is_some_and(|last| cseq <= last) {
            // RFC 3261 12.2.2: out of order.
            ctx.respond_code(
                now,
                tx,
                500,
                Some(&tag),
                vec![make_header("Retry-After", "1")],
            );
            return;
        }
        self.dialog.remote_seq = Some(cseq);
        match method {
            Method::Bye => {
                ctx.respond_code(now, tx, 200, Some(&tag), Vec::new());
                match self.phase {
                    Phase::Ended => {}
                    Phase::Calling | Phase::Offered => {
                        self.end(ctx, InviteResult::Cancelled, EndCause::RemoteHangup, None);
                    }
                    _ => self.end(
                        ctx,
                        InviteResult::Answered,
                        EndCause::RemoteHangup,
                        Some(200),
                    ),
                }
            }
            Method::Invite | Method::Update => {
                self.on_session_request(ctx, now, tx, method, message)
            }
            Method::Options | Method::Info => {
                ctx.respond_code(now, tx, 200, Some(&tag), Vec::new());
            }
            _ => {
                ctx.respond_code(
                    now,
                    tx,
                    405,
                    Some(&tag),
                    vec![make_header("Allow", super::ALLOW)],
                );
            }
        }
        ctx.schedule_call(self.deadline(), self.key);
    }

    /// A re-INVITE or UPDATE from the peer: a new offer (hold, resume, codec change) and/or a
    /// session refresh.
    fn on_session_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        tx: TxId,
        method: Method,
        message: &Message,
    ) {
        let tag = self.dialog.local_tag.clone();
        if !matches!(self.phase, Phase::Confirmed) {
            ctx.respond_code(now, tx, 491, Some(&tag), Vec::new());
            return;
        }
        let our_invite_pending = self
            .refresh_tx
            .is_some_and(|(id, m, _)| m == Method::Invite && ctx.client_pending(id));
        if method == Method::Invite && (our_invite_pending || self.pending_2xx.is_some()) {
            ctx.respond_code(now, tx, 491, Some(&tag), Vec::new());
            return;
        }
        let min_se = ctx.config().min_se.as_secs() as u32;
        let refresh = session_expires(message);
        if let Some((seconds, _)) = refresh
            && seconds < min_se
        {
            ctx.respond_code(
                now,
                tx,
                422,
                Some(&tag),
                vec![make_header("Min-SE", min_se.to_string())],
            );
            return;
        }
        let offer = sdp_body(message);
        let mut answer_sdp = None;
        let mut changed = None;
        match &offer {
            Some(offer) => match self.answer_offer(offer) {
                Ok((sdp, remote)) => {
                    if self.remote_media != Some(remote) {
                        changed = Some((offer.clone(), sdp.clone()));
                    }
                    self.remote_media = Some(remote);
                    answer_sdp = Some(sdp);
                }
                Err(err) => {
                    tracing::info!(call = self.key.0, error = %err, "unacceptable offer in re-INVITE/UPDATE");
                    ctx.respond_code(now, tx, 488, Some(&tag), Vec::new());
                    return;
                }
            },
            // A re-INVITE without an offer asks for ours (answer in the ACK).
            None if method == Method::Invite => answer_sdp = self.local_sdp.clone(),
            None => {}
        }
        let Some(request) = ctx.server_request(tx) else {
            return;
        };
        let sips = is_sips(&request.uri);
        let mut response = response_to(request, 200, None, Some(&tag));
        if let Some(listener) = ctx.listener_for(self.dialog.peer.transport) {
            response
                .headers
                .push(make_header("Contact", ctx.contact_for(&listener, sips)));
        }
        response
            .headers
            .push(make_header("Supported", super::SUPPORTED));
        match refresh {
            Some((seconds, refresher)) => {
                // The request's UAC is the peer: refresher=uac means the peer refreshes.
                let peer_refreshes = match refresher.as_deref() {
                    Some("uas") => false,
                    Some(_) => true,
                    None => has_option(message, "Supported", "timer"),
                };
                let value = format!(
                    "{seconds};refresher={}",
                    if peer_refreshes { "uac" } else { "uas" }
                );
                response.headers.push(make_header("Session-Expires", value));
                if peer_refreshes {
                    response.headers.push(make_header("Require", "timer"));
                }
                self.session = Some(Session::new(
                    now,
                    Duration::from_secs(seconds.into()),
                    !peer_refreshes,
                ));
            }
            None => {
                if method == Method::Invite {
                    // RFC 4028 section 9: a re-INVITE without Session-Expires turns timers off.
                    self.session = None;
                }
            }
        }
        if let Some(sdp) = &answer_sdp {
            response
                .headers
                .push(make_header("Content-Type", "application/sdp"));
            response.body = sdp.as_str().as_bytes().to_vec();
        }
        if ctx.respond(now, tx, response) && method == Method::Invite {
            self.pending_2xx = Some(tx);
        }
        if let Some((sdp, answer)) = changed {
            ctx.emit(self.key, CallEvent::MediaChanged { sdp, answer });
        }
    }

    /// Our answer to `offer` for this call: the same SDP (same version) when nothing changed,
    /// else a new one with the version bumped (RFC 3264 section 8).
    fn answer_offer(&mut self, offer: &Sdp) -> Result<(Sdp, RemoteMedia), crate::sdp::SdpError> {
        let (sdp, remote) = sdp::answer(&self.media, offer, &self.origin)?;
        if self
            .local_sdp
            .as_ref()
            .is_some_and(|previous| previous != &sdp)
        {
            self.origin.version += 1;
            let (sdp, remote) = sdp::answer(&self.media, offer, &self.origin)?;
            self.local_sdp = Some(sdp.clone());
            return Ok((sdp, remote));
        }
        self.local_sdp = Some(sdp.clone());
        Ok((sdp, remote))
    }

    /// The ACK for one of our 2xx (matched by dialog).
    pub(crate) fn on_ack(&mut self, ctx: &mut Ctx, now: Instant, message: &Message) {
        let Some(tx) = self.pending_2xx.take() else {
            return;
        };
        ctx.server_2xx_acked(now, tx);
        let sdp = sdp_body(message);
        if let Some(sdp) = &sdp {
            self.remote_media = sdp
                .remote_media(&self.media.codecs)
                .ok()
                .or(self.remote_media);
        }
        if self.hangup_on_ack {
            self.hangup_on_ack = false;
            self.send_bye(ctx, now);
            return;
        }
        match self.phase {
            Phase::AwaitingAck => {
                self.phase = Phase::Confirmed;
                ctx.emit(self.key, CallEvent::Confirmed { sdp });
            }
            Phase::Confirmed => {
                if let (Some(sdp), Some(answer)) = (sdp, self.local_sdp.clone()) {
                    ctx.emit(self.key, CallEvent::MediaChanged { sdp, answer });
                }
            }
            _ => {}
        }
    }

    /// Our 2xx was never ACKed (RFC 3261 13.3.1.4): end the session with a BYE.
    pub(crate) fn on_ack_timeout(&mut self, ctx: &mut Ctx, now: Instant, tx: TxId) {
        if self.pending_2xx != Some(tx) {
            return;
        }
        self.pending_2xx = None;
        let hangup = std::mem::take(&mut self.hangup_on_ack);
        match self.phase {
            Phase::AwaitingAck => {
                self.phase = Phase::Confirmed;
                self.send_bye(ctx, now);
                self.end(ctx, InviteResult::Answered, EndCause::NoAck, Some(200));
            }
            _ if hangup => self.send_bye(ctx, now),
            _ => {}
        }
    }

    /// The caller cancelled our pending incoming call.
    pub(crate) fn on_cancel(&mut self, ctx: &mut Ctx, now: Instant, invite_tx: TxId) {
        if self.phase != Phase::Offered || Some(invite_tx) != self.invite_tx {
            return;
        }
        let tag = self.dialog.local_tag.clone();
        ctx.respond_code(now, invite_tx, 487, Some(&tag), Vec::new());
        self.end(
            ctx,
            InviteResult::Cancelled,
            EndCause::RemoteCancel,
            Some(487),
        );
    }

    /// A provisional response on an incoming call; with `media`, a 183 carrying our answer
    /// (early media).
    pub(crate) fn progress(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        code: u16,
        media: Option<&LocalMedia>,
    ) -> Result<(), crate::Error> {
        if self.phase != Phase::Offered {
            return Err(crate::Error::InvalidState {
                action: "send progress on",
                state: self.phase.name(),
            });
        }
        if !(101..=199).contains(&code) {
            return Err(crate::Error::InvalidState {
                action: "send a non-provisional status as progress on",
                state: "ringing",
            });
        }
        let tx = self.invite_tx.ok_or(crate::Error::Closed)?;
        let mut body = None;
        if let (Some(media), Some(offer)) = (media, self.offer.clone()) {
            self.media = media.clone();
            let (sdp, remote) = self.answer_offer(&offer)?;
            self.remote_media = Some(remote);
            body = Some(sdp);
        }
        let Some(request) = ctx.server_request(tx) else {
            return Err(crate::Error::Closed);
        };
        let sips = is_sips(&request.uri);
        let tag = self.dialog.local_tag.clone();
        let mut response = response_to(request, code, None, Some(&tag));
        if let Some(listener) = ctx.listener_bound(self.local_addr(ctx)) {
            response
                .headers
                .push(make_header("Contact", ctx.contact_for(&listener, sips)));
        }
        if let Some(sdp) = body {
            response
                .headers
                .push(make_header("Content-Type", "application/sdp"));
            response.body = sdp.as_str().as_bytes().to_vec();
        }
        ctx.respond(now, tx, response);
        Ok(())
    }

    fn local_addr(&self, ctx: &Ctx) -> SocketAddr {
        self.invite_tx
            .and_then(|tx| ctx.server_reply_to(tx))
            .map(|(_, local)| local)
            .or_else(|| {
                ctx.listener_for(self.dialog.peer.transport)
                    .map(|l| l.bound)
            })
            .unwrap_or_else(|| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0))
    }

    /// Answers an incoming call with 200 and our SDP (an answer to the caller's offer, or an
    /// offer if the INVITE had none).
    pub(crate) fn answer(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        media: LocalMedia,
    ) -> Result<(), crate::Error> {
        if self.phase != Phase::Offered {
            return Err(crate::Error::InvalidState {
                action: "answer",
                state: self.phase.name(),
            });
        }
        let tx = self.invite_tx.ok_or(crate::Error::Closed)?;
        let tag = self.dialog.local_tag.clone();
        self.media = media;
        let sdp = match self.offer.clone() {
            Some(offer) => match self.answer_offer(&offer) {
                Ok((sdp, remote)) => {
                    self.remote_media = Some(remote);
                    sdp
                }
                Err(err) => {
                    ctx.respond_code(now, tx, 488, Some(&tag), Vec::new());
                    self.end(
                        ctx,
                        InviteResult::Failed {
                            code: 488,
                            reason: "Not Acceptable Here".into(),
                        },
                        EndCause::LocalHangup,
                        Some(488),
                    );
                    return Err(err.into());
                }
            },
            None => {
                let offer = sdp::offer(&self.media, &self.origin);
                self.local_sdp = Some(offer.clone());
                offer
            }
        };
        let Some(request) = ctx.server_request(tx) else {
            return Err(crate::Error::Closed);
        };
        let sips = is_sips(&request.uri);
        let mut response = response_to(request, 200, None, Some(&tag));
        if let Some(listener) = ctx.listener_bound(self.local_addr(ctx)) {
            response
                .headers
                .push(make_header("Contact", ctx.contact_for(&listener, sips)));
        }
        response.headers.push(make_header("Allow", super::ALLOW));
        response
            .headers
            .push(make_header("Supported", super::SUPPORTED));
        if let Some((seconds, uac_refreshes)) = self.requested_session {
            let who = if uac_refreshes { "uac" } else { "uas" };
            response.headers.push(make_header(
                "Session-Expires",
                format!("{seconds};refresher={who}"),
            ));
            if uac_refreshes {
                response.headers.push(make_header("Require", "timer"));
            }
            self.session = Some(Session::new(
                now,
                Duration::from_secs(seconds.into()),
                !uac_refreshes,
            ));
        }
        response
            .headers
            .push(make_header("Content-Type", "application/sdp"));
        response.body = sdp.as_str().as_bytes().to_vec();
        if !ctx.respond(now, tx, response) {
            return Err(crate::Error::InvalidState {
                action: "answer",
                state: "already answered",
            });
        }
        self.pending_2xx = Some(tx);
        self.phase = Phase::AwaitingAck;
        ctx.schedule_call(self.deadline(), self.key);
        Ok(())
    }

    /// Refuses an incoming call with a final status.
    pub(crate) fn reject(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        code: u16,
    ) -> Result<(), crate::Error> {
        if self.phase != Phase::Offered {
            return Err(crate::Error::InvalidState {
                action: "reject",
                state: self.phase.name(),
            });
        }
        if !(300..=699).contains(&code) {
            return Err(crate::Error::InvalidState {
                action: "reject with a non-final status",
                state: "ringing",
            });
        }
        if let Some(tx) = self.invite_tx {
            let tag = self.dialog.local_tag.clone();
            ctx.respond_code(now, tx, code, Some(&tag), Vec::new());
        }
        let reason = message::reason_phrase(code);
        self.end(
            ctx,
            InviteResult::from_status(code, reason),
            EndCause::LocalHangup,
            Some(code),
        );
        Ok(())
    }
}

/// Whether a request was sent to a `sips:` URI: then our Contact in the dialog is `sips:` too
/// (RFC 3261 8.1.1.8, 12.1.1).
fn is_sips(uri: &rsip::Uri) -> bool {
    matches!(uri.scheme, Some(rsip::Scheme::Sips))
}
