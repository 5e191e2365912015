//! The pacer: one per campaign, fed every event with its time, asked what to do.

use crate::config::{Config, ConfigError, Priors};
use crate::estimate::{BUSY, Estimates, Estimators, FAILED, LIVE, MACHINE, NO_ANSWER};
use crate::event::{AgentId, CallId, Decision, EndReason, Event, Reason};
use crate::model::{CERTAIN, Contrib, J, Model};
use crate::window::{HistoryBucket, Window};
use domain::DialMode;
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// The model's sums are recomputed in full once per quantum and patched by events inside it.
const QUANTUM: f64 = 0.5;
/// Estimator tables are rebuilt at most this often (seconds).
const REBUILD_EVERY: f64 = 30.0;
/// Calls asked for and neither placed nor given back within this time are forgotten.
const PENDING_TIMEOUT: f64 = 30.0;
/// Calls placed on the model's decision over which the threshold's yield (their mean own
/// abandon probability over the threshold) is learned.
const PLACED_MEMORY: f64 = 500.0;
/// Live answers of those calls over which the model's bias (observed over predicted abandons)
/// is learned.
const BIAS_MEMORY: f64 = 3000.0;
/// Weight, in abandons, of the prior that the model has no bias.
const BIAS_PRIOR: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentState {
    NotReady = 0,
    Ready = 1,
    Talking = 2,
    WrapUp = 3,
    Paused = 4,
}

#[derive(Debug, Clone)]
struct Agent {
    state: AgentState,
    since: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Dialing = 0,
    Answered = 1,
    Waiting = 2,
    Machine = 3,
    Bridged = 4,
    Abandoned = 5,
    Cancelling = 6,
}

#[derive(Debug, Clone)]
struct Call {
    state: CallState,
    placed: f64,
    since: f64,
    ringing: bool,
    agent: Option<AgentId>,
    /// The model's abandon probability for it when it was placed on the model's decision (its
    /// outcome steers the controller); `None` for calls placed otherwise.
    risk: Option<f64>,
}

/// What sets the threshold on one more call's cost: how the calls placed under it turn out,
/// exponentially forgotten.
///
/// A decision places calls while the next one's cost stays under the threshold, so the calls
/// carry a little less than the threshold; each call's own abandon probability (the model's
/// `risk`) is a share of its cost; the abandons among their live answers are the sum of those
/// probabilities times the model's bias. So the abandon rate is `threshold x yield x bias`,
/// with `yield` the placed calls' mean own probability over the threshold they were placed
/// under, learned from every placed call (quickly, without noise), and `bias` learned from
/// the abandons (slowly: a few abandons are noisy). The threshold that meets the setpoint is
/// `setpoint / (yield x bias)`. The bias starts at 1 (the model's own probabilities are
/// calibrated within about 30%, see `docs/pacing.md`) and moves only as the abandons add up, so
/// the threshold does not swing with the noise of a few abandons, which would cost occupancy.
#[derive(Debug, Clone, Default)]
struct Controller {
    /// Over calls placed at the threshold: sums of their cost, own abandon probability and the
    /// threshold they were placed under.
    cost: f64,
    risk: f64,
    threshold: f64,
    /// Over their live answers: predicted and observed abandons.
    predicted: f64,
    abandoned: f64,
}

impl Controller {
    /// Observed over predicted abandons, shrunk towards 1.
    fn bias(&self) -> f64 {
        (self.abandoned + BIAS_PRIOR) / (self.predicted + BIAS_PRIOR)
    }

    /// The placed calls' mean own abandon probability over their threshold.
    fn yield_share(&self) -> f64 {
        if self.threshold > 0.0 {
            (self.risk / self.threshold).clamp(0.05, 1.0)
        } else {
            1.0
        }
    }

    /// A new call's own abandon probability over its cost.
    fn own_share(&self) -> f64 {
        if self.cost > 0.0 {
            (self.risk / self.cost).clamp(0.05, 1.0)
        } else {
            1.0
        }
    }

    /// `n` calls were placed at the threshold `theta`, each with this cost and own abandon
    /// probability.
    fn placed(&mut self, n: u32, cost: f64, risk: f64, theta: f64) {
        let keep = (1.0 - 1.0 / PLACED_MEMORY).powi(n as i32);
        self.cost = self.cost * keep + cost * n as f64;
        self.risk = self.risk * keep + risk * n as f64;
        self.threshold = self.threshold * keep + theta * n as f64;
    }

    /// A live answer of a call placed with abandon probability `risk` was connected or not.
    fn answered(&mut self, risk: f64, abandoned: bool) {
        let keep = 1.0 - 1.0 / BIAS_MEMORY;
        self.predicted = self.predicted * keep + risk;
        self.abandoned = self.abandoned * keep + f64::from(u8::from(abandoned));
    }
}

/// A pacer for one campaign: a deterministic state machine with no clock or I/O.
///
/// Feed it every event with [`Pacer::handle`] and ask [`Pacer::decide`] after each event and on
/// a short tick (every 250 ms). Times are `Duration`s since an epoch the caller picks, the same
/// for every call, never going backwards.
#[derive(Debug, Clone)]
pub struct Pacer {
    config: Config,
    est: Estimators,
    window: Window,
    agents: IndexMap<AgentId, Agent>,
    calls: IndexMap<CallId, Call>,
    agent_counts: [u32; 5],
    call_counts: [u32; 7],
    /// Calls asked for and not yet placed: the model's abandon probability for each one asked
    /// for on the model's decision.
    pending: VecDeque<Option<f64>>,
    pending_at: f64,
    ctl: Controller,
    guard: bool,
    /// Headroom the guard wants, computed once per quantum.
    margin: f64,
    model: Model,
    cps_tokens: f64,
    cps_at: f64,
    check: ModelCheck,
    last_reason: Option<Reason>,
    last_probability: f64,
    now: f64,
}

fn secs(t: Duration) -> f64 {
    t.as_secs_f64()
}

impl Pacer {
    /// A pacer with the default priors; fails on a setting that makes no sense.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_priors(config, &Priors::default())
    }

    /// A pacer whose estimators start from `priors` (say, the campaign's history).
    pub fn with_priors(config: Config, priors: &Priors) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Pacer {
            est: Estimators::new(priors, secs(config.memory)),
            window: Window::new(config.settings.abandon_window.duration()),
            agents: IndexMap::new(),
            calls: IndexMap::new(),
            agent_counts: [0; 5],
            call_counts: [0; 7],
            pending: VecDeque::new(),
            pending_at: 0.0,
            ctl: Controller::default(),
            guard: false,
            margin: 2.0,
            model: Model::new(),
            cps_tokens: config.max_cps.unwrap_or(0.0).max(1.0),
            cps_at: 0.0,
            check: ModelCheck::default(),
            last_reason: None,
            last_probability: 0.0,
            now: 0.0,
            config,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the settings, effective at the next decision. On error the settings in force
    /// are kept and the error names the refused setting. `memory` is read only at creation.
    pub fn set_config(&mut self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        if config.settings.abandon_window != self.config.settings.abandon_window {
            self.window = self
                .window
                .resized(config.settings.abandon_window.duration());
        }
        if config.connect_grace != self.config.connect_grace {
            self.model.prepared = false;
            self.model.quantum = None;
        }
        if config.max_cps != self.config.max_cps {
            self.cps_tokens = config.max_cps.unwrap_or(0.0).max(1.0);
        }
        self.config = config;
        Ok(())
    }

    /// Adds stored history to the abandon window (live answers and abandons of past hours),
    /// typically once at start. `now` is the current time on the pacer's clock.
    pub fn seed_window(&mut self, now: Duration, history: &[HistoryBucket]) {
        self.window.seed(secs(now), history);
    }

    fn quantum(t: f64) -> i64 {
        (t / QUANTUM).floor() as i64
    }

    /// Whether the model's sums are current and must be patched for a change at `t`.
    fn patching(&mut self, t: f64) -> bool {
        match self.model.quantum {
            Some(q) if q == Self::quantum(t) => true,
            Some(_) => {
                self.model.quantum = None;
                false
            }
            None => false,
        }
    }

    fn agent_contrib(&self, a: &Agent) -> Option<Contrib> {
        let elapsed = (self.model.at - a.since).max(0.0);
        match a.state {
            AgentState::Ready => Some(CERTAIN),
            AgentState::Talking => Some(*self.model.talk_row(elapsed)),
            AgentState::WrapUp => Some(*self.model.wrap_row(elapsed)),
            AgentState::NotReady | AgentState::Paused => None,
        }
    }

    fn call_contrib(&self, c: &Call) -> Option<Contrib> {
        match c.state {
            CallState::Dialing => Some(*self.model.dial_row(self.model.at - c.placed)),
            CallState::Answered => Some(*self.model.amd_row(self.model.at - c.since)),
            CallState::Waiting => Some(CERTAIN),
            _ => None,
        }
    }

    /// Moves an agent to `state` (inserting or, with `None`, removing it), keeping counts and
    /// the model's sums right.
    fn set_agent(&mut self, id: AgentId, state: Option<AgentState>, t: f64) {
        let patch = self.patching(t);
        if let Some(old) = self.agents.get(&id) {
            if patch && let Some(c) = self.agent_contrib(old) {
                self.model.add_agent(&c, -1.0);
            }
            self.agent_counts[old.state as usize] -= 1;
        }
        match state {
            Some(s) => {
                let a = Agent { state: s, since: t };
                if patch && let Some(c) = self.agent_contrib(&a) {
                    self.model.add_agent(&c, 1.0);
                }
                self.agent_counts[s as usize] += 1;
                self.agents.insert(id, a);
            }
            None => {
                self.agents.swap_remove(&id);
            }
        }
    }

    fn set_call(&mut self, id: CallId, update: impl FnOnce(&mut Call), t: f64) {
        let patch = self.patching(t);
        let Some(old) = self.calls.get(&id) else {
            return;
        };
        if patch && let Some(c) = self.call_contrib(old) {
            self.model.add_call(&c, -1.0);
        }
        self.call_counts[old.state as usize] -= 1;
        let mut call = old.clone();
        update(&mut call);
        if patch && let Some(c) = self.call_contrib(&call) {
            self.model.add_call(&c, 1.0);
        }
        self.call_counts[call.state as usize] += 1;
        self.calls.insert(id, call);
    }

    fn insert_call(&mut self, id: CallId, risk: Option<f64>, t: f64) {
        if self.calls.contains_key(&id) {
            return;
        }
        let call = Call {
            state: CallState::Dialing,
            placed: t,
            since: t,
            ringing: false,
            agent: None,
            risk,
        };
        if self.patching(t)
            && let Some(c) = self.call_contrib(&call)
        {
            self.model.add_call(&c, 1.0);
        }
        self.call_counts[CallState::Dialing as usize] += 1;
        self.calls.insert(id, call);
    }

    fn remove_call(&mut self, id: CallId, t: f64) -> Option<Call> {
        let patch = self.patching(t);
        let call = self.calls.swap_remove(&id)?;
        if patch && let Some(c) = self.call_contrib(&call) {
            self.model.add_call(&c, -1.0);
        }
        self.call_counts[call.state as usize] -= 1;
        Some(call)
    }

    fn agent_state(&self, id: AgentId) -> Option<AgentState> {
        self.agents.get(&id).map(|a| a.state)
    }

    /// An agent's talk ended at `t` after `talk` seconds: wrap-up begins.
    fn end_talk(&mut self, id: AgentId, talk: f64, t: f64) {
        self.est.talk.observe(t, talk);
        self.est.dirty = true;
        if self.agent_state(id) == Some(AgentState::Talking) {
            self.set_agent(id, Some(AgentState::WrapUp), t);
        }
    }

    /// Leaves wrap-up (or talk, if its end was missed) for `next`.
    fn leave_call(&mut self, id: AgentId, next: AgentState, t: f64) {
        if let Some(a) = self.agents.get(&id) {
            let elapsed = t - a.since;
            match a.state {
                AgentState::WrapUp => {
                    self.est.wrap.observe(t, elapsed);
                    self.est
                        .after_call
                        .observe(t, usize::from(next == AgentState::Paused));
                    self.est.dirty = true;
                }
                AgentState::Talking => {
                    self.est.talk.observe(t, elapsed);
                    self.est.dirty = true;
                }
                _ => {}
            }
        }
        self.set_agent(id, Some(next), t);
    }

    fn call_live(&mut self, id: CallId, t: f64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        match call.state {
            CallState::Answered => {
                self.est.amd_human.observe(t, t - call.since);
                self.est.ring[LIVE].observe(t, call.since - call.placed);
            }
            CallState::Dialing => self.est.ring[LIVE].observe(t, t - call.placed),
            _ => return,
        }
        self.est.outcome.observe(t, LIVE);
        self.est.live_rate.observe(t);
        self.est.dirty = true;
        self.window.live(t);
        self.set_call(
            id,
            |c| {
                c.state = CallState::Waiting;
                c.since = t;
            },
            t,
        );
    }

    /// A live answer of a call placed on the model's decision, with the abandon probability
    /// the model gave it, was connected or abandoned.
    fn steer(&mut self, risk: f64, abandoned: bool) {
        self.ctl.answered(risk, abandoned);
        self.check.live += 1;
        self.check.predicted_abandons += risk;
        self.check.abandons += u64::from(abandoned);
    }

    /// The abandon rate the controller aims at.
    fn setpoint_rate(&self) -> f64 {
        (self.config.settings.abandon_target * self.config.setpoint).max(1e-4)
    }

    /// The threshold on one more call's abandon probability.
    fn threshold(&self) -> f64 {
        let s = self.setpoint_rate();
        let most = (20.0 * s).min(0.9);
        // The target's range is checked by `domain`, not here: one the pacer was never meant
        // to see (above 3.6) still gives a threshold rather than a panic.
        let least = (s / 4.0).min(most);
        (s / (self.ctl.yield_share() * self.ctl.bias())).clamp(least, most)
    }

    /// Takes one event that happened at `now`.
    pub fn handle(&mut self, now: Duration, event: Event) {
        let t = secs(now);
        self.now = self.now.max(t);
        match event {
            Event::AgentLoggedIn(a) => {
                if self.agent_state(a).is_none() {
                    self.set_agent(a, Some(AgentState::NotReady), t);
                }
            }
            Event::AgentReady(a) | Event::WrapUpEnded(a) => {
                self.leave_call(a, AgentState::Ready, t)
            }
            Event::AgentPaused(a) => self.leave_call(a, AgentState::Paused, t),
            Event::AgentLoggedOut(a) => self.set_agent(a, None, t),
            Event::TalkEnded(a) => {
                if let Some(ag) = self.agents.get(&a)
                    && ag.state == AgentState::Talking
                {
                    let talk = t - ag.since;
                    // The call's own end must not count the talk a second time.
                    if let Some((&cid, _)) = self.calls.iter().find(|(_, c)| c.agent == Some(a)) {
                        self.set_call(cid, |c| c.agent = None, t);
                    }
                    self.end_talk(a, talk, t);
                }
            }
            Event::CallPlaced(c) => {
                let risk = self.pending.pop_front().flatten();
                self.est.placed_rate.observe(t);
                self.insert_call(c, risk, t);
            }
            Event::CallRinging(c) => {
                if !self.calls.contains_key(&c) {
                    self.insert_call(c, None, t);
                }
                self.set_call(c, |call| call.ringing = true, t);
            }
            Event::CallAnswered(c) => {
                if !self.calls.contains_key(&c) {
                    self.insert_call(c, None, t);
                }
                if self.calls.get(&c).map(|x| x.state) == Some(CallState::Dialing) {
                    self.set_call(
                        c,
                        |call| {
                            call.state = CallState::Answered;
                            call.since = t;
                        },
                        t,
                    );
                }
            }
            Event::CallLive(c) => self.call_live(c, t),
            Event::CallMachine(c) => {
                if let Some(call) = self.calls.get(&c) {
                    let (since, placed, state) = (call.since, call.placed, call.state);
                    let ring = match state {
                        CallState::Answered => {
                            self.est.amd_machine.observe(t, t - since);
                            Some(since - placed)
                        }
                        CallState::Dialing => Some(t - placed),
                        _ => None,
                    };
                    if let Some(ring) = ring {
                        self.est.ring[MACHINE].observe(t, ring);
                        self.est.outcome.observe(t, MACHINE);
                        self.est.dirty = true;
                        self.set_call(
                            c,
                            |call| {
                                call.state = CallState::Machine;
                                call.since = t;
                            },
                            t,
                        );
                    }
                }
            }
            Event::CallBridged { call, agent } => {
                if matches!(
                    self.calls.get(&call).map(|c| c.state),
                    Some(CallState::Dialing | CallState::Answered)
                ) {
                    self.call_live(call, t);
                }
                if let Some(c) = self.calls.get(&call) {
                    if c.state == CallState::Waiting
                        && let Some(risk) = c.risk
                    {
                        self.steer(risk, false);
                    }
                    self.set_call(
                        call,
                        |c| {
                            c.state = CallState::Bridged;
                            c.since = t;
                            c.agent = Some(agent);
                        },
                        t,
                    );
                }
                self.set_agent(agent, Some(AgentState::Talking), t);
            }
            Event::CallAbandoned(c) => {
                if matches!(
                    self.calls.get(&c).map(|x| x.state),
                    Some(CallState::Dialing | CallState::Answered)
                ) {
                    self.call_live(c, t);
                }
                if let Some(call) = self.calls.get(&c)
                    && call.state == CallState::Waiting
                {
                    if let Some(risk) = call.risk {
                        self.steer(risk, true);
                    }
                    self.window.abandon(t);
                    self.set_call(
                        c,
                        |call| {
                            call.state = CallState::Abandoned;
                            call.since = t;
                        },
                        t,
                    );
                }
            }
            Event::CallEnded { call, reason } => {
                if let Some(c) = self.remove_call(call, t) {
                    match c.state {
                        CallState::Dialing => {
                            let outcome = match reason {
                                EndReason::Busy => Some(BUSY),
                                EndReason::NoAnswer => Some(NO_ANSWER),
                                EndReason::Failed => Some(FAILED),
                                EndReason::Canceled | EndReason::Completed => None,
                            };
                            if let Some(o) = outcome {
                                self.est.ring[o].observe(t, t - c.placed);
                                self.est.outcome.observe(t, o);
                                self.est.dirty = true;
                            }
                        }
                        CallState::Bridged => {
                            if let Some(a) = c.agent {
                                self.end_talk(a, t - c.since, t);
                            }
                        }
                        // A call the pacer cancelled has not answered by now: counted as a no-answer
                        // at its ring time. Left out, the calls it cancels (mostly no-answers)
                        // would inflate the learned live share, and the model, over-predicting
                        // callers, would cancel more and more.
                        CallState::Cancelling => {
                            self.est.ring[NO_ANSWER].observe(t, t - c.placed);
                            self.est.outcome.observe(t, NO_ANSWER);
                            self.est.dirty = true;
                        }
                        _ => {}
                    }
                }
            }
            Event::NotPlaced { count } => {
                for _ in 0..count {
                    self.pending.pop_back();
                }
            }
        }
    }

    /// Recomputes the model's sums for the quantum of `t` if they are stale.
    fn refresh_model(&mut self, t: f64) {
        let q = Self::quantum(t);
        if self.model.quantum == Some(q) {
            return;
        }
        if self.est.dirty && t - self.est.built_at >= REBUILD_EVERY {
            self.est.rebuild(t);
            self.model.prepared = false;
        }
        if !self.model.prepared {
            self.model
                .prepare(&self.est, secs(self.config.connect_grace));
        }
        // Calls the next decisions will place may turn live before a call placed now and take
        // the agents ahead of it: the model counts them at the current dialing pace.
        self.model.reset(q, t, self.est.placed_rate.per_second(t));
        for a in self.agents.values() {
            if let Some(c) = self.agent_contrib(a) {
                self.model.add_agent(&c, 1.0);
            }
        }
        for c in self.calls.values() {
            if let Some(x) = self.call_contrib(c) {
                self.model.add_call(&x, 1.0);
            }
        }
        self.margin = self.guard_margin(t);
    }

    fn active_agents(&self) -> u32 {
        let c = &self.agent_counts;
        c[AgentState::Ready as usize]
            + c[AgentState::Talking as usize]
            + c[AgentState::WrapUp as usize]
    }

    /// Calls that may still need an agent: dialing, answered, waiting.
    fn unresolved(&self) -> u32 {
        let c = &self.call_counts;
        c[CallState::Dialing as usize]
            + c[CallState::Answered as usize]
            + c[CallState::Waiting as usize]
    }

    fn guard_margin(&self, t: f64) -> f64 {
        // A minute of live answers at the target rate: what the window must be able to absorb
        // while the pacer reacts.
        let soon = self.est.live_rate.per_second(t) * 60.0 * self.config.settings.abandon_target;
        let x = soon + self.model.exposure();
        2.0 + 2.0 * x + 3.0 * x.sqrt()
    }

    /// How many calls to start now, and which ringing calls to cancel.
    pub fn decide(&mut self, now: Duration) -> Decision {
        let t = secs(now);
        self.now = self.now.max(t);
        if !self.pending.is_empty() && t - self.pending_at > PENDING_TIMEOUT {
            self.pending.clear();
        }
        self.window.expire(t);
        if let Some(cps) = self.config.max_cps {
            self.cps_tokens =
                (self.cps_tokens + (t - self.cps_at).max(0.0) * cps).min(cps.max(1.0));
        }
        self.cps_at = t;

        let cfg = self.config.settings.clone();
        let in_progress = self.calls.len() as u32 + self.pending.len() as u32;
        let pending = self.pending.len() as u32;
        let active = self.active_agents();
        let ready = self.agent_counts[AgentState::Ready as usize];
        let mut cap = cfg.max_lines.saturating_sub(in_progress);
        if self.config.max_cps.is_some() {
            cap = cap.min(self.cps_tokens.floor() as u32);
        }
        if cfg.mode != DialMode::Agentless {
            let level = (cfg.max_ratio * active as f64 + 1e-9).floor() as u32;
            cap = cap.min(level.saturating_sub(in_progress));
        }
        let unresolved = self.unresolved();
        let progressive = |ratio: f64| {
            let want = (ratio * ready as f64 + 1e-9).floor() as u32;
            want.saturating_sub(unresolved + pending)
        };

        let mut predictive = false;
        let (want, reason) = match cfg.mode {
            DialMode::Preview => (0, Reason::Preview),
            DialMode::Agentless => (u32::MAX, Reason::Agentless),
            _ if active == 0 => (0, Reason::NoAgents),
            DialMode::Progressive => (progressive(cfg.ratio), Reason::Progressive),
            DialMode::Predictive if active < cfg.min_agents => {
                (progressive(1.0), Reason::FewAgents)
            }
            DialMode::Predictive => {
                self.refresh_model(t);
                let headroom = self.window.headroom(cfg.abandon_target);
                let margin = self.margin;
                self.guard = if self.guard {
                    headroom < margin + 0.5
                } else {
                    headroom < margin
                };
                if self.guard {
                    (progressive(1.0), Reason::Guard)
                } else {
                    predictive = true;
                    (u32::MAX, Reason::Model)
                }
            }
        };

        let mut start = want.min(cap);
        let mut reason = if want > cap && want != u32::MAX {
            Reason::Cap
        } else {
            reason
        };
        let mut cancel = Vec::new();
        let mut risk = None;
        if predictive {
            let theta = self.threshold();
            let most = 4 * active + 10;
            let limit = cap.min(most);
            let known = ready as f64 - self.call_counts[CallState::Waiting as usize] as f64;
            // The window's headroom also bounds what this decision may risk: the abandons
            // expected among calls in flight and the new calls, with two standard deviations.
            let headroom = self.window.headroom(cfg.abandon_target) - 1.0;
            // Scaled by the model's bias when it has under-predicted, and by a safety factor of
            // two; a new call's own abandon probability is about `own` times its cost.
            let scale = 2.0 * self.ctl.bias().max(1.0);
            let exposure = scale * self.model.exposure();
            let live = scale * self.model.g[J - 1] / (J as f64 - 0.5) * J as f64;
            let own = self.ctl.own_share();
            // Each call of a decision carries the last one's cost (the calls are alike: each has
            // the others ahead of it with the same chance), which grows with their number.
            let p = |k: u32| self.model.cost((pending + k) as f64);
            let fits = |k: u32, pk: f64| {
                let r = exposure + live * own * pk * k as f64;
                r + 2.0 * r.sqrt() <= headroom
            };
            let first = p(0);
            // Largest k <= limit whose k-th call stays under the threshold and within the
            // headroom: gallop, then bisect (the risk grows with k).
            let ok = |k: u32| {
                if k == 0 {
                    return (true, true);
                }
                let pk = if k == 1 { first } else { p(k - 1) };
                (pk <= theta, fits(k, pk))
            };
            let (mut lo, mut hi) = (0u32, None);
            let mut blocked_by_guard = false;
            let mut step = 1u32;
            while hi.is_none() {
                let k = (lo + step).min(limit);
                if k == lo {
                    break;
                }
                match ok(k) {
                    (true, true) => lo = k,
                    (under, _) => {
                        blocked_by_guard = under;
                        hi = Some(k);
                    }
                }
                step *= 2;
            }
            if let Some(h) = hi.as_mut() {
                while *h - lo > 1 {
                    let mid = lo + (*h - lo) / 2;
                    match ok(mid) {
                        (true, true) => lo = mid,
                        (under, _) => {
                            blocked_by_guard = under;
                            *h = mid;
                        }
                    }
                }
            }
            let k = lo;
            if blocked_by_guard && k < limit {
                reason = Reason::Guard;
            } else if k == limit && limit < most {
                reason = Reason::Cap;
            }
            start = k;
            // The next call's own abandon probability, for the dashboard; each placed call's,
            // for the controller.
            self.last_probability = self.model.risk(pending as f64, known);
            if k > 0 {
                let cost = if k == 1 { first } else { p(k - 1) };
                let r = self.model.risk((pending + k - 1) as f64, known);
                risk = Some(r);
                if hi.is_some() && !blocked_by_guard {
                    self.ctl.placed(k, cost, r, theta);
                }
            } else if first > theta {
                cancel = self.over_dialed(theta, pending);
            }
        }
        if self.config.max_cps.is_some() {
            self.cps_tokens -= start as f64;
        }
        if start > 0 {
            if self.pending.is_empty() {
                self.pending_at = t;
            }
            self.pending
                .extend(std::iter::repeat_n(risk, start as usize));
        }
        self.last_reason = Some(reason);
        Decision {
            start,
            cancel,
            reason: Some(reason),
        }
    }

    /// Ringing calls past `cancel_after` to give up on when even one more call would cost more
    /// than the threshold: longest-ringing first (the least likely to turn live), until one
    /// more call's cost is back under the threshold. A call that has rung 15 s is live about one
    /// time in twenty, so cancelling one call per expected caller too many (the first version)
    /// removed a twentieth of the excess.
    fn over_dialed(&mut self, theta: f64, pending: u32) -> Vec<CallId> {
        let Some(after) = self.config.cancel_after.map(secs) else {
            return Vec::new();
        };
        let t = self.now;
        let mut eligible: Vec<(f64, CallId)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.state == CallState::Dialing && c.ringing && t - c.placed >= after)
            .map(|(&id, c)| (c.placed, id))
            .collect();
        eligible.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut ids = Vec::new();
        for (_, id) in eligible {
            if self.model.cost(pending as f64) <= theta {
                break;
            }
            // Its contribution leaves the model's sums with it.
            self.set_call(id, |c| c.state = CallState::Cancelling, t);
            ids.push(id);
        }
        ids
    }

    /// The live figures for the supervisor's dashboard.
    pub fn figures(&self, now: Duration) -> Figures {
        let t = secs(now);
        let a = &self.agent_counts;
        let c = &self.call_counts;
        let (live, abandoned) = self.window.totals();
        let (free, callers) = self.model.balance();
        let active = self.active_agents();
        Figures {
            mode: self.config.settings.mode,
            reason: self.last_reason,
            agents: AgentTally {
                logged_in: self.agents.len() as u32,
                ready: a[AgentState::Ready as usize],
                talking: a[AgentState::Talking as usize],
                wrap_up: a[AgentState::WrapUp as usize],
                paused: a[AgentState::Paused as usize] + a[AgentState::NotReady as usize],
            },
            calls: CallTally {
                pending: self.pending.len() as u32,
                dialing: c[CallState::Dialing as usize] + c[CallState::Cancelling as usize],
                answered: c[CallState::Answered as usize],
                waiting: c[CallState::Waiting as usize],
                bridged: c[CallState::Bridged as usize],
                other: c[CallState::Machine as usize] + c[CallState::Abandoned as usize],
            },
            estimates: self.est.figures(t),
            abandon: AbandonFigures {
                window_live: live,
                window_abandoned: abandoned,
                window_rate: self.window.rate(),
                target: self.config.settings.abandon_target,
                setpoint: self.setpoint_rate(),
                headroom: self.window.headroom(self.config.settings.abandon_target),
                guard_active: self.guard,
            },
            threshold: self.threshold(),
            correction: self.threshold() / self.setpoint_rate(),
            next_call_abandon_probability: self.last_probability,
            expected_free_agents: free,
            expected_live_callers: callers,
            model_check: self.check.clone(),
            dial_level: if active == 0 {
                0.0
            } else {
                (self.calls.len() + self.pending.len()) as f64 / active as f64
            },
        }
    }
}

/// Agents by state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentTally {
    /// Logged in, in any state.
    pub logged_in: u32,
    /// Waiting for a call.
    pub ready: u32,
    /// On a call.
    pub talking: u32,
    /// In wrap-up after a call.
    pub wrap_up: u32,
    /// Paused or not yet ready.
    pub paused: u32,
}

/// Calls by state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallTally {
    /// Asked for, not yet placed.
    pub pending: u32,
    /// Placed, not answered (dialing or ringing).
    pub dialing: u32,
    /// Answered, AMD listening.
    pub answered: u32,
    /// Live, waiting for an agent.
    pub waiting: u32,
    /// Connected to an agent.
    pub bridged: u32,
    /// Machines and abandoned calls not yet hung up.
    pub other: u32,
}

/// The abandon accounting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbandonFigures {
    /// Live answers in the window.
    pub window_live: u64,
    /// Abandons in the window.
    pub window_abandoned: u64,
    /// Their ratio.
    pub window_rate: f64,
    /// The campaign's limit.
    pub target: f64,
    /// The rate the controller aims at.
    pub setpoint: f64,
    /// Abandons the window can take before crossing the target.
    pub headroom: f64,
    /// Whether the guard holds predictive mode to progressive 1:1.
    pub guard_active: bool,
}

/// What the pacer sees and why it decides what it does ([`Pacer::figures`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Configured mode.
    pub mode: DialMode,
    /// Why the last decision was what it was.
    pub reason: Option<Reason>,
    /// Agents by state.
    pub agents: AgentTally,
    /// Calls by state.
    pub calls: CallTally,
    /// Live estimates.
    pub estimates: Estimates,
    /// Abandon accounting.
    pub abandon: AbandonFigures,
    /// The controller's threshold on one more call's abandon probability.
    pub threshold: f64,
    /// The threshold over the setpoint: the controller's correction for the model's measured
    /// bias and for calls being placed a little under the threshold.
    pub correction: f64,
    /// The model's abandon probability for one more call, at the last decision.
    pub next_call_abandon_probability: f64,
    /// Agents expected free at a new call's median answer time.
    pub expected_free_agents: f64,
    /// Live callers expected by then.
    pub expected_live_callers: f64,
    /// Calls in progress per active agent.
    pub dial_level: f64,
    /// The model's predicted abandons against what happened, for the calls it placed.
    pub model_check: ModelCheck,
}

/// How well the model predicts: over the live answers of the calls placed on its decisions
/// since the pacer started, the abandons it expected (the sum of each call's abandon
/// probability when placed) and the abandons that happened. Their ratio is the model's bias;
/// the controller corrects it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelCheck {
    /// Live answers of calls placed on the model's decision.
    pub live: u64,
    /// The abandons the model expected among them.
    pub predicted_abandons: f64,
    /// The abandons among them.
    pub abandons: u64,
}
