//! A seeded discrete-event simulation of a campaign that drives the real [`Pacer`].
//!
//! The simulator plays the engine, the carrier and the agents. The pacer sees only the events
//! production would give it (placed, ringing, answered, AMD verdict, bridged, abandoned, ended,
//! agents ready, paused, ...), never a contact's fate in advance. A contact's fate (outcome,
//! ring, AMD, talk and wrap-up times) is drawn from a generator seeded by the contact's index,
//! so every policy meets the same contacts in the same order. The perfect-foresight bound is a
//! separate computation that does know the fates.
//!
//! ```
//! use pacing::sim::{Policy, Scenario, run};
//! use pacing::Config;
//!
//! let mut s = Scenario::benchmark(20, 1);
//! s.duration = 1800.0;
//! let report = run(&s, &Policy::Pacer(Config::default())).unwrap();
//! assert!(report.occupancy > 0.5);
//! ```

mod foresight;
mod scenario;
mod vicidial;

pub use scenario::{Decline, Fate, FateKind, Mix, Pauses, Scenario};
pub use vicidial::{Vicidial, VicidialSettings};

use crate::event::{AgentId, CallId, Decision, EndReason, Event};
use crate::{Config, ConfigError, ModelCheck, Pacer};
use domain::DialMode;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use scenario::fate;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// What decides the calls in a simulation.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The real pacer with these settings.
    Pacer(Config),
    /// The VICIdial-style adaptive baseline.
    Vicidial(VicidialSettings),
    /// The perfect-foresight bound: knows every call's fate and every agent's free time.
    Foresight,
}

impl Policy {
    /// A short name for tables and plots.
    pub fn label(&self) -> String {
        match self {
            Policy::Pacer(c) => match c.settings.mode {
                DialMode::Progressive if (c.settings.ratio - 1.0).abs() < 1e-9 => {
                    "progressive 1:1".into()
                }
                DialMode::Progressive => format!("ratio {}", c.settings.ratio),
                m => m.to_string(),
            },
            Policy::Vicidial(_) => "vicidial adaptive".into(),
            Policy::Foresight => "perfect foresight".into(),
        }
    }
}

/// Anything the simulator can drive: the pacer, or the baseline.
pub trait Dialer {
    /// Takes one event.
    fn handle(&mut self, now: Duration, event: Event);
    /// Decides.
    fn decide(&mut self, now: Duration) -> Decision;
    /// Seeds the abandon window with stored history (the baseline ignores it: VICIdial counts
    /// drops since midnight).
    fn seed(&mut self, _now: Duration, _history: &[crate::HistoryBucket]) {}
    /// The pacer's controller threshold, for the timeline.
    fn threshold(&self, _now: Duration) -> Option<f64> {
        None
    }
    /// The abandons the model predicted against those that happened, if it has a model.
    fn model_check(&self) -> Option<ModelCheck> {
        None
    }
}

impl<D: Dialer + ?Sized> Dialer for &mut D {
    fn handle(&mut self, now: Duration, event: Event) {
        (**self).handle(now, event);
    }
    fn decide(&mut self, now: Duration) -> Decision {
        (**self).decide(now)
    }
    fn seed(&mut self, now: Duration, history: &[crate::HistoryBucket]) {
        (**self).seed(now, history);
    }
    fn threshold(&self, now: Duration) -> Option<f64> {
        (**self).threshold(now)
    }
    fn model_check(&self) -> Option<ModelCheck> {
        (**self).model_check()
    }
}

impl Dialer for Pacer {
    fn handle(&mut self, now: Duration, event: Event) {
        Pacer::handle(self, now, event);
    }
    fn seed(&mut self, now: Duration, history: &[crate::HistoryBucket]) {
        self.seed_window(now, history);
    }
    fn decide(&mut self, now: Duration) -> Decision {
        Pacer::decide(self, now)
    }
    fn threshold(&self, now: Duration) -> Option<f64> {
        Some(self.figures(now).threshold)
    }
    fn model_check(&self) -> Option<ModelCheck> {
        Some(self.figures(Duration::ZERO).model_check)
    }
}

impl Dialer for Vicidial {
    fn handle(&mut self, now: Duration, event: Event) {
        Vicidial::handle(self, now, event);
    }
    fn decide(&mut self, now: Duration) -> Decision {
        Vicidial::decide(self, now)
    }
}

/// One point of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// End of the interval, minutes into the run.
    pub minute: f64,
    /// Occupancy in the interval.
    pub occupancy: f64,
    /// Abandons over live answers in the interval.
    pub abandon_rate: f64,
    /// Abandons over live answers since the start, with the seeded history (the regulator's
    /// window for a run shorter than it).
    pub window_abandon_rate: f64,
    /// The pacer's threshold, if any.
    pub threshold: Option<f64>,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The policy's name.
    pub policy: String,
    /// Agents.
    pub agents: u32,
    /// Hours simulated.
    pub hours: f64,
    /// The seed.
    pub seed: u64,
    /// (talk + wrap-up) / (logged-in time - paused time).
    pub occupancy: f64,
    /// Mean agent wait between calls, seconds.
    pub agent_wait: f64,
    /// Abandons over live answers, the whole run.
    pub abandon_rate: f64,
    /// The worst clock hour's abandon rate.
    pub worst_hour_abandon_rate: f64,
    /// The highest the window's rate (abandons over live answers since the start, with the
    /// seeded history) ever was.
    pub max_window_abandon_rate: f64,
    /// Calls placed per agent hour.
    pub calls_per_agent_hour: f64,
    /// Live answers connected to an agent per agent hour.
    pub connects_per_agent_hour: f64,
    /// Calls placed.
    pub placed: u64,
    /// Live answers.
    pub live: u64,
    /// Abandoned.
    pub abandoned: u64,
    /// Connected to an agent.
    pub connects: u64,
    /// Calls cancelled on the pacer's request.
    pub cancelled: u64,
    /// The pacer model's predicted abandons against those that happened (predictive only).
    pub model_check: Option<ModelCheck>,
    /// Occupancy and abandons over time.
    pub timeline: Vec<Sample>,
}

/// The issue's comparison: progressive 1:1, fixed ratio 2 and 3, the VICIdial-style adaptive
/// baseline, the predictive pacer (default settings) and the perfect-foresight bound.
pub fn reference_policies() -> Vec<Policy> {
    let progressive = |ratio: f64| {
        let mut config = Config::default();
        config.settings.mode = DialMode::Progressive;
        config.settings.ratio = ratio;
        Policy::Pacer(config)
    };
    vec![
        progressive(1.0),
        progressive(2.0),
        progressive(3.0),
        Policy::Vicidial(VicidialSettings::default()),
        Policy::Pacer(Config::default()),
        Policy::Foresight,
    ]
}

/// Runs one policy through the scenario.
pub fn run(scenario: &Scenario, policy: &Policy) -> Result<Report, SimError> {
    scenario.validate().map_err(SimError::Scenario)?;
    match policy {
        Policy::Pacer(config) => {
            let pacer = Pacer::with_priors(config.clone(), &scenario.pacer_priors())?;
            Ok(Sim::new(scenario, pacer).run(policy.label()))
        }
        Policy::Vicidial(settings) => {
            Ok(Sim::new(scenario, Vicidial::new(settings.clone())).run(policy.label()))
        }
        Policy::Foresight => Ok(foresight::run(scenario)),
    }
}

/// Runs any [`Dialer`] through the scenario (for tests and experiments: a wrapper can change
/// the pacer's settings mid-run, say).
pub fn run_dialer<D: Dialer>(
    scenario: &Scenario,
    dialer: D,
    label: &str,
) -> Result<Report, SimError> {
    scenario.validate().map_err(SimError::Scenario)?;
    Ok(Sim::new(scenario, dialer).run(label.to_string()))
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The pacer's settings were refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The scenario makes no sense.
    #[error("scenario: {0}")]
    Scenario(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Tick,
    Sample,
    Release,
    Ringing(u32),
    Answer(u32),
    Amd(u32),
    Resolve(u32),
    Grace(u32),
    Hangup(u32),
    TalkEnd(u32),
    WrapEnd(u32),
    PauseStart(u32),
    PauseEnd(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    time: u64,
    seq: u64,
    ev: Ev,
}

impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallSt {
    Dialing,
    Answered,
    Waiting,
    Bridged,
    Done,
}

#[derive(Debug, Clone)]
struct SimCall {
    fate: Fate,
    state: CallSt,
    agent: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentSt {
    Ready,
    Busy,
    Paused,
}

#[derive(Debug, Clone)]
struct SimAgent {
    state: AgentSt,
    since: f64,
    pause_requested: bool,
    /// Bumped on every state change so stale entries of the ready queue are skipped.
    generation: u64,
}

const US: f64 = 1e6;

struct Sim<'a, D: Dialer> {
    s: &'a Scenario,
    dialer: D,
    queue: BinaryHeap<Item>,
    seq: u64,
    now: u64,
    calls: Vec<SimCall>,
    agents: Vec<SimAgent>,
    ready: VecDeque<(u32, u64)>,
    waiting: VecDeque<u32>,
    next_slot: f64,
    queued: u32,
    release_scheduled: bool,
    // Measurements.
    busy_time: f64,
    idle_time: f64,
    bins: Vec<[f64; 4]>,
    live: u64,
    abandoned: u64,
    connects: u64,
    cancelled: u64,
    max_window: f64,
    live_before: u64,
    abandoned_before: u64,
    thresholds: Vec<Option<f64>>,
}

impl<'a, D: Dialer> Sim<'a, D> {
    fn new(s: &'a Scenario, dialer: D) -> Self {
        let bins = (s.duration / s.sample_every).ceil() as usize;
        Sim {
            s,
            dialer,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            calls: Vec::new(),
            agents: Vec::new(),
            ready: VecDeque::new(),
            waiting: VecDeque::new(),
            next_slot: 0.0,
            queued: 0,
            release_scheduled: false,
            busy_time: 0.0,
            idle_time: 0.0,
            bins: vec![[0.0; 4]; bins.max(1)],
            live: 0,
            abandoned: 0,
            connects: 0,
            cancelled: 0,
            max_window: 0.0,
            live_before: 0,
            abandoned_before: 0,
            thresholds: vec![None; bins.max(1)],
        }
    }

    fn t(&self) -> f64 {
        self.now as f64 / US
    }

    fn at(&mut self, delay: f64, ev: Ev) {
        let time = self.now + (delay.max(0.0) * US).round() as u64;
        self.seq += 1;
        self.queue.push(Item {
            time,
            seq: self.seq,
            ev,
        });
    }

    fn emit(&mut self, event: Event) {
        let now = Duration::from_micros(self.now);
        self.dialer.handle(now, event);
    }

    fn bin(&self, t: f64) -> usize {
        ((t / self.s.sample_every) as usize).min(self.bins.len() - 1)
    }

    /// Accounts an agent's time in its current state up to now, split over the timeline bins.
    fn account(&mut self, agent: u32) {
        let a = &self.agents[agent as usize];
        let (from, to) = (a.since, self.t().min(self.s.duration));
        let kind = match a.state {
            AgentSt::Busy => 0,
            AgentSt::Ready => 1,
            AgentSt::Paused => return,
        };
        if to <= from {
            return;
        }
        if kind == 0 {
            self.busy_time += to - from;
        } else {
            self.idle_time += to - from;
        }
        let mut t = from;
        while t < to {
            let b = self.bin(t);
            let end = ((b + 1) as f64 * self.s.sample_every).min(to);
            let end = if end <= t { to } else { end };
            self.bins[b][kind] += end - t;
            t = end;
        }
    }

    fn set_agent(&mut self, agent: u32, state: AgentSt) {
        self.account(agent);
        let now = self.t();
        let a = &mut self.agents[agent as usize];
        a.state = state;
        a.since = now;
        a.generation += 1;
    }

    fn run(mut self, label: String) -> Report {
        let s = self.s;
        if let Some((live, abandoned)) = s.history {
            let bucket = crate::HistoryBucket {
                ago: Duration::from_secs(12 * 3600),
                live,
                abandoned,
            };
            self.dialer.seed(Duration::ZERO, &[bucket]);
            self.live_before = live;
            self.abandoned_before = abandoned;
        }
        for i in 0..s.agents {
            self.agents.push(SimAgent {
                state: AgentSt::Paused,
                since: 0.0,
                pause_requested: false,
                generation: 0,
            });
            self.emit(Event::AgentLoggedIn(AgentId(i as u64)));
            self.agent_free(i);
        }
        if let Some(p) = &s.pauses {
            self.plan_pauses(p.share_per_hour);
        }
        self.at(0.0, Ev::Tick);
        self.at(s.sample_every - 1e-6, Ev::Sample);
        self.decide();
        let end = (s.duration * US) as u64;
        while let Some(item) = self.queue.pop() {
            if item.time > end {
                break;
            }
            self.now = item.time;
            self.step(item.ev);
            self.decide();
        }
        self.now = end;
        for i in 0..self.agents.len() as u32 {
            self.account(i);
        }
        self.report(label)
    }

    fn plan_pauses(&mut self, share: f64) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.s.seed ^ 0x5041_5553_4553);
        let hours = (self.s.duration / 3600.0).ceil() as u32;
        let n = self.agents.len() as u32;
        let per_hour = (share * n as f64).round() as u32;
        let mut order: Vec<u32> = (0..n).collect();
        for h in 0..hours {
            // A partial Fisher-Yates shuffle picks this hour's pausing agents.
            for i in 0..per_hour.min(n) {
                let j = rng.random_range(i..n);
                order.swap(i as usize, j as usize);
                let when = h as f64 * 3600.0 + rng.random::<f64>() * 3600.0;
                let agent = order[i as usize];
                self.at(when, Ev::PauseStart(agent));
            }
        }
    }

    fn decide(&mut self) {
        let now = Duration::from_micros(self.now);
        let d = self.dialer.decide(now);
        for id in d.cancel {
            let i = id.0 as u32;
            if let Some(c) = self.calls.get_mut(i as usize)
                && c.state == CallSt::Dialing
            {
                c.state = CallSt::Done;
                self.cancelled += 1;
                self.emit(Event::CallEnded {
                    call: id,
                    reason: EndReason::Canceled,
                });
            }
        }
        for _ in 0..d.start {
            self.request_call();
        }
    }

    fn request_call(&mut self) {
        let t = self.t();
        match self.s.cps {
            Some(cps) if t < self.next_slot || self.queued > 0 => {
                self.queued += 1;
                if !self.release_scheduled {
                    self.release_scheduled = true;
                    let delay = self.next_slot - t;
                    self.at(delay, Ev::Release);
                }
                let _ = cps;
            }
            Some(cps) => {
                self.next_slot = t + 1.0 / cps;
                self.place();
            }
            None => self.place(),
        }
    }

    fn place(&mut self) {
        let t = self.t();
        let index = self.calls.len() as u32;
        let f = fate(self.s, index as u64, t);
        self.calls.push(SimCall {
            fate: f,
            state: CallSt::Dialing,
            agent: 0,
        });
        self.emit(Event::CallPlaced(CallId(index as u64)));
        match f.outcome {
            FateKind::Busy | FateKind::Failed => self.at(f.ring, Ev::Resolve(index)),
            FateKind::NoAnswer => {
                self.at(self.s.post_dial_delay.min(f.ring), Ev::Ringing(index));
                self.at(f.ring, Ev::Resolve(index));
            }
            FateKind::Live | FateKind::Machine => {
                self.at(self.s.post_dial_delay.min(f.ring * 0.5), Ev::Ringing(index));
                self.at(f.ring, Ev::Answer(index));
            }
        }
    }

    fn call(&self, i: u32) -> &SimCall {
        &self.calls[i as usize]
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Tick => self.at(self.s.tick, Ev::Tick),
            Ev::Sample => {
                let b = self.bin(self.t());
                self.thresholds[b] = self.dialer.threshold(Duration::from_micros(self.now));
                self.at(self.s.sample_every, Ev::Sample);
            }
            Ev::Release => {
                self.release_scheduled = false;
                if self.queued > 0 {
                    self.queued -= 1;
                    let cps = self.s.cps.unwrap_or(1e9);
                    self.next_slot = self.t() + 1.0 / cps;
                    self.place();
                    if self.queued > 0 {
                        self.release_scheduled = true;
                        self.at(1.0 / cps, Ev::Release);
                    }
                }
            }
            Ev::Ringing(i) => {
                if self.call(i).state == CallSt::Dialing {
                    self.emit(Event::CallRinging(CallId(i as u64)));
                }
            }
            Ev::Resolve(i) => {
                if self.call(i).state == CallSt::Dialing {
                    let reason = match self.call(i).fate.outcome {
                        FateKind::Busy => EndReason::Busy,
                        FateKind::Failed => EndReason::Failed,
                        _ => EndReason::NoAnswer,
                    };
                    self.calls[i as usize].state = CallSt::Done;
                    self.emit(Event::CallEnded {
                        call: CallId(i as u64),
                        reason,
                    });
                }
            }
            Ev::Answer(i) => {
                if self.call(i).state == CallSt::Dialing {
                    self.calls[i as usize].state = CallSt::Answered;
                    self.emit(Event::CallAnswered(CallId(i as u64)));
                    let amd = self.call(i).fate.amd;
                    self.at(amd, Ev::Amd(i));
                }
            }
            Ev::Amd(i) => self.amd(i),
            Ev::Grace(i) => {
                if self.call(i).state == CallSt::Waiting {
                    self.calls[i as usize].state = CallSt::Done;
                    self.waiting.retain(|&w| w != i);
                    self.abandoned += 1;
                    let b = self.bin(self.t());
                    self.bins[b][3] += 1.0;
                    let window = (self.abandoned + self.abandoned_before) as f64
                        / (self.live + self.live_before) as f64;
                    self.max_window = self.max_window.max(window);
                    self.emit(Event::CallAbandoned(CallId(i as u64)));
                    self.at(self.s.abandon_message, Ev::Hangup(i));
                }
            }
            Ev::Hangup(i) => self.emit(Event::CallEnded {
                call: CallId(i as u64),
                reason: EndReason::Completed,
            }),
            Ev::TalkEnd(i) => {
                let c = self.call(i).clone();
                self.calls[i as usize].state = CallSt::Done;
                self.emit(Event::CallEnded {
                    call: CallId(i as u64),
                    reason: EndReason::Completed,
                });
                self.at(c.fate.wrap, Ev::WrapEnd(c.agent));
            }
            Ev::WrapEnd(a) => self.agent_free(a),
            Ev::PauseStart(a) => {
                let agent = &mut self.agents[a as usize];
                match agent.state {
                    AgentSt::Ready => self.pause(a),
                    AgentSt::Busy => agent.pause_requested = true,
                    AgentSt::Paused => {}
                }
            }
            Ev::PauseEnd(a) => {
                self.emit(Event::AgentReady(AgentId(a as u64)));
                self.became_ready(a);
            }
        }
    }

    fn pause(&mut self, a: u32) {
        self.set_agent(a, AgentSt::Paused);
        self.agents[a as usize].pause_requested = false;
        self.emit(Event::AgentPaused(AgentId(a as u64)));
        let length = self.s.pauses.as_ref().map_or(300.0, |p| p.length);
        self.at(length, Ev::PauseEnd(a));
    }

    fn amd(&mut self, i: u32) {
        if self.call(i).state != CallSt::Answered {
            return;
        }
        let id = CallId(i as u64);
        if self.call(i).fate.outcome == FateKind::Machine {
            self.calls[i as usize].state = CallSt::Done;
            self.emit(Event::CallMachine(id));
            self.emit(Event::CallEnded {
                call: id,
                reason: EndReason::Completed,
            });
            return;
        }
        self.live += 1;
        let b = self.bin(self.t());
        self.bins[b][2] += 1.0;
        self.calls[i as usize].state = CallSt::Waiting;
        self.emit(Event::CallLive(id));
        match self.next_ready() {
            Some(a) => self.bridge(i, a),
            None => {
                self.waiting.push_back(i);
                self.at(self.s.grace, Ev::Grace(i));
            }
        }
    }

    /// The longest-idle ready agent, if any.
    fn next_ready(&mut self) -> Option<u32> {
        while let Some((a, generation)) = self.ready.pop_front() {
            let agent = &self.agents[a as usize];
            if agent.state == AgentSt::Ready && agent.generation == generation {
                return Some(a);
            }
        }
        None
    }

    fn bridge(&mut self, call: u32, agent: u32) {
        self.set_agent(agent, AgentSt::Busy);
        self.connects += 1;
        let c = &mut self.calls[call as usize];
        c.state = CallSt::Bridged;
        c.agent = agent;
        let talk = c.fate.talk;
        self.emit(Event::CallBridged {
            call: CallId(call as u64),
            agent: AgentId(agent as u64),
        });
        self.at(talk, Ev::TalkEnd(call));
    }

    /// An agent leaves login or wrap-up: pauses if it was asked to, else becomes ready.
    fn agent_free(&mut self, a: u32) {
        if self.agents[a as usize].pause_requested {
            self.pause(a);
            return;
        }
        self.emit(Event::AgentReady(AgentId(a as u64)));
        self.became_ready(a);
    }

    fn became_ready(&mut self, a: u32) {
        while let Some(call) = self.waiting.pop_front() {
            if self.call(call).state == CallSt::Waiting {
                self.bridge(call, a);
                return;
            }
        }
        self.set_agent(a, AgentSt::Ready);
        let generation = self.agents[a as usize].generation;
        self.ready.push_back((a, generation));
    }

    fn report(self, label: String) -> Report {
        let s = self.s;
        let agent_hours = s.agents as f64 * s.duration / 3600.0;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let mut timeline = Vec::with_capacity(self.bins.len());
        let (mut live, mut abandoned) = (self.live_before as f64, self.abandoned_before as f64);
        let mut hour = [0.0f64; 2];
        let mut worst_hour: f64 = 0.0;
        let per_hour = (3600.0 / s.sample_every).round().max(1.0) as usize;
        for (i, b) in self.bins.iter().enumerate() {
            live += b[2];
            abandoned += b[3];
            hour[0] += b[2];
            hour[1] += b[3];
            if (i + 1) % per_hour == 0 || i + 1 == self.bins.len() {
                worst_hour = worst_hour.max(ratio(hour[1], hour[0]));
                hour = [0.0; 2];
            }
            timeline.push(Sample {
                minute: ((i + 1) as f64 * s.sample_every).min(s.duration) / 60.0,
                occupancy: ratio(b[0], b[0] + b[1]),
                abandon_rate: ratio(b[3], b[2]),
                window_abandon_rate: ratio(abandoned, live),
                threshold: self.thresholds[i],
            });
        }
        Report {
            policy: label,
            agents: s.agents,
            hours: s.duration / 3600.0,
            seed: s.seed,
            occupancy: ratio(self.busy_time, self.busy_time + self.idle_time),
            agent_wait: ratio(self.idle_time, self.connects as f64),
            abandon_rate: ratio(self.abandoned as f64, self.live as f64),
            worst_hour_abandon_rate: worst_hour,
            max_window_abandon_rate: self.max_window,
            calls_per_agent_hour: ratio(self.calls.len() as f64, agent_hours),
            connects_per_agent_hour: ratio(self.connects as f64, agent_hours),
            placed: self.calls.len() as u64,
            live: self.live,
            abandoned: self.abandoned,
            connects: self.connects,
            cancelled: self.cancelled,
            model_check: self.dialer.model_check(),
            timeline,
        }
    }
}
