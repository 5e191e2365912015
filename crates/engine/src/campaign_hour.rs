//! The campaign core (its real pacer, agent pool and call machines) run through a campaign hour
//! on virtual time, against a simulated carrier and agents that draw every contact's fate from
//! `pacing::sim`'s scenario: the same day the pacing simulator plays, so the two must agree.
//!
//! The harness plays the call tasks and the campaign actor without sockets, tasks or sleeps:
//! a lease becomes calls at once, calls are placed at the trunk's calls-per-second slots, the
//! carrier answers, rings out, is busy or fails as the fate says, the detector decides after the
//! fate's delay, bridges are made at once, callees talk for the fate's time, and agents press
//! a disposition key after the fate's wrap-up.

use crate::call::{CallAction, CallConfig, CallInput, PromptKind};
use crate::core::{CampaignCore, CoreAction, CoreInput, CoreSettings};
use domain::{AmdResult, CampaignStatus, DialMode, DispositionKind, MachineAction, Outcome};
use pacing::sim::{FateKind, Policy, Scenario};
use pacing::{Config, Pacer};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

/// A happening the simulated world has planned.
#[derive(Debug, Clone, PartialEq)]
enum World {
    /// A leased contact's INVITE leaves.
    Place(u64),
    /// A call's happening reaches the core.
    Call(u64, CallInput),
    /// The callee hangs up after talking (if the call is still bridged to this agent).
    TalkEnd(u64),
    /// The agent presses the disposition key.
    Dispose(i64),
}

/// What an hour on the core measured.
#[derive(Debug, Default)]
struct Hour {
    placed: u64,
    live: u64,
    abandoned: u64,
    connected: u64,
    occupancy: f64,
    /// Every finished call's outcome, for the checks.
    outcomes: HashMap<&'static str, u64>,
    /// Calls whose SIP end came before their machine's end (none may stay open).
    open_at_end: usize,
    /// Events the core handled.
    steps: u64,
}

struct Harness<'a> {
    s: &'a Scenario,
    core: CampaignCore,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    planned: HashMap<u64, World>,
    seq: u64,
    now: Duration,
    next_key: u64,
    /// Contacts' indexes by call key (the scenario's fates are drawn by index, in dial order).
    index: HashMap<u64, u64>,
    placed: u64,
    next_slot: Duration,
    /// The agent each bridged call is with.
    bridged: HashMap<u64, i64>,
    /// Calls whose INVITE left, for the carrier's answer to our CANCEL or BYE.
    answered: HashMap<u64, bool>,
    hour: Hour,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl<'a> Harness<'a> {
    fn new(s: &'a Scenario, config: &Config) -> Self {
        let settings = CoreSettings {
            // Longer than any wrap-up of the scenario: agents always dispose before it.
            wrap_up: Duration::from_secs(120),
            connect_grace: secs(s.grace),
            max_starts: 50,
            digits: [('1', DispositionKind::Sale)].into_iter().collect(),
            wrap_up_default: Some(DispositionKind::Other),
            tick: secs(s.tick),
            call: CallConfig {
                amd: true,
                machine_action: MachineAction::HangUp,
                not_sure_action: domain::NotSureAction::Agent,
                agentless: false,
                beep_timeout: Duration::from_secs(20),
                // The scenario's detector always decides; this only bounds a silent line.
                amd_timeout: Duration::from_secs(30),
            },
        };
        let pacer = Pacer::with_priors(config.clone(), &s.pacer_priors())
            .expect("the scenario's pacer settings");
        Harness {
            s,
            core: CampaignCore::new(settings, pacer, CampaignStatus::Paused),
            queue: BinaryHeap::new(),
            planned: HashMap::new(),
            seq: 0,
            now: Duration::ZERO,
            next_key: 1,
            index: HashMap::new(),
            placed: 0,
            next_slot: Duration::ZERO,
            bridged: HashMap::new(),
            answered: HashMap::new(),
            hour: Hour::default(),
        }
    }

    fn at(&mut self, delay: Duration, what: World) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.planned.insert(self.seq, what);
    }

    fn handle(&mut self, input: CoreInput) {
        self.hour.steps += 1;
        self.core.handle(self.now, input);
        self.carry_out();
    }

    fn call(&mut self, key: u64, input: CallInput) {
        self.handle(CoreInput::Call { key, input });
    }

    /// What the actor and the call tasks would do with the core's actions.
    fn carry_out(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                CoreAction::Lease { count, .. } => {
                    self.core.handle(
                        self.now,
                        CoreInput::Leased {
                            asked: count,
                            got: count,
                        },
                    );
                    for _ in 0..count {
                        let key = self.next_key;
                        self.next_key += 1;
                        self.core.handle(
                            self.now,
                            CoreInput::CallCreated {
                                key,
                                callback_agent: None,
                            },
                        );
                        // The trunk's calls-per-second slots, as the call tasks take them.
                        let slot = self.next_slot.max(self.now);
                        let cps = self.s.cps.unwrap_or(1e9);
                        self.next_slot = slot + secs(1.0 / cps);
                        let delay = slot - self.now;
                        self.at(delay, World::Place(key));
                    }
                }
                CoreAction::Call { key, action } => self.call_action(key, action),
                CoreAction::Dispose { .. }
                | CoreAction::AgentChanged(_)
                | CoreAction::AgentGone(_) => {}
            }
        }
    }

    fn call_action(&mut self, key: u64, action: CallAction) {
        match action {
            CallAction::Bridge { agent } => {
                self.bridged.insert(key, agent);
                self.at(
                    Duration::ZERO,
                    World::Call(key, CallInput::Bridged { agent }),
                );
            }
            CallAction::Play(PromptKind::Abandon) => self.at(
                secs(self.s.abandon_message),
                World::Call(key, CallInput::PlaybackFinished),
            ),
            CallAction::Play(_) => self.at(
                Duration::ZERO,
                World::Call(key, CallInput::PlaybackFinished),
            ),
            CallAction::Hangup => {
                // A CANCEL gets its 487, a BYE its 200, a moment later; a contact not yet
                // placed is skipped by its task.
                let end = match self.answered.get(&key) {
                    None => {
                        self.planned.retain(|_, w| *w != World::Place(key));
                        self.handle(CoreInput::CallSkipped { key });
                        return;
                    }
                    Some(true) => CallInput::Ended {
                        outcome: sip::InviteResult::Answered,
                        code: Some(200),
                    },
                    Some(false) => CallInput::Ended {
                        outcome: sip::InviteResult::Cancelled,
                        code: Some(487),
                    },
                };
                self.answered.remove(&key);
                self.at(Duration::from_millis(40), World::Call(key, end));
            }
            CallAction::Finish(finished) => {
                *self
                    .hour
                    .outcomes
                    .entry(finished.outcome.as_str())
                    .or_default() += 1;
                self.bridged.remove(&key);
                if finished.outcome == Outcome::Connected
                    && let Some(agent) = finished.agent
                {
                    let index = self.index[&key];
                    let wrap = self.s.fate(index, 0.0).wrap;
                    self.at(secs(wrap), World::Dispose(agent));
                }
            }
            _ => {}
        }
    }

    fn place(&mut self, key: u64) {
        let index = self.placed;
        self.placed += 1;
        self.index.insert(key, index);
        self.answered.insert(key, false);
        self.handle(CoreInput::CallPlaced {
            key,
            attempt: key as i64,
        });
        let fate = self.s.fate(index, self.now.as_secs_f64());
        let ring = secs(fate.ring);
        let ended = |code: u16| CallInput::Ended {
            outcome: sip::InviteResult::from_status(code, ""),
            code: Some(code),
        };
        match fate.outcome {
            FateKind::Busy => self.at(ring, World::Call(key, ended(486))),
            FateKind::Failed => self.at(ring, World::Call(key, ended(503))),
            FateKind::NoAnswer => {
                let ringing = secs(self.s.post_dial_delay.min(fate.ring));
                self.at(ringing, World::Call(key, progress()));
                self.at(ring, World::Call(key, ended(408)));
            }
            FateKind::Live | FateKind::Machine => {
                let ringing = secs(self.s.post_dial_delay.min(fate.ring * 0.5));
                self.at(ringing, World::Call(key, progress()));
                self.at(ring, World::Call(key, CallInput::Answered));
                let result = if fate.outcome == FateKind::Live {
                    AmdResult::Human
                } else {
                    AmdResult::Machine
                };
                let decided = ring + secs(fate.amd);
                // The greeting ended as the verdict came: the 2-second rule runs from here.
                self.at(
                    decided,
                    World::Call(
                        key,
                        CallInput::Amd {
                            result: Some(result),
                            greeting_end: Some(self.now + decided),
                            cause: String::new(),
                        },
                    ),
                );
            }
        }
    }

    fn world(&mut self, what: World) {
        match what {
            World::Place(key) => self.place(key),
            World::Call(key, input) => {
                match &input {
                    CallInput::Answered => {
                        if self.answered.get(&key) != Some(&false) {
                            // Cancelled before the answer: the carrier's 200 crossed our
                            // CANCEL; it is ignored like the engine's SIP layer does.
                            return;
                        }
                        self.answered.insert(key, true);
                    }
                    CallInput::Bridged { agent } => {
                        let index = self.index[&key];
                        let talk = self.s.fate(index, 0.0).talk;
                        if self.bridged.get(&key) == Some(agent) {
                            self.at(secs(talk), World::TalkEnd(key));
                        }
                    }
                    CallInput::Ended { .. } => {
                        self.answered.remove(&key);
                    }
                    _ => {}
                }
                self.call(key, input);
            }
            World::TalkEnd(key) => {
                if self.bridged.contains_key(&key) {
                    self.answered.remove(&key);
                    self.call(
                        key,
                        CallInput::Ended {
                            outcome: sip::InviteResult::Answered,
                            code: Some(200),
                        },
                    );
                }
            }
            World::Dispose(agent) => self.handle(CoreInput::AgentDigit { agent, digit: '1' }),
        }
    }

    fn run(mut self) -> Hour {
        for agent in 1..=i64::from(self.s.agents) {
            self.handle(CoreInput::AgentLogin(agent));
        }
        self.handle(CoreInput::Status(CampaignStatus::Running));
        let end = secs(self.s.duration);
        loop {
            let world = self.queue.peek().map(|Reverse((t, _))| *t);
            let core = self.core.poll_timeout();
            let next = world.map_or(core, |w| w.min(core));
            if next > end {
                break;
            }
            self.now = next;
            if world == Some(next) {
                let Some(Reverse((_, seq))) = self.queue.pop() else {
                    break;
                };
                if let Some(what) = self.planned.remove(&seq) {
                    self.world(what);
                }
            } else {
                self.handle(CoreInput::Tick);
            }
        }
        self.now = end;
        let totals = self.core.totals();
        self.hour.placed = totals.placed;
        self.hour.live = totals.live;
        self.hour.abandoned = totals.abandoned;
        self.hour.connected = totals.connected;
        self.hour.occupancy = self.core.occupancy(end).0;
        self.hour.open_at_end = self.core.call_counts().in_flight as usize;
        self.hour
    }
}

fn progress() -> CallInput {
    CallInput::Progress {
        code: 180,
        early_media: false,
    }
}

#[test]
fn a_campaign_hour_on_the_core_agrees_with_the_pacing_simulator() {
    for seed in [1, 2, 3] {
        let mut s = Scenario::benchmark(10, seed);
        s.duration = 3600.0;
        let mut config = Config {
            max_cps: s.cps,
            connect_grace: secs(s.grace),
            ..Config::default()
        };
        config.settings.mode = DialMode::Predictive;
        let started = std::time::Instant::now();
        let hour = Harness::new(&s, &config).run();
        let took = started.elapsed();
        let sim = pacing::sim::run(&s, &Policy::Pacer(config)).expect("the simulator runs");
        let rate = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let abandon_rate = rate(hour.abandoned, hour.live);
        eprintln!(
            "seed {seed}: core occupancy {:.3} (sim {:.3}), placed {} ({}), live {} ({}), \
             abandon rate {:.4} ({:.4}), connected {} ({}); {} steps in {took:?}",
            hour.occupancy,
            sim.occupancy,
            hour.placed,
            sim.placed,
            hour.live,
            sim.live,
            abandon_rate,
            sim.abandon_rate,
            hour.connected,
            sim.connects,
            hour.steps,
        );
        // The same pacer on the same day: the figures agree within the noise of one hour.
        assert!(
            (hour.occupancy - sim.occupancy).abs() < 0.05,
            "seed {seed}: occupancy {} against the simulator's {}",
            hour.occupancy,
            sim.occupancy
        );
        let close = |a: u64, b: u64| (a as f64 - b as f64).abs() <= 0.1 * b as f64 + 5.0;
        assert!(
            close(hour.placed, sim.placed),
            "seed {seed}: placed {} / {}",
            hour.placed,
            sim.placed
        );
        assert!(
            close(hour.connected, sim.connects),
            "seed {seed}: connected {} / {}",
            hour.connected,
            sim.connects
        );
        // The rules hold on the core as in the simulator.
        assert!(
            abandon_rate <= 0.03,
            "seed {seed}: abandon rate {abandon_rate}"
        );
        assert_eq!(
            hour.outcomes
                .get(Outcome::Abandoned.as_str())
                .copied()
                .unwrap_or(0),
            hour.abandoned
        );
        // Calls still up at the hour's end are those placed in its last minutes.
        assert!(
            hour.open_at_end < 60,
            "seed {seed}: {} open",
            hour.open_at_end
        );
    }
}
