//! The endpoint core: every SIP rule of the crate as one sans-IO state machine.
//!
//! It owns the transactions, dialogs, calls and registrations, and never touches a socket or a
//! clock. Following quinn-proto's shape, the driver (or a test) feeds it
//! [`handle_input`](Core::handle_input) (bytes from the network), commands
//! ([`invite`](Core::invite), [`hangup`](Core::hangup), [`answer`](Core::answer), ...) and
//! [`handle_timeout`](Core::handle_timeout), each with the current time, then drains
//! [`poll_transmit`](Core::poll_transmit) and [`poll_event`](Core::poll_event) and sleeps until
//! [`poll_timeout`](Core::poll_timeout).
//!
//! ```
//! use sip::core::{Core, CoreConfig, Listener};
//! use sip::Transport;
//! use std::time::Instant;
//! let addr = "127.0.0.1:5060".parse().unwrap();
//! let mut core = Core::new(CoreConfig::new(vec![Listener::new(Transport::Udp, addr)]), Instant::now());
//! assert!(core.poll_transmit().is_none());
//! ```

mod call;

pub use call::{CallEnd, CallEvent, EndCause, IncomingInfo, InviteResult, InviteSpec};

use crate::digest::{self, Challenge, Credentials, DigestAlgorithm, Secret, Verdict};
use crate::message::{self, Invalid, Limits, Message, make_header, response_bytes, response_to};
use crate::registrar::{
    Binding, ContactRequest, RegisterRefusal, Registrar, RegistrarConfig, RegistrationChange,
};
use crate::stats::Stats;
use crate::transaction::{
    ClientState, ClientTx, ClientVerdict, ServerKey, ServerTx, ServerVerdict, TimerConfig,
    TimerOutcome,
};
use crate::types::{ConnId, Destination, Method, NameAddr, Transport, Uri};
use bytes::Bytes;
use call::Call;
use rsip::headers::UntypedHeader;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Looks up an agent's digest secret by username (`None`: no such agent). Called on the
/// endpoint's task for each REGISTER or INVITE with credentials, so it must answer from memory
/// (the engine keeps its agent accounts loaded).
pub trait SecretLookup: Send + Sync {
    /// The secret of `username`, if the account exists.
    fn secret(&self, username: &str) -> Option<Secret>;

    /// The digest algorithms to offer `username` instead of [`AuthConfig::algorithms`]
    /// (a phone that needs its own), preferred first; `None` (the default): the service's.
    fn algorithms(&self, _username: &str) -> Option<Vec<DigestAlgorithm>> {
        None
    }
}

impl<F> SecretLookup for F
where
    F: Fn(&str) -> Option<Secret> + Send + Sync,
{
    fn secret(&self, username: &str) -> Option<Secret> {
        self(username)
    }
}

/// Digest authentication of incoming REGISTERs and INVITEs (agent phones).
#[derive(Clone)]
pub struct AuthConfig {
    /// The realm shown to phones.
    pub realm: String,
    /// Where agents' secrets come from. HA1 values must have been computed with `realm`.
    pub secrets: Arc<dyn SecretLookup>,
    /// Algorithms offered, preferred first (one challenge header each).
    pub algorithms: Vec<DigestAlgorithm>,
    /// How long a nonce stays valid before a `stale=true` re-challenge.
    pub nonce_lifetime: Duration,
    /// Sources whose INVITEs need no authentication (a carrier delivering inbound calls).
    pub trusted: Vec<IpAddr>,
}

impl AuthConfig {
    /// SHA-256 then MD5 challenges, 5-minute nonces, no trusted sources.
    pub fn new(realm: impl Into<String>, secrets: Arc<dyn SecretLookup>) -> Self {
        AuthConfig {
            realm: realm.into(),
            secrets,
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            trusted: Vec::new(),
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("realm", &self.realm)
            .field("algorithms", &self.algorithms)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

/// A local socket the driver listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// The address the socket is bound to (may be `0.0.0.0`).
    pub bound: SocketAddr,
    /// The address written into Via and Contact (the host's reachable address).
    pub advertised: SocketAddr,
}

impl Listener {
    /// A listener advertised at its bound address.
    pub fn new(transport: Transport, addr: SocketAddr) -> Self {
        Listener {
            transport,
            bound: addr,
            advertised: addr,
        }
    }
}

/// Everything the core needs to know up front.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The sockets (at least one).
    pub listeners: Vec<Listener>,
    /// The User-Agent/Server header.
    pub user_agent: String,
    /// The user part of our Contact.
    pub contact_user: String,
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// Size limits for incoming messages.
    pub limits: Limits,
    /// The session interval asked for in outbound INVITEs (RFC 4028); `None` asks for none
    /// (we still honour one a peer asks for).
    pub session_expires: Option<Duration>,
    /// The smallest session interval we accept (Min-SE, at least 90 s).
    pub min_se: Duration,
    /// Authentication of agent phones; `None` accepts every INVITE and refuses REGISTER.
    pub auth: Option<AuthConfig>,
    /// Registrar policy.
    pub registrar: RegistrarConfig,
}

impl CoreConfig {
    /// Defaults around the given listeners.
    pub fn new(listeners: Vec<Listener>) -> Self {
        CoreConfig {
            listeners,
            user_agent: concat!("dialer/", env!("CARGO_PKG_VERSION")).to_owned(),
            contact_user: "dialer".to_owned(),
            timers: TimerConfig::default(),
            limits: Limits::default(),
            session_expires: Some(Duration::from_secs(1800)),
            min_se: Duration::from_secs(90),
            auth: None,
            registrar: RegistrarConfig::default(),
        }
    }
}

/// A datagram or TCP frame from the network.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The listener it arrived on (its bound address).
    pub local: SocketAddr,
    /// The sender.
    pub remote: SocketAddr,
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// The TCP or TLS connection it arrived on.
    pub conn: Option<ConnId>,
    /// The bytes: one datagram, or one frame cut by [`crate::transport::Framer`].
    pub data: &'a [u8],
}

/// Identifies a send, so that the driver can report it failed ([`Core::send_failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendToken(u64);

/// Bytes to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// The listener to send from (its bound address).
    pub local: SocketAddr,
    /// Where to.
    pub dest: Destination,
    /// The message.
    pub payload: Bytes,
    /// Report a failure with this.
    pub token: Option<SendToken>,
}

/// Identifies one call (outbound or incoming) for its whole life. Chosen by the caller of
/// [`Core::invite`] for outbound calls, by the core for incoming ones (odd numbers are never
/// used by the core, so callers may use them freely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// The result of a plain request ([`Core::request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestResult {
    /// The final status code (408 when nothing answered, 503 when the transport failed).
    pub code: u16,
    /// Its reason phrase.
    pub reason: String,
    /// For REGISTER: the expiry the registrar granted our contact (a 2xx), or the shortest it
    /// accepts (a 423 Interval Too Brief's Min-Expires).
    pub expires: Option<u32>,
    /// The CSeq number finally used (it grows when a challenge is answered).
    pub cseq: u32,
}

/// Something the core wants its user to know.
#[derive(Debug, Clone)]
pub enum Event {
    /// A call moved on.
    Call {
        /// Which call.
        call: CallKey,
        /// What happened.
        event: CallEvent,
    },
    /// A new incoming call (already authenticated when authentication is on).
    Incoming {
        /// Its key, for [`Core::respond`] and [`Core::answer`].
        call: CallKey,
        /// Who calls and with what offer.
        info: IncomingInfo,
    },
    /// A phone registered or went away.
    Registration(RegistrationChange),
    /// A plain request finished.
    Response {
        /// The token given to [`Core::request`].
        token: u64,
        /// How it ended.
        result: RequestResult,
    },
}

/// A plain (non-INVITE, out-of-dialog) request to send: OPTIONS, REGISTER, MESSAGE.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// The method (not INVITE, ACK, CANCEL or BYE).
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Where to send it.
    pub dest: Destination,
    /// From (a tag is added).
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// The Call-ID (REGISTER refreshes keep theirs); a fresh one when `None`.
    pub call_id: Option<String>,
    /// The CSeq number.
    pub cseq: u32,
    /// Credentials for a 401/407 challenge, answered once.
    pub credentials: Option<Credentials>,
    /// An Expires header (REGISTER).
    pub expires: Option<u32>,
    /// Whether to add our Contact (REGISTER).
    pub contact: bool,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// What each transaction belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Nobody waits for it (a BYE to a stray fork, a stateless answer).
    None,
    /// A call.
    Call(CallKey),
    /// A plain request.
    Request(u64),
}

type TxId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Client(TxId),
    Server(TxId),
    Call(CallKey),
    Registrar,
}

struct ClientEntry {
    tx: ClientTx,
    owner: Owner,
    local: SocketAddr,
    key: (String, Method),
}

struct ServerEntry {
    tx: ServerTx,
    owner: Owner,
    local: SocketAddr,
    key: ServerKey,
}

struct PendingRequest {
    spec: RequestSpec,
    call_id: String,
    from_tag: String,
    cseq: u32,
    tx: TxId,
    auth_tries: u8,
}

/// State shared by the core's parts, split from the calls so both can be borrowed at once.
pub(crate) struct Ctx {
    config: CoreConfig,
    stats: Arc<Stats>,
    next_id: u64,
    clients: HashMap<TxId, ClientEntry>,
    client_index: HashMap<(String, Method), TxId>,
    servers: HashMap<TxId, ServerEntry>,
    server_index: HashMap<ServerKey, TxId>,
    /// (Call-ID, our tag) to call.
    dialogs: HashMap<(String, String), CallKey>,
    timers: BinaryHeap<Reverse<(Instant, Target)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

/// The sans-IO SIP endpoint. See the [module documentation](self).
pub struct Core {
    ctx: Ctx,
    calls: HashMap<CallKey, Call>,
    requests: HashMap<u64, PendingRequest>,
    registrar: Registrar,
    digest: Option<digest::Server>,
    epoch: Instant,
    next_incoming: u64,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

impl Ctx {
    pub(crate) fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn new_branch() -> String {
        format!("z9hG4bK{}", random_hex(10))
    }

    pub(crate) fn new_tag() -> String {
        random_hex(6)
    }

    pub(crate) fn new_call_id(&self) -> String {
        let host = self
            .config
            .listeners
            .first()
            .map(|listener| listener.advertised.ip().to_string())
            .unwrap_or_else(|| "dialer".into());
        format!("{}@{host}", random_hex(12))
    }

    /// The listener to send to `dest` from.
    pub(crate) fn listener_for(&self, transport: Transport) -> Option<Listener> {
        self.config
            .listeners
            .iter()
            .find(|listener| listener.transport == transport)
            .copied()
    }

    pub(crate) fn listener_bound(&self, bound: SocketAddr) -> Option<Listener> {
        self.config
            .listeners
            .iter()
            .find(|listener| listener.bound == bound)
            .copied()
    }

    /// A Via header value for a new request from `listener`.
    pub(crate) fn via(listener: &Listener, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            listener.transport, listener.advertised
        )
    }

    /// Our Contact header value on `listener`, a `sips:` URI when the dialog is secure (its
    /// request went to a `sips:` URI) and the listener is TLS.
    pub(crate) fn contact_for(&self, listener: &Listener, sips: bool) -> String {
        if sips && listener.transport == Transport::Tls {
            return format!(
                "<sips:{}@{}>",
                self.config.contact_user, listener.advertised
            );
        }
        self.contact(listener)
    }

    /// Our Contact header value on `listener`.
    pub(crate) fn contact(&self, listener: &Listener) -> String {
        let transport = match listener.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!(
            "<sip:{}@{}{transport}>",
            self.config.contact_user, listener.advertised
        )
    }

    pub(crate) fn send(
        &mut self,
        local: SocketAddr,
        dest: Destination,
        payload: Bytes,
        token: Option<SendToken>,
    ) {
        Stats::bump(&self.stats.messages_sent);
        self.transmits.push_back(Transmit {
            local,
            dest,
            payload,
            token,
        });
    }

    pub(crate) fn emit(&mut self, call: CallKey, event: CallEvent) {
        self.events.push_back(Event::Call { call, event });
    }

    pub(crate) fn emit_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn schedule(&mut self, at: Option<Instant>, target: Target) {
        if let Some(at) = at {
            self.timers.push(Reverse((at, target)));
        }
    }

    pub(crate) fn schedule_call(&mut self, at: Option<Instant>, call: CallKey) {
        self.schedule(at, Target::Call(call));
    }

    /// Starts a client transaction for `request` and sends it.
    pub(crate) fn start_client(
        &mut self,
        now: Instant,
        request: rsip::Request,
        dest: Destination,
        owner: Owner,
    ) -> Result<TxId, crate::Error> {
        let listener = self
            .listener_for(dest.transport)
            .ok_or(crate::Error::NoListener(dest.transport))?;
        let method = Method::from_rsip(request.method);
        let branch = request
            .headers
            .iter()
            .find_map(|header| match header {
                rsip::Header::Via(via) => message::param_value(via.value(), "branch")
                    .flatten()
                    .map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default();
        let (tx, bytes) = ClientTx::new(now, request, dest, self.config.timers);
        let id = self.next_id;
        self.next_id += 1;
        let deadline = tx.deadline();
        let key = (branch, method);
        self.client_index.insert(key.clone(), id);
        self.clients.insert(
            id,
            ClientEntry {
                tx,
                owner,
                local: listener.bound,
                key,
            },
        );
        self.send(listener.bound, dest, bytes, Some(SendToken(id)));
        self.schedule(deadline, Target::Client(id));
        Ok(id)
    }

    /// The INVITE a client transaction sent (for CANCEL).
    pub(crate) fn client_dest(&self, id: TxId) -> Option<(Destination, SocketAddr)> {
        self.clients
            .get(&id)
            .map(|entry| (entry.tx.dest, entry.local))
    }

    /// Whether a client transaction is still waiting for a final response.
    pub(crate) fn client_pending(&self, id: TxId) -> bool {
        self.clients.get(&id).is_some_and(|entry| {
            matches!(
                entry.tx.state,
                ClientState::Calling | ClientState::Proceeding
            )
        })
    }

    /// Forgets a client transaction the transaction user gave up on (an INVITE left in
    /// Proceeding after our CANCEL went unanswered).
    pub(crate) fn abandon_client(&mut self, id: TxId) {
        if let Some(entry) = self.clients.remove(&id)
            && self.client_index.get(&entry.key) == Some(&id)
        {
            self.client_index.remove(&entry.key);
        }
    }

    pub(crate) fn client_alive(&self, id: TxId) -> bool {
        self.clients.contains_key(&id)
    }

    pub(crate) fn server_alive(&self, id: TxId) -> bool {
        self.servers.contains_key(&id)
    }

    /// Starts a server transaction for a new request, named by `key`.
    fn start_server(
        &mut self,
        request: rsip::Request,
        reply_to: Destination,
        local: SocketAddr,
        key: ServerKey,
        owner: Owner,
    ) -> TxId {
        let id = self.next_id;
        self.next_id += 1;
        self.server_index.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                tx: ServerTx::new(request, reply_to, self.config.timers),
                owner,
                local,
                key,
            },
        );
        id
    }

    /// The request a server transaction answers.
    pub(crate) fn server_request(&self, id: TxId) -> Option<&rsip::Request> {
        self.servers
            .get(&id)
            .and_then(|entry| entry.tx.request.as_ref())
    }

    pub(crate) fn server_reply_to(&self, id: TxId) -> Option<(Destination, SocketAddr)> {
        self.servers
            .get(&id)
            .map(|entry| (entry.tx.reply_to, entry.local))
    }

    /// Sends `response` through server transaction `id`. False if it could not (gone, or a
    /// final response was already sent).
    pub(crate) fn respond(&mut self, now: Instant, id: TxId, mut response: rsip::Response) -> bool {
        let Some(entry) = self.servers.get_mut(&id) else {
            return false;
        };
        let status = response.status_code.code();
        response
            .headers
            .push(make_header("Server", self.config.user_agent.clone()));
        let bytes = response_bytes(&mut response);
        if !entry.tx.respond(now, status, bytes.clone()) {
            return false;
        }
        let dest = entry.tx.reply_to;
        let local = entry.local;
        let deadline = entry.tx.deadline();
        self.send(local, dest, bytes, None);
        self.schedule(deadline, Target::Server(id));
        true
    }

    /// Answers `id`'s request with a plain response of `code` (with our To tag if given).
    pub(crate) fn respond_code(
        &mut self,
        now: Instant,
        id: TxId,
        code: u16,
        to_tag: Option<&str>,
        extra: Vec<rsip::Header>,
    ) -> bool {
        let Some(request) = self.server_request(id) else {
            return false;
        };
        let mut response = response_to(request, code, None, to_tag);
        for header in extra {
            response.headers.push(header);
        }
        self.respond(now, id, response)
    }

    /// The dialog saw the ACK for a 2xx sent through `id`.
    pub(crate) fn server_2xx_acked(&mut self, now: Instant, id: TxId) {
        if let Some(entry) = self.servers.get_mut(&id) {
            entry.tx.on_2xx_acked(now);
            let deadline = entry.tx.deadline();
            self.schedule(deadline, Target::Server(id));
        }
    }

    pub(crate) fn index_dialog(&mut self, call_id: &str, local_tag: &str, call: CallKey) {
        self.dialogs
            .insert((call_id.to_owned(), local_tag.to_owned()), call);
    }

    pub(crate) fn unindex_dialog(&mut self, call_id: &str, local_tag: &str) {
        self.dialogs
            .remove(&(call_id.to_owned(), local_tag.to_owned()));
    }
}

/// Where to send responses to a request that came in as `input` (RFC 3261 18.2.2, RFC 3581).
fn reply_destination(via: &message::TopVia, input: &Input<'_>) -> Destination {
    match input.transport {
        Transport::Tcp | Transport::Tls => Destination {
            transport: input.transport,
            addr: input.remote,
            conn: input.conn,
        },
        Transport::Udp => {
            let port = match via.rport {
                Some(_) => input.remote.port(),
                None => via.port.unwrap_or(5060),
            };
            Destination::new(Transport::Udp, SocketAddr::new(input.remote.ip(), port))
        }
    }
}

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REGISTER";
const SUPPORTED: &str = "timer";

impl Core {
    /// A core with no calls, at time `now`.
    pub fn new(config: CoreConfig, now: Instant) -> Core {
        let digest = config.auth.as_ref().map(|auth| {
            digest::Server::new(
                auth.realm.clone(),
                auth.algorithms.clone(),
                auth.nonce_lifetime.as_secs(),
            )
        });
        let registrar = Registrar::new(config.registrar);
        Core {
            ctx: Ctx {
                config,
                stats: Arc::new(Stats::default()),
                next_id: 1,
                clients: HashMap::new(),
                client_index: HashMap::new(),
                servers: HashMap::new(),
                server_index: HashMap::new(),
                dialogs: HashMap::new(),
                timers: BinaryHeap::new(),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
            },
            calls: HashMap::new(),
            requests: HashMap::new(),
            registrar,
            digest,
            epoch: now,
            next_incoming: 0,
        }
    }

    /// The counters, shared with whoever exports them.
    pub fn stats(&self) -> Arc<Stats> {
        self.ctx.stats.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.ctx.config
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ctx.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ctx.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Live calls (ringing, talking or finishing).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions (client, server).
    pub fn transaction_count(&self) -> (usize, usize) {
        (self.ctx.clients.len(), self.ctx.servers.len())
    }

    /// The registered contacts of an agent.
    pub fn bindings(&self, user: &str) -> Vec<Binding> {
        self.registrar.bindings(user)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, target))) = self.ctx.timers.peek().copied() {
            if at > now {
                break;
            }
            self.ctx.timers.pop();
            match target {
                Target::Client(id) => self.client_timeout(now, id),
                Target::Server(id) => self.server_timeout(now, id),
                Target::Call(key) => {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.on_timer(&mut self.ctx, now);
                    }
                    self.reap(key);
                }
                Target::Registrar => {
                    for change in self.registrar.expire(now) {
                        self.ctx.emit_event(Event::Registration(change));
                    }
                    let next = self.registrar.next_expiry();
                    self.ctx.schedule(next, Target::Registrar);
                }
            }
        }
    }

    fn client_timeout(&mut self, now: Instant, id: TxId) {
        let Some(entry) = self.ctx.clients.get_mut(&id) else {
            return;
        };
        if entry.tx.deadline().is_none_or(|at| at > now) {
            return; // stale timer entry
        }
        match entry.tx.on_timeout(now) {
            TimerOutcome::Retransmit(bytes) => {
                Stats::bump(&self.ctx.stats.retransmissions);
                let (local, dest, deadline) = (entry.local, entry.tx.dest, entry.tx.deadline());
                self.ctx.send(local, dest, bytes, Some(SendToken(id)));
                self.ctx.schedule(deadline, Target::Client(id));
            }
            TimerOutcome::TimedOut => {
                Stats::bump(&self.ctx.stats.transaction_timeouts);
                let owner = entry.owner;
                self.remove_client(id);
                self.client_failed(now, id, owner, 408, "Request Timeout", EndCause::NoResponse);
            }
            TimerOutcome::Terminated => {
                let owner = entry.owner;
                self.remove_client(id);
                if let Owner::Call(key) = owner {
                    self.reap(key);
                }
            }
            TimerOutcome::Nothing => {
                let deadline = entry.tx.deadline();
                self.ctx.schedule(deadline, Target::Client(id));
            }
        }
    }

    fn remove_client(&mut self, id: TxId) {
        if let Some(entry) = self.ctx.clients.remove(&id)
            && self.ctx.client_index.get(&entry.key) == Some(&id)
        {
            self.ctx.client_index.remove(&entry.key);
        }
    }

    fn remove_server(&mut self, id: TxId) {
        if let Some(entry) = self.ctx.servers.remove(&id)
            && self.ctx.server_index.get(&entry.key) == Some(&id)
        {
            self.ctx.server_index.remove(&entry.key);
        }
    }

    /// A client transaction ended without a final response (timeout or transport error).
    fn client_failed(
        &mut self,
        now: Instant,
        id: TxId,
        owner: Owner,
        code: u16,
        reason: &str,
        cause: EndCause,
    ) {
        match owner {
            Owner::Call(key) => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.on_client_failure(&mut self.ctx, now, id, code, reason, cause);
                }
                self.reap(key);
            }
            Owner::Request(token) => {
                if let Some(pending) = self.requests.remove(&token) {
                    self.ctx.emit_event(Event::Response {
                        token,
                        result: RequestResult {
                            code,
                            reason: reason.to_owned(),
                            expires: None,
                            cseq: pending.cseq,
                        },
                    });
                }
            }
            Owner::None => {}
        }
    }

    fn server_timeout(&mut self, now: Instant, id: TxId) {
        let Some(entry) = self.ctx.servers.get_mut(&id) else {
            return;
        };
        if entry.tx.deadline().is_none_or(|at| at > now) {
            return;
        }
        match entry.tx.on_timeout(now) {
            TimerOutcome::Retransmit(bytes) => {
                Stats::bump(&self.ctx.stats.retransmissions);
                let (local, dest, deadline) = (entry.local, entry.tx.reply_to, entry.tx.deadline());
                self.ctx.send(local, dest, bytes, None);
                self.ctx.schedule(deadline, Target::Server(id));
            }
            TimerOutcome::TimedOut => {
                Stats::bump(&self.ctx.stats.transaction_timeouts);
                let owner = entry.owner;
                self.remove_server(id);
                if let Owner::Call(key) = owner {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.on_ack_timeout(&mut self.ctx, now, id);
                    }
                    self.reap(key);
                }
            }
            TimerOutcome::Terminated => {
                let owner = entry.owner;
                self.remove_server(id);
                if let Owner::Call(key) = owner {
                    self.reap(key);
                }
            }
            TimerOutcome::Nothing => {
                let deadline = entry.tx.deadline();
                self.ctx.schedule(deadline, Target::Server(id));
            }
        }
    }

    /// Removes a finished call once nothing refers to it any more.
    fn reap(&mut self, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if !call.is_finished(&self.ctx) {
            return;
        }
        if let Some(call) = self.calls.remove(&key) {
            call.unindex(&mut self.ctx);
        }
    }

    /// The transport could not deliver a send (TCP connect refused, connection lost, ICMP
    /// unreachable): the client transaction fails as if it got a 503 (RFC 3261 8.1.3.1).
    pub fn send_failed(&mut self, now: Instant, token: SendToken) {
        self.send_failed_because(now, token, "transport error", SendFailure::Transport);
    }

    /// [`send_failed`](Self::send_failed) with the transport's reason, which becomes the 503's
    /// reason phrase (`Service Unavailable (TLS: invalid peer certificate: UnknownIssuer)`), so a
    /// refused certificate reads as such wherever the result is shown; `kind` picks the call's
    /// end cause.
    pub fn send_failed_because(
        &mut self,
        now: Instant,
        token: SendToken,
        why: &str,
        kind: SendFailure,
    ) {
        Stats::bump(&self.ctx.stats.transport_errors);
        let id = token.0;
        let Some(entry) = self.ctx.clients.get_mut(&id) else {
            return;
        };
        entry.tx.on_transport_error();
        let owner = entry.owner;
        self.remove_client(id);
        // The reason is ours (not wire text), but keep it to one line all the same.
        let why: String = why.chars().filter(|c| !c.is_control()).collect();
        let reason = format!("Service Unavailable ({why})");
        let cause = match kind {
            SendFailure::Transport => EndCause::TransportError,
            SendFailure::TlsRefused => EndCause::TlsRefused,
        };
        self.client_failed(now, id, owner, 503, &reason, cause);
    }

    /// Feeds one datagram or TCP frame.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        Stats::bump(&self.ctx.stats.messages_received);
        let message = match Message::parse_with(input.data, &self.ctx.config.limits) {
            Ok(message) => message,
            Err(Invalid {
                error: message::ParseError::Empty,
                ..
            }) => return, // a CRLF keepalive
            Err(invalid) => {
                Stats::bump(&self.ctx.stats.parse_errors);
                match invalid.answer {
                    Some(answer) => {
                        tracing::debug!(remote = %input.remote, error = %invalid.error, code = answer.code, "malformed SIP request refused");
                        self.reject_malformed(&answer, &input);
                    }
                    None => {
                        tracing::debug!(remote = %input.remote, error = %invalid.error, "unparsable SIP message dropped");
                    }
                }
                return;
            }
        };
        if message.is_request() {
            self.on_request(now, message, &input);
        } else {
            self.on_response(now, message);
        }
    }

    /// Answers a request that cannot be processed (400, 416 or 505, RFC 3261 8.2) statelessly,
    /// along its top Via: on TCP back on its connection, on UDP to its source address and the
    /// Via's port (the source port with rport).
    fn reject_malformed(&mut self, answer: &message::ErrorAnswer, input: &Input<'_>) {
        let dest = match input.transport {
            Transport::Tcp | Transport::Tls => Destination {
                transport: input.transport,
                addr: input.remote,
                conn: input.conn,
            },
            Transport::Udp => Destination::new(
                Transport::Udp,
                SocketAddr::new(
                    input.remote.ip(),
                    if answer.rport {
                        input.remote.port()
                    } else {
                        answer.via_port.unwrap_or(5060)
                    },
                ),
            ),
        };
        if answer.code == 400 {
            Stats::bump(&self.ctx.stats.bad_requests);
        }
        let bytes = answer.to_bytes(&Ctx::new_tag(), &self.ctx.config.user_agent);
        self.ctx.send(input.local, dest, bytes, None);
    }

    fn on_response(&mut self, now: Instant, message: Message) {
        let (_, method) = message.cseq();
        let key = (message.head.via.branch.clone(), method);
        let Some(&id) = self.ctx.client_index.get(&key) else {
            self.on_stray_response(now, message);
            return;
        };
        let Some(entry) = self.ctx.clients.get_mut(&id) else {
            return;
        };
        let status = message.status().unwrap_or(0);
        let rsip::SipMessage::Response(response) = &message.inner else {
            return;
        };
        let (verdict, ack) = entry.tx.on_response(now, status, response);
        let (local, dest, owner, deadline) =
            (entry.local, entry.tx.dest, entry.owner, entry.tx.deadline());
        if let Some(ack) = ack {
            self.ctx.send(local, dest, ack, None);
        }
        self.ctx.schedule(deadline, Target::Client(id));
        if verdict == ClientVerdict::Absorb {
            Stats::bump(&self.ctx.stats.retransmissions_absorbed);
            return;
        }
        match owner {
            Owner::Call(key) => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.on_response(&mut self.ctx, now, id, &message);
                }
                self.reap(key);
            }
            Owner::Request(token) => self.on_request_response(now, token, id, &message),
            Owner::None => {}
        }
    }

    /// A response no transaction wants: a 2xx retransmitted after the INVITE transaction ended
    /// is re-ACKed by its dialog; anything else is dropped.
    fn on_stray_response(&mut self, now: Instant, message: Message) {
        if message.cseq().1 == Method::Invite
            && message.status().is_some_and(|s| (200..300).contains(&s))
            && let Some(tag) = message.from_tag()
        {
            let key = (message.call_id().to_owned(), tag.to_owned());
            if let Some(&call) = self.ctx.dialogs.get(&key)
                && let Some(call) = self.calls.get_mut(&call)
            {
                call.on_stray_2xx(&mut self.ctx, now, &message);
                return;
            }
        }
        Stats::bump(&self.ctx.stats.dropped);
    }

    fn on_request(&mut self, now: Instant, message: Message, input: &Input<'_>) {
        let method = message.method().unwrap_or(Method::Options);
        let reply_to = reply_destination(&message.head.via, input);
        let rsip::SipMessage::Request(mut request) = message.inner.clone() else {
            return;
        };
        message::stamp_received(&mut request, input.remote);

        // Retransmissions (and the ACK of a non-2xx final) belong to an existing transaction.
        let match_method = if method == Method::Ack {
            Method::Invite
        } else {
            method
        };
        if let Some(&id) = self
            .ctx
            .server_index
            .get(&ServerKey::of(&message, match_method))
            && let Some(entry) = self.ctx.servers.get_mut(&id)
        {
            let accepted = entry.tx.state == crate::transaction::ServerState::Accepted;
            if !(method == Method::Ack && accepted) {
                match entry.tx.on_request(now, method) {
                    ServerVerdict::Resend(bytes) => {
                        Stats::bump(&self.ctx.stats.retransmissions_absorbed);
                        let (local, dest) = (entry.local, entry.tx.reply_to);
                        self.ctx.send(local, dest, bytes, None);
                    }
                    ServerVerdict::Absorb => Stats::bump(&self.ctx.stats.retransmissions_absorbed),
                    ServerVerdict::Acked => {
                        let deadline = entry.tx.deadline();
                        self.ctx.schedule(deadline, Target::Server(id));
                    }
                }
                return;
            }
        }
        if method == Method::Ack {
            self.on_ack(now, &message);
            return;
        }
        if method == Method::Cancel {
            self.on_cancel(now, request, reply_to, input.local, &message);
            return;
        }

        let owner = Owner::None;
        let key = ServerKey::of(&message, method);
        let id = self
            .ctx
            .start_server(request, reply_to, input.local, key, owner);

        // RFC 3261 8.2.1: a method we do not know at all is not implemented.
        if message.extension_method().is_some() {
            self.ctx
                .respond_code(now, id, 501, None, vec![make_header("Allow", ALLOW)]);
            return;
        }

        // RFC 3261 8.2.2.3: refuse extensions we do not support.
        let unsupported: Vec<&str> = message
            .headers("Require")
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|tag| !tag.is_empty() && !tag.eq_ignore_ascii_case("timer"))
            .collect();
        if !unsupported.is_empty() {
            let unsupported = unsupported.join(", ");
            self.ctx.respond_code(
                now,
                id,
                420,
                None,
                vec![make_header("Unsupported", unsupported)],
            );
            return;
        }

        if matches!(method, Method::Invite | Method::Update) {
            // RFC 3261 8.2.3: a body we cannot read is refused with what we do read.
            let content_type = message
                .header("Content-Type")
                .map(|value| value.split(';').next().unwrap_or("").trim());
            if !message.body().is_empty()
                && !content_type.is_some_and(|kind| kind.eq_ignore_ascii_case("application/sdp"))
            {
                self.ctx.respond_code(
                    now,
                    id,
                    415,
                    None,
                    vec![make_header("Accept", "application/sdp")],
                );
                return;
            }
            // RFC 3261 21.4.7: the answer must carry SDP, which the offerer must accept.
            if !accepts_sdp(&message) {
                self.ctx.respond_code(
                    now,
                    id,
                    406,
                    None,
                    vec![make_header("Accept", "application/sdp")],
                );
                return;
            }
        }

        if let Some(tag) = message.to_tag() {
            let key = (message.call_id().to_owned(), tag.to_owned());
            match self.ctx.dialogs.get(&key).copied() {
                Some(call_key) => {
                    if let Some(entry) = self.ctx.servers.get_mut(&id) {
                        entry.owner = Owner::Call(call_key);
                    }
                    if let Some(call) = self.calls.get_mut(&call_key) {
                        call.on_request(&mut self.ctx, now, id, &message);
                    }
                    self.reap(call_key);
                }
                None => {
                    self.ctx.respond_code(now, id, 481, None, Vec::new());
                }
            }
            return;
        }

        match method {
            Method::Invite => self.on_new_invite(now, id, &message, input),
            Method::Register => self.on_register(now, id, &message, reply_to),
            Method::Options => {
                let extra = vec![
                    make_header("Allow", ALLOW),
                    make_header("Accept", "application/sdp"),
                    make_header("Supported", SUPPORTED),
                ];
                self.ctx
                    .respond_code(now, id, 200, Some(&Ctx::new_tag()), extra);
            }
            Method::Bye | Method::Update | Method::Info | Method::Prack => {
                self.ctx.respond_code(now, id, 481, None, Vec::new());
            }
            _ => {
                self.ctx
                    .respond_code(now, id, 405, None, vec![make_header("Allow", ALLOW)]);
            }
        }
    }

    fn on_ack(&mut self, now: Instant, message: &Message) {
        if let Some(tag) = message.to_tag() {
            let key = (message.call_id().to_owned(), tag.to_owned());
            if let Some(&call_key) = self.ctx.dialogs.get(&key) {
                if let Some(call) = self.calls.get_mut(&call_key) {
                    call.on_ack(&mut self.ctx, now, message);
                }
                self.reap(call_key);
                return;
            }
        }
        Stats::bump(&self.ctx.stats.dropped);
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        request: rsip::Request,
        reply_to: Destination,
        local: SocketAddr,
        message: &Message,
    ) {
        let invite = self
            .ctx
            .server_index
            .get(&ServerKey::of(message, Method::Invite))
            .copied();
        let owner = invite
            .and_then(|id| self.ctx.servers.get(&id))
            .map(|entry| entry.owner)
            .unwrap_or(Owner::None);
        let id = self.ctx.start_server(
            request,
            reply_to,
            local,
            ServerKey::of(message, Method::Cancel),
            Owner::None,
        );
        match (invite, owner) {
            (Some(invite), Owner::Call(call_key)) => {
                // The CANCEL's 200 carries the To tag our responses to the INVITE carry.
                let tag = self
                    .calls
                    .get(&call_key)
                    .map(|call| call.local_tag().to_owned());
                self.ctx
                    .respond_code(now, id, 200, tag.as_deref(), Vec::new());
                if let Some(call) = self.calls.get_mut(&call_key) {
                    call.on_cancel(&mut self.ctx, now, invite);
                }
                self.reap(call_key);
            }
            _ => {
                self.ctx.respond_code(now, id, 481, None, Vec::new());
            }
        }
    }

    /// Checks an incoming request's credentials. `Ok(Some(user))` when authenticated,
    /// `Ok(None)` when no authentication applies, `Err(())` when a challenge or refusal was sent.
    fn authenticate(
        &mut self,
        now: Instant,
        id: TxId,
        message: &Message,
        source: IpAddr,
        invite: bool,
    ) -> Result<Option<String>, ()> {
        let Some(auth) = self.ctx.config.auth.clone() else {
            return Ok(None);
        };
        if invite && auth.trusted.contains(&source) {
            return Ok(None);
        }
        let Some(server) = self.digest.as_mut() else {
            return Ok(None);
        };
        let unix = now.duration_since(self.epoch).as_secs() + 1;
        let method = message.method().map(Method::as_str).unwrap_or("INVITE");
        let credentials = message
            .headers("Authorization")
            .chain(message.headers("Proxy-Authorization"))
            .find(|value| digest_realm(value).is_some_and(|realm| realm == server.realm()));
        let offered_to = |user: &str| {
            auth.secrets
                .algorithms(user)
                .filter(|algorithms| !algorithms.is_empty())
        };
        let verdict = match credentials {
            Some(value) => {
                let secrets = auth.secrets.clone();
                server.verify_offered(
                    value,
                    method,
                    message.body(),
                    unix,
                    &move |user| secrets.secret(user),
                    &offered_to,
                )
            }
            None => Verdict::Refused("no credentials"),
        };
        match verdict {
            Verdict::Authenticated(user) => Ok(Some(user)),
            Verdict::Stale | Verdict::Refused(_) => {
                let stale = verdict == Verdict::Stale;
                if credentials.is_some() && !stale {
                    Stats::bump(&self.ctx.stats.auth_failures);
                    tracing::info!(call_id = message.call_id(), ?verdict, "credentials refused");
                }
                Stats::bump(&self.ctx.stats.auth_challenges);
                // Whose challenge this is: the user of the credentials, else the one the
                // request names (From of an INVITE, To of a REGISTER).
                let user = credentials
                    .and_then(|value| digest_param(value, "username"))
                    .or_else(|| {
                        let header = if invite { "From" } else { "To" };
                        message.header(header).and_then(uri_user_of)
                    });
                let own = user.as_deref().and_then(offered_to);
                let challenges = match own {
                    Some(algorithms) => server.challenges_offering(unix, stale, &algorithms),
                    None => server.challenges(unix, stale),
                }
                .into_iter()
                .map(|value| make_header("WWW-Authenticate", value))
                .collect();
                self.ctx
                    .respond_code(now, id, 401, Some(&Ctx::new_tag()), challenges);
                Err(())
            }
        }
    }

    fn on_new_invite(&mut self, now: Instant, id: TxId, message: &Message, input: &Input<'_>) {
        let Ok(user) = self.authenticate(now, id, message, input.remote.ip(), true) else {
            return;
        };
        // Core-chosen keys are even, so callers can use odd ones for their outbound calls.
        self.next_incoming += 2;
        let key = CallKey(self.next_incoming);
        if let Some(call) = Call::incoming(&mut self.ctx, now, key, id, message, user, input) {
            if let Some(entry) = self.ctx.servers.get_mut(&id) {
                entry.owner = Owner::Call(key);
            }
            Stats::bump(&self.ctx.stats.calls_received);
            self.calls.insert(key, call);
        }
    }

    fn on_register(&mut self, now: Instant, id: TxId, message: &Message, source: Destination) {
        // RFC 3261 10.3: the address of record in To is a SIP or SIPS URI (RFC 4475 3.3.4).
        let aor = message.header("To").map(message::uri_of).unwrap_or("");
        let scheme = aor.split(':').next().unwrap_or("");
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            if let Some(request) = self.ctx.server_request(id) {
                let response = response_to(
                    request,
                    400,
                    Some("Bad Request (the address of record in To is not a SIP URI)"),
                    Some(&Ctx::new_tag()),
                );
                self.ctx.respond(now, id, response);
            }
            return;
        }
        if self.ctx.config.auth.is_none() {
            // Without accounts to check against, a registrar would be open to anyone.
            self.ctx
                .respond_code(now, id, 403, Some(&Ctx::new_tag()), Vec::new());
            return;
        }
        let Ok(Some(user)) = self.authenticate(now, id, message, source.addr.ip(), false) else {
            return;
        };
        let tag = Ctx::new_tag();
        let aor_user = message
            .header("To")
            .and_then(|to| rsip::Uri::try_from(message::uri_of(to)).ok())
            .and_then(|uri| uri.user().map(str::to_owned));
        if aor_user.as_deref() != Some(user.as_str()) {
            tracing::info!(%user, ?aor_user, "REGISTER for another user's address refused");
            Stats::bump(&self.ctx.stats.auth_failures);
            self.ctx.respond_code(now, id, 403, Some(&tag), Vec::new());
            return;
        }
        let mut contacts = Vec::new();
        for value in message.headers("Contact") {
            for contact in message::split_list(value) {
                if contact == "*" {
                    contacts.push(ContactRequest::RemoveAll);
                    continue;
                }
                let expires = message::param_value(message::header_params(contact), "expires")
                    .flatten()
                    .and_then(|e| e.parse().ok());
                contacts.push(ContactRequest::Bind {
                    contact: message::uri_of(contact).to_owned(),
                    expires,
                });
            }
        }
        let header_expires = message
            .header("Expires")
            .and_then(|e| e.trim().parse().ok());
        let result = self.registrar.register(
            now,
            &user,
            contacts,
            header_expires,
            message.call_id(),
            message.cseq().0,
            source,
        );
        match result {
            Ok((bindings, changes)) => {
                let mut extra = Vec::new();
                for binding in &bindings {
                    let left = binding.expires_at.saturating_duration_since(now).as_secs();
                    extra.push(make_header(
                        "Contact",
                        format!("<{}>;expires={left}", binding.contact),
                    ));
                }
                self.ctx.respond_code(now, id, 200, Some(&tag), extra);
                Stats::bump(&self.ctx.stats.registrations);
                for change in changes {
                    self.ctx.emit_event(Event::Registration(change));
                }
                let next = self.registrar.next_expiry();
                self.ctx.schedule(next, Target::Registrar);
            }
            Err(RegisterRefusal::TooBrief(min)) => {
                self.ctx.respond_code(
                    now,
                    id,
                    423,
                    Some(&tag),
                    vec![make_header("Min-Expires", min.to_string())],
                );
            }
            Err(RegisterRefusal::OutOfOrder) => {
                self.ctx.respond_code(now, id, 500, Some(&tag), Vec::new());
            }
            Err(RegisterRefusal::BadWildcard) => {
                self.ctx.respond_code(now, id, 400, Some(&tag), Vec::new());
            }
        }
    }

    /// Places an outbound call. Events for it come as [`Event::Call`] with `key`. Returns the
    /// call's Call-ID.
    pub fn invite(
        &mut self,
        now: Instant,
        key: CallKey,
        spec: InviteSpec,
    ) -> Result<String, crate::Error> {
        if self.calls.contains_key(&key) {
            return Err(crate::Error::InvalidState {
                action: "start",
                state: "already in use",
            });
        }
        let call = Call::outgoing(&mut self.ctx, now, key, spec)?;
        Stats::bump(&self.ctx.stats.invites_sent);
        let call_id = call.call_id().to_owned();
        self.calls.insert(key, call);
        Ok(call_id)
    }

    /// Hangs up every call (for a clean shutdown).
    pub fn hangup_all(&mut self, now: Instant) {
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.hangup(now, key);
        }
    }

    /// Hangs up: CANCEL before an answer, BYE after; rejects an unanswered incoming call with 480.
    pub fn hangup(&mut self, now: Instant, key: CallKey) {
        if let Some(call) = self.calls.get_mut(&key) {
            call.hangup(&mut self.ctx, now, None);
        }
        self.reap(key);
    }

    /// Hangs up an incoming call that has not been answered, with a chosen status code.
    pub fn reject(&mut self, now: Instant, key: CallKey, code: u16) -> Result<(), crate::Error> {
        let result = match self.calls.get_mut(&key) {
            Some(call) => call.reject(&mut self.ctx, now, code),
            None => Err(crate::Error::InvalidState {
                action: "reject",
                state: "gone",
            }),
        };
        self.reap(key);
        result
    }

    /// Sends a provisional response (180, 183 with early media when `media` is given) on an
    /// incoming call.
    pub fn progress(
        &mut self,
        now: Instant,
        key: CallKey,
        code: u16,
        media: Option<&crate::sdp::LocalMedia>,
    ) -> Result<(), crate::Error> {
        match self.calls.get_mut(&key) {
            Some(call) => call.progress(&mut self.ctx, now, code, media),
            None => Err(crate::Error::InvalidState {
                action: "send progress on",
                state: "gone",
            }),
        }
    }

    /// Answers an incoming call with 200 and our SDP.
    pub fn answer(
        &mut self,
        now: Instant,
        key: CallKey,
        media: crate::sdp::LocalMedia,
    ) -> Result<(), crate::Error> {
        match self.calls.get_mut(&key) {
            Some(call) => call.answer(&mut self.ctx, now, media),
            None => Err(crate::Error::InvalidState {
                action: "answer",
                state: "gone",
            }),
        }
    }

    /// Sends a plain request (OPTIONS, REGISTER, MESSAGE). Its end comes as [`Event::Response`].
    pub fn request(
        &mut self,
        now: Instant,
        token: u64,
        spec: RequestSpec,
    ) -> Result<(), crate::Error> {
        if matches!(
            spec.method,
            Method::Invite | Method::Ack | Method::Cancel | Method::Bye
        ) {
            return Err(crate::Error::InvalidState {
                action: "send a plain request with this method outside",
                state: "a call",
            });
        }
        let call_id = spec
            .call_id
            .clone()
            .unwrap_or_else(|| self.ctx.new_call_id());
        let from_tag = Ctx::new_tag();
        let cseq = spec.cseq;
        let request = self.build_plain(&spec, &call_id, &from_tag, cseq, None)?;
        let tx = self
            .ctx
            .start_client(now, request, spec.dest, Owner::Request(token))?;
        self.requests.insert(
            token,
            PendingRequest {
                spec,
                call_id,
                from_tag,
                cseq,
                tx,
                auth_tries: 0,
            },
        );
        Ok(())
    }

    fn build_plain(
        &self,
        spec: &RequestSpec,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
        authorization: Option<(&'static str, String)>,
    ) -> Result<rsip::Request, crate::Error> {
        let listener = self
            .ctx
            .listener_for(spec.dest.transport)
            .ok_or(crate::Error::NoListener(spec.dest.transport))?;
        let mut headers = rsip::Headers::default();
        headers.push(make_header("Via", Ctx::via(&listener, &Ctx::new_branch())));
        headers.push(make_header("Max-Forwards", "70"));
        headers.push(make_header("From", format!("{};tag={from_tag}", spec.from)));
        headers.push(make_header("To", spec.to.to_string()));
        headers.push(make_header("Call-ID", call_id));
        headers.push(make_header("CSeq", format!("{cseq} {}", spec.method)));
        if spec.contact {
            headers.push(make_header("Contact", self.ctx.contact(&listener)));
        }
        if let Some(expires) = spec.expires {
            headers.push(make_header("Expires", expires.to_string()));
        }
        if let Some((name, value)) = authorization {
            headers.push(make_header(name, value));
        }
        for (name, value) in &spec.headers {
            headers.push(make_header(name, value.clone()));
        }
        headers.push(make_header(
            "User-Agent",
            self.ctx.config.user_agent.clone(),
        ));
        Ok(rsip::Request {
            method: spec.method.to_rsip(),
            uri: spec.uri.0.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        })
    }

    fn on_request_response(&mut self, now: Instant, token: u64, id: TxId, message: &Message) {
        let status = message.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        let Some(pending) = self.requests.get_mut(&token) else {
            return;
        };
        if pending.tx != id {
            return;
        }
        if matches!(status, 401 | 407)
            && pending.auth_tries < 2
            && let Some(credentials) = pending.spec.credentials.clone()
        {
            let header = if status == 401 {
                "WWW-Authenticate"
            } else {
                "Proxy-Authenticate"
            };
            if let Some(challenge) = Challenge::pick(message.headers(header)) {
                // One answer per challenge; a second only if the nonce was merely stale.
                if pending.auth_tries == 0 || challenge.stale {
                    pending.auth_tries += 1;
                    pending.cseq += 1;
                    let value = digest::authorization(
                        &challenge,
                        &credentials,
                        pending.spec.method.as_str(),
                        &pending.spec.uri.to_string(),
                        b"",
                        1,
                        &random_hex(8),
                    );
                    let name = if status == 401 {
                        "Authorization"
                    } else {
                        "Proxy-Authorization"
                    };
                    let (spec, call_id, from_tag, cseq) = (
                        pending.spec.clone(),
                        pending.call_id.clone(),
                        pending.from_tag.clone(),
                        pending.cseq,
                    );
                    if let Ok(request) =
                        self.build_plain(&spec, &call_id, &from_tag, cseq, Some((name, value)))
                        && let Ok(tx) =
                            self.ctx
                                .start_client(now, request, spec.dest, Owner::Request(token))
                    {
                        Stats::bump(&self.ctx.stats.auth_answered);
                        if let Some(pending) = self.requests.get_mut(&token) {
                            pending.tx = tx;
                        }
                        return;
                    }
                }
            }
        }
        let Some(pending) = self.requests.remove(&token) else {
            return;
        };
        let expires = match (pending.spec.method, status) {
            (Method::Register, 200..=299) => granted_expiry(message),
            // RFC 3261 10.2.8: the registrar's shortest interval, to ask for it at once.
            (Method::Register, 423) => message
                .header("Min-Expires")
                .and_then(|e| e.trim().parse().ok()),
            _ => None,
        };
        self.ctx.emit_event(Event::Response {
            token,
            result: RequestResult {
                code: status,
                reason: message.reason().unwrap_or_default(),
                expires,
                cseq: pending.cseq,
            },
        });
    }
}

/// The expiry a registrar granted: our contact's `expires` parameter, else the Expires header.
/// Whether a request's Accept headers (if any) let us answer with SDP (RFC 3261 20.1).
fn accepts_sdp(message: &Message) -> bool {
    let mut accepts = message.headers("Accept").peekable();
    if accepts.peek().is_none() {
        return true;
    }
    accepts.flat_map(message::split_list).any(|range| {
        let range = range.split(';').next().unwrap_or("").trim();
        ["application/sdp", "application/*", "*/*"]
            .iter()
            .any(|ok| range.eq_ignore_ascii_case(ok))
    }) || message
        .headers("Accept")
        .all(|value| value.trim().is_empty())
}

fn granted_expiry(message: &Message) -> Option<u32> {
    let mut first = None;
    for value in message.headers("Contact") {
        for contact in message::split_list(value) {
            let expires = message::param_value(message::header_params(contact), "expires")
                .flatten()
                .and_then(|e| e.parse::<u32>().ok());
            if first.is_none() {
                first = expires;
            }
        }
    }
    first.or_else(|| {
        message
            .header("Expires")
            .and_then(|e| e.trim().parse().ok())
    })
}

/// The realm parameter of credentials, to pick the ones meant for us.
fn digest_realm(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find("realm=")?;
    let rest = value[at + 6..].trim_start();
    let realm = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([',', ' ']).next()?,
    };
    Some(realm.to_owned())
}

/// A parameter of Digest credentials (`username="alice"` -> `alice`).
fn digest_param(value: &str, name: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let key = format!("{name}=");
    let at = lower
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || matches!(lower.as_bytes()[i - 1], b' ' | b',' | b'\t'))?
        .0;
    let rest = value[at + key.len()..].trim_start();
    let found = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([',', ' ']).next()?,
    };
    (!found.is_empty()).then(|| found.to_owned())
}

/// The user part of the SIP URI in a From or To value (`"A" <sip:alice@h>;tag=1` -> `alice`).
fn uri_user_of(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let start = lower
        .find("sips:")
        .map(|i| i + 5)
        .or_else(|| lower.find("sip:").map(|i| i + 4))?;
    let rest = &value[start..];
    let end = rest.find(['>', ';', '?', ' ']).unwrap_or(rest.len());
    let (user, _) = rest[..end].split_once('@')?;
    let user = user.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[cfg(test)]
mod tests;

/// Why the transport could not deliver a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// Refused, unreachable, timed out or lost: another target may do better.
    Transport,
    /// The peer's TLS certificate was refused: every target of that host would be refused too.
    TlsRefused,
}
