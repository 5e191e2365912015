//! Lab agent phones: a SIP phone per agent that registers with the dialer (digest), calls in
//! to open its persistent leg, talks when a caller is bridged in, ends the call with `#` after
//! its own talk time, sets a disposition by digit in wrap-up, and pauses at random if asked.
//!
//! The phone's behaviour is [`AgentBrain`], a sans-IO state machine fed what the phone hears
//! and the time; [`AgentPhone`] runs it on a real SIP endpoint and RTP leg.

use crate::LabError;
use crate::audio::{Bank, script};
use crate::dist::Dist;
use crate::hear::Ear;
use crate::link::{aim, local_media, open_leg};
use crate::plan::rng_for;
use media::{Leg, MediaRuntime, PortAllocator};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Serialize;
use sip::{
    CallEvent, Credentials, Endpoint, EndpointConfig, Invite, NameAddr, RegisterSpec, Registration,
    Transport, Uri,
};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The default disposition digits: 1 sale, 2 not interested, 3 callback, 9 do-not-call.
pub const DISPOSITION_DIGITS: [(char, &str); 4] = [
    ('1', "sale"),
    ('2', "not-interested"),
    ('3', "callback"),
    ('9', "do-not-call"),
];

/// The mix of disposition digits agents press in wrap-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispositions {
    weights: Vec<(char, f64)>,
}

impl Default for Dispositions {
    /// 20% sales, 55% not interested, 20% callbacks, 5% do-not-call requests.
    fn default() -> Self {
        Dispositions {
            weights: vec![('1', 20.0), ('2', 55.0), ('3', 20.0), ('9', 5.0)],
        }
    }
}

impl Dispositions {
    /// Draws a digit.
    pub fn pick(&self, rng: &mut impl rand::Rng) -> char {
        let total: f64 = self.weights.iter().map(|w| w.1).sum();
        let mut u = rng.random::<f64>() * total;
        for &(digit, weight) in &self.weights {
            if u < weight {
                return digit;
            }
            u -= weight;
        }
        self.weights.last().map_or('2', |w| w.0)
    }
}

impl FromStr for Dispositions {
    /// `sale=20,not-interested=55,callback=20,do-not-call=5`, or digits: `1=20,2=55,3=20,9=5`.
    type Err = LabError;

    fn from_str(text: &str) -> Result<Dispositions, LabError> {
        let bad = |why: String| LabError::config(format!("dispositions {text:?}"), why);
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("{part:?} is not NAME=WEIGHT")))?;
            let name = name.trim();
            let digit = DISPOSITION_DIGITS
                .iter()
                .find(|(_, n)| *n == name.replace('_', "-"))
                .map(|(d, _)| *d)
                .or_else(|| {
                    let mut chars = name.chars();
                    match (chars.next(), chars.next()) {
                        (Some(d @ '1'..='9'), None) => Some(d),
                        _ => None,
                    }
                })
                .ok_or_else(|| {
                    bad(format!(
                        "{name:?} is neither a digit 1-9 nor a known disposition"
                    ))
                })?;
            let weight: f64 = weight
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| bad(format!("{part:?}: weight is not a number, zero or more")))?;
            weights.push((digit, weight));
        }
        if weights.iter().map(|w| w.1).sum::<f64>() <= 0.0 {
            return Err(bad("every weight is zero".into()));
        }
        Ok(Dispositions { weights })
    }
}

impl fmt::Display for Dispositions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(d, w)| format!("{d}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Random pauses.
#[derive(Debug, Clone, PartialEq)]
pub struct PausePolicy {
    /// Chance of taking a pause after each call's wrap-up (0-1).
    pub chance: f64,
    /// Length of a pause.
    pub length: Dist,
}

/// How agents behave.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentBehaviour {
    /// The agent's own talk time: past it, the agent ends the call with `#` (if the caller did
    /// not hang up first).
    pub talk: Dist,
    /// Wrap-up: from the end of the call to the disposition digit.
    pub wrap: Dist,
    /// The disposition digits' mix.
    pub dispositions: Dispositions,
    /// Pauses between the agent's sentences.
    pub gap: Dist,
    /// Silence after which the agent takes the caller to have hung up.
    pub hangup_silence: Duration,
    /// Random pauses, if any.
    pub pause: Option<PausePolicy>,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        AgentBehaviour {
            talk: Dist::lognormal(90.0, 0.6),
            wrap: Dist::secs(2.0, 6.0),
            dispositions: Dispositions::default(),
            gap: Dist::secs(1.0, 3.0),
            hangup_silence: Duration::from_secs(4),
            pause: None,
        }
    }
}

/// What the agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneState {
    /// Not logged in (registering, calling in, or logged out).
    LoggedOut,
    /// Logged in, waiting for a caller.
    Ready,
    /// A caller is bridged in.
    Talking,
    /// The call ended; the disposition is not set yet.
    WrapUp,
    /// On a break.
    Paused,
}

impl PhoneState {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneState::LoggedOut => "logged_out",
            PhoneState::Ready => "ready",
            PhoneState::Talking => "talking",
            PhoneState::WrapUp => "wrap_up",
            PhoneState::Paused => "paused",
        }
    }
}

/// Something the brain wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// A caller was heard: a call started. Start talking for this long at most.
    Answer {
        /// The agent's talk time for this call.
        talk: Duration,
    },
    /// Stop talking (empty the speech queue).
    StopTalking,
    /// Send `#`: end the customer's call.
    HangUp,
    /// The call is over.
    CallEnded {
        /// Whether the agent ended it (`#`) rather than the caller.
        by_agent: bool,
        /// From the first words heard to the end.
        talked: Duration,
    },
    /// Send this disposition digit.
    Disposition(char),
    /// Go on a break (the hook tells the dialer).
    Pause {
        /// The reason given.
        reason: &'static str,
    },
    /// Back from a break (the hook tells the dialer).
    Resume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ready,
    Talking {
        since: Instant,
        until: Instant,
        heard: Instant,
    },
    WrapUp {
        until: Instant,
    },
    Paused {
        until: Instant,
    },
}

/// An agent's behaviour as a state machine: fed whether a voice is heard and when one was last
/// heard, with the time; answers with [`AgentAction`]s. Deterministic for a seed.
#[derive(Debug, Clone)]
pub struct AgentBrain {
    behaviour: AgentBehaviour,
    rng: Xoshiro256PlusPlus,
    phase: Phase,
}

impl AgentBrain {
    /// A ready agent.
    pub fn new(behaviour: AgentBehaviour, seed: u64) -> AgentBrain {
        AgentBrain {
            behaviour,
            rng: rng_for(seed, "agent", 0),
            phase: Phase::Ready,
        }
    }

    /// The state now.
    pub fn state(&self) -> PhoneState {
        match self.phase {
            Phase::Ready => PhoneState::Ready,
            Phase::Talking { .. } => PhoneState::Talking,
            Phase::WrapUp { .. } => PhoneState::WrapUp,
            Phase::Paused { .. } => PhoneState::Paused,
        }
    }

    /// The next time something may happen without new input (for a sleeping driver).
    pub fn wake_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ready => None,
            Phase::Talking { until, heard, .. } => {
                Some(until.min(heard + self.behaviour.hangup_silence))
            }
            Phase::WrapUp { until } | Phase::Paused { until } => Some(until),
        }
    }

    /// Moves on: `speaking` is whether a voice is heard now, `last_voice` when one was last.
    pub fn tick(
        &mut self,
        now: Instant,
        speaking: bool,
        last_voice: Option<Instant>,
    ) -> Vec<AgentAction> {
        let mut actions = Vec::new();
        match self.phase {
            Phase::Ready | Phase::Paused { .. } if speaking => {
                let talk = self.behaviour.talk.sample(&mut self.rng);
                if matches!(self.phase, Phase::Paused { .. }) {
                    // The dialer bridged a caller anyway: take it, and count the break as over.
                    actions.push(AgentAction::Resume);
                }
                self.phase = Phase::Talking {
                    since: now,
                    until: now + talk,
                    heard: now,
                };
                actions.push(AgentAction::Answer { talk });
            }
            Phase::Ready => {}
            Phase::Paused { until } => {
                if now >= until {
                    self.phase = Phase::Ready;
                    actions.push(AgentAction::Resume);
                }
            }
            Phase::Talking {
                since,
                until,
                heard,
            } => {
                let heard = last_voice.map_or(heard, |t| t.max(heard));
                let heard = if speaking { now } else { heard };
                let by_agent = now >= until;
                let gone = !speaking
                    && now.saturating_duration_since(heard) >= self.behaviour.hangup_silence;
                if by_agent || gone {
                    actions.push(AgentAction::StopTalking);
                    if by_agent {
                        actions.push(AgentAction::HangUp);
                    }
                    // The caller's line went quiet some time ago: the call ended then.
                    let end = if by_agent { now } else { heard };
                    actions.push(AgentAction::CallEnded {
                        by_agent,
                        talked: end.saturating_duration_since(since),
                    });
                    self.phase = Phase::WrapUp {
                        until: now + self.behaviour.wrap.sample(&mut self.rng),
                    };
                } else {
                    self.phase = Phase::Talking {
                        since,
                        until,
                        heard,
                    };
                }
            }
            Phase::WrapUp { until } => {
                if now >= until {
                    let digit = self.behaviour.dispositions.pick(&mut self.rng);
                    actions.push(AgentAction::Disposition(digit));
                    self.phase = Phase::Ready;
                    if let Some(pause) = &self.behaviour.pause
                        && self.rng.random::<f64>() < pause.chance
                    {
                        let length = pause.length.sample(&mut self.rng);
                        self.phase = Phase::Paused {
                            until: now + length,
                        };
                        actions.push(AgentAction::Pause { reason: "break" });
                    }
                }
            }
        }
        actions
    }
}

/// Lets the demo tell the dialer about an agent's breaks (a real agent uses the API's pause
/// button; a SIP phone has no way to say it). Called on the phone's task: keep it quick
/// (spawn anything slow).
pub trait AgentHooks: Send + Sync {
    /// The agent went on a break.
    fn paused(&self, username: &str, reason: &str);
    /// The agent is back.
    fn resumed(&self, username: &str);
}

/// How to run one agent phone.
#[derive(Clone)]
pub struct AgentConfig {
    /// The SIP username (and the Request-URI user of its call-in).
    pub username: String,
    /// The SIP password.
    pub password: String,
    /// The dialer's SIP address (`sip:127.0.0.1:5060`, `;transport=tcp` for TCP).
    pub dialer: Uri,
    /// The address the phone's SIP endpoint binds (port 0 picks one).
    pub bind: SocketAddr,
    /// The phone's RTP address.
    pub rtp_ip: IpAddr,
    /// The receive loops of the phone's leg (a pool's phones share their template's).
    pub media: MediaRuntime,
    /// Register before calling in.
    pub register: bool,
    /// Registration lifetime asked for.
    pub expires: u32,
    /// The Request-URI user of the call-in (the username when `None`).
    pub target_user: Option<String>,
    /// How the agent behaves.
    pub behaviour: AgentBehaviour,
    /// The agent's seed.
    pub seed: u64,
    /// Call in again this long after the dialer ended the agent's leg or refused it (`None`:
    /// stay logged out).
    pub reconnect: Option<Duration>,
    /// Tells someone about pauses.
    pub hooks: Option<Arc<dyn AgentHooks>>,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("username", &self.username)
            .field("dialer", &self.dialer.to_string())
            .field("behaviour", &self.behaviour)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// An agent on 127.0.0.1 calling in to `dialer`, registering first, default behaviour.
    pub fn new(username: impl Into<String>, password: impl Into<String>, dialer: Uri) -> Self {
        AgentConfig {
            username: username.into(),
            password: password.into(),
            dialer,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            rtp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            media: MediaRuntime::default(),
            register: true,
            expires: 300,
            target_user: None,
            behaviour: AgentBehaviour::default(),
            seed: 1,
            reconnect: Some(Duration::from_secs(5)),
            hooks: None,
        }
    }
}

/// One agent phone's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentCounters {
    /// Successful registrations (refreshes included).
    pub registrations: u64,
    /// Refused or failed registrations.
    pub registration_failures: u64,
    /// Call-ins the dialer answered (logins).
    pub logins: u64,
    /// Call-ins refused or failed.
    pub login_failures: u64,
    /// Times the dialer ended the agent's leg.
    pub dialer_hangups: u64,
    /// Callers heard (calls taken).
    pub calls: u64,
    /// Calls the agent ended with `#`.
    pub agent_hangups: u64,
    /// Calls the caller ended.
    pub caller_hangups: u64,
    /// Talk time, summed, in ms.
    pub talk_ms: u64,
    /// Dispositions sent, by digit.
    pub dispositions: BTreeMap<char, u64>,
    /// Breaks taken.
    pub pauses: u64,
}

impl AgentCounters {
    /// Adds another agent's counters to these.
    pub fn add(&mut self, other: &AgentCounters) {
        self.registrations += other.registrations;
        self.registration_failures += other.registration_failures;
        self.logins += other.logins;
        self.login_failures += other.login_failures;
        self.dialer_hangups += other.dialer_hangups;
        self.calls += other.calls;
        self.agent_hangups += other.agent_hangups;
        self.caller_hangups += other.caller_hangups;
        self.talk_ms += other.talk_ms;
        for (digit, n) in &other.dispositions {
            *self.dispositions.entry(*digit).or_insert(0) += n;
        }
        self.pauses += other.pauses;
    }
}

#[derive(Debug)]
struct Status {
    state: PhoneState,
    since: Instant,
    counters: AgentCounters,
    last_error: Option<String>,
}

/// A running agent phone. Dropping it stops the phone (without a clean logout: call
/// [`logout`](AgentPhone::logout) for that).
pub struct AgentPhone {
    username: String,
    status: Arc<Mutex<Status>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    endpoint: Endpoint,
}

impl fmt::Debug for AgentPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentPhone")
            .field("username", &self.username)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Drop for AgentPhone {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.endpoint.shutdown();
    }
}

fn lock(status: &Mutex<Status>) -> MutexGuard<'_, Status> {
    status
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AgentPhone {
    /// Binds the phone's SIP endpoint and starts it: register, call in, work.
    pub async fn start(config: AgentConfig, bank: &Bank) -> Result<AgentPhone, LabError> {
        let transport = config.dialer.transport().unwrap_or(Transport::Udp);
        let mut endpoint_config = EndpointConfig::udp(config.bind);
        if transport == Transport::Tcp {
            endpoint_config.tcp = vec![config.bind];
        }
        endpoint_config.user_agent = format!("dialer-lab-phone/{}", config.username);
        let (endpoint, mut incoming) = Endpoint::bind(endpoint_config).await?;
        let ports = PortAllocator::new(config.rtp_ip, 0..=0)?;
        // Agent phones take no direct calls: refuse whatever comes in.
        tokio::spawn(async move {
            while let Some(call) = incoming.next_call().await {
                let _ = call.reject(486).await;
            }
        });
        let status = Arc::new(Mutex::new(Status {
            state: PhoneState::LoggedOut,
            since: Instant::now(),
            counters: AgentCounters::default(),
            last_error: None,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let runner = Runner {
            brain: AgentBrain::new(config.behaviour.clone(), config.seed),
            speech_rng: rng_for(config.seed, "speech", 0),
            config,
            endpoint: endpoint.clone(),
            ports,
            agent_lines: bank.agent_lines.clone(),
            status: status.clone(),
            stop: stop_rx,
            registration: None,
        };
        let username = runner.config.username.clone();
        let task = tokio::spawn(runner.run());
        Ok(AgentPhone {
            username,
            status,
            stop,
            task: Some(task),
            endpoint,
        })
    }

    /// The agent's username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The phone's SIP address (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr(Transport::Udp)
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }

    /// What the agent is doing, and since when.
    pub fn state(&self) -> (PhoneState, Instant) {
        let status = lock(&self.status);
        (status.state, status.since)
    }

    /// The agent's counters.
    pub fn counters(&self) -> AgentCounters {
        lock(&self.status).counters.clone()
    }

    /// The last error met (a refused registration or call-in), if any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.status).last_error.clone()
    }

    /// Logs out: hangs up the leg (BYE), removes the registration, and stops the phone.
    pub async fn logout(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

struct Runner {
    config: AgentConfig,
    brain: AgentBrain,
    speech_rng: Xoshiro256PlusPlus,
    endpoint: Endpoint,
    ports: PortAllocator,
    agent_lines: Arc<[media::Prompt]>,
    status: Arc<Mutex<Status>>,
    stop: watch::Receiver<bool>,
    registration: Option<Registration>,
}

/// How a logged-in session ended.
enum Session {
    /// The dialer hung up the leg, or the call-in failed.
    Lost,
    /// We were told to stop.
    Stopped,
}

impl Runner {
    fn set_state(&self, state: PhoneState) {
        let mut status = lock(&self.status);
        if status.state != state {
            status.state = state;
            status.since = Instant::now();
        }
    }

    fn count(&self, f: impl FnOnce(&mut AgentCounters)) {
        f(&mut lock(&self.status).counters);
    }

    fn error(&self, error: String) {
        tracing::info!(agent = %self.config.username, %error, "lab agent");
        lock(&self.status).last_error = Some(error);
    }

    /// Sleeps unless stopped first; true when stopped.
    async fn pause_or_stop(&mut self, d: Duration) -> bool {
        if *self.stop.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => *self.stop.borrow(),
            _ = self.stop.changed() => true,
        }
    }

    async fn register(&mut self) -> bool {
        let spec = RegisterSpec {
            registrar: self.config.dialer.clone(),
            user: self.config.username.clone(),
            password: self.config.password.clone(),
            expires: self.config.expires,
            transport: None,
            auth_user: None,
            outbound_proxy: None,
        };
        match self.endpoint.register(spec).await {
            Ok(registration) => {
                self.count(|c| c.registrations += 1);
                self.registration = Some(registration);
                true
            }
            Err(err) => {
                self.count(|c| c.registration_failures += 1);
                self.error(format!("registration refused: {err}"));
                false
            }
        }
    }

    async fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if *self.stop.borrow() {
                break;
            }
            if self.config.register && self.registration.is_none() && !self.register().await {
                if self.pause_or_stop(backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
            match self.session().await {
                Session::Stopped => break,
                Session::Lost => {}
            }
            self.set_state(PhoneState::LoggedOut);
            let Some(wait) = self.config.reconnect else {
                // Stay logged out until told to stop.
                let _ = self.stop.changed().await;
                break;
            };
            if self.pause_or_stop(wait.max(backoff)).await {
                break;
            }
        }
        self.set_state(PhoneState::LoggedOut);
        if let Some(registration) = self.registration.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), registration.unregister()).await;
        }
        self.endpoint.shutdown();
    }

    /// Calls in and works until the leg ends or we are stopped.
    async fn session(&mut self) -> Session {
        let (leg, mut leg_events) = match open_leg(
            &self.config.media,
            &self.ports,
            format!("lab-agent-{}", self.config.username),
        ) {
            Ok(leg) => leg,
            Err(err) => {
                self.error(format!("no RTP port: {err}"));
                return Session::Lost;
            }
        };
        let ear = Ear::new(None);
        leg.set_listener(Some(ear.listener()));
        let dialer = &self.config.dialer;
        let user = self
            .config
            .target_user
            .as_deref()
            .unwrap_or(&self.config.username);
        let mut invite = Invite::new(
            dialer.with_user(user),
            NameAddr {
                display: Some(self.config.username.clone()),
                uri: dialer.with_user(&self.config.username),
            },
            local_media(&leg),
        );
        invite.credentials = Some(Credentials::new(
            self.config.username.clone(),
            self.config.password.clone(),
        ));
        let mut call = match self.endpoint.invite(invite).await {
            Ok(call) => call,
            Err(err) => {
                self.count(|c| c.login_failures += 1);
                self.error(format!("call-in failed: {err}"));
                return Session::Lost;
            }
        };
        // Wait for the answer.
        loop {
            tokio::select! {
                event = call.next_event() => match event {
                    Some(CallEvent::Answered { sdp }) => {
                        if let Some(sdp) = sdp {
                            aim(&leg, &sdp);
                        }
                        break;
                    }
                    Some(CallEvent::Ended(end)) => {
                        self.count(|c| c.login_failures += 1);
                        self.error(format!("call-in refused: {:?} ({:?})", end.outcome, end.code));
                        return Session::Lost;
                    }
                    Some(_) => {}
                    None => return Session::Lost,
                },
                _ = self.stop.changed() => {
                    call.hangup();
                    return Session::Stopped;
                }
            }
        }
        self.count(|c| c.logins += 1);
        self.brain = AgentBrain::new(
            self.config.behaviour.clone(),
            self.config.seed ^ self.counters_logins(),
        );
        self.set_state(PhoneState::Ready);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let refresh_every = Duration::from_secs(u64::from(self.config.expires.max(60) / 2));
        let mut refresh_at = Instant::now() + refresh_every;
        let ended = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = Instant::now();
                    let actions = self.brain.tick(now, ear.speaking(now), ear.last_voice());
                    for action in actions {
                        self.act(&leg, action);
                    }
                    self.set_state(self.brain.state());
                    if self.config.register && now >= refresh_at {
                        refresh_at = now + refresh_every;
                        if let Some(registration) = self.registration.as_mut() {
                            match registration.refresh().await {
                                Ok(_) => self.count(|c| c.registrations += 1),
                                Err(err) => {
                                    self.count(|c| c.registration_failures += 1);
                                    self.error(format!("registration refresh refused: {err}"));
                                }
                            }
                        }
                    }
                }
                event = call.next_event() => match event {
                    Some(CallEvent::MediaChanged { sdp, .. }) => { aim(&leg, &sdp); }
                    Some(CallEvent::Ended(_)) | None => break Session::Lost,
                    Some(_) => {}
                },
                _ = leg_events.recv() => {}
                _ = self.stop.changed() => break Session::Stopped,
            }
        };
        leg.stop_playback();
        match ended {
            Session::Lost => {
                self.count(|c| c.dialer_hangups += 1);
                self.error("the dialer ended the agent's leg".into());
            }
            Session::Stopped => {
                call.hangup();
                let _ = tokio::time::timeout(Duration::from_secs(10), call.wait_end()).await;
            }
        }
        leg.close();
        ended
    }

    fn counters_logins(&self) -> u64 {
        lock(&self.status).counters.logins
    }

    fn act(&mut self, leg: &Leg, action: AgentAction) {
        let agent = &self.config.username;
        match action {
            AgentAction::Answer { talk } => {
                tracing::debug!(%agent, ?talk, "caller heard");
                self.count(|c| c.calls += 1);
                for part in script(
                    &self.agent_lines,
                    talk,
                    &self.config.behaviour.gap,
                    &mut self.speech_rng,
                ) {
                    leg.play(&part);
                }
            }
            AgentAction::StopTalking => leg.stop_playback(),
            AgentAction::HangUp => {
                if let Err(err) = leg.send_dtmf("#") {
                    self.error(format!("cannot send #: {err}"));
                }
            }
            AgentAction::CallEnded { by_agent, talked } => {
                tracing::debug!(%agent, by_agent, ?talked, "call ended");
                self.count(|c| {
                    if by_agent {
                        c.agent_hangups += 1;
                    } else {
                        c.caller_hangups += 1;
                    }
                    c.talk_ms += talked.as_millis() as u64;
                });
            }
            AgentAction::Disposition(digit) => {
                if let Err(err) = leg.send_dtmf(&digit.to_string()) {
                    self.error(format!("cannot send disposition {digit}: {err}"));
                }
                self.count(|c| *c.dispositions.entry(digit).or_insert(0) += 1);
            }
            AgentAction::Pause { reason } => {
                self.count(|c| c.pauses += 1);
                if let Some(hooks) = &self.config.hooks {
                    hooks.paused(agent, reason);
                }
            }
            AgentAction::Resume => {
                if let Some(hooks) = &self.config.hooks {
                    hooks.resumed(agent);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour() -> AgentBehaviour {
        AgentBehaviour {
            talk: Dist::Fixed(Duration::from_secs(30)),
            wrap: Dist::Fixed(Duration::from_secs(3)),
            dispositions: "sale=1".parse().unwrap(),
            gap: Dist::Fixed(Duration::from_secs(1)),
            hangup_silence: Duration::from_secs(4),
            pause: None,
        }
    }

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn the_agent_ends_a_long_call_with_hash_then_sets_the_disposition() {
        let t0 = Instant::now();
        let mut brain = AgentBrain::new(behaviour(), 1);
        assert!(brain.tick(t0, false, None).is_empty());
        assert_eq!(
            brain.tick(secs(t0, 1.0), true, Some(secs(t0, 1.0))),
            vec![AgentAction::Answer {
                talk: Duration::from_secs(30)
            }]
        );
        assert_eq!(brain.state(), PhoneState::Talking);
        // The caller talks with pauses shorter than the hang-up silence.
        for s in 2..31 {
            let speaking = s % 3 != 0;
            let last = if speaking {
                secs(t0, s as f64)
            } else {
                secs(t0, s as f64 - 1.0)
            };
            assert!(
                brain
                    .tick(secs(t0, s as f64), speaking, Some(last))
                    .is_empty(),
                "at {s}s"
            );
        }
        assert_eq!(
            brain.tick(secs(t0, 31.0), true, Some(secs(t0, 31.0))),
            vec![
                AgentAction::StopTalking,
                AgentAction::HangUp,
                AgentAction::CallEnded {
                    by_agent: true,
                    talked: Duration::from_secs(30)
                }
            ]
        );
        assert_eq!(brain.state(), PhoneState::WrapUp);
        // The caller's last words in flight do not start a call during wrap-up.
        assert!(
            brain
                .tick(secs(t0, 32.0), true, Some(secs(t0, 32.0)))
                .is_empty()
        );
        assert_eq!(
            brain.tick(secs(t0, 34.0), false, Some(secs(t0, 32.0))),
            vec![AgentAction::Disposition('1')]
        );
        assert_eq!(brain.state(), PhoneState::Ready);
    }

    #[test]
    fn a_caller_who_goes_quiet_has_hung_up() {
        let t0 = Instant::now();
        let mut brain = AgentBrain::new(behaviour(), 1);
        brain.tick(t0, true, Some(t0));
        assert!(
            brain
                .tick(secs(t0, 5.0), true, Some(secs(t0, 5.0)))
                .is_empty()
        );
        assert!(
            brain
                .tick(secs(t0, 8.0), false, Some(secs(t0, 5.5)))
                .is_empty()
        );
        assert_eq!(
            brain.tick(secs(t0, 9.6), false, Some(secs(t0, 5.5))),
            vec![
                AgentAction::StopTalking,
                AgentAction::CallEnded {
                    by_agent: false,
                    talked: Duration::from_millis(5500)
                }
            ]
        );
        assert_eq!(brain.wake_at(), Some(secs(t0, 12.6)));
    }

    #[test]
    fn pauses_are_taken_and_ended_and_a_bridged_caller_ends_them() {
        let t0 = Instant::now();
        let mut b = behaviour();
        b.pause = Some(PausePolicy {
            chance: 1.0,
            length: Dist::Fixed(Duration::from_secs(60)),
        });
        let mut brain = AgentBrain::new(b, 1);
        brain.tick(t0, true, Some(t0));
        brain.tick(secs(t0, 31.0), false, Some(t0));
        assert_eq!(
            brain.tick(secs(t0, 40.0), false, None),
            vec![
                AgentAction::Disposition('1'),
                AgentAction::Pause { reason: "break" }
            ]
        );
        assert_eq!(brain.state(), PhoneState::Paused);
        assert_eq!(
            brain.tick(secs(t0, 100.0), false, None),
            vec![AgentAction::Resume]
        );
        brain.tick(secs(t0, 101.0), true, Some(secs(t0, 101.0)));
        brain.tick(secs(t0, 131.0), false, Some(secs(t0, 101.0)));
        brain.tick(secs(t0, 140.0), false, None);
        assert_eq!(brain.state(), PhoneState::Paused);
        let actions = brain.tick(secs(t0, 141.0), true, Some(secs(t0, 141.0)));
        assert_eq!(actions[0], AgentAction::Resume);
        assert_eq!(brain.state(), PhoneState::Talking);
    }

    #[test]
    fn dispositions_parse_by_name_or_digit_and_follow_the_mix() {
        let d: Dispositions = "sale=1,2=1,do-not-call=2".parse().unwrap();
        assert_eq!(d.to_string(), "1=1,2=1,9=2");
        let mut rng = rng_for(5, "t", 0);
        let nines = (0..4000).filter(|_| d.pick(&mut rng) == '9').count();
        assert!((1800..2200).contains(&nines), "{nines}");
        for bad in ["", "sale", "0=1", "#=1", "sale=-1", "maybe=3", "sale=0"] {
            assert!(bad.parse::<Dispositions>().is_err(), "{bad:?}");
        }
    }
}
