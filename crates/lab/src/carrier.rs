//! The lab carrier: a SIP trunk on loopback that answers the dialer's INVITEs the way a
//! telephone network does, per a seeded outcome mix, with real RTP both ways, and keeps a log
//! of every call (what it did, what it heard) and counters.

use crate::LabError;
use crate::audio::{Bank, script, silence, sit_tones};
use crate::hear::{Ear, Heard};
use crate::link::{aim, local_media, open_leg};
use crate::plan::{Callee, Plan, Planner, rng_for};
use media::{Leg, LegEvent, LegEvents, MediaRuntime, PortAllocator, Prompt};
use serde::Serialize;
use sip::{AuthConfig, CallEvent, Endpoint, EndpointConfig, IncomingCall, Secret, Transport, Uri};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// How to run a carrier.
#[derive(Debug, Clone)]
pub struct CarrierConfig {
    /// SIP address to listen on (UDP; port 0 picks one).
    pub sip: SocketAddr,
    /// Also listen on TCP at the same address.
    pub tcp: bool,
    /// Address of the RTP legs.
    pub rtp_ip: IpAddr,
    /// RTP port range (`0..=0`: the system picks).
    pub rtp_ports: RangeInclusive<u16>,
    /// The receive loops of the carrier's legs (clone one runtime into the agents' configs to
    /// share its loops).
    pub media: MediaRuntime,
    /// The outcome mix, overrides, timings and seed.
    pub planner: Planner,
    /// The greetings and sentences.
    pub bank: Bank,
    /// Challenge every INVITE for these digest credentials (username, password).
    pub credentials: Option<(String, String)>,
    /// Keep this much of each answered call's received audio in its record (for tests).
    pub keep_audio: Option<Duration>,
    /// Most call records kept (the oldest are dropped; counters keep counting).
    pub max_records: usize,
}

impl CarrierConfig {
    /// A carrier on 127.0.0.1 (any port) with the default mix and timings, seed 1.
    pub fn new(bank: Bank) -> Self {
        CarrierConfig {
            sip: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tcp: false,
            rtp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rtp_ports: 0..=0,
            media: MediaRuntime::default(),
            planner: Planner {
                mix: crate::Mix::default(),
                overrides: Vec::new(),
                behaviour: crate::Behaviour::default(),
                seed: 1,
            },
            bank,
            credentials: None,
            keep_audio: None,
            max_records: 20_000,
        }
    }
}

/// How a call ended, from the carrier's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Ending {
    /// The callee hung up (sent BYE): `why` says which rule (`talk done`, `silent call`,
    /// `message done`, `no message`, `message limit`).
    Callee {
        /// The rule that ended it.
        why: &'static str,
    },
    /// The dialer hung up (BYE) after the answer.
    Dialer,
    /// The dialer cancelled before the final response.
    Cancelled,
    /// The carrier refused the call with this final status (486, 404, 503, 480).
    Refused {
        /// The status sent.
        code: u16,
    },
    /// Something went wrong on the carrier's side.
    Failed {
        /// What.
        why: String,
    },
    /// The carrier was shut down during the call.
    Shutdown,
}

/// One thing the carrier did or saw, at a time since the INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Milliseconds since the INVITE arrived.
    pub at_ms: u64,
    /// What (`180`, `200`, `ACK`, `greeting played`, `BYE received`, ...).
    pub what: String,
}

/// Everything about one call to the carrier.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// The Call-ID.
    pub call_id: String,
    /// The number called (the Request-URI's user).
    pub number: String,
    /// The caller ID presented (From user).
    pub caller_id: Option<String>,
    /// The caller's display name.
    pub caller_name: Option<String>,
    /// What the carrier decided to do.
    pub plan: Plan,
    /// The greeting played (corpus file), if answered.
    pub greeting: Option<String>,
    /// Milliseconds from the INVITE to the answer.
    pub answered_ms: Option<u64>,
    /// Milliseconds from the INVITE to the end.
    pub ended_ms: u64,
    /// How it ended.
    pub ending: Ending,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What the carrier received after the answer (or during early media).
    pub heard: Heard,
    /// For a machine: where in the received audio (ms) the beep ended.
    pub beep_at_ms: Option<u64>,
    /// The first part of the received audio (8 kHz), if the carrier keeps audio.
    #[serde(skip)]
    pub audio: Vec<i16>,
}

impl CallRecord {
    /// Whether a person heard a voice (an agent or a message) after answering.
    pub fn heard_voice(&self) -> bool {
        self.heard.voiced_ms > 0 && !self.heard.segments.is_empty()
    }

    /// For a machine: voice received after the beep, in ms (a left message).
    pub fn message_ms(&self) -> u64 {
        self.beep_at_ms
            .map_or(0, |beep| self.heard.voice_after(beep))
    }
}

/// The carrier's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CarrierCounters {
    /// INVITEs taken (after authentication).
    pub calls: u64,
    /// Calls not finished yet.
    pub in_progress: u64,
    /// Calls planned as live answers.
    pub human: u64,
    /// Calls planned as answering machines.
    pub machine: u64,
    /// Calls planned busy.
    pub busy: u64,
    /// Calls planned not to be answered.
    pub no_answer: u64,
    /// Calls planned as invalid numbers (SIT, 404).
    pub sit: u64,
    /// Calls planned unavailable (503).
    pub unavailable: u64,
    /// Calls answered with 200.
    pub answered: u64,
    /// Calls the dialer cancelled before a final response.
    pub cancelled: u64,
    /// Answered calls the dialer hung up.
    pub dialer_hangups: u64,
    /// Answered calls the callee hung up.
    pub callee_hangups: u64,
    /// Live answers that heard a voice (an agent or a message).
    pub connected: u64,
    /// Live answers that heard nobody and hung up (silent calls).
    pub silent: u64,
    /// Machines that received at least a second of voice after the beep.
    pub messages: u64,
    /// Digest challenges sent.
    pub challenges: u64,
}

impl CarrierCounters {
    fn count_plan(&mut self, outcome: Callee) {
        *match outcome {
            Callee::Human => &mut self.human,
            Callee::Machine => &mut self.machine,
            Callee::Busy => &mut self.busy,
            Callee::NoAnswer => &mut self.no_answer,
            Callee::Sit => &mut self.sit,
            Callee::Unavailable => &mut self.unavailable,
        } += 1;
    }
}

struct Shared {
    planner: Planner,
    bank: Bank,
    ports: PortAllocator,
    media: MediaRuntime,
    keep_audio: Option<Duration>,
    max_records: usize,
    records: Mutex<VecDeque<CallRecord>>,
    attempts: Mutex<HashMap<String, u64>>,
    counters: Mutex<CarrierCounters>,
    recorded: Notify,
    stop: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running lab carrier. Dropping it stops it.
pub struct Carrier {
    endpoint: Endpoint,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carrier")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.accept.abort();
        self.endpoint.shutdown();
    }
}

impl Carrier {
    /// Binds the carrier's SIP endpoint and starts answering.
    pub async fn start(config: CarrierConfig) -> Result<Carrier, LabError> {
        let mut endpoint_config = EndpointConfig::udp(config.sip);
        if config.tcp {
            endpoint_config.tcp = vec![config.sip];
        }
        endpoint_config.user_agent = "dialer-lab-carrier".into();
        endpoint_config.incoming_queue = 1024;
        if let Some((user, password)) = config.credentials.clone() {
            let lookup =
                move |name: &str| (name == user).then(|| Secret::password(password.clone()));
            endpoint_config.auth = Some(AuthConfig::new("lab-carrier", Arc::new(lookup)));
        }
        let (endpoint, mut incoming) = Endpoint::bind(endpoint_config).await?;
        let ports = PortAllocator::new(config.rtp_ip, config.rtp_ports.clone())?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            planner: config.planner,
            bank: config.bank,
            ports,
            media: config.media,
            keep_audio: config.keep_audio,
            max_records: config.max_records.max(1),
            records: Mutex::new(VecDeque::new()),
            attempts: Mutex::new(HashMap::new()),
            counters: Mutex::new(CarrierCounters::default()),
            recorded: Notify::new(),
            stop: stop_rx,
        });
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Some(call) = incoming.next_call().await {
                    let shared = shared.clone();
                    tokio::spawn(async move { run_call(shared, call).await });
                }
            })
        };
        tracing::info!(addr = ?endpoint.local_addr(Transport::Udp), "lab carrier started");
        Ok(Carrier {
            endpoint,
            shared,
            stop: stop_tx,
            accept,
        })
    }

    /// The SIP address (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr(Transport::Udp)
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }

    /// The receive loops of the carrier's legs (for agent phones to share).
    pub fn media(&self) -> &MediaRuntime {
        &self.shared.media
    }

    /// The trunk URI a dialer should send its INVITEs to (`sip:127.0.0.1:PORT`).
    pub fn uri(&self) -> Uri {
        Uri::from_addr(None, self.addr())
    }

    /// The counters now.
    pub fn counters(&self) -> CarrierCounters {
        let mut counters = lock(&self.shared.counters).clone();
        counters.challenges = self.endpoint.stats().auth_challenges;
        counters
    }

    /// The records of finished calls, oldest first.
    pub fn records(&self) -> Vec<CallRecord> {
        lock(&self.shared.records).iter().cloned().collect()
    }

    /// Waits up to `timeout` for a finished call's record matching `pred`.
    pub async fn wait_record(
        &self,
        timeout: Duration,
        pred: impl Fn(&CallRecord) -> bool,
    ) -> Option<CallRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.recorded.notified();
            if let Some(record) = lock(&self.shared.records).iter().find(|r| pred(r)) {
                return Some(record.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Stops taking calls, hangs up the ones in progress, and waits (up to `grace`) for them
    /// to be recorded.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + grace;
        while lock(&self.shared.counters).in_progress > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.accept.abort();
        self.endpoint.shutdown();
    }
}

/// One call's story as it is written.
struct Story {
    started: Instant,
    steps: Vec<Step>,
}

impl Story {
    fn step(&mut self, what: impl Into<String>) {
        self.steps.push(Step {
            at_ms: self.started.elapsed().as_millis() as u64,
            what: what.into(),
        });
    }

    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// How waiting before the answer ended.
enum Wait {
    Elapsed,
    Cancelled,
    Stopped,
}

async fn ring_until(
    call: &mut IncomingCall,
    until: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Wait {
    if *stop.borrow() {
        return Wait::Stopped;
    }
    let sleep = tokio::time::sleep_until(until.into());
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return Wait::Elapsed,
            event = call.next_event() => match event {
                Some(CallEvent::Ended(_)) | None => return Wait::Cancelled,
                Some(_) => {}
            },
            _ = stop.changed() => return Wait::Stopped,
        }
    }
}

/// What the answered part of a call needs.
struct Answered<'a> {
    call: sip::Call,
    leg: Leg,
    events: LegEvents,
    ear: Ear,
    story: &'a mut Story,
    stop: watch::Receiver<bool>,
}

/// What happened in the answered part.
struct AfterAnswer {
    ending: Ending,
    beep_at_ms: Option<u64>,
}

async fn run_call(shared: Arc<Shared>, mut incoming: IncomingCall) {
    let started = Instant::now();
    let info = incoming.info().clone();
    let number = info
        .to_user
        .clone()
        .or_else(|| {
            info.request_uri
                .parse::<Uri>()
                .ok()
                .and_then(|u| u.user().map(str::to_owned))
        })
        .unwrap_or_default();
    let attempt = {
        let mut attempts = lock(&shared.attempts);
        let n = attempts.entry(number.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    let plan = shared
        .planner
        .plan(&number, attempt, shared.bank.greeting_counts());
    {
        let mut counters = lock(&shared.counters);
        counters.calls += 1;
        counters.in_progress += 1;
        counters.count_plan(plan.outcome);
    }
    let span =
        tracing::debug_span!("lab_call", call_id = %info.call_id, %number, outcome = %plan.outcome);
    let _guard = span.enter();
    let mut story = Story {
        started,
        steps: Vec::new(),
    };
    story.step("INVITE");
    let mut stop = shared.stop.clone();
    let mut greeting = None;
    let mut answered_ms = None;
    let mut ear = None;
    let mut beep_at_ms = None;
    let ending = 'call: {
        let post_dial = started + plan.post_dial;
        let final_at = started + plan.ring;
        match plan.outcome {
            Callee::Unavailable => match ring_until(&mut incoming, final_at, &mut stop).await {
                Wait::Elapsed => refuse(incoming, 503, &mut story).await,
                Wait::Cancelled => Ending::Cancelled,
                Wait::Stopped => Ending::Shutdown,
            },
            Callee::Sit => {
                match ring_until(&mut incoming, final_at, &mut stop).await {
                    Wait::Elapsed => {}
                    Wait::Cancelled => break 'call Ending::Cancelled,
                    Wait::Stopped => break 'call Ending::Shutdown,
                }
                let (leg, mut events) =
                    match open_leg(&shared.media, &shared.ports, format!("lab-sit-{number}")) {
                        Ok(leg) => leg,
                        Err(err) => {
                            break 'call Ending::Failed {
                                why: err.to_string(),
                            };
                        }
                    };
                let listening = Ear::new(None);
                leg.set_listener(Some(listening.listener()));
                if let Some(offer) = &info.offer {
                    aim(&leg, offer);
                }
                if let Err(err) = incoming.progress(183, Some(&local_media(&leg))).await {
                    break 'call Ending::Failed {
                        why: err.to_string(),
                    };
                }
                story.step("183 with early media");
                let sit = sit_tones(shared.planner.behaviour.sit);
                let id = leg.play(&sit);
                story.step(format!("SIT {:?}", shared.planner.behaviour.sit));
                ear = Some(listening);
                let done = started + plan.ring + sit.duration() + Duration::from_secs(5);
                loop {
                    tokio::select! {
                        event = events.recv() => match event {
                            Some(LegEvent::PlaybackFinished { id: finished, .. }) if finished == id => break,
                            Some(_) => {}
                            None => break,
                        },
                        event = incoming.next_event() => if matches!(event, Some(CallEvent::Ended(_)) | None) {
                            break 'call Ending::Cancelled;
                        },
                        _ = tokio::time::sleep_until(done.into()) => break,
                        _ = stop.changed() => break 'call Ending::Shutdown,
                    }
                }
                refuse(incoming, 404, &mut story).await
            }
            Callee::Busy | Callee::NoAnswer | Callee::Human | Callee::Machine => {
                match ring_until(&mut incoming, post_dial, &mut stop).await {
                    Wait::Elapsed => {}
                    Wait::Cancelled => break 'call Ending::Cancelled,
                    Wait::Stopped => break 'call Ending::Shutdown,
                }
                if let Err(err) = incoming.ringing().await {
                    break 'call Ending::Failed {
                        why: err.to_string(),
                    };
                }
                story.step("180");
                match ring_until(&mut incoming, final_at, &mut stop).await {
                    Wait::Elapsed => {}
                    Wait::Cancelled => break 'call Ending::Cancelled,
                    Wait::Stopped => break 'call Ending::Shutdown,
                }
                match plan.outcome {
                    Callee::Busy => break 'call refuse(incoming, 486, &mut story).await,
                    // Rang out with nobody cancelling: the network gives up.
                    Callee::NoAnswer => break 'call refuse(incoming, 480, &mut story).await,
                    _ => {}
                }
                let (leg, events) =
                    match open_leg(&shared.media, &shared.ports, format!("lab-{number}")) {
                        Ok(leg) => leg,
                        Err(err) => {
                            break 'call Ending::Failed {
                                why: err.to_string(),
                            };
                        }
                    };
                if let Some(offer) = &info.offer {
                    aim(&leg, offer);
                }
                let listening = Ear::new(shared.keep_audio);
                leg.set_listener(Some(listening.listener()));
                let call = match incoming.answer(local_media(&leg)).await {
                    Ok(call) => call,
                    Err(err) => {
                        break 'call Ending::Failed {
                            why: err.to_string(),
                        };
                    }
                };
                answered_ms = Some(story.ms());
                lock(&shared.counters).answered += 1;
                story.step("200");
                ear = Some(listening.clone());
                let answered = Answered {
                    call,
                    leg,
                    events,
                    ear: listening,
                    story: &mut story,
                    stop: stop.clone(),
                };
                let after = if plan.outcome == Callee::Human {
                    let g = &shared.bank.humans[plan.greeting.min(shared.bank.humans.len() - 1)];
                    greeting = Some(g.file.clone());
                    human(&shared, &plan, g.prompt.clone(), answered).await
                } else {
                    let g =
                        &shared.bank.machines[plan.greeting.min(shared.bank.machines.len() - 1)];
                    greeting = Some(g.file.clone());
                    machine(&shared, g.prompt.clone(), answered).await
                };
                beep_at_ms = after.beep_at_ms;
                after.ending
            }
        }
    };
    match &ending {
        Ending::Cancelled => story.step("CANCEL received"),
        Ending::Dialer => story.step("BYE received"),
        _ => {}
    }
    let heard = ear.as_ref().map(Ear::heard).unwrap_or_default();
    let record = CallRecord {
        call_id: info.call_id.clone(),
        number,
        caller_id: info.from_user.clone(),
        caller_name: info.from_display.clone(),
        plan,
        greeting,
        answered_ms,
        ended_ms: story.ms(),
        ending,
        steps: story.steps,
        heard,
        beep_at_ms,
        audio: ear.as_ref().map(Ear::audio).unwrap_or_default(),
    };
    tracing::debug!(ending = ?record.ending, voiced_ms = record.heard.voiced_ms, "lab call ended");
    {
        let mut counters = lock(&shared.counters);
        counters.in_progress = counters.in_progress.saturating_sub(1);
        match &record.ending {
            Ending::Cancelled => counters.cancelled += 1,
            Ending::Dialer => counters.dialer_hangups += 1,
            Ending::Callee { .. } => counters.callee_hangups += 1,
            _ => {}
        }
        if record.plan.outcome == Callee::Human && record.answered_ms.is_some() {
            if record.heard_voice() {
                counters.connected += 1;
            } else if matches!(record.ending, Ending::Callee { why: "silent call" }) {
                counters.silent += 1;
            }
        }
        if record.plan.outcome == Callee::Machine && record.message_ms() >= 1000 {
            counters.messages += 1;
        }
    }
    {
        let mut records = lock(&shared.records);
        if records.len() >= shared.max_records {
            records.pop_front();
        }
        records.push_back(record);
    }
    shared.recorded.notify_waiters();
}

async fn refuse(call: IncomingCall, code: u16, story: &mut Story) -> Ending {
    match call.reject(code).await {
        Ok(()) => {
            story.step(code.to_string());
            Ending::Refused { code }
        }
        Err(err) => Ending::Failed {
            why: err.to_string(),
        },
    }
}

/// Something that happened while answered.
enum Tick {
    Ended,
    Stopped,
    Timer,
}

impl Answered<'_> {
    /// Waits for the next tick, handling call and leg events on the way.
    async fn next(&mut self, tick: &mut tokio::time::Interval) -> Tick {
        loop {
            tokio::select! {
                _ = tick.tick() => return Tick::Timer,
                event = self.call.next_event() => match event {
                    Some(CallEvent::Ended(_)) | None => return Tick::Ended,
                    Some(CallEvent::Confirmed { sdp }) => {
                        self.story.step("ACK");
                        if let Some(sdp) = sdp {
                            aim(&self.leg, &sdp);
                        }
                    }
                    Some(CallEvent::MediaChanged { sdp, .. }) => {
                        self.story.step("re-INVITE");
                        aim(&self.leg, &sdp);
                    }
                    Some(_) => {}
                },
                event = self.events.recv() => {
                    if let Some(LegEvent::Dtmf { digit }) = event {
                        self.ear.digit(digit);
                    }
                }
                _ = self.stop.changed() => return Tick::Stopped,
            }
        }
    }

    /// The callee hangs up (BYE) and waits for the transaction to finish.
    async fn hang_up(mut self, why: &'static str) -> Ending {
        self.story.step(format!("BYE sent ({why})"));
        self.call.hangup();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.call.wait_end()).await;
        self.leg.close();
        Ending::Callee { why }
    }
}

fn ticker(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A person: greeting, a pause, then the conversation until the talk time is over and the other
/// side pauses; hangs up early on a silent call (nobody said anything within the patience after
/// the greeting).
async fn human(shared: &Shared, plan: &Plan, greeting: Prompt, mut a: Answered<'_>) -> AfterAnswer {
    let b = &shared.planner.behaviour;
    let answered = Instant::now();
    a.leg.play(&greeting);
    a.leg
        .play(&Prompt::from_samples(silence(plan.pause), "pause"));
    let mut rng = rng_for(plan.script_seed, "customer", 0);
    for part in script(&shared.bank.customer_lines, plan.talk, &b.gap, &mut rng) {
        a.leg.play(&part);
    }
    a.story.step("greeting");
    let greeting_end = answered + greeting.duration();
    let done = greeting_end + plan.pause + plan.talk;
    let mut heard_voice = false;
    let mut tick = ticker(Duration::from_millis(200));
    loop {
        match a.next(&mut tick).await {
            Tick::Ended => {
                a.leg.close();
                return AfterAnswer {
                    ending: Ending::Dialer,
                    beep_at_ms: None,
                };
            }
            Tick::Stopped => {
                return AfterAnswer {
                    ending: a.hang_up("shutdown").await,
                    beep_at_ms: None,
                };
            }
            Tick::Timer => {}
        }
        let now = Instant::now();
        if !heard_voice && a.ear.speaking(now) {
            heard_voice = true;
            a.story.step("voice heard");
        }
        if !heard_voice && now >= greeting_end + b.patience {
            return AfterAnswer {
                ending: a.hang_up("silent call").await,
                beep_at_ms: None,
            };
        }
        let quiet = !a.ear.speaking(now)
            && a.ear
                .last_voice()
                .is_none_or(|t| now.saturating_duration_since(t) >= b.polite);
        if now >= done && (quiet || now >= done + b.polite_limit) {
            return AfterAnswer {
                ending: a.hang_up("talk done").await,
                beep_at_ms: None,
            };
        }
    }
}

/// An answering machine: greeting and beep, then records a message until it ends (silence),
/// a limit, or none starts.
async fn machine(shared: &Shared, greeting: Prompt, mut a: Answered<'_>) -> AfterAnswer {
    let b = &shared.planner.behaviour;
    let answered = Instant::now();
    a.leg.play(&greeting);
    a.story.step("greeting");
    let beep_end = answered + greeting.duration();
    let mut beep_at_ms = None;
    let mut message_started = false;
    let mut tick = ticker(Duration::from_millis(200));
    loop {
        match a.next(&mut tick).await {
            Tick::Ended => {
                a.leg.close();
                return AfterAnswer {
                    ending: Ending::Dialer,
                    beep_at_ms,
                };
            }
            Tick::Stopped => {
                return AfterAnswer {
                    ending: a.hang_up("shutdown").await,
                    beep_at_ms,
                };
            }
            Tick::Timer => {}
        }
        let now = Instant::now();
        if now < beep_end {
            continue;
        }
        if beep_at_ms.is_none() {
            a.story.step("beep");
            beep_at_ms = Some(a.ear.elapsed_ms());
        }
        if !message_started && a.ear.speaking(now) {
            message_started = true;
            a.story.step("message started");
        }
        let why = if !message_started && now >= beep_end + b.message_wait {
            Some("no message")
        } else if message_started
            && !a.ear.speaking(now)
            && a.ear
                .last_voice()
                .is_some_and(|t| now.saturating_duration_since(t) >= b.message_silence)
        {
            Some("message done")
        } else if now >= beep_end + b.message_limit {
            Some("message limit")
        } else {
            None
        };
        if let Some(why) = why {
            return AfterAnswer {
                ending: a.hang_up(why).await,
                beep_at_ms,
            };
        }
    }
}
