//! The async endpoint: one tokio task (the driver) owns the [`Core`] and the sockets; handles
//! ([`Endpoint`], [`Call`], [`IncomingCall`], [`Registration`]) talk to it through channels.

use crate::core::{
    AuthConfig, CallEnd, CallEvent, CallKey, Core, CoreConfig, Event, IncomingInfo, Input,
    InviteSpec, Listener, RequestResult, RequestSpec, SendFailure, SendToken,
};
use crate::cps::CpsLimiter;
use crate::digest::Credentials;
use crate::dns::Resolver;
use crate::message::Limits;
use crate::refresh::{RefreshSchedule, RegistrationState, RegistrationStatus, interval_too_brief};
use crate::registrar::{Binding, RegistrarConfig, RegistrationChange};
use crate::sdp::LocalMedia;
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::{self, TlsClient, TlsPeer, TlsServer};
use crate::transport::{self, NetEvent};
use crate::{ConnId, Destination, Error, Method, NameAddr, TimerConfig, Transport, Uri};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How to set an endpoint up.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// UDP addresses to listen on (port 0 picks one).
    pub udp: Vec<SocketAddr>,
    /// TCP addresses to listen on.
    pub tcp: Vec<SocketAddr>,
    /// TLS addresses to listen on (phones on `sips:` or `transport=tls`); needs `tls_server`.
    pub tls: Vec<SocketAddr>,
    /// The certificate TLS listeners present.
    pub tls_server: Option<TlsServer>,
    /// The CAs outbound TLS connections check peers against when their trunk names none; the
    /// system's CA store (loaded on the first TLS connection) when `None`.
    pub tls_client: Option<TlsClient>,
    /// The address written into Via and Contact when a listener is bound to `0.0.0.0`; by default
    /// the address of the interface that routes to the internet.
    pub advertise: Option<IpAddr>,
    /// User-Agent and Server header.
    pub user_agent: String,
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// The session interval asked for in outbound INVITEs (RFC 4028); `None` asks for none.
    pub session_expires: Option<Duration>,
    /// The smallest session interval accepted.
    pub min_se: Duration,
    /// Digest authentication of phones' REGISTER and INVITE; `None` accepts every INVITE and
    /// refuses REGISTER.
    pub auth: Option<AuthConfig>,
    /// Registrar policy.
    pub registrar: RegistrarConfig,
    /// Size limits for incoming messages.
    pub limits: Limits,
    /// Incoming calls and registrations waiting to be taken from [`Incoming`]; past this,
    /// new INVITEs get 503.
    pub incoming_queue: usize,
    /// The DNS server for NAPTR/SRV/A lookups of carriers' host names; the system's
    /// (resolv.conf) when `None`.
    pub dns_server: Option<SocketAddr>,
}

impl EndpointConfig {
    /// One UDP listener and the defaults.
    pub fn udp(addr: SocketAddr) -> Self {
        let defaults = CoreConfig::new(Vec::new());
        EndpointConfig {
            udp: vec![addr],
            tcp: Vec::new(),
            tls: Vec::new(),
            tls_server: None,
            tls_client: None,
            advertise: None,
            user_agent: defaults.user_agent,
            timers: defaults.timers,
            session_expires: defaults.session_expires,
            min_se: defaults.min_se,
            auth: None,
            registrar: defaults.registrar,
            limits: defaults.limits,
            incoming_queue: 256,
            dns_server: None,
        }
    }
}

/// Something for the engine from the network: an incoming call or a registration change.
#[derive(Debug)]
pub enum IncomingEvent {
    /// A new call (an agent's phone calling in, or any INVITE when authentication is off).
    Call(IncomingCall),
    /// A phone registered or its registration ended.
    Registration(RegistrationChange),
}

/// The stream of [`IncomingEvent`]s.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<IncomingEvent>,
}

impl Incoming {
    /// The next incoming call or registration change; `None` once the endpoint stopped.
    pub async fn next(&mut self) -> Option<IncomingEvent> {
        self.rx.recv().await
    }

    /// The next incoming call, skipping registration changes.
    pub async fn next_call(&mut self) -> Option<IncomingCall> {
        loop {
            match self.rx.recv().await? {
                IncomingEvent::Call(call) => return Some(call),
                IncomingEvent::Registration(_) => continue,
            }
        }
    }
}

enum Command {
    Invite {
        key: CallKey,
        spec: Box<InviteSpec>,
        events: mpsc::UnboundedSender<CallEvent>,
        reply: oneshot::Sender<Result<String, Error>>,
    },
    Hangup {
        key: CallKey,
    },
    Progress {
        key: CallKey,
        code: u16,
        media: Option<LocalMedia>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Answer {
        key: CallKey,
        media: LocalMedia,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Reject {
        key: CallKey,
        code: u16,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Request {
        token: u64,
        spec: Box<RequestSpec>,
        reply: oneshot::Sender<Result<RequestResult, Error>>,
    },
    Bindings {
        user: String,
        reply: oneshot::Sender<Vec<Binding>>,
    },
    Shutdown,
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<Stats>,
    listeners: Vec<Listener>,
    next_key: AtomicU64,
    next_token: AtomicU64,
    limiters: Mutex<HashMap<(String, u32), Weak<CpsLimiter>>>,
    resolver: Resolver,
    /// Trunk registrations by what they register, shared by every holder.
    registrations: Mutex<HashMap<String, Weak<RegistrationInner>>>,
    /// Registration tasks still running (the last unregisters on its way out).
    registration_tasks: Arc<AtomicUsize>,
    tls_peers: TlsPeers,
}

/// The name and CAs each TLS peer address is checked with, as the endpoint's users named them
/// (a trunk's URI host and CA file); the driver reads it when it opens a connection. An address
/// nobody named (a carrier's Contact elsewhere) is checked by its IP address and the default CAs.
type TlsPeers = Arc<Mutex<HashMap<SocketAddr, TlsPeer>>>;

/// A SIP endpoint: sockets, transactions, calls. Cheap to clone; the driver task runs until
/// every clone, [`Call`] and [`Trunk`] is dropped, or [`shutdown`](Endpoint::shutdown).
#[derive(Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("listeners", &self.shared.listeners)
            .finish_non_exhaustive()
    }
}

/// The address of the interface that routes to the internet (no packet is sent).
fn default_ip() -> IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("192.0.2.1:9")?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn advertised(bound: SocketAddr, advertise: Option<IpAddr>) -> SocketAddr {
    let ip = match advertise {
        Some(ip) => ip,
        None if bound.ip().is_unspecified() => default_ip(),
        None => bound.ip(),
    };
    SocketAddr::new(ip, bound.port())
}

/// Checks extra headers cannot break the message (RFC 3261 token names, no line breaks).
fn check_headers(headers: &[(String, String)]) -> Result<(), Error> {
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
        if !token {
            return Err(Error::InvalidHeader {
                name: name.clone(),
                why: "not a header name".into(),
            });
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(Error::InvalidHeader {
                name: name.clone(),
                why: "the value holds a line break".into(),
            });
        }
    }
    Ok(())
}

/// Checks a phone number is E.164-like: an optional `+` and 1 to 20 digits.
fn check_number(number: &str) -> Result<(), Error> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidNumber(number.to_owned()));
    }
    Ok(())
}

/// Where requests to `uri` go: its host (resolved by the C library if a name) and port (5060,
/// 5061 for TLS), over `transport`, else the URI's (TLS for `sips:`, else its `transport=`
/// parameter), else UDP. No NAPTR/SRV: an [`Endpoint`] resolves with its own [`Resolver`]
/// (RFC 3263), this is for callers without one.
pub async fn resolve(uri: &Uri, transport: Option<Transport>) -> Result<Destination, Error> {
    if uri.is_sips() && transport.is_some_and(|t| t != Transport::Tls) {
        return Err(Error::InvalidUri {
            uri: uri.to_string(),
            why: format!(
                "a sips: URI is reached over TLS only, not {}",
                transport.unwrap_or_default()
            ),
        });
    }
    let transport = transport.or(uri.transport()).unwrap_or(Transport::Udp);
    let port = uri.port().unwrap_or(transport.default_port());
    let host = uri.host();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Destination::new(transport, SocketAddr::new(ip, port)));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|err| Error::Resolve {
            host: host.clone(),
            why: err.to_string(),
        })?
        .collect();
    let addr = addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| Error::Resolve {
            host: host.clone(),
            why: "no address".into(),
        })?;
    Ok(Destination::new(transport, addr))
}

/// A generic outbound INVITE (the lab's phones and carriers use this; trunk calls go through
/// [`Endpoint::dial`]).
#[derive(Debug, Clone)]
pub struct Invite {
    /// Whom to call (Request-URI; also where to send it).
    pub target: Uri,
    /// From: who calls.
    pub from: NameAddr,
    /// To; the target when `None`.
    pub to: Option<NameAddr>,
    /// P-Asserted-Identity.
    pub asserted_identity: Option<NameAddr>,
    /// Credentials for a 401/407 challenge.
    pub credentials: Option<Credentials>,
    /// Our RTP leg.
    pub media: LocalMedia,
    /// CANCEL after this long ringing (counted again from the first 180/183).
    pub ring_timeout: Option<Duration>,
    /// The transport; else the target's `transport=` parameter, else UDP.
    pub transport: Option<Transport>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Invite {
    /// An INVITE to `target` from `from` offering `media`, nothing else set.
    pub fn new(target: Uri, from: NameAddr, media: LocalMedia) -> Self {
        Invite {
            target,
            from,
            to: None,
            asserted_identity: None,
            credentials: None,
            media,
            ring_timeout: None,
            transport: None,
            headers: Vec::new(),
        }
    }
}

/// A carrier trunk as the engine configures it.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// The trunk's URI: `sip:carrier.example.com:5060`, optionally `;transport=tcp`, or
    /// `sips:carrier.example.com` (TLS, port 5061).
    pub uri: Uri,
    /// The transport; else the URI's (TLS for `sips:`, else its parameter), else UDP.
    pub transport: Option<Transport>,
    /// Over TLS: the CAs the carrier's certificate must chain to (a private CA's file); the
    /// endpoint's `tls_client` when `None`. The certificate must name the URI's host.
    pub tls: Option<TlsClient>,
    /// Digest credentials, if the carrier challenges.
    pub credentials: Option<Credentials>,
    /// Calls per second allowed by the carrier (shared by every call on the trunk).
    pub cps: u32,
    /// The host in From and P-Asserted-Identity; the trunk's host by default.
    pub from_domain: Option<String>,
    /// Send OPTIONS this often to watch the trunk ([`Trunk::is_up`]).
    pub keepalive: Option<Duration>,
    /// An outbound proxy (RFC 3261 8.1.2): requests are sent to it with a `Route` to it
    /// (`;lr`, loose routing), their Request-URI staying the carrier's.
    pub outbound_proxy: Option<Uri>,
}

impl TrunkConfig {
    /// A trunk at `uri` capped at `cps` calls per second, no credentials, no keepalive.
    pub fn new(uri: Uri, cps: u32) -> Self {
        TrunkConfig {
            uri,
            transport: None,
            tls: None,
            credentials: None,
            cps,
            from_domain: None,
            keepalive: None,
            outbound_proxy: None,
        }
    }
}

struct TrunkInner {
    config: TrunkConfig,
    /// Where requests go, best first (RFC 3263): the proxy's targets, else the carrier's.
    targets: Vec<Destination>,
    /// The target in use: the next one after a timeout, a transport error or a 503.
    current: AtomicUsize,
    limiter: Arc<CpsLimiter>,
    status: AtomicU8,
    keepalive: Mutex<Option<JoinHandle<()>>>,
}

impl TrunkInner {
    fn target(&self, index: usize) -> Destination {
        self.targets[index % self.targets.len()]
    }

    /// Moves off target `index` after it failed (unless another call already did).
    fn failed(&self, index: usize) {
        if self.targets.len() > 1 {
            let next = (index + 1) % self.targets.len();
            if self
                .current
                .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                tracing::warn!(
                    trunk = %self.config.uri,
                    failed = %self.targets[index].addr,
                    next = %self.targets[next].addr,
                    "trunk target failed: next one in use"
                );
            }
        }
    }
}

/// The `Route` header value that sends a request through `proxy` (loose routing).
fn route_to(proxy: &Uri) -> String {
    let text = proxy.to_string();
    if text.contains(";lr") {
        format!("<{text}>")
    } else {
        format!("<{text};lr>")
    }
}

impl Drop for TrunkInner {
    fn drop(&mut self) {
        if let Ok(mut keepalive) = self.keepalive.lock()
            && let Some(task) = keepalive.take()
        {
            task.abort();
        }
    }
}

/// A configured trunk: resolved address, CPS cap, keepalive status. Cheap to clone.
#[derive(Clone)]
pub struct Trunk {
    inner: Arc<TrunkInner>,
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("uri", &self.inner.config.uri.to_string())
            .field("targets", &self.inner.targets)
            .field("cps", &self.inner.config.cps)
            .finish()
    }
}

impl Trunk {
    /// The trunk's URI.
    pub fn uri(&self) -> &Uri {
        &self.inner.config.uri
    }

    /// Where its INVITEs go now.
    pub fn destination(&self) -> Destination {
        self.inner
            .target(self.inner.current.load(Ordering::Relaxed))
    }

    /// Every place its requests may go, best first (NAPTR/SRV order).
    pub fn targets(&self) -> &[Destination] {
        &self.inner.targets
    }

    /// The CPS cap.
    pub fn cps(&self) -> u32 {
        self.inner.config.cps
    }

    /// Whether the last OPTIONS keepalive got an answer (`None` before the first, or without
    /// keepalive).
    pub fn is_up(&self) -> Option<bool> {
        match self.inner.status.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }
}

/// The caller ID presented on a trunk call, in From and P-Asserted-Identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// The number (E.164).
    pub number: String,
    /// The display name.
    pub name: Option<String>,
}

/// One call to place on a trunk.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// The callee's number (E.164, `+15551234567`).
    pub number: String,
    /// Our caller ID.
    pub caller_id: CallerId,
    /// Our RTP leg (address and codecs) for the SDP offer.
    pub media: LocalMedia,
    /// How long to ring before CANCEL (outcome no answer); counted again from the first 180/183.
    pub ring_timeout: Duration,
    /// Extra headers (an `X-Campaign`, say).
    pub headers: Vec<(String, String)>,
}

/// A call in progress, outbound or answered. Dropping it hangs up.
#[derive(Debug)]
pub struct Call {
    key: CallKey,
    call_id: String,
    events: mpsc::UnboundedReceiver<CallEvent>,
    commands: mpsc::UnboundedSender<Command>,
    done: bool,
    /// Set by the first `hangup`: later ones are no-ops, so a caller that hangs up in a loop
    /// cannot flood the endpoint's command queue.
    hung_up: AtomicBool,
    /// For a trunk call: how to send the INVITE again to the next target.
    failover: Option<Box<Failover>>,
}

/// A trunk call's way to the trunk's next target (RFC 3263 4.3): until something answers,
/// a timeout, a transport error or a 503 sends the same INVITE to the next target.
#[derive(Debug)]
struct Failover {
    endpoint: Endpoint,
    trunk: Trunk,
    spec: InviteSpec,
    /// The target index in use.
    index: usize,
    /// Targets tried so far.
    tried: usize,
    /// Something answered: no failover any more.
    answered: bool,
}

impl Failover {
    /// Whether `end` is the kind of failure RFC 3263 moves on from.
    fn moves_on(end: &CallEnd) -> bool {
        use crate::core::EndCause;
        // A refused certificate (EndCause::TlsRefused) names the trunk's host, which every
        // target shares: trying the next address would only hide the reason behind a later
        // "connection refused".
        matches!(end.cause, EndCause::NoResponse | EndCause::TransportError)
            || (end.cause == EndCause::Rejected && end.code == Some(503))
    }
}

impl Call {
    /// The Call-ID (for logs and correlation with the carrier).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The next event; `None` after [`CallEvent::Ended`] (or if the endpoint stopped).
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        loop {
            if self.done {
                return None;
            }
            let event = self.events.recv().await;
            if let Some(CallEvent::Ended(end)) = &event
                && self.fail_over(end).await
            {
                continue;
            }
            if let Some(failover) = &mut self.failover
                && matches!(&event, Some(e) if !matches!(e, CallEvent::Ended(_)))
            {
                failover.answered = true;
            }
            if matches!(event, Some(CallEvent::Ended(_)) | None) {
                self.done = true;
            }
            return event;
        }
    }

    /// After `end`, sends the INVITE to the trunk's next target if RFC 3263 says so; true if
    /// the call goes on there.
    async fn fail_over(&mut self, end: &CallEnd) -> bool {
        if self.hung_up.load(Ordering::Relaxed) || !Failover::moves_on(end) {
            return false;
        }
        let Some(failover) = &mut self.failover else {
            return false;
        };
        if failover.answered {
            return false;
        }
        failover.trunk.inner.failed(failover.index);
        failover.tried += 1;
        if failover.tried >= failover.trunk.inner.targets.len() {
            return false;
        }
        failover.index = (failover.index + 1) % failover.trunk.inner.targets.len();
        let mut spec = failover.spec.clone();
        spec.dest = failover.trunk.inner.target(failover.index);
        tracing::info!(
            call_id = %self.call_id,
            to = %spec.dest.addr,
            code = ?end.code,
            "trunk target did not answer: INVITE sent to the next one"
        );
        let Ok(mut next) = failover.endpoint.start(spec).await else {
            return false;
        };
        // The new INVITE's handle gives its channel to this one, which the caller holds.
        next.done = true;
        self.key = next.key;
        self.call_id = std::mem::take(&mut next.call_id);
        std::mem::swap(&mut self.events, &mut next.events);
        true
    }

    /// Hangs up: CANCEL before an answer, BYE after. Events keep coming until `Ended`.
    pub fn hangup(&self) {
        if !self.hung_up.swap(true, Ordering::Relaxed) {
            let _ = self.commands.send(Command::Hangup { key: self.key });
        }
    }

    /// Waits for the end of the call, skipping other events.
    pub async fn wait_end(&mut self) -> Option<CallEnd> {
        while let Some(event) = self.next_event().await {
            if let CallEvent::Ended(end) = event {
                return Some(end);
            }
        }
        None
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(make(reply)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            self.hangup();
        }
    }
}

/// An incoming call not answered yet. Dropping it rejects it with 480.
#[derive(Debug)]
pub struct IncomingCall {
    info: IncomingInfo,
    call: Call,
}

impl IncomingCall {
    /// Who calls, what they offer.
    pub fn info(&self) -> &IncomingInfo {
        &self.info
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.info.call_id
    }

    /// Sends 180 Ringing.
    pub async fn ringing(&self) -> Result<(), Error> {
        self.progress(180, None).await
    }

    /// Sends a provisional response; with `early_media`, a 183-style answer SDP in it.
    pub async fn progress(&self, code: u16, early_media: Option<&LocalMedia>) -> Result<(), Error> {
        let key = self.call.key;
        let media = early_media.cloned();
        self.call
            .ask(|reply| Command::Progress {
                key,
                code,
                media,
                reply,
            })
            .await
    }

    /// Answers with 200 and our SDP; the returned call reports [`CallEvent::Confirmed`] on ACK.
    pub async fn answer(self, media: LocalMedia) -> Result<Call, Error> {
        let key = self.call.key;
        self.call
            .ask(|reply| Command::Answer { key, media, reply })
            .await?;
        Ok(self.call)
    }

    /// Refuses the call with a final status (486, 503, 404...).
    pub async fn reject(mut self, code: u16) -> Result<(), Error> {
        let key = self.call.key;
        let result = self
            .call
            .ask(|reply| Command::Reject { key, code, reply })
            .await;
        self.call.done = true;
        result
    }

    /// The next event before the answer (the caller cancelling: `Ended` with `RemoteCancel`).
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.call.next_event().await
    }
}

/// What a phone needs to register.
#[derive(Clone, PartialEq, Eq)]
pub struct RegisterSpec {
    /// The registrar (`sip:dialer.example.com:5060`).
    pub registrar: Uri,
    /// Username (also the user part of the address of record).
    pub user: String,
    /// Password.
    pub password: String,
    /// Seconds asked for.
    pub expires: u32,
    /// The transport; else the URI's parameter, else UDP.
    pub transport: Option<Transport>,
    /// The digest username when it differs from the address of record's user (trunks).
    pub auth_user: Option<String>,
    /// An outbound proxy the REGISTER goes through (with a `Route` to it).
    pub outbound_proxy: Option<Uri>,
}

impl std::fmt::Debug for RegisterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterSpec")
            .field("registrar", &self.registrar.to_string())
            .field("user", &self.user)
            .field("expires", &self.expires)
            .field("transport", &self.transport)
            .field("auth_user", &self.auth_user)
            .field(
                "outbound_proxy",
                &self.outbound_proxy.as_ref().map(Uri::to_string),
            )
            .finish_non_exhaustive()
    }
}

impl RegisterSpec {
    /// The key under which holders share one registration (the password included, so a
    /// campaign with another password gets its own).
    fn share_key(&self) -> String {
        format!("{self:?} {}", self.password)
    }
    /// Registers `user` at `registrar` for `expires` seconds with `password`, nothing else set.
    pub fn new(registrar: Uri, user: String, password: String, expires: u32) -> Self {
        RegisterSpec {
            registrar,
            user,
            password,
            expires,
            transport: None,
            auth_user: None,
            outbound_proxy: None,
        }
    }
}

/// A registration we hold with a registrar (the lab's phones, trunks).
#[derive(Debug)]
pub struct Registration {
    endpoint: Endpoint,
    spec: RegisterSpec,
    /// Where it goes, best first; a timeout, transport error or 503 moves to the next.
    targets: Vec<Destination>,
    current: usize,
    call_id: String,
    cseq: u32,
    granted: u32,
    /// The interval asked for: the spec's, or longer if the registrar said it was too brief.
    asked: u32,
}

impl Registration {
    /// Seconds the registrar granted.
    pub fn expires(&self) -> u32 {
        self.granted
    }

    /// One REGISTER asking for `expires` (challenges answered, failing over between targets).
    async fn exchange(&mut self, expires: u32) -> Result<RequestResult, Error> {
        let aor = NameAddr::new(self.spec.registrar.with_user(&self.spec.user));
        let auth_user = self
            .spec
            .auth_user
            .clone()
            .unwrap_or_else(|| self.spec.user.clone());
        let headers: Vec<(String, String)> = self
            .spec
            .outbound_proxy
            .as_ref()
            .map(|proxy| vec![("Route".to_owned(), route_to(proxy))])
            .unwrap_or_default();
        // RFC 3263 4.3: a target that does not answer (or answers 503) gives way to the next.
        let mut tried = 0;
        let result = loop {
            self.cseq += 1;
            let spec = RequestSpec {
                method: Method::Register,
                uri: self.spec.registrar.clone(),
                dest: self.targets[self.current % self.targets.len()],
                from: aor.clone(),
                to: aor.clone(),
                call_id: Some(self.call_id.clone()),
                cseq: self.cseq,
                credentials: Some(Credentials::new(
                    auth_user.clone(),
                    self.spec.password.clone(),
                )),
                expires: Some(expires),
                contact: true,
                headers: headers.clone(),
            };
            let result = self.endpoint.request(spec).await?;
            self.cseq = result.cseq;
            tried += 1;
            if matches!(result.code, 408 | 503) && tried < self.targets.len() {
                self.current = (self.current + 1) % self.targets.len();
                continue;
            }
            break result;
        };
        Ok(result)
    }

    /// The outcome of a REGISTER that asked for `expires`: the interval granted, or why not.
    fn conclude(&mut self, result: RequestResult, expires: u32) -> Result<u32, Error> {
        if !(200..300).contains(&result.code) {
            return Err(Error::Rejected {
                method: Method::Register,
                code: result.code,
                reason: result.reason,
            });
        }
        self.granted = result.expires.unwrap_or(expires);
        Ok(self.granted)
    }

    /// Registers again (before [`expires`](Self::expires) runs out).
    pub async fn refresh(&mut self) -> Result<u32, Error> {
        let mut result = self.exchange(self.asked).await?;
        if result.code == 423
            && let Some(longer) = interval_too_brief(self.asked, result.expires)
        {
            tracing::info!(registrar = %self.spec.registrar, asked = self.asked, min_expires = longer, "interval too brief: asking for the registrar's minimum");
            self.asked = longer;
            result = self.exchange(longer).await?;
        }
        let asked = self.asked;
        self.conclude(result, asked)
    }

    /// Removes the registration (Expires: 0).
    pub async fn unregister(mut self) -> Result<(), Error> {
        let result = self.exchange(0).await?;
        self.conclude(result, 0).map(|_| ())
    }
}

/// How a failed trunk registration is tried again: after `base`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait after a failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 5 s doubling up to 5 minutes.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

struct RegistrationInner {
    spec: RegisterSpec,
    status: Arc<Mutex<RegistrationStatus>>,
    /// Dropped with the last handle: the task then unregisters and ends.
    _stop: oneshot::Sender<()>,
}

/// A trunk registration held in the background ([`Endpoint::register_trunk`]). Cheap to
/// clone; the last clone dropped unregisters.
#[derive(Clone)]
pub struct TrunkRegistration {
    inner: Arc<RegistrationInner>,
}

impl std::fmt::Debug for TrunkRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkRegistration")
            .field("registrar", &self.inner.spec.registrar.to_string())
            .field("user", &self.inner.spec.user)
            .finish_non_exhaustive()
    }
}

impl TrunkRegistration {
    /// Where it stands now.
    pub fn status(&self) -> RegistrationStatus {
        self.inner
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the registrar holds our binding now.
    pub fn is_registered(&self) -> bool {
        self.status().state == RegistrationState::Registered
    }
}

/// The task behind a [`TrunkRegistration`]: the schedule says when, this sends.
async fn hold_registration(
    endpoint: Endpoint,
    spec: RegisterSpec,
    retry: RetryPolicy,
    status: Arc<Mutex<RegistrationStatus>>,
    mut stop: oneshot::Receiver<()>,
    tasks: Arc<AtomicUsize>,
) {
    let registrar = spec.registrar.to_string();
    let mut schedule = RefreshSchedule::new(Instant::now(), retry.base, retry.max);
    let mut registration: Option<Registration> = None;
    let set = |update: &dyn Fn(&mut RegistrationStatus)| {
        update(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep_until(schedule.next().into()) => {}
        }
        let attempt = match registration.as_mut() {
            Some(held) => held.refresh().await,
            None => match endpoint.registration(spec.clone()).await {
                Ok(mut fresh) => {
                    let result = fresh.refresh().await;
                    registration = Some(fresh);
                    result
                }
                Err(err) => Err(err),
            },
        };
        let now = Instant::now();
        match attempt {
            Ok(granted) => {
                let refresh_in = schedule.registered(now, Duration::from_secs(granted.into()));
                tracing::info!(%registrar, user = %spec.user, granted, refresh_in = ?refresh_in, "trunk registered");
                set(&|s| s.registered(std::time::SystemTime::now(), granted));
            }
            Err(Error::Closed) => break,
            Err(err) => {
                let (code, reason) = match &err {
                    Error::Rejected { code, reason, .. } => (Some(*code), reason.clone()),
                    other => (None, other.to_string()),
                };
                let wait = schedule.failed(now);
                tracing::warn!(%registrar, user = %spec.user, ?code, %reason, retry_in = ?wait, "trunk registration failed");
                set(&|s| s.failed(code, &reason));
                // A fresh registration (new Call-ID) after a refusal: the old one's state
                // (nonce, CSeq) may be what the registrar refused.
                if code.is_some_and(|c| c != 408 && c != 503) {
                    registration = None;
                }
            }
        }
    }
    if let Some(held) = registration
        && schedule.is_registered()
    {
        match tokio::time::timeout(Duration::from_secs(5), held.unregister()).await {
            Ok(Ok(())) => tracing::info!(%registrar, user = %spec.user, "trunk unregistered"),
            Ok(Err(err)) => tracing::warn!(%registrar, %err, "trunk unregistration failed"),
            Err(_) => tracing::warn!(%registrar, "trunk unregistration timed out"),
        }
    }
    set(&|s| s.state = RegistrationState::Unregistered);
    tasks.fetch_sub(1, Ordering::Relaxed);
}

impl Endpoint {
    /// Binds the listeners and starts the driver. Returns the endpoint and the stream of
    /// incoming calls and registration changes.
    pub async fn bind(config: EndpointConfig) -> Result<(Endpoint, Incoming), Error> {
        let (net_tx, net_rx) = mpsc::channel(4096);
        let mut listeners = Vec::new();
        let mut udp = HashMap::new();
        let mut tasks = Vec::new();
        for addr in &config.udp {
            let socket = UdpSocket::bind(addr).await.map_err(|source| Error::Bind {
                transport: Transport::Udp,
                addr: *addr,
                source,
            })?;
            let bound = socket.local_addr().map_err(|source| Error::Bind {
                transport: Transport::Udp,
                addr: *addr,
                source,
            })?;
            let socket = Arc::new(socket);
            listeners.push(Listener {
                transport: Transport::Udp,
                bound,
                advertised: advertised(bound, config.advertise),
            });
            tasks.push(tokio::spawn(transport::udp_reader(
                socket.clone(),
                bound,
                net_tx.clone(),
            )));
            udp.insert(bound, socket);
        }
        let mut tcp_local = None;
        for addr in &config.tcp {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    transport: Transport::Tcp,
                    addr: *addr,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| Error::Bind {
                transport: Transport::Tcp,
                addr: *addr,
                source,
            })?;
            listeners.push(Listener {
                transport: Transport::Tcp,
                bound,
                advertised: advertised(bound, config.advertise),
            });
            tcp_local.get_or_insert(bound);
            tasks.push(tokio::spawn(transport::tcp_acceptor(
                listener,
                bound,
                None,
                net_tx.clone(),
            )));
        }
        let mut tls_local = None;
        if !config.tls.is_empty() {
            let Some(server) = &config.tls_server else {
                return Err(Error::TlsSettings {
                    what: "the TLS listener".into(),
                    why: "no certificate and key given".into(),
                });
            };
            for addr in &config.tls {
                let bind_error = |source| Error::Bind {
                    transport: Transport::Tls,
                    addr: *addr,
                    source,
                };
                let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
                let bound = listener.local_addr().map_err(bind_error)?;
                listeners.push(Listener {
                    transport: Transport::Tls,
                    bound,
                    advertised: advertised(bound, config.advertise),
                });
                tls_local.get_or_insert(bound);
                tasks.push(tokio::spawn(transport::tcp_acceptor(
                    listener,
                    bound,
                    Some(server.acceptor()),
                    net_tx.clone(),
                )));
            }
        }
        let mut core_listeners = listeners.clone();
        if tls_local.is_none()
            && let Some(first) = listeners
                .iter()
                .find(|l| l.transport == Transport::Tcp)
                .or(listeners.first())
        {
            // Outbound TLS without a TLS listener (a dialer calling a TLS carrier needs no
            // certificate of its own): Via and Contact name our address and another listener's
            // port, and the carrier's requests come back on the connection we opened, as they
            // do for phones behind NAT (RFC 5923's reuse). The bound address is one no socket
            // has, so the connection's local address finds this listener and no other.
            let client_only = Listener {
                transport: Transport::Tls,
                bound: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                advertised: first.advertised,
            };
            tls_local = Some(client_only.bound);
            core_listeners.push(client_only);
        }
        let mut core_config = CoreConfig::new(core_listeners);
        core_config.user_agent = config.user_agent.clone();
        core_config.timers = config.timers;
        core_config.session_expires = config.session_expires;
        core_config.min_se = config.min_se;
        core_config.auth = config.auth.clone();
        core_config.registrar = config.registrar;
        core_config.limits = config.limits;
        let core = Core::new(core_config, Instant::now());
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_queue.max(1));
        let tls_peers = TlsPeers::default();
        let shared = Arc::new(Shared {
            commands: commands.clone(),
            stats: core.stats(),
            listeners,
            next_key: AtomicU64::new(1),
            next_token: AtomicU64::new(1),
            limiters: Mutex::new(HashMap::new()),
            resolver: match config.dns_server {
                Some(server) => Resolver::with_server(server)?,
                None => Resolver::system(),
            },
            registrations: Mutex::new(HashMap::new()),
            registration_tasks: Arc::new(AtomicUsize::new(0)),
            tls_peers: tls_peers.clone(),
        });
        let driver = Driver {
            core,
            commands: commands_rx,
            weak_commands: commands.downgrade(),
            commands_open: true,
            net_rx,
            net_tx,
            udp,
            tcp_local,
            tls_local,
            tls_peers,
            tls_client: config.tls_client.clone().map(Ok),
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            connecting: HashMap::new(),
            next_conn: 1,
            calls: HashMap::new(),
            requests: HashMap::new(),
            incoming: incoming_tx,
            tasks,
            limits: config.limits,
            stopping: None,
        };
        drop(commands);
        tokio::spawn(driver.run());
        Ok((Endpoint { shared }, Incoming { rx: incoming_rx }))
    }

    /// The advertised address of the first listener of `transport`.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.shared
            .listeners
            .iter()
            .find(|listener| listener.transport == transport)
            .map(|listener| listener.advertised)
    }

    /// Every listener.
    pub fn listeners(&self) -> &[Listener] {
        &self.shared.listeners
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Hangs up every call, lets their transactions finish (5 s at most), and stops.
    pub fn shutdown(&self) {
        let _ = self.shared.commands.send(Command::Shutdown);
    }

    /// Sets up a trunk: resolves its targets now (the outbound proxy's if it has one; NAPTR,
    /// SRV, A/AAAA), shares one CPS limiter among every `Trunk` with the same URI and cap, and
    /// starts the OPTIONS keepalive if asked.
    pub async fn trunk(&self, config: TrunkConfig) -> Result<Trunk, Error> {
        let cps = NonZeroU32::new(config.cps).ok_or(Error::ZeroCps)?;
        let next_hop = config.outbound_proxy.as_ref().unwrap_or(&config.uri);
        let targets = self
            .next_hops(next_hop, config.transport, config.tls.as_ref())
            .await?;
        let key = (config.uri.to_string(), config.cps);
        let limiter = {
            let mut limiters = self.shared.limiters.lock().map_err(|_| Error::Closed)?;
            limiters.retain(|_, limiter| limiter.strong_count() > 0);
            match limiters.get(&key).and_then(Weak::upgrade) {
                Some(limiter) => limiter,
                None => {
                    let limiter = Arc::new(CpsLimiter::new(cps));
                    limiters.insert(key, Arc::downgrade(&limiter));
                    limiter
                }
            }
        };
        let inner = Arc::new(TrunkInner {
            config,
            targets,
            current: AtomicUsize::new(0),
            limiter,
            status: AtomicU8::new(0),
            keepalive: Mutex::new(None),
        });
        if let Some(every) = inner.config.keepalive {
            let weak = Arc::downgrade(&inner);
            let endpoint = self.clone();
            let uri = inner.config.uri.clone();
            let route = inner.config.outbound_proxy.as_ref().map(route_to);
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let Some((index, dest)) = weak.upgrade().map(|inner| {
                        let index = inner.current.load(Ordering::Relaxed);
                        (index, inner.target(index))
                    }) else {
                        return;
                    };
                    let code = endpoint
                        .options_to(&uri, dest, route.clone())
                        .await
                        .unwrap_or(503);
                    let Some(inner) = weak.upgrade() else { return };
                    if matches!(code, 408 | 503) {
                        inner.failed(index);
                    }
                    // Any answer, even 4xx, shows the trunk is there; 408/503 are ours.
                    let up = !matches!(code, 408 | 503);
                    if inner.status.swap(if up { 1 } else { 2 }, Ordering::Relaxed)
                        != if up { 1 } else { 2 }
                    {
                        tracing::info!(trunk = %uri, up, code, "trunk status changed");
                    }
                }
            });
            if let Ok(mut keepalive) = inner.keepalive.lock() {
                *keepalive = Some(task);
            }
        }
        Ok(Trunk { inner })
    }

    /// Places a call on a trunk: waits for a slot under the trunk's CPS cap, then sends the
    /// INVITE. The returned call reports progress, answer and end.
    pub async fn dial(&self, trunk: &Trunk, call: OutboundCall) -> Result<Call, Error> {
        trunk.inner.limiter.wait().await;
        self.dial_now(trunk, call).await
    }

    /// Places a call on a trunk at once, for a caller that keeps the trunk's cap itself (the
    /// engine takes its slots from a budget every node shares): one limiter, not two in series.
    pub async fn dial_now(&self, trunk: &Trunk, call: OutboundCall) -> Result<Call, Error> {
        check_number(&call.number)?;
        check_number(&call.caller_id.number)?;
        check_headers(&call.headers)?;
        let config = &trunk.inner.config;
        let mut headers = call.headers;
        if let Some(proxy) = &config.outbound_proxy {
            headers.insert(0, ("Route".to_owned(), route_to(proxy)));
        }
        let index = trunk.inner.current.load(Ordering::Relaxed);
        let target = config.uri.with_user(&call.number);
        let domain = config
            .from_domain
            .clone()
            .unwrap_or_else(|| config.uri.host());
        let caller: Uri = format!("sip:{}@{domain}", call.caller_id.number).parse()?;
        let from = NameAddr {
            display: call.caller_id.name.clone(),
            uri: caller,
        };
        let spec = InviteSpec {
            to: NameAddr::new(target.clone()),
            request_uri: target,
            dest: trunk.inner.target(index),
            asserted_identity: Some(from.clone()),
            from,
            credentials: config.credentials.clone(),
            media: call.media,
            ring_timeout: Some(call.ring_timeout),
            headers,
        };
        let mut placed = self.start(spec.clone()).await?;
        placed.failover = Some(Box::new(Failover {
            endpoint: self.clone(),
            trunk: trunk.clone(),
            spec,
            index,
            tried: 0,
            answered: false,
        }));
        Ok(placed)
    }

    /// Sends an INVITE anywhere (the lab's phones calling the dialer, its carrier calling out).
    pub async fn invite(&self, invite: Invite) -> Result<Call, Error> {
        check_headers(&invite.headers)?;
        let dest = self.resolve(&invite.target, invite.transport).await?;
        self.note_tls_peer(&invite.target, dest, None)?;
        let spec = InviteSpec {
            to: invite
                .to
                .unwrap_or_else(|| NameAddr::new(invite.target.clone())),
            request_uri: invite.target,
            dest,
            from: invite.from,
            asserted_identity: invite.asserted_identity,
            credentials: invite.credentials,
            media: invite.media,
            ring_timeout: invite.ring_timeout,
            headers: invite.headers,
        };
        self.start(spec).await
    }

    async fn start(&self, spec: InviteSpec) -> Result<Call, Error> {
        // Odd keys are ours; the core numbers incoming calls with even ones.
        let key = CallKey(self.shared.next_key.fetch_add(2, Ordering::Relaxed));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Invite {
                key,
                spec: Box::new(spec),
                events: events_tx,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        let call_id = rx.await.map_err(|_| Error::Closed)??;
        Ok(Call {
            key,
            call_id,
            events,
            commands: self.shared.commands.clone(),
            done: false,
            hung_up: AtomicBool::new(false),
            failover: None,
        })
    }

    async fn request(&self, spec: RequestSpec) -> Result<RequestResult, Error> {
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Request {
                token,
                spec: Box::new(spec),
                reply,
            })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The best target of `uri` by this endpoint's resolver (RFC 3263).
    pub async fn resolve(
        &self,
        uri: &Uri,
        transport: Option<Transport>,
    ) -> Result<Destination, Error> {
        self.shared
            .resolver
            .targets(uri, transport)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Resolve {
                host: uri.host(),
                why: "no target".into(),
            })
    }

    async fn options_to(
        &self,
        uri: &Uri,
        dest: Destination,
        route: Option<String>,
    ) -> Result<u16, Error> {
        // Over TLS without a TLS listener, From names another listener's address.
        let listener = self
            .local_addr(dest.transport)
            .or_else(|| self.shared.listeners.first().map(|l| l.advertised))
            .ok_or(Error::NoListener(dest.transport))?;
        let from = NameAddr::new(Uri::from_addr(Some("dialer"), listener));
        let spec = RequestSpec {
            method: Method::Options,
            uri: uri.clone(),
            dest,
            from,
            to: NameAddr::new(uri.clone()),
            call_id: None,
            cseq: 1,
            credentials: None,
            expires: None,
            contact: false,
            headers: route
                .map(|r| vec![("Route".to_owned(), r)])
                .unwrap_or_default(),
        };
        Ok(self.request(spec).await?.code)
    }

    /// Sends OPTIONS to `target` and returns the status (408 if nothing answered).
    pub async fn options(&self, target: &Uri) -> Result<u16, Error> {
        let dest = self.resolve(target, None).await?;
        self.note_tls_peer(target, dest, None)?;
        self.options_to(target, dest, None).await
    }

    /// Registers with a registrar (answering its digest challenge).
    pub async fn register(&self, spec: RegisterSpec) -> Result<Registration, Error> {
        let mut registration = self.registration(spec).await?;
        registration.refresh().await?;
        Ok(registration)
    }

    /// Every target of `next_hop` in RFC 3263 order (at least one), each noted with the name
    /// and CAs its TLS certificate is checked against.
    async fn next_hops(
        &self,
        next_hop: &Uri,
        transport: Option<Transport>,
        tls: Option<&TlsClient>,
    ) -> Result<Vec<Destination>, Error> {
        let targets = self.shared.resolver.targets(next_hop, transport).await?;
        if targets.is_empty() {
            return Err(Error::Resolve {
                host: next_hop.host(),
                why: "no target".into(),
            });
        }
        for target in &targets {
            self.note_tls_peer(next_hop, *target, tls)?;
        }
        Ok(targets)
    }

    /// A registration not sent yet: the registrar (or the outbound proxy) resolved, a Call-ID
    /// chosen for all its refreshes.
    pub async fn registration(&self, spec: RegisterSpec) -> Result<Registration, Error> {
        let next_hop = spec.outbound_proxy.as_ref().unwrap_or(&spec.registrar);
        let targets = self.next_hops(next_hop, spec.transport, None).await?;
        let call_id = format!("{:024x}@dialer", rand::random::<u128>() >> 32);
        Ok(Registration {
            endpoint: self.clone(),
            targets,
            current: 0,
            call_id,
            cseq: 0,
            granted: 0,
            asked: spec.expires,
            spec,
        })
    }

    /// Holds a trunk's registration: registers now and in the background, refreshes before
    /// it expires, retries with backoff after a failure, and unregisters once every holder
    /// of the same registration has dropped its handle. Holders of the same `spec` share one.
    pub fn register_trunk(&self, spec: RegisterSpec, retry: RetryPolicy) -> TrunkRegistration {
        let key = spec.share_key();
        let mut map = self
            .shared
            .registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.retain(|_, inner| inner.strong_count() > 0);
        if let Some(inner) = map.get(&key).and_then(Weak::upgrade) {
            return TrunkRegistration { inner };
        }
        let status = Arc::new(Mutex::new(RegistrationStatus::default()));
        let (stop, stopped) = oneshot::channel();
        let tasks = self.shared.registration_tasks.clone();
        tasks.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(hold_registration(
            self.clone(),
            spec.clone(),
            retry,
            status.clone(),
            stopped,
            tasks,
        ));
        let inner = Arc::new(RegistrationInner {
            spec,
            status,
            _stop: stop,
        });
        map.insert(key, Arc::downgrade(&inner));
        TrunkRegistration { inner }
    }

    /// Trunk registrations still held or unregistering.
    pub fn registrations_active(&self) -> usize {
        self.shared.registration_tasks.load(Ordering::Relaxed)
    }

    /// Remembers how a TLS destination's certificate is checked: it must name `uri`'s host and
    /// chain to `client`'s CAs (the endpoint's default when `None`).
    fn note_tls_peer(
        &self,
        uri: &Uri,
        dest: Destination,
        client: Option<&TlsClient>,
    ) -> Result<(), Error> {
        if dest.transport != Transport::Tls {
            return Ok(());
        }
        let peer = TlsPeer {
            name: tls::server_name(&uri.host())?,
            client: client.cloned(),
        };
        self.shared
            .tls_peers
            .lock()
            .map_err(|_| Error::Closed)?
            .insert(dest.addr, peer);
        Ok(())
    }

    /// The live registrations of an agent (from our registrar).
    pub async fn bindings(&self, user: &str) -> Result<Vec<Binding>, Error> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Bindings {
                user: user.to_owned(),
                reply,
            })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }
}

struct Conn {
    transport: Transport,
    remote: SocketAddr,
    local: SocketAddr,
    writer: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

/// A message waiting for its connection to open, and the token that reports its fate.
type Queued = (Bytes, Option<SendToken>);

/// Most TCP connections kept at once (more are refused) so a flood cannot exhaust descriptors.
const MAX_CONNECTIONS: usize = 4096;

struct Driver {
    core: Core,
    commands: mpsc::UnboundedReceiver<Command>,
    weak_commands: mpsc::WeakUnboundedSender<Command>,
    commands_open: bool,
    net_rx: mpsc::Receiver<NetEvent>,
    net_tx: mpsc::Sender<NetEvent>,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    tcp_local: Option<SocketAddr>,
    /// The TLS listener's bound address (or the client-only one's), for outbound connections.
    tls_local: Option<SocketAddr>,
    tls_peers: TlsPeers,
    /// The default CAs: the configured ones, else the system's once first needed (or why
    /// they could not be loaded).
    tls_client: Option<Result<TlsClient, String>>,
    conns: HashMap<u64, Conn>,
    by_remote: HashMap<(Transport, SocketAddr), u64>,
    connecting: HashMap<(Transport, SocketAddr), Vec<Queued>>,
    next_conn: u64,
    calls: HashMap<CallKey, mpsc::UnboundedSender<CallEvent>>,
    requests: HashMap<u64, oneshot::Sender<Result<RequestResult, Error>>>,
    incoming: mpsc::Sender<IncomingEvent>,
    tasks: Vec<JoinHandle<()>>,
    limits: Limits,
    stopping: Option<Instant>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.flush();
            if let Some(until) = self.stopping
                && (self.core.call_count() == 0 || Instant::now() >= until)
            {
                break;
            }
            let timeout = self.core.poll_timeout();
            let stop_at = self.stopping;
            tokio::select! {
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(command) => self.command(command),
                    None => {
                        self.commands_open = false;
                        self.stop();
                    }
                },
                Some(event) = self.net_rx.recv() => {
                    self.net(event);
                    // Take what else is waiting before flushing: fewer wake-ups under load.
                    for _ in 0..64 {
                        match self.net_rx.try_recv() {
                            Ok(event) => self.net(event),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep_until(timeout) => self.core.handle_timeout(Instant::now()),
                _ = sleep_until(stop_at) => {}
            }
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for (_, conn) in self.conns.drain() {
            conn.task.abort();
        }
    }

    fn stop(&mut self) {
        if self.stopping.is_none() {
            self.core.hangup_all(Instant::now());
            self.stopping = Some(Instant::now() + Duration::from_secs(5));
        }
    }

    fn flush(&mut self) {
        loop {
            let mut idle = true;
            while let Some(transmit) = self.core.poll_transmit() {
                idle = false;
                self.transmit(transmit);
            }
            while let Some(event) = self.core.poll_event() {
                idle = false;
                self.event(event);
            }
            if idle {
                return;
            }
        }
    }

    fn transmit(&mut self, transmit: crate::core::Transmit) {
        let dest = transmit.dest;
        match dest.transport {
            Transport::Udp => {
                let socket = self
                    .udp
                    .get(&transmit.local)
                    .or_else(|| self.udp.values().next())
                    .cloned();
                let Some(socket) = socket else {
                    self.send_failed(transmit.token);
                    return;
                };
                match socket.try_send_to(&transmit.payload, dest.addr) {
                    Ok(_) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                        let payload = transmit.payload;
                        tokio::spawn(async move {
                            let _ = socket.send_to(&payload, dest.addr).await;
                        });
                    }
                    Err(err) => {
                        tracing::debug!(to = %dest.addr, error = %err, "UDP send failed");
                        self.send_failed(transmit.token);
                    }
                }
            }
            Transport::Tcp | Transport::Tls => {
                let conn = dest
                    .conn
                    .map(|ConnId(id)| id)
                    .filter(|id| {
                        self.conns
                            .get(id)
                            .is_some_and(|conn| conn.transport == dest.transport)
                    })
                    .or_else(|| self.by_remote.get(&(dest.transport, dest.addr)).copied());
                match conn.and_then(|id| self.conns.get(&id)) {
                    Some(conn) => {
                        if conn.writer.send(transmit.payload).is_err() {
                            self.send_failed(transmit.token);
                        }
                    }
                    None => {
                        let key = (dest.transport, dest.addr);
                        let queue = self.connecting.entry(key).or_default();
                        let first = queue.is_empty();
                        queue.push((transmit.payload, transmit.token));
                        if first {
                            self.connect(dest);
                        }
                    }
                }
            }
        }
    }

    /// Opens a connection to `dest`; over TLS, checked as its peer entry says (else by its IP
    /// address against the default CAs).
    fn connect(&mut self, dest: Destination) {
        let events = self.net_tx.clone();
        if dest.transport != Transport::Tls {
            tokio::spawn(transport::connect(dest.addr, None, events));
            return;
        }
        let peer = self
            .tls_peers
            .lock()
            .ok()
            .and_then(|peers| peers.get(&dest.addr).cloned());
        let (name, client) = match peer {
            Some(peer) => (peer.name, peer.client),
            None => (dest.addr.ip().into(), None),
        };
        let client = match client {
            Some(client) => Ok(client),
            None => self
                .tls_client
                .get_or_insert_with(|| TlsClient::system().map_err(|err| err.to_string()))
                .clone(),
        };
        match client {
            Ok(client) => {
                tokio::spawn(transport::connect(
                    dest.addr,
                    Some((client.connector(), name)),
                    events,
                ));
            }
            Err(why) => {
                tracing::warn!(remote = %dest.addr, error = %why, "TLS connection impossible");
                self.net(NetEvent::ConnectFailed {
                    remote: dest.addr,
                    transport: Transport::Tls,
                    why,
                    kind: SendFailure::TlsRefused,
                });
            }
        }
    }

    fn send_failed(&mut self, token: Option<SendToken>) {
        match token {
            Some(token) => self.core.send_failed(Instant::now(), token),
            None => Stats::bump(&self.core.stats().transport_errors),
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Call { call, event } => {
                let ended = matches!(event, CallEvent::Ended(_));
                if let Some(sender) = self.calls.get(&call) {
                    let _ = sender.send(event);
                }
                if ended {
                    self.calls.remove(&call);
                }
            }
            Event::Incoming { call, info } => {
                let Some(commands) = self.weak_commands.upgrade() else {
                    self.core.hangup(Instant::now(), call);
                    return;
                };
                let (events_tx, events) = mpsc::unbounded_channel();
                self.calls.insert(call, events_tx);
                let handle = IncomingCall {
                    call: Call {
                        key: call,
                        call_id: info.call_id.clone(),
                        events,
                        commands,
                        done: false,
                        hung_up: AtomicBool::new(false),
                        failover: None,
                    },
                    info,
                };
                if let Err(refused) = self.incoming.try_send(IncomingEvent::Call(handle)) {
                    tracing::warn!(
                        "incoming call refused: nobody takes incoming calls fast enough"
                    );
                    let _ = self.core.reject(Instant::now(), call, 503);
                    if let IncomingEvent::Call(mut handle) = refused.into_inner() {
                        handle.call.done = true;
                    }
                }
            }
            Event::Registration(change) => {
                let _ = self.incoming.try_send(IncomingEvent::Registration(change));
            }
            Event::Response { token, result } => {
                if let Some(reply) = self.requests.remove(&token) {
                    let _ = reply.send(Ok(result));
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Invite {
                key,
                spec,
                events,
                reply,
            } => {
                self.calls.insert(key, events);
                let result = self.core.invite(now, key, *spec);
                if result.is_err() {
                    self.calls.remove(&key);
                }
                let _ = reply.send(result);
            }
            Command::Hangup { key } => self.core.hangup(now, key),
            Command::Progress {
                key,
                code,
                media,
                reply,
            } => {
                let _ = reply.send(self.core.progress(now, key, code, media.as_ref()));
            }
            Command::Answer { key, media, reply } => {
                let _ = reply.send(self.core.answer(now, key, media));
            }
            Command::Reject { key, code, reply } => {
                let _ = reply.send(self.core.reject(now, key, code));
            }
            Command::Request { token, spec, reply } => match self.core.request(now, token, *spec) {
                Ok(()) => {
                    self.requests.insert(token, reply);
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            },
            Command::Bindings { user, reply } => {
                let _ = reply.send(self.core.bindings(&user));
            }
            Command::Shutdown => self.stop(),
        }
    }

    fn register_conn(
        &mut self,
        stream: transport::BoxStream,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<u64> {
        if self.conns.len() >= MAX_CONNECTIONS {
            tracing::warn!(%remote, %transport, "too many connections: refused");
            return None;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let (writer, task) =
            transport::spawn_connection(id, stream, self.limits, self.net_tx.clone());
        self.conns.insert(
            id,
            Conn {
                transport,
                remote,
                local,
                writer,
                task,
            },
        );
        self.by_remote.insert((transport, remote), id);
        Some(id)
    }

    fn net(&mut self, event: NetEvent) {
        let now = Instant::now();
        match event {
            NetEvent::Datagram {
                local,
                remote,
                data,
            } => self.core.handle_input(
                now,
                Input {
                    local,
                    remote,
                    transport: Transport::Udp,
                    conn: None,
                    data: &data,
                },
            ),
            NetEvent::Frame { conn, data } => {
                if let Some(c) = self.conns.get(&conn) {
                    let (local, remote, transport) = (c.local, c.remote, c.transport);
                    self.core.handle_input(
                        now,
                        Input {
                            local,
                            remote,
                            transport,
                            conn: Some(ConnId(conn)),
                            data: &data,
                        },
                    );
                }
            }
            NetEvent::FrameError { conn, error, head } => {
                tracing::info!(conn, %error, "stream unframeable: connection closed");
                match (head, self.conns.get(&conn)) {
                    (Some(head), Some(c)) => {
                        // The core answers 400 from the header section; it must be queued on the
                        // connection before `Closed` drops it.
                        let (local, remote, transport) = (c.local, c.remote, c.transport);
                        self.core.handle_input(
                            now,
                            Input {
                                local,
                                remote,
                                transport,
                                conn: Some(ConnId(conn)),
                                data: &head,
                            },
                        );
                        self.flush();
                    }
                    _ => {
                        Stats::bump(&self.core.stats().messages_received);
                        Stats::bump(&self.core.stats().parse_errors);
                    }
                }
            }
            NetEvent::Accepted {
                local,
                remote,
                transport,
                stream,
            } => {
                self.register_conn(stream, transport, local, remote);
            }
            NetEvent::Connected {
                remote,
                transport,
                stream,
            } => {
                let local = match transport {
                    Transport::Tls => self.tls_local,
                    _ => self.tcp_local,
                }
                .unwrap_or(remote);
                let queued = self
                    .connecting
                    .remove(&(transport, remote))
                    .unwrap_or_default();
                match self.register_conn(stream, transport, local, remote) {
                    Some(id) => {
                        if let Some(conn) = self.conns.get(&id) {
                            for (payload, _) in queued {
                                let _ = conn.writer.send(payload);
                            }
                        }
                    }
                    None => {
                        for (_, token) in queued {
                            self.send_failed(token);
                        }
                    }
                }
            }
            NetEvent::ConnectFailed {
                remote,
                transport,
                why,
                kind,
            } => {
                let queued = self
                    .connecting
                    .remove(&(transport, remote))
                    .unwrap_or_default();
                for (_, token) in queued {
                    match token {
                        Some(token) => self.core.send_failed_because(now, token, &why, kind),
                        None => Stats::bump(&self.core.stats().transport_errors),
                    }
                }
            }
            NetEvent::Closed { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    let key = (c.transport, c.remote);
                    if self.by_remote.get(&key) == Some(&conn) {
                        self.by_remote.remove(&key);
                    }
                    c.task.abort();
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
