//! One campaign's decisions as a sans-IO state machine: the pacer, the agent pool, the calls in
//! flight and the live answers waiting for an agent. The campaign actor (`campaign.rs`) feeds it
//! every happening with the time and carries out what it asks (lease contacts, give a call an
//! agent, abandon a call, hang up, store a disposition).
//!
//! The 2-second rule lives here: a live answer gets the longest-idle ready agent at once; if
//! none is ready it waits, first come first served, until `greeting end + connect_grace`, and
//! is abandoned at that instant unless an agent frees up before.

use crate::call::{Finished, HangupReason, Report};
use crate::pool::{AgentPool, PoolAgent, PoolError, WrapUpExpired};
use crate::view::{AgentCounts, AgentState, CallCounts, CallTotals, PacingView};
use pacing::{AgentId, CallId, Decision, Event, Pacer};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;
use store::{CampaignStatus, DispositionKind, Outcome};

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
    /// The call's INVITE went out.
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
    /// A call reported progress.
    CallReport {
        /// The call.
        key: u64,
        /// What.
        report: Report,
    },
    /// A call is over.
    CallFinished {
        /// The call.
        key: u64,
        /// How.
        finished: Finished,
    },
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
    /// Connect this live call to this (reserved) agent.
    Assign {
        /// The call.
        key: u64,
        /// The agent.
        agent: i64,
    },
    /// No agent in time: play the abandon message.
    Abandon {
        /// The call.
        key: u64,
    },
    /// Hang this call up.
    Hangup {
        /// The call.
        key: u64,
        /// Why.
        reason: HangupReason,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Leased, the call task is checking it.
    Leased,
    /// INVITE sent, ringing.
    Dialing,
    /// Answered, AMD listening.
    Answered,
    /// Live, no agent yet.
    Waiting,
    /// An agent is reserved for it.
    Reserved,
    /// Connected to an agent.
    Bridged,
    /// Machine, abandon message, agentless message.
    Other,
}

#[derive(Debug, Clone)]
struct CoreCall {
    stage: Stage,
    attempt: Option<i64>,
    callback_agent: Option<i64>,
    agent: Option<i64>,
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
    /// earliest abandon deadline, the earliest wrap-up timeout.
    pub(crate) fn poll_timeout(&self) -> Duration {
        let mut t = self.next_tick;
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
            CoreInput::Tick => {}
            CoreInput::Status(status) => {
                self.status = status;
                if status == CampaignStatus::Stopped {
                    for (&key, call) in &self.calls {
                        if matches!(call.stage, Stage::Leased | Stage::Dialing) {
                            self.actions.push_back(CoreAction::Hangup {
                                key,
                                reason: HangupReason::Stop,
                            });
                        }
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
                        self.agent_left_call(key);
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
                    self.actions.push_back(CoreAction::Hangup {
                        key,
                        reason: HangupReason::Agent,
                    });
                }
            }
            CoreInput::AgentDigit { agent, digit } => {
                let Some(a) = self.pool.get(agent) else {
                    return;
                };
                match a.state {
                    AgentState::OnCall if digit == '#' => {
                        if let Some(key) = a.call {
                            self.actions.push_back(CoreAction::Hangup {
                                key,
                                reason: HangupReason::Agent,
                            });
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
                        stage: Stage::Leased,
                        attempt: None,
                        callback_agent,
                        agent: None,
                        deadline: None,
                        answered_at: None,
                        greeting_end: None,
                        abandoned: false,
                    },
                );
                if self.status == CampaignStatus::Stopped {
                    self.actions.push_back(CoreAction::Hangup {
                        key,
                        reason: HangupReason::Stop,
                    });
                }
            }
            CoreInput::CallPlaced { key, attempt } => {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.stage = Stage::Dialing;
                    call.attempt = Some(attempt);
                    self.totals.placed += 1;
                    self.pacer_event(now, Event::CallPlaced(CallId(key)));
                }
            }
            CoreInput::CallSkipped { key } => {
                if self.calls.remove(&key).is_some() {
                    self.totals.skipped += 1;
                    self.pacer_event(now, Event::NotPlaced { count: 1 });
                }
            }
            CoreInput::CallReport { key, report } => self.report(now, key, report),
            CoreInput::CallFinished { key, finished } => self.finished(now, key, finished),
        }
        self.decide(now);
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

    /// The agent on call `key` logged out: the customer call ends.
    fn agent_left_call(&mut self, key: u64) {
        if let Some(call) = self.calls.get_mut(&key) {
            match call.stage {
                Stage::Reserved => {
                    call.stage = Stage::Waiting;
                    call.agent = None;
                    self.waiting.push_front(key);
                }
                Stage::Bridged => {
                    self.actions.push_back(CoreAction::Hangup {
                        key,
                        reason: HangupReason::AgentGone,
                    });
                }
                _ => {}
            }
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
                call.stage = Stage::Answered;
                call.answered_at = Some(now);
                self.totals.answered += 1;
                self.pacer_event(now, Event::CallAnswered(CallId(key)));
            }
            Report::Live { greeting_end } => {
                call.stage = Stage::Waiting;
                call.greeting_end = Some(greeting_end);
                call.deadline = Some(greeting_end + self.settings.connect_grace);
                self.totals.live += 1;
                self.waiting.push_back(key);
                self.pacer_event(now, Event::CallLive(CallId(key)));
            }
            Report::Machine => {
                call.stage = Stage::Other;
                self.totals.machines += 1;
                self.pacer_event(now, Event::CallMachine(CallId(key)));
            }
            Report::Bridged { agent } => {
                call.stage = Stage::Bridged;
                call.agent = Some(agent);
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
                    self.actions.push_back(CoreAction::Hangup {
                        key,
                        reason: HangupReason::AgentGone,
                    });
                }
            }
            Report::Refused { agent } => {
                if call.stage == Stage::Reserved && call.agent == Some(agent) {
                    // The bridge failed but the callee is still there: look again.
                    call.stage = Stage::Waiting;
                    call.agent = None;
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
        self.waiting.retain(|k| *k != key);
        if finished.outcome == Outcome::Abandoned && !call.abandoned {
            // The callee hung up while waiting for an agent: still a live answer not connected.
            self.pacer_event(now, Event::CallAbandoned(CallId(key)));
        }
        if call.stage != Stage::Leased {
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
        if let Some(agent) = call.agent {
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
            self.actions.push_back(CoreAction::Hangup {
                key: call.0,
                reason: HangupReason::PacerCancel,
            });
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
        let mut still = VecDeque::with_capacity(self.waiting.len());
        while let Some(key) = self.waiting.pop_front() {
            let Some(call) = self.calls.get(&key) else {
                continue;
            };
            if call.stage != Stage::Waiting {
                continue;
            }
            let preferred = call.callback_agent;
            if let Some(agent) = self.pool.longest_idle(preferred)
                && self.pool.reserve(agent, key, now).is_ok()
            {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.stage = Stage::Reserved;
                    call.agent = Some(agent);
                }
                self.actions.push_back(CoreAction::Assign { key, agent });
                self.agent_changed(agent);
                continue;
            }
            if call.deadline.is_some_and(|d| d <= now) {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.stage = Stage::Other;
                    call.abandoned = true;
                }
                self.pacer_event(now, Event::CallAbandoned(CallId(key)));
                self.actions.push_back(CoreAction::Abandon { key });
                continue;
            }
            still.push_back(key);
        }
        self.waiting = still;
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
            match call.stage {
                Stage::Leased | Stage::Dialing => c.dialing += 1,
                Stage::Answered => c.answered += 1,
                Stage::Waiting | Stage::Reserved => c.waiting += 1,
                Stage::Bridged => c.bridged += 1,
                Stage::Other => c.other += 1,
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
    use crate::call::Finished;
    use pacing::{Config, EndReason, Mode};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn core(mode: Mode) -> CampaignCore {
        let config = Config {
            mode,
            max_in_flight: Some(100),
            ..Config::default()
        };
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

    fn finish(outcome: Outcome, pacer: EndReason, agent: Option<i64>) -> Finished {
        Finished {
            outcome,
            sip_code: Some(200),
            reason: None,
            pacer,
            agent,
        }
    }

    /// Places `n` calls (keys from `first`) and answers them live at `now`.
    fn live_calls(c: &mut CampaignCore, first: u64, n: u64, now: Duration) {
        for key in first..first + n {
            c.handle(
                now,
                CoreInput::CallCreated {
                    key,
                    callback_agent: None,
                },
            );
            c.handle(
                now,
                CoreInput::CallPlaced {
                    key,
                    attempt: key as i64,
                },
            );
            c.handle(
                now,
                CoreInput::CallReport {
                    key,
                    report: Report::Answered,
                },
            );
            c.handle(
                now,
                CoreInput::CallReport {
                    key,
                    report: Report::Live { greeting_end: now },
                },
            );
        }
    }

    #[test]
    fn progressive_leases_per_ready_agent_only_while_running() {
        let mut c = core(Mode::Progressive);
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
    fn live_answer_goes_to_the_longest_idle_agent() {
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        c.handle(ms(100), CoreInput::AgentLogin(2));
        drain(&mut c);
        live_calls(&mut c, 10, 1, ms(1000));
        let a = drain(&mut c);
        assert!(
            a.contains(&CoreAction::Assign { key: 10, agent: 1 }),
            "{a:?}"
        );
        c.handle(
            ms(1010),
            CoreInput::CallReport {
                key: 10,
                report: Report::Bridged { agent: 1 },
            },
        );
        assert_eq!(c.pool().get(1).unwrap().state, AgentState::OnCall);
        live_calls(&mut c, 11, 1, ms(2000));
        assert!(drain(&mut c).contains(&CoreAction::Assign { key: 11, agent: 2 }));
        assert_eq!(c.connect_times().0, 0.01);
    }

    #[test]
    fn connect_times_run_from_the_answer_and_from_the_greeting_end() {
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        c.handle(ms(0), CoreInput::Status(CampaignStatus::Running));
        drain(&mut c);
        assert_eq!(c.greeting_connect_times(), (0.0, 0.0));
        c.handle(
            ms(900),
            CoreInput::CallCreated {
                key: 7,
                callback_agent: None,
            },
        );
        c.handle(ms(900), CoreInput::CallPlaced { key: 7, attempt: 7 });
        let report = |c: &mut CampaignCore, at: u64, report: Report| {
            c.handle(ms(at), CoreInput::CallReport { key: 7, report });
        };
        // Answered at 1 s; "Hello?" until 2.5 s; HUMAN after 800 ms of silence; bridged 10 ms on.
        report(&mut c, 1000, Report::Answered);
        report(
            &mut c,
            3300,
            Report::Live {
                greeting_end: ms(2500),
            },
        );
        assert!(drain(&mut c).contains(&CoreAction::Assign { key: 7, agent: 1 }));
        report(&mut c, 3310, Report::Bridged { agent: 1 });
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
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 2, ms(1000));
        let a = drain(&mut c);
        assert!(a.contains(&CoreAction::Assign { key: 1, agent: 1 }));
        assert!(!a.iter().any(|x| matches!(x, CoreAction::Abandon { .. })));
        // Call 2 waits until greeting end + 2 s.
        assert_eq!(c.poll_timeout(), ms(1250).min(ms(3000)));
        c.handle(ms(2999), CoreInput::Tick);
        assert!(
            !drain(&mut c)
                .iter()
                .any(|x| matches!(x, CoreAction::Abandon { .. }))
        );
        c.handle(ms(3000), CoreInput::Tick);
        assert!(drain(&mut c).contains(&CoreAction::Abandon { key: 2 }));
        c.handle(
            ms(6000),
            CoreInput::CallFinished {
                key: 2,
                finished: finish(Outcome::Abandoned, EndReason::Completed, None),
            },
        );
        assert_eq!(c.totals().abandoned, 1);
        assert_eq!(c.window(ms(6000)), (2, 1));
    }

    #[test]
    fn an_agent_freed_before_the_deadline_takes_the_waiting_call() {
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 2, ms(1000));
        c.handle(
            ms(1005),
            CoreInput::CallReport {
                key: 1,
                report: Report::Bridged { agent: 1 },
            },
        );
        drain(&mut c);
        // Call 1 ends; agent 1 wraps up and sets a disposition by DTMF at once.
        c.handle(
            ms(1500),
            CoreInput::CallFinished {
                key: 1,
                finished: finish(Outcome::Connected, EndReason::Completed, Some(1)),
            },
        );
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
        assert!(
            a.contains(&CoreAction::Assign { key: 2, agent: 1 }),
            "{a:?}"
        );
    }

    #[test]
    fn wrap_up_times_out_with_the_default_disposition() {
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 5, 1, ms(0));
        c.handle(
            ms(10),
            CoreInput::CallReport {
                key: 5,
                report: Report::Bridged { agent: 1 },
            },
        );
        c.handle(
            ms(5000),
            CoreInput::CallFinished {
                key: 5,
                finished: finish(Outcome::Connected, EndReason::Completed, Some(1)),
            },
        );
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
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        c.handle(
            ms(10),
            CoreInput::CallReport {
                key: 1,
                report: Report::Bridged { agent: 1 },
            },
        );
        c.handle(
            ms(20),
            CoreInput::CallCreated {
                key: 2,
                callback_agent: None,
            },
        );
        c.handle(ms(20), CoreInput::CallPlaced { key: 2, attempt: 2 });
        drain(&mut c);
        c.handle(
            ms(30),
            CoreInput::AgentDigit {
                agent: 1,
                digit: '#',
            },
        );
        assert!(drain(&mut c).contains(&CoreAction::Hangup {
            key: 1,
            reason: HangupReason::Agent
        }));
        c.handle(ms(40), CoreInput::Status(CampaignStatus::Stopped));
        let a = drain(&mut c);
        assert!(a.contains(&CoreAction::Hangup {
            key: 2,
            reason: HangupReason::Stop
        }));
        assert!(!a.contains(&CoreAction::Hangup {
            key: 1,
            reason: HangupReason::Stop
        }));
    }

    #[test]
    fn agent_logging_out_mid_call_ends_the_customer_call() {
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        c.handle(
            ms(10),
            CoreInput::CallReport {
                key: 1,
                report: Report::Bridged { agent: 1 },
            },
        );
        drain(&mut c);
        c.handle(ms(20), CoreInput::AgentLogout(1));
        let a = drain(&mut c);
        assert!(a.contains(&CoreAction::Hangup {
            key: 1,
            reason: HangupReason::AgentGone
        }));
        assert!(
            a.iter()
                .any(|x| matches!(x, CoreAction::AgentGone(g) if g.id == 1))
        );
        assert_eq!(c.agent_counts().logged_in, 0);
    }

    #[test]
    fn refused_assignment_puts_the_agent_back_in_line() {
        let mut c = core(Mode::Progressive);
        c.handle(ms(0), CoreInput::AgentLogin(1));
        live_calls(&mut c, 1, 1, ms(0));
        assert!(drain(&mut c).contains(&CoreAction::Assign { key: 1, agent: 1 }));
        // The callee hung up as the agent was being connected.
        c.handle(
            ms(5),
            CoreInput::CallFinished {
                key: 1,
                finished: finish(Outcome::Abandoned, EndReason::Completed, Some(1)),
            },
        );
        c.handle(
            ms(6),
            CoreInput::CallReport {
                key: 1,
                report: Report::Refused { agent: 1 },
            },
        );
        assert_eq!(c.pool().get(1).unwrap().state, AgentState::Ready);
        assert_eq!(c.totals().abandoned, 1);
    }
}
