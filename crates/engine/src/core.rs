//! One campaign's decisions as a sans-IO state machine: the pacer, the agent pool, and every
//! call's own state machine ([`CallMachine`], one per leased contact, from the lease to the
//! outcome). The campaign actor (`campaign.rs`) feeds it every happening with the time (agents'
//! requests, and each call's SIP and media happenings as its task reports them) and carries out
//! what it asks (lease contacts, a call's SIP and media actions, store a disposition).
//!
//! The 2-second rule lives here: a live answer gets the longest-idle ready agent in the same
//! step that makes it live; if none is ready it waits, first come first served, until
//! `greeting end + connect_grace`, and is abandoned at that instant unless an agent frees up
//! before.

use crate::call::{
    CallAction, CallConfig, CallInput, CallMachine, Finished, HangupReason, Report, Stage,
};
use crate::pool::{AgentPool, PoolAgent, PoolError, WrapUpExpired};
use crate::view::{AgentCounts, AgentState, CallCounts, CallTotals, PacingView};
use domain::{CampaignStatus, DispositionKind, Outcome};
use pacing::{AgentId, CallId, Decision, Event, Pacer};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

/// Settings of the core that come from the campaign and the engine.
#[derive(Debug, Clone)]
pub(crate) struct CoreSettings {
    /// Wrap-up time after a call, before the default disposition is set.
    pub(crate) wrap_up: Duration,
    /// The 2-second rule's grace after the greeting's end.
    pub(crate) connect_grace: Duration,
    /// Most calls one decision may start.
    pub(crate) max_starts: u32,
    /// DTMF digit -> disposition during wrap-up.
    pub(crate) digits: HashMap<char, DispositionKind>,
    /// Disposition stored when wrap-up times out (`None`: the call's outcome stands alone).
    pub(crate) wrap_up_default: Option<DispositionKind>,
    /// Decision tick.
    pub(crate) tick: Duration,
    /// What each call's machine needs of the campaign.
    pub(crate) call: CallConfig,
}

/// A happening, fed to [`CampaignCore::handle`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CoreInput {
    /// Nothing happened; time passed.
    Tick,
    /// The campaign's status changed.
    Status(CampaignStatus),
    /// An agent's phone opened its leg on this campaign.
    AgentLogin(i64),
    /// An agent left (phone hung up, or logged out by a supervisor).
    AgentLogout(i64),
    /// A pause.
    AgentPause {
        /// The agent.
        agent: i64,
        /// Why.
        reason: String,
    },
    /// Ready again.
    AgentReady(i64),
    /// The agent wants the customer call ended (`#`, the hang-up button).
    AgentHangup(i64),
    /// The agent pressed a key on the phone (not relayed `#` handling: see `AgentHangup`).
    AgentDigit {
        /// The agent.
        agent: i64,
        /// The key.
        digit: char,
    },
    /// A disposition was stored for the agent's attempt (from the API): wrap-up ends.
    AgentDisposed {
        /// The agent.
        agent: i64,
        /// The attempt.
        attempt: i64,
    },
    /// A lease asked for `asked` contacts and got `got` (each then comes as `CallCreated`).
    Leased {
        /// Asked for.
        asked: u32,
        /// Got.
        got: u32,
    },
    /// A leased contact became a call task.
    CallCreated {
        /// The call's key.
        key: u64,
        /// The agent a personal callback belongs to.
        callback_agent: Option<i64>,
    },
    /// The call's INVITE is going out now.
    CallPlaced {
        /// The call.
        key: u64,
        /// Its attempt.
        attempt: i64,
    },
    /// The contact was not dialled after all (hours closed, do-not-call, no attempts left, a
    /// failure before the INVITE).
    CallSkipped {
        /// The call.
        key: u64,
    },
    /// A SIP or media happening of a call, from its task.
    Call {
        /// The call.
        key: u64,
        /// What.
        input: CallInput,
    },
    /// The shutdown grace ran out: every call still up is hung up.
    CutAll,
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CoreAction {
    /// Lease this many due contacts and start a call for each.
    Lease {
        /// How many.
        count: u32,
        /// Ready agents, whose personal callbacks may be leased.
        callback_agents: Vec<i64>,
    },
    /// A call's SIP or media action, for its task (a [`CallAction::Finish`] comes after the
    /// core has counted the call's end).
    Call {
        /// The call.
        key: u64,
        /// What.
        action: CallAction,
    },
    /// Store a disposition for the agent's attempt.
    Dispose {
        /// The agent.
        agent: i64,
        /// The attempt.
        attempt: i64,
        /// What.
        kind: DispositionKind,
        /// Whether the wrap-up timed out (the campaign's default disposition).
        timed_out: bool,
    },
    /// An agent's state changed (publish it).
    AgentChanged(i64),
    /// An agent logged out; its last record.
    AgentGone(PoolAgent),
}

/// A call as the core holds it: its machine and what the campaign's rules need around it.
#[derive(Debug)]
struct CoreCall {
    machine: CallMachine,
    attempt: Option<i64>,
    callback_agent: Option<i64>,
    /// The machine's timer as registered in [`CampaignCore::timers`].
    timer: Option<Duration>,
    deadline: Option<Duration>,
    answered_at: Option<Duration>,
    /// End of the live callee's greeting, whence the 2-second rule runs.
    greeting_end: Option<Duration>,
    /// Counted against the abandon rate already (the actor abandoned it).
    abandoned: bool,
}

/// Most connect-time samples kept for the median and p99.
const CONNECT_SAMPLES: usize = 20_000;

/// The latest connect times of a campaign (seconds), for their median and 99th percentile.
#[derive(Debug, Clone, Default)]
struct ConnectTimes(VecDeque<f64>);

impl ConnectTimes {
    fn push(&mut self, secs: f64) {
        if self.0.len() == CONNECT_SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(secs);
    }

    /// Median and 99th percentile; zeros before the first sample.
    fn percentiles(&self) -> (f64, f64) {
        let mut v: Vec<f64> = self.0.iter().copied().collect();
        if v.is_empty() {
            return (0.0, 0.0);
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99))
    }
}

/// One campaign's pacer, agents and calls.
pub(crate) struct CampaignCore {
    settings: CoreSettings,
    pacer: Pacer,
    pool: AgentPool,
    status: CampaignStatus,
    calls: BTreeMap<u64, CoreCall>,
    /// Calls' machine timers (beep wait, detection without audio), earliest first.
    timers: BTreeSet<(Duration, u64)>,
    /// Live calls without an agent, by arrival.
    waiting: VecDeque<u64>,
    actions: VecDeque<CoreAction>,
    next_tick: Duration,
    totals: CallTotals,
    /// From the answer to the agent (greeting and detection included).
    connect_times: ConnectTimes,
    /// From the end of the greeting to the agent: the clock of the 2-second rule.
    greeting_connect_times: ConnectTimes,
    /// Talk, wrap-up and ready time of agents who logged out.
    gone_busy: Duration,
    gone_wait: Duration,
    gone_calls: u64,
    decisions: u64,
    pacer_cpu: Duration,
    last_reason: Option<pacing::Reason>,
    /// Attempts an agent disposed of before their wrap-up ended (no default disposition then).
    disposed: std::collections::HashSet<i64>,
}

fn agent_id(id: i64) -> AgentId {
    AgentId(id as u64)
}

impl CampaignCore {
    /// A core around `pacer`, paused until a status comes.
    pub(crate) fn new(settings: CoreSettings, pacer: Pacer, status: CampaignStatus) -> Self {
        CampaignCore {
            settings,
            pacer,
            pool: AgentPool::default(),
            status,
            calls: BTreeMap::new(),
            timers: BTreeSet::new(),
            waiting: VecDeque::new(),
            actions: VecDeque::new(),
            next_tick: Duration::ZERO,
            totals: CallTotals::default(),
            connect_times: ConnectTimes::default(),
            greeting_connect_times: ConnectTimes::default(),
            gone_busy: Duration::ZERO,
            gone_wait: Duration::ZERO,
            gone_calls: 0,
            decisions: 0,
            pacer_cpu: Duration::ZERO,
            last_reason: None,
            disposed: std::collections::HashSet::new(),
        }
    }

    /// The next thing to do.
    pub(crate) fn poll_action(&mut self) -> Option<CoreAction> {
        self.actions.pop_front()
    }

    /// When the core wants [`CoreInput::Tick`] at the latest: the next decision tick, the
    /// earliest abandon deadline, the earliest wrap-up timeout, the earliest call timer.
    pub(crate) fn poll_timeout(&self) -> Duration {
        let mut t = self.next_tick;
        if let Some(&(due, _)) = self.timers.first() {
            t = t.min(due);
        }
        for key in &self.waiting {
            if let Some(d) = self.calls.get(key).and_then(|c| c.deadline) {
                t = t.min(d);
            }
        }
        if let Some(w) = self.pool.next_deadline() {
            t = t.min(w);
        }
        t
    }

    /// Replaces the pacer's settings (validated by the caller; the old ones stay on error).
    pub(crate) fn set_pacing(&mut self, config: pacing::Config) -> Result<(), pacing::ConfigError> {
        self.pacer.set_config(config)
    }

    /// Replaces the wrap-up settings.
    pub(crate) fn set_settings(&mut self, settings: CoreSettings) {
        self.settings = settings;
    }

    /// Seeds the pacer's abandon window with stored history.
    pub(crate) fn seed_window(&mut self, now: Duration, history: &[pacing::HistoryBucket]) {
        self.pacer.seed_window(now, history);
    }

    /// The agent pool (read only).
    pub(crate) fn pool(&self) -> &AgentPool {
        &self.pool
    }

    fn pacer_event(&mut self, now: Duration, event: Event) {
        let started = std::time::Instant::now();
        self.pacer.handle(now, event);
        self.pacer_cpu += started.elapsed();
    }

    fn agent_changed(&mut self, agent: i64) {
        self.actions.push_back(CoreAction::AgentChanged(agent));
    }

    /// Takes one happening at `now`, then decides (assignments, abandons, new calls).
    pub(crate) fn handle(&mut self, now: Duration, input: CoreInput) {
        match input {
            CoreInput::Tick => self.call_timers(now),
            CoreInput::Status(status) => {
                self.status = status;
                if status == CampaignStatus::Stopped {
                    let ringing: Vec<u64> = self
                        .calls
                        .iter()
                        .filter(|(_, c)| {
                            matches!(c.machine.stage(), Stage::Leased | Stage::Dialing)
                        })
                        .map(|(&key, _)| key)
                        .collect();
                    for key in ringing {
                        self.call_input(now, key, CallInput::Hangup(HangupReason::Stop));
                    }
                }
            }
            CoreInput::AgentLogin(agent) => {
                if self.pool.get(agent).is_none() {
                    self.pool.login(agent, now);
                    self.pacer_event(now, Event::AgentLoggedIn(agent_id(agent)));
                    self.pacer_event(now, Event::AgentReady(agent_id(agent)));
                    self.agent_changed(agent);
                }
            }
            CoreInput::AgentLogout(agent) => {
                if let Some(gone) = self.pool.logout(agent, now) {
                    self.pacer_event(now, Event::AgentLoggedOut(agent_id(agent)));
                    self.gone_busy += gone.talk + gone.wrap;
                    self.gone_wait += gone.wait;
                    self.gone_calls += gone.calls;
                    if let Some(key) = gone.call {
                        self.agent_left_call(now, key);
                    }
                    self.actions.push_back(CoreAction::AgentGone(gone));
                }
            }
            CoreInput::AgentPause { agent, reason } => {
                // A pause ends wrap-up without a disposition; the call's outcome stands.
                if let Ok(true) = self.pool.pause(agent, &reason, now) {
                    self.pacer_event(now, Event::AgentPaused(agent_id(agent)));
                }
                self.agent_changed(agent);
            }
            CoreInput::AgentReady(agent) => {
                let was = self.pool.get(agent).map(|a| a.state);
                if let Ok(true) = self.pool.ready(agent, now) {
                    let event = if was == Some(AgentState::WrapUp) {
                        Event::WrapUpEnded(agent_id(agent))
                    } else {
                        Event::AgentReady(agent_id(agent))
                    };
                    self.pacer_event(now, event);
                }
                self.agent_changed(agent);
            }
            CoreInput::AgentHangup(agent) => {
                if let Some(key) = self.pool.get(agent).and_then(|a| a.call) {
                    self.call_input(now, key, CallInput::Hangup(HangupReason::Agent));
                }
            }
            CoreInput::AgentDigit { agent, digit } => {
                let Some(a) = self.pool.get(agent) else {
                    return;
                };
                match a.state {
                    AgentState::OnCall if digit == '#' => {
                        if let Some(key) = a.call {
                            self.call_input(now, key, CallInput::Hangup(HangupReason::Agent));
                        }
                    }
                    AgentState::WrapUp => {
                        if let (Some(kind), Some(attempt)) =
                            (self.settings.digits.get(&digit).copied(), a.attempt)
                        {
                            self.actions.push_back(CoreAction::Dispose {
                                agent,
                                attempt,
                                kind,
                                timed_out: false,
                            });
                            self.end_wrap_up(agent, now);
                        }
                    }
                    _ => {}
                }
            }
            CoreInput::AgentDisposed { agent, attempt } => {
                if self.pool.get(agent).and_then(|a| a.attempt) == Some(attempt) {
                    self.disposed.insert(attempt);
                }
                let wrapping = self
                    .pool
                    .get(agent)
                    .is_some_and(|a| a.state == AgentState::WrapUp && a.attempt == Some(attempt));
                if wrapping {
                    self.end_wrap_up(agent, now);
                }
            }
            CoreInput::Leased { asked, got } => {
                if asked > got {
                    self.pacer_event(now, Event::NotPlaced { count: asked - got });
                }
            }
            CoreInput::CallCreated {
                key,
                callback_agent,
            } => {
                self.calls.insert(
                    key,
                    CoreCall {
                        machine: CallMachine::new(self.settings.call.clone()),
                        attempt: None,
                        callback_agent,
                        timer: None,
                        deadline: None,
                        answered_at: None,
                        greeting_end: None,
                        abandoned: false,
                    },
                );
                if self.status == CampaignStatus::Stopped {
                    self.call_input(now, key, CallInput::Hangup(HangupReason::Stop));
                }
            }
            CoreInput::CallPlaced { key, attempt } => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.attempt = Some(attempt);
                    call.machine.placed();
                    self.totals.placed += 1;
                    self.pacer_event(now, Event::CallPlaced(CallId(key)));
                    self.pump(now, key);
                }
            }
            CoreInput::CallSkipped { key } => {
                if let Some(call) = self.calls.remove(&key) {
                    self.forget_timer(key, call.timer);
                    self.totals.skipped += 1;
                    self.pacer_event(now, Event::NotPlaced { count: 1 });
                }
            }
            CoreInput::Call { key, input } => self.call_input(now, key, input),
            CoreInput::CutAll => {
                let keys: Vec<u64> = self.calls.keys().copied().collect();
                for key in keys {
                    self.call_input(now, key, CallInput::Hangup(HangupReason::Cut));
                }
            }
        }
        self.decide(now);
    }

    /// Feeds one call's machine, then carries out what it asks.
    fn call_input(&mut self, now: Duration, key: u64, input: CallInput) {
        let Some(call) = self.calls.get_mut(&key) else {
            // The call is over; an agent assigned to it meanwhile goes back.
            return;
        };
        call.machine.handle(now, input);
        self.pump(now, key);
    }

    /// Runs the calls' machine timers that are due.
    fn call_timers(&mut self, now: Duration) {
        while let Some(&(due, key)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            if let Some(call) = self.calls.get_mut(&key) {
                call.timer = None;
                call.machine.handle_timeout(now);
                self.pump(now, key);
            }
        }
    }

    fn forget_timer(&mut self, key: u64, timer: Option<Duration>) {
        if let Some(due) = timer {
            self.timers.remove(&(due, key));
        }
    }

    /// Takes a call's machine's actions: reports are the core's own, the rest go to the call's
    /// task; its timer is registered again.
    fn pump(&mut self, now: Duration, key: u64) {
        let mut reports = Vec::new();
        let mut finished = None;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        while let Some(action) = call.machine.poll_action() {
            if let CallAction::Record(store::AttemptEvent::Amd(result)) = &action {
                match result {
                    domain::AmdResult::Human => self.totals.amd_human += 1,
                    domain::AmdResult::Machine => self.totals.amd_machine += 1,
                    domain::AmdResult::NotSure => self.totals.amd_notsure += 1,
                }
            }
            match action {
                CallAction::Report(report) => reports.push(report),
                CallAction::Finish(f) => finished = Some(f),
                action => self.actions.push_back(CoreAction::Call { key, action }),
            }
        }
        let timer = call.machine.poll_timeout();
        if timer != call.timer {
            let old = std::mem::replace(&mut call.timer, timer);
            self.forget_timer(key, old);
            if let Some(due) = timer {
                self.timers.insert((due, key));
            }
        }
        for report in reports {
            self.report(now, key, report);
        }
        if let Some(f) = finished {
            self.finished(now, key, f.clone());
            self.actions.push_back(CoreAction::Call {
                key,
                action: CallAction::Finish(f),
            });
        }
    }

    fn end_wrap_up(&mut self, agent: i64, now: Duration) {
        if let Some(attempt) = self.pool.get(agent).and_then(|a| a.attempt) {
            self.disposed.remove(&attempt);
        }
        if self.pool.wrap_up_done(agent, now).is_ok() {
            let event = match self.pool.get(agent).map(|a| a.state) {
                Some(AgentState::Paused) => Event::AgentPaused(agent_id(agent)),
                _ => Event::WrapUpEnded(agent_id(agent)),
            };
            self.pacer_event(now, event);
            self.agent_changed(agent);
        }
    }

    /// The agent on call `key` logged out: a call being connected looks for another agent; a
    /// connected call ends.
    fn agent_left_call(&mut self, now: Duration, key: u64) {
        let Some(stage) = self.calls.get(&key).map(|c| c.machine.stage()) else {
            return;
        };
        match stage {
            Stage::Reserved => {
                self.call_input(now, key, CallInput::Unassigned);
                self.waiting.push_front(key);
            }
            Stage::Bridged => self.call_input(now, key, CallInput::Hangup(HangupReason::AgentGone)),
            _ => {}
        }
    }

    fn report(&mut self, now: Duration, key: u64, report: Report) {
        let Some(call) = self.calls.get_mut(&key) else {
            if let Report::Refused { agent } = report {
                self.unreserve(agent, now);
            }
            return;
        };
        match report {
            Report::Ringing => self.pacer_event(now, Event::CallRinging(CallId(key))),
            Report::Answered => {
                call.answered_at = Some(now);
                self.totals.answered += 1;
                self.pacer_event(now, Event::CallAnswered(CallId(key)));
            }
            Report::Live { greeting_end } => {
                call.greeting_end = Some(greeting_end);
                call.deadline = Some(greeting_end + self.settings.connect_grace);
                self.totals.live += 1;
                self.waiting.push_back(key);
                self.pacer_event(now, Event::CallLive(CallId(key)));
            }
            Report::Machine => {
                self.totals.machines += 1;
                self.pacer_event(now, Event::CallMachine(CallId(key)));
            }
            Report::Bridged { agent } => {
                call.deadline = None;
                let attempt = call.attempt.unwrap_or_default();
                if let Some(answered) = call.answered_at {
                    self.connect_times
                        .push(now.saturating_sub(answered).as_secs_f64());
                }
                if let Some(greeting_end) = call.greeting_end {
                    self.greeting_connect_times
                        .push(now.saturating_sub(greeting_end).as_secs_f64());
                }
                if self.pool.bridged(agent, attempt, now).is_ok() {
                    self.pacer_event(
                        now,
                        Event::CallBridged {
                            call: CallId(key),
                            agent: agent_id(agent),
                        },
                    );
                    self.agent_changed(agent);
                } else {
                    // The agent left while being connected: the callee must not talk to nobody.
                    self.call_input(now, key, CallInput::Hangup(HangupReason::AgentGone));
                }
            }
            Report::Refused { agent } => {
                if call.machine.stage() == Stage::Waiting {
                    // The bridge failed but the callee is still there: look again.
                    self.waiting.push_front(key);
                }
                self.unreserve(agent, now);
            }
        }
    }

    fn unreserve(&mut self, agent: i64, now: Duration) {
        if self.pool.unreserve(agent, now).is_ok() {
            if self.pool.get(agent).map(|a| a.state) == Some(AgentState::Paused) {
                self.pacer_event(now, Event::AgentPaused(agent_id(agent)));
            }
            self.agent_changed(agent);
        }
    }

    fn finished(&mut self, now: Duration, key: u64, finished: Finished) {
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        self.forget_timer(key, call.timer);
        self.waiting.retain(|k| *k != key);
        if finished.outcome == Outcome::Abandoned && !call.abandoned {
            // The callee hung up while waiting for an agent: still a live answer not connected.
            self.pacer_event(now, Event::CallAbandoned(CallId(key)));
        }
        if call.attempt.is_some() {
            self.pacer_event(
                now,
                Event::CallEnded {
                    call: CallId(key),
                    reason: finished.pacer,
                },
            );
        } else {
            self.pacer_event(now, Event::NotPlaced { count: 1 });
        }
        let t = &mut self.totals;
        match finished.outcome {
            Outcome::Connected => t.connected += 1,
            Outcome::Abandoned => t.abandoned += 1,
            Outcome::MachineMessageLeft => t.messages_left += 1,
            Outcome::MachineHungUp => {}
            Outcome::Busy => t.busy += 1,
            Outcome::NoAnswer => t.no_answer += 1,
            Outcome::Rejected => t.rejected += 1,
            Outcome::InvalidNumber => t.invalid += 1,
            Outcome::Failed | Outcome::DoNotCall => t.failed += 1,
        }
        if let Some(agent) = finished.agent {
            match self.pool.get(agent).map(|a| a.state) {
                Some(AgentState::OnCall)
                    if self
                        .pool
                        .call_ended(agent, now, self.settings.wrap_up)
                        .is_ok() =>
                {
                    self.agent_changed(agent);
                }
                Some(AgentState::Reserved) => self.unreserve(agent, now),
                _ => {}
            }
        }
    }

    /// Wrap-up timeouts, abandons due, assignments, and (while running) new calls.
    fn decide(&mut self, now: Duration) {
        for WrapUpExpired { agent, attempt } in self.pool.expire_wrap_ups(now) {
            let event = match self.pool.get(agent).map(|a| a.state) {
                Some(AgentState::Paused) => Event::AgentPaused(agent_id(agent)),
                _ => Event::WrapUpEnded(agent_id(agent)),
            };
            self.pacer_event(now, event);
            let disposed = attempt.is_some_and(|a| self.disposed.remove(&a));
            if let (Some(attempt), Some(kind), false) =
                (attempt, self.default_disposition(), disposed)
            {
                self.actions.push_back(CoreAction::Dispose {
                    agent,
                    attempt,
                    kind,
                    timed_out: true,
                });
            }
            self.agent_changed(agent);
        }
        self.assign(now);
        if now >= self.next_tick {
            self.next_tick = now + self.settings.tick;
        }
        if self.status != CampaignStatus::Running {
            return;
        }
        let started = std::time::Instant::now();
        let Decision {
            start,
            cancel,
            reason,
        } = self.pacer.decide(now);
        self.pacer_cpu += started.elapsed();
        self.decisions += 1;
        self.last_reason = reason;
        for call in cancel {
            self.call_input(now, call.0, CallInput::Hangup(HangupReason::PacerCancel));
        }
        let count = start.min(self.settings.max_starts);
        if start > count {
            self.pacer_event(
                now,
                Event::NotPlaced {
                    count: start - count,
                },
            );
        }
        if count > 0 {
            self.actions.push_back(CoreAction::Lease {
                count,
                callback_agents: self.pool.ready_ids(),
            });
        }
    }

    fn default_disposition(&self) -> Option<DispositionKind> {
        self.settings.wrap_up_default
    }

    /// Gives waiting calls agents, oldest first; abandons those past their deadline.
    fn assign(&mut self, now: Duration) {
        let pending = std::mem::take(&mut self.waiting);
        let mut still = VecDeque::with_capacity(pending.len());
        for key in pending {
            let Some(call) = self.calls.get(&key) else {
                continue;
            };
            if call.machine.stage() != Stage::Waiting {
                continue;
            }
            let preferred = call.callback_agent;
            let deadline = call.deadline;
            if let Some(agent) = self.pool.longest_idle(preferred)
                && self.pool.reserve(agent, key, now).is_ok()
            {
                self.agent_changed(agent);
                self.call_input(now, key, CallInput::Assigned { agent });
                continue;
            }
            if deadline.is_some_and(|d| d <= now) {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.abandoned = true;
                }
                self.pacer_event(now, Event::CallAbandoned(CallId(key)));
                self.call_input(now, key, CallInput::Abandon);
                continue;
            }
            still.push_back(key);
        }
        // Calls put back meanwhile (a refused agent) go first.
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.extend(still);
        self.waiting = waiting;
    }

    /// Agents by state.
    pub(crate) fn agent_counts(&self) -> AgentCounts {
        let [ready, reserved, on_call, wrap_up, paused] = self.pool.counts();
        AgentCounts {
            logged_in: self.pool.len() as u32,
            ready,
            reserved,
            on_call,
            wrap_up,
            paused,
        }
    }

    /// Calls in flight by stage.
    pub(crate) fn call_counts(&self) -> CallCounts {
        let mut c = CallCounts::default();
        for call in self.calls.values() {
            c.in_flight += 1;
            match call.machine.stage() {
                Stage::Leased | Stage::Dialing => c.dialing += 1,
                Stage::Answered => c.answered += 1,
                Stage::Waiting | Stage::Reserved => c.waiting += 1,
                Stage::Bridged => c.bridged += 1,
                Stage::Other | Stage::Done => c.other += 1,
            }
        }
        c
    }

    /// Totals since start.
    pub(crate) fn totals(&self) -> CallTotals {
        self.totals
    }

    /// The pacer's view.
    pub(crate) fn pacing_view(&self, now: Duration) -> PacingView {
        let f = self.pacer.figures(now);
        PacingView {
            reason: self.last_reason.map(|r| format!("{r:?}").to_lowercase()),
            dial_level: f.dial_level,
            answer_rate: f.estimates.live,
            machine_rate: f.estimates.machine,
            talk_mean_secs: f.estimates.talk_mean,
            next_call_abandon_probability: f.next_call_abandon_probability,
            decisions: self.decisions,
            cpu_secs: self.pacer_cpu.as_secs_f64(),
        }
    }

    /// Live answers and abandons in the pacer's window.
    pub(crate) fn window(&self, now: Duration) -> (u64, u64) {
        let f = self.pacer.figures(now);
        (f.abandon.window_live, f.abandon.window_abandoned)
    }

    /// (occupancy, mean wait between calls in seconds) since start, logged-out agents included.
    pub(crate) fn occupancy(&self, now: Duration) -> (f64, f64) {
        let mut busy = self.gone_busy;
        let mut wait = self.gone_wait;
        let mut calls = self.gone_calls;
        for a in self.pool.iter() {
            let current = now.saturating_sub(a.since);
            busy += a.talk + a.wrap;
            wait += a.wait;
            calls += a.calls;
            match a.state {
                AgentState::OnCall | AgentState::WrapUp => busy += current,
                AgentState::Ready | AgentState::Reserved => wait += current,
                _ => {}
            }
        }
        let total = (busy + wait).as_secs_f64();
        let occupancy = if total > 0.0 {
            busy.as_secs_f64() / total
        } else {
            0.0
        };
        let mean_wait = if calls > 0 {
            wait.as_secs_f64() / calls as f64
        } else {
            0.0
        };
        (occupancy, mean_wait)
    }

    /// Median and 99th percentile of answer-to-agent times, seconds.
    pub(crate) fn connect_times(&self) -> (f64, f64) {
        self.connect_times.percentiles()
    }

    /// Median and 99th percentile of greeting-end-to-agent times (the 2-second rule's clock),
    /// seconds.
    pub(crate) fn greeting_connect_times(&self) -> (f64, f64) {
        self.greeting_connect_times.percentiles()
    }
}

impl From<PoolError> for &'static str {
    fn from(e: PoolError) -> &'static str {
        match e {
            PoolError::Unknown => "logged out",
            PoolError::State(s) => s.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::PromptKind;
    use crate::view::CallState;
    use domain::DialMode;
    use domain::{AmdResult, MachineAction};
    use pacing::Config;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn core(mode: DialMode) -> CampaignCore {
        let mut config = Config::default();
        config.settings.mode = mode;
        config.settings.max_lines = 100;
        let settings = CoreSettings {
            wrap_up: Duration::from_secs(10),
            connect_grace: Duration::from_secs(2),
            max_starts: 50,
            digits: [
                ('1', DispositionKind::Sale),
                ('9', DispositionKind::DoNotCall),
            ]
            .into_iter()
            .collect(),
            wrap_up_default: Some(DispositionKind::Other),
            tick: ms(250),
            call: CallConfig {
                amd: true,
                machine_action: MachineAction::HangUp,
                not_sure_action: domain::NotSureAction::Agent,
                agentless: false,
                beep_timeout: Duration::from_secs(20),
                amd_timeout: Duration::from_secs(6),
            },
        };
        CampaignCore::new(
            settings,
            Pacer::new(config).unwrap(),
            CampaignStatus::Paused,
        )
    }

    fn drain(c: &mut CampaignCore) -> Vec<CoreAction> {
        std::iter::from_fn(|| c.poll_action()).collect()
    }

    fn leases(actions: &[CoreAction]) -> u32 {
        actions
            .iter()
            .map(|a| match a {
                CoreAction::Lease { count, .. } => *count,
                _ => 0,
            })
            .sum()
    }

    fn call(key: u64, action: CallAction) -> CoreAction {
        CoreAction::Call { key, action }
    }

    fn bridge(key: u64, agent: i64) -> CoreAction {
        call(key, CallAction::Bridge { agent })
    }

    fn abandons(actions: &[CoreAction]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                CoreAction::Call {
                    key,
                    action: CallAction::Play(PromptKind::Abandon),
                } => Some(*key),
                _ => None,
            })
            .collect()
    }

    fn input(c: &mut CampaignCore, at: u64, key: u64, input: CallInput) {
        c.handle(ms(at), CoreInput::Call { key, input });
    }

    /// The callee's side hangs up (or the carrier confirms our BYE).
    fn ended(c: &mut CampaignCore, at: u64, key: u64) {
        input(
            c,
            at,
            key,
            CallInput::Ended {
                outcome: sip::InviteResult::Answered,
                code: Some(200),
            },
        );
    }

    fn finished(actions: &[CoreAction], key: u64) -> Option<Finished> {
        actions.iter().find_map(|a| match a {
            CoreAction::Call {
                key: k,
                action: CallAction::Finish(f),
            } if *k == key => Some(f.clone()),
            _ => None,
        })
    }

    fn placed(c: &mut CampaignCore, key: u64, at: u64) {
        c.handle(
            ms(at),
            CoreInput::CallCreated {
                key,
                callback_agent: None,
            },
        );
        c.handle(
            ms(at),
            CoreInput::CallPlaced {
                key,
                attempt: key as i64,
            },
        );
    }

    /// Places `n` calls (keys from `first`) and answers them live at `now` (a greeting that
    /// ended at once).
    fn live_calls(c: &mut CampaignCore, first: u64, n: u64, now: Duration) {
        let at = now.as_millis() as u64;
        for key in first..first + n {
            placed(c, key, at);
            input(c, at, key, CallInput::Answered);
            input(
                c,
                at,
                key,
                CallInput::Amd {
                    result: Some(AmdResult::Human),
                    greeting_end: Some(now),
                    cause: "HUMAN".into(),
                },
            );
        }
    }

    #[test]
    fn progressive_leases_per_ready_agent_only_while_running() {
        let mut c = core(DialMode::Progressive);
        for a in 1..=3 {
            c.handle(ms(0), CoreInput::AgentLogin(a));
        }
        assert_eq!(leases(&drain(&mut c)), 0, "paused: no calls");
        c.handle(ms(0), CoreInput::Status(CampaignStatus::Running));
        assert_eq!(leases(&drain(&mut c)), 3);
        // Asked for, not placed yet: no more.
        c.handle(ms(250), CoreInput::Tick);
        assert_eq!(leases(&drain(&mut c)), 0);
        // Only one contact was due: the two others are given back to the pacer.
        c.handle(ms(300), CoreInput::Leased { asked: 3, got: 1 });
        assert_eq!(leases(&drain(&mut c)), 2);
    }

    #[test]
    fn a_live_answer_gets_the_longest_idle_agent_in_the_same_step() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        c.handle(ms(100), CoreInput::AgentLogin(2));
        drain(&mut c);
        live_calls(&mut c, 10, 1, ms(1000));
        let a = drain(&mut c);
        assert!(a.contains(&bridge(10, 1)), "{a:?}");
        assert!(a.contains(&call(10, CallAction::State(CallState::Live))));
        input(&mut c, 1010, 10, CallInput::Bridged { agent: 1 });
        assert_eq!(c.pool().get(1).unwrap().state, AgentState::OnCall);
        assert!(drain(&mut c).contains(&call(
            10,
            CallAction::Record(store::AttemptEvent::Bridged { agent_id: 1 })
        )));
        live_calls(&mut c, 11, 1, ms(2000));
        assert!(drain(&mut c).contains(&bridge(11, 2)));
        assert_eq!(c.connect_times().0, 0.01);
    }

    #[test]
    fn connect_times_run_from_the_answer_and_from_the_greeting_end() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        c.handle(ms(0), CoreInput::Status(CampaignStatus::Running));
        drain(&mut c);
        assert_eq!(c.greeting_connect_times(), (0.0, 0.0));
        placed(&mut c, 7, 900);
        // Answered at 1 s; "Hello?" until 2.5 s; HUMAN after 800 ms of silence; bridged 10 ms on.
        input(&mut c, 1000, 7, CallInput::Answered);
        input(
            &mut c,
            3300,
            7,
            CallInput::Amd {
                result: Some(AmdResult::Human),
                greeting_end: Some(ms(2500)),
                cause: "HUMAN".into(),
            },
        );
        assert!(drain(&mut c).contains(&bridge(7, 1)));
        input(&mut c, 3310, 7, CallInput::Bridged { agent: 1 });
        let close = |a: (f64, f64), b: f64| (a.0 - b).abs() < 1e-9 && (a.1 - b).abs() < 1e-9;
        assert!(close(c.connect_times(), 2.31), "{:?}", c.connect_times());
        assert!(
            close(c.greeting_connect_times(), 0.81),
            "{:?}",
            c.greeting_connect_times()
        );
    }

    #[test]
    fn no_agent_within_two_seconds_of_the_greeting_abandons() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 2, ms(1000));
        let a = drain(&mut c);
        assert!(a.contains(&bridge(1, 1)));
        assert!(abandons(&a).is_empty());
        // Call 2 waits until greeting end + 2 s.
        assert_eq!(c.poll_timeout(), ms(1250).min(ms(3000)));
        c.handle(ms(2999), CoreInput::Tick);
        assert!(abandons(&drain(&mut c)).is_empty());
        c.handle(ms(3000), CoreInput::Tick);
        let a = drain(&mut c);
        assert_eq!(abandons(&a), [2]);
        assert!(a.contains(&call(2, CallAction::State(CallState::Abandoning))));
        // The message plays to its end; the machine hangs up; the carrier confirms.
        input(&mut c, 5500, 2, CallInput::PlaybackFinished);
        assert!(drain(&mut c).contains(&call(2, CallAction::Hangup)));
        ended(&mut c, 6000, 2);
        let f = finished(&drain(&mut c), 2).unwrap();
        assert_eq!((f.outcome, f.reason), (Outcome::Abandoned, None));
        assert_eq!(c.totals().abandoned, 1);
        assert_eq!(c.window(ms(6000)), (2, 1));
    }

    #[test]
    fn an_agent_freed_before_the_deadline_takes_the_waiting_call() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 2, ms(1000));
        input(&mut c, 1005, 1, CallInput::Bridged { agent: 1 });
        drain(&mut c);
        // Call 1 ends; agent 1 wraps up and sets a disposition by DTMF at once.
        ended(&mut c, 1500, 1);
        let f = finished(&drain(&mut c), 1).unwrap();
        assert_eq!((f.outcome, f.agent), (Outcome::Connected, Some(1)));
        assert_eq!(c.pool().get(1).unwrap().state, AgentState::WrapUp);
        c.handle(
            ms(1600),
            CoreInput::AgentDigit {
                agent: 1,
                digit: '1',
            },
        );
        let a = drain(&mut c);
        assert!(a.contains(&CoreAction::Dispose {
            agent: 1,
            attempt: 1,
            kind: DispositionKind::Sale,
            timed_out: false
        }));
        assert!(a.contains(&bridge(2, 1)), "{a:?}");
    }

    #[test]
    fn wrap_up_times_out_with_the_default_disposition() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 5, 1, ms(0));
        input(&mut c, 10, 5, CallInput::Bridged { agent: 1 });
        ended(&mut c, 5000, 5);
        drain(&mut c);
        assert_eq!(c.poll_timeout(), ms(5250).min(ms(15_000)));
        c.handle(ms(15_000), CoreInput::Tick);
        let a = drain(&mut c);
        assert!(a.contains(&CoreAction::Dispose {
            agent: 1,
            attempt: 5,
            kind: DispositionKind::Other,
            timed_out: true
        }));
        assert_eq!(c.pool().get(1).unwrap().state, AgentState::Ready);
    }

    #[test]
    fn hash_ends_the_call_and_stop_cancels_ringing_calls() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        input(&mut c, 10, 1, CallInput::Bridged { agent: 1 });
        placed(&mut c, 2, 20);
        placed(&mut c, 3, 20);
        c.handle(
            ms(20),
            CoreInput::CallCreated {
                key: 4,
                callback_agent: None,
            },
        );
        drain(&mut c);
        c.handle(
            ms(30),
            CoreInput::AgentDigit {
                agent: 1,
                digit: '#',
            },
        );
        assert_eq!(drain(&mut c), [call(1, CallAction::Hangup)]);
        c.handle(ms(40), CoreInput::Status(CampaignStatus::Stopped));
        let a = drain(&mut c);
        // Ringing calls are cancelled, a leased one is skipped by its task; the bridged call
        // (already being hung up) finishes its course.
        for key in [2, 3, 4] {
            assert!(a.contains(&call(key, CallAction::Hangup)), "{key}: {a:?}");
        }
        assert_eq!(
            a.iter()
                .filter(|x| **x == call(1, CallAction::Hangup))
                .count(),
            0
        );
        assert_eq!(c.call_counts().dialing, 3);
    }

    #[test]
    fn agent_logging_out_mid_call_ends_the_customer_call() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        input(&mut c, 10, 1, CallInput::Bridged { agent: 1 });
        drain(&mut c);
        c.handle(ms(20), CoreInput::AgentLogout(1));
        let a = drain(&mut c);
        assert!(a.contains(&call(1, CallAction::Hangup)), "{a:?}");
        assert!(
            a.iter()
                .any(|x| matches!(x, CoreAction::AgentGone(g) if g.id == 1))
        );
        assert_eq!(c.agent_counts().logged_in, 0);
        ended(&mut c, 50, 1);
        let f = finished(&drain(&mut c), 1).unwrap();
        assert_eq!(f.outcome, Outcome::Connected);
    }

    #[test]
    fn an_agent_leaving_while_being_connected_hands_the_call_to_the_next() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        c.handle(ms(10), CoreInput::AgentLogin(2));
        c.handle(
            ms(20),
            CoreInput::AgentPause {
                agent: 2,
                reason: "coffee".into(),
            },
        );
        live_calls(&mut c, 1, 1, ms(100));
        assert!(drain(&mut c).contains(&bridge(1, 1)));
        c.handle(ms(110), CoreInput::AgentLogout(1));
        drain(&mut c);
        assert_eq!(c.call_counts().waiting, 1);
        c.handle(ms(120), CoreInput::AgentReady(2));
        assert!(drain(&mut c).contains(&bridge(1, 2)));
        // The first bridge's late report is not taken for the second agent's.
        input(&mut c, 130, 1, CallInput::BridgeFailed { agent: 1 });
        assert_eq!(c.pool().get(2).unwrap().state, AgentState::Reserved);
        input(&mut c, 140, 1, CallInput::Bridged { agent: 2 });
        assert_eq!(c.pool().get(2).unwrap().state, AgentState::OnCall);
    }

    #[test]
    fn a_failed_bridge_puts_the_agent_back_and_the_call_in_front() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        assert!(drain(&mut c).contains(&bridge(1, 1)));
        input(&mut c, 5, 1, CallInput::BridgeFailed { agent: 1 });
        // The agent is ready again, and the waiting call takes it at once.
        let a = drain(&mut c);
        assert!(a.contains(&bridge(1, 1)), "{a:?}");
    }

    #[test]
    fn the_callee_hanging_up_while_being_connected_frees_the_agent() {
        let mut c = core(DialMode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        assert!(drain(&mut c).contains(&bridge(1, 1)));
        ended(&mut c, 5, 1);
        let f = finished(&drain(&mut c), 1).unwrap();
        assert_eq!(f.outcome, Outcome::Abandoned);
        // The bridge's late report changes nothing.
        input(&mut c, 6, 1, CallInput::Bridged { agent: 1 });
        assert_eq!(c.pool().get(1).unwrap().state, AgentState::Ready);
        assert_eq!(c.totals().abandoned, 1);
        assert_eq!(c.window(ms(10)), (1, 1));
    }

    #[test]
    fn call_timers_run_in_the_core() {
        let mut c = core(DialMode::Progressive);
        placed(&mut c, 1, 0);
        input(&mut c, 1000, 1, CallInput::Answered);
        drain(&mut c);
        // Detection hears nothing: NOTSURE at the machine's timeout, then the call is live.
        assert_eq!(c.poll_timeout(), ms(1250));
        c.handle(ms(6999), CoreInput::Tick);
        assert_eq!(c.call_counts().answered, 1);
        c.handle(ms(7000), CoreInput::Tick);
        let a = drain(&mut c);
        assert!(a.contains(&call(
            1,
            CallAction::Record(store::AttemptEvent::Amd(AmdResult::NotSure))
        )));
        assert_eq!(c.call_counts().waiting, 1);
        assert_eq!(c.totals().live, 1);
        // The live figures count the verdict, so a drift in the machine share shows.
        assert_eq!(
            (
                c.totals().amd_human,
                c.totals().amd_machine,
                c.totals().amd_notsure
            ),
            (0, 0, 1)
        );
        live_calls(&mut c, 2, 2, ms(8000));
        assert_eq!(c.totals().amd_human, 2);
    }
}
