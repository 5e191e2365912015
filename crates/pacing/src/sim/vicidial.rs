//! A faithful model of VICIdial's adaptive dial level, the baseline the pacer is measured
//! against (`AST_VDadapt.pl` and `AST_VDauto_dial.pl`).
//!
//! * Every second the dialer samples ready agents, live calls waiting and agents logged in, and
//!   places `round(level x (ready + in-call agents)) - calls in progress` calls.
//! * Every 15 seconds the level becomes `level x (1 + (avg ready - avg waiting) / avg agents)`
//!   over the last 15 samples, capped at the maximum (3.0), at least 1.0.
//! * Once a minute the drop rate since midnight (the run's start) is counted; over 50 calls and
//!   above the drop percentage, ADAPT_HARD_LIMIT sets the level to 1.0 (ADAPT_AVERAGE halves
//!   it). Over 20 calls in the last minute with more than half dropped also halves it.
//!
//! Agents in wrap-up (VICIdial's dispo screen) are paused for VICIdial, so they do not count.

use crate::event::{AgentId, CallId, Decision, Event, Reason};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// VICIdial's adaptive settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VicidialSettings {
    /// `adaptive_maximum_level`.
    pub max_level: f64,
    /// `adaptive_dropped_percentage` (percent of answers).
    pub dropped_percentage: f64,
    /// ADAPT_HARD_LIMIT (true) or ADAPT_AVERAGE (false).
    pub hard_limit: bool,
    /// `adaptive_intensity` (-40 to 40; 0 is neutral).
    pub intensity: f64,
    /// The level at the start of the day.
    pub start_level: f64,
}

impl Default for VicidialSettings {
    fn default() -> Self {
        VicidialSettings {
            max_level: 3.0,
            dropped_percentage: 3.0,
            hard_limit: true,
            intensity: 0.0,
            start_level: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    Other,
    Ready,
    InCall,
}

/// The VICIdial-style dialer, fed the same events as the pacer.
#[derive(Debug, Clone)]
pub struct Vicidial {
    settings: VicidialSettings,
    level: f64,
    agents: HashMap<AgentId, Agent>,
    /// Calls in progress: whether each is a live call waiting for an agent, and its agent.
    calls: HashMap<CallId, (bool, Option<AgentId>)>,
    samples: VecDeque<(u32, u32, u32)>,
    next_loop: f64,
    next_adapt: f64,
    next_drops: f64,
    calls_today: u64,
    answers_today: u64,
    drops_today: u64,
    drop_pct_today: f64,
    minute: VecDeque<(f64, bool)>,
}

impl Vicidial {
    /// A dialer starting at the settings' level.
    pub fn new(settings: VicidialSettings) -> Self {
        Vicidial {
            level: settings.start_level,
            settings,
            agents: HashMap::new(),
            calls: HashMap::new(),
            samples: VecDeque::new(),
            next_loop: 0.0,
            next_adapt: 15.0,
            next_drops: 0.0,
            calls_today: 0,
            answers_today: 0,
            drops_today: 0,
            drop_pct_today: 0.0,
            minute: VecDeque::new(),
        }
    }

    /// The current dial level.
    pub fn level(&self) -> f64 {
        self.level
    }

    fn count(&self, state: Agent) -> u32 {
        self.agents.values().filter(|&&a| a == state).count() as u32
    }

    /// Takes one event.
    pub fn handle(&mut self, now: Duration, event: Event) {
        let t = now.as_secs_f64();
        match event {
            Event::AgentLoggedIn(a) | Event::AgentPaused(a) | Event::TalkEnded(a) => {
                self.agents.insert(a, Agent::Other);
            }
            Event::AgentReady(a) | Event::WrapUpEnded(a) => {
                self.agents.insert(a, Agent::Ready);
            }
            Event::AgentLoggedOut(a) => {
                self.agents.remove(&a);
            }
            Event::CallPlaced(c) => {
                self.calls.insert(c, (false, None));
                self.calls_today += 1;
            }
            Event::CallLive(c) => {
                self.calls.insert(c, (true, None));
                self.answers_today += 1;
                self.minute.push_back((t, false));
            }
            Event::CallBridged { call, agent } => {
                self.calls.insert(call, (false, Some(agent)));
                self.agents.insert(agent, Agent::InCall);
            }
            Event::CallAbandoned(c) => {
                self.calls.insert(c, (false, None));
                self.drops_today += 1;
                self.minute.push_back((t, true));
            }
            Event::CallEnded { call, .. } => {
                // The agent goes to the dispo screen, which VICIdial counts as paused.
                if let Some((_, Some(agent))) = self.calls.remove(&call)
                    && self.agents.get(&agent) == Some(&Agent::InCall)
                {
                    self.agents.insert(agent, Agent::Other);
                }
            }
            Event::CallRinging(_)
            | Event::CallAnswered(_)
            | Event::CallMachine(_)
            | Event::NotPlaced { .. } => {}
        }
    }

    fn adapt(&mut self) {
        let n = self.samples.len().max(1) as f64;
        let ready: f64 = self.samples.iter().map(|s| s.0 as f64).sum::<f64>() / n;
        let waiting: f64 = self.samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
        let agents: f64 = self.samples.iter().map(|s| s.2 as f64).sum::<f64>() / n;
        let diff = ready - waiting;
        let mul = if diff != 0.0 && agents != 0.0 {
            diff / agents
        } else {
            0.0
        };
        let intensity = self.settings.intensity / 100.0;
        let pct = mul * 100.0;
        let intense = if pct < 0.0 {
            pct * (intensity - 1.0).abs()
        } else {
            pct * (intensity + 1.0)
        };
        let mut level = self.level * (intense / 100.0 + 1.0);
        level = level.min(self.settings.max_level).max(1.0);
        let calls_one = self.minute.len();
        let drops_one = self.minute.iter().filter(|m| m.1).count();
        if calls_one > 20 && drops_one as f64 / calls_one as f64 > 0.5 {
            level /= 2.0;
        }
        if self.calls_today > 50 && self.drop_pct_today > self.settings.dropped_percentage {
            level = if self.settings.hard_limit {
                1.0
            } else {
                level / 2.0
            };
        }
        self.level = level.max(1.0);
    }

    /// Runs VICIdial's loops that are due and returns the calls to place now.
    pub fn decide(&mut self, now: Duration) -> Decision {
        let t = now.as_secs_f64();
        while let Some(&(at, _)) = self.minute.front() {
            if t - at <= 60.0 {
                break;
            }
            self.minute.pop_front();
        }
        if t < self.next_loop {
            return Decision {
                start: 0,
                cancel: Vec::new(),
                reason: None,
            };
        }
        self.next_loop = t + 1.0;
        let ready = self.count(Agent::Ready);
        let in_call = self.count(Agent::InCall);
        let waiting = self.calls.values().filter(|c| c.0).count() as u32;
        self.samples
            .push_back((ready, waiting, self.agents.len() as u32));
        if self.samples.len() > 15 {
            self.samples.pop_front();
        }
        if t >= self.next_drops {
            self.next_drops = t + 60.0;
            self.drop_pct_today = if self.answers_today == 0 {
                0.0
            } else {
                100.0 * self.drops_today as f64 / self.answers_today as f64
            };
        }
        if t >= self.next_adapt {
            self.next_adapt = t + 15.0;
            self.adapt();
        }
        let goal = (self.level * (ready + in_call) as f64).round() as i64;
        let make = goal - self.calls.len() as i64;
        Decision {
            start: make.max(0) as u32,
            cancel: Vec::new(),
            reason: Some(Reason::Progressive),
        }
    }
}
