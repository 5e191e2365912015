//! What a simulated campaign looks like: agents, the contact list's outcome mix and timings.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde::Serialize;

/// Shares of call outcomes; no answer is what the others leave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mix {
    /// Answered by a person.
    pub live: f64,
    /// Answered by a machine.
    pub machine: f64,
    /// Busy.
    pub busy: f64,
    /// Failed (network, invalid number).
    pub failed: f64,
}

impl Mix {
    /// Not answered before the ring timeout: the rest.
    pub fn no_answer(&self) -> f64 {
        (1.0 - self.live - self.machine - self.busy - self.failed).max(0.0)
    }
}

/// The live share falling linearly over part of the day (the lost share goes to no answer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decline {
    /// Seconds into the run when the fall starts.
    pub from: f64,
    /// Seconds into the run when it ends.
    pub to: f64,
    /// The live share at its end.
    pub live_end: f64,
}

/// Agents pausing at random.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pauses {
    /// Share of agents taking one pause in each hour, at a random moment (a ready agent pauses
    /// at once, a busy one after its wrap-up).
    pub share_per_hour: f64,
    /// Length of a pause, seconds.
    pub length: f64,
}

/// A simulated campaign. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Agents logged in from the start.
    pub agents: u32,
    /// Length of the run.
    pub duration: f64,
    /// Outcome mix at the start.
    pub mix: Mix,
    /// Optional fall of the live share during the day.
    pub decline: Option<Decline>,
    /// Median time from placing a call to a person answering (lognormal).
    pub ring_live_median: f64,
    /// Lognormal shape of that time.
    pub ring_live_sigma: f64,
    /// Median time to a machine answering.
    pub ring_machine_median: f64,
    /// Lognormal shape of that time.
    pub ring_machine_sigma: f64,
    /// Busy arrives uniformly within this range.
    pub busy_time: (f64, f64),
    /// Failures arrive uniformly within this range.
    pub failed_time: (f64, f64),
    /// The engine's ring timeout (no answer).
    pub ring_timeout: f64,
    /// Time from placing to the first ring (the callee's phone rings after this).
    pub post_dial_delay: f64,
    /// AMD says human after a uniform time in this range (the greeting's end).
    pub amd_human: (f64, f64),
    /// AMD says machine after this time.
    pub amd_machine: f64,
    /// Mean talk time (lognormal).
    pub talk_mean: f64,
    /// Lognormal shape of talk time.
    pub talk_sigma: f64,
    /// Wrap-up time, uniform in this range.
    pub wrap: (f64, f64),
    /// Optional random pauses.
    pub pauses: Option<Pauses>,
    /// The carrier's calls-per-second cap.
    pub cps: Option<f64>,
    /// A live answer waits at most this long for an agent (the 2-second rule).
    pub grace: f64,
    /// How long an abandoned call's recorded message holds the line.
    pub abandon_message: f64,
    /// The engine's decision tick.
    pub tick: f64,
    /// Timeline resolution.
    pub sample_every: f64,
    /// Stored history seeded into the abandon window at start, as one bucket ending 12 hours
    /// before: (live answers, abandons). `None` for a campaign's first day.
    pub history: Option<(u64, u64)>,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Scenario {
    /// The benchmark: 25% live, 10% machine (3 s AMD), 10% busy, 40% no answer (25 s),
    /// 15% failed; ring to live lognormal around 10 s; talk lognormal with mean 120 s; wrap-up
    /// 6-14 s; 8 hours.
    pub fn benchmark(agents: u32, seed: u64) -> Self {
        Scenario {
            agents,
            duration: 8.0 * 3600.0,
            mix: Mix {
                live: 0.25,
                machine: 0.10,
                busy: 0.10,
                failed: 0.15,
            },
            decline: None,
            ring_live_median: 10.0,
            ring_live_sigma: 0.3,
            ring_machine_median: 12.0,
            ring_machine_sigma: 0.35,
            busy_time: (2.0, 6.0),
            failed_time: (0.5, 4.0),
            ring_timeout: 25.0,
            post_dial_delay: 1.5,
            amd_human: (1.5, 2.5),
            amd_machine: 3.0,
            talk_mean: 120.0,
            talk_sigma: 0.6,
            wrap: (6.0, 14.0),
            pauses: None,
            cps: Some(50.0),
            grace: 2.0,
            abandon_message: 5.0,
            tick: 0.25,
            sample_every: 300.0,
            history: None,
            seed,
        }
    }

    /// Contact `index`'s fate when it is called `t` seconds into the day: the same draw the
    /// simulator makes, for a harness that drives another dialer through the same day.
    pub fn fate(&self, index: u64, t: f64) -> Fate {
        fate(self, index, t)
    }

    /// The harder day: live answers 30% in the morning falling to 12% over the afternoon
    /// (hours 4 to 8), and 20% of agents pausing 5 minutes at random each hour.
    pub fn hard_day(agents: u32, seed: u64) -> Self {
        let mut s = Scenario::benchmark(agents, seed);
        s.mix.live = 0.30;
        s.decline = Some(Decline {
            from: 4.0 * 3600.0,
            to: 8.0 * 3600.0,
            live_end: 0.12,
        });
        s.pauses = Some(Pauses {
            share_per_hour: 0.2,
            length: 300.0,
        });
        s
    }

    /// Checks the scenario; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let m = &self.mix;
        let shares = [
            ("live", m.live),
            ("machine", m.machine),
            ("busy", m.busy),
            ("failed", m.failed),
        ];
        for (name, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} share {v} must be between 0 and 1"));
            }
        }
        if m.live + m.machine + m.busy + m.failed > 1.0 + 1e-9 {
            return Err("live + machine + busy + failed shares add up to more than 1".into());
        }
        let positive = [
            ("duration", self.duration),
            ("ring_live_median", self.ring_live_median),
            ("ring_machine_median", self.ring_machine_median),
            ("ring_timeout", self.ring_timeout),
            ("talk_mean", self.talk_mean),
            ("tick", self.tick),
            ("sample_every", self.sample_every),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} = {v} must be greater than 0"));
            }
        }
        if self.duration > 31.0 * 24.0 * 3600.0 {
            return Err("duration must be at most 31 days".into());
        }
        if self.agents > 100_000 {
            return Err("at most 100000 agents".into());
        }
        if let Some(c) = self.cps
            && !(c.is_finite() && c > 0.0)
        {
            return Err(format!("cps = {c} must be greater than 0"));
        }
        Ok(())
    }

    /// What the engine tells a pacer before its first call: the default priors, with the
    /// campaign's ring timeout (a setting, not something the pacer would have to learn).
    pub fn pacer_priors(&self) -> crate::Priors {
        crate::Priors {
            ring_timeout: std::time::Duration::from_secs_f64(self.ring_timeout),
            ..crate::Priors::default()
        }
    }

    /// The live share at `t` seconds into the run.
    pub fn live_share(&self, t: f64) -> f64 {
        match &self.decline {
            Some(d) if t > d.from => {
                let f = ((t - d.from) / (d.to - d.from).max(1e-9)).min(1.0);
                self.mix.live + (d.live_end - self.mix.live) * f
            }
            _ => self.mix.live,
        }
    }
}

/// How a contact's call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FateKind {
    /// A person answers.
    Live,
    /// An answering machine answers.
    Machine,
    /// Busy.
    Busy,
    /// Rings until the ring timeout.
    NoAnswer,
    /// The carrier fails the call.
    Failed,
}

/// Everything the contact's call will do: drawn once per contact, the same whatever the
/// policy (common random numbers make the comparison fair).
#[derive(Debug, Clone, Copy)]
pub struct Fate {
    /// How the call ends up.
    pub outcome: FateKind,
    /// Seconds from placing to the answer, busy, failure or ring timeout.
    pub ring: f64,
    /// Seconds from the answer to the detector's verdict.
    pub amd: f64,
    /// Seconds the callee talks with the agent.
    pub talk: f64,
    /// Seconds of the agent's wrap-up after the call.
    pub wrap: f64,
}

/// Draws contact `index`'s fate when it is called at `t`.
pub(crate) fn fate(s: &Scenario, index: u64, t: f64) -> Fate {
    let mut rng =
        Xoshiro256PlusPlus::seed_from_u64(s.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let u: f64 = rng.random();
    let live = s.live_share(t);
    let m = &s.mix;
    let outcome = if u < live {
        FateKind::Live
    } else if u < live + m.machine {
        FateKind::Machine
    } else if u < live + m.machine + m.busy {
        FateKind::Busy
    } else if u < live + m.machine + m.busy + m.failed {
        FateKind::Failed
    } else {
        FateKind::NoAnswer
    };
    let lognormal = |rng: &mut Xoshiro256PlusPlus, median: f64, sigma: f64| {
        LogNormal::new(median.ln(), sigma.max(1e-6))
            .map(|d| d.sample(rng))
            .unwrap_or(median)
    };
    let uniform =
        |rng: &mut Xoshiro256PlusPlus, (lo, hi): (f64, f64)| lo + (hi - lo) * rng.random::<f64>();
    // Draw every value whatever the outcome, so a contact's talk time does not depend on it.
    let ring_live = lognormal(&mut rng, s.ring_live_median, s.ring_live_sigma);
    let ring_machine = lognormal(&mut rng, s.ring_machine_median, s.ring_machine_sigma);
    let busy = uniform(&mut rng, s.busy_time);
    let failed = uniform(&mut rng, s.failed_time);
    let amd_human = uniform(&mut rng, s.amd_human);
    let talk_median = s.talk_mean / (s.talk_sigma * s.talk_sigma / 2.0).exp();
    let talk = lognormal(&mut rng, talk_median, s.talk_sigma);
    let wrap = uniform(&mut rng, s.wrap);
    let (outcome, ring, amd) = match outcome {
        FateKind::Live if ring_live < s.ring_timeout => (FateKind::Live, ring_live, amd_human),
        FateKind::Machine if ring_machine < s.ring_timeout => {
            (FateKind::Machine, ring_machine, s.amd_machine)
        }
        FateKind::Busy => (FateKind::Busy, busy, 0.0),
        FateKind::Failed => (FateKind::Failed, failed, 0.0),
        _ => (FateKind::NoAnswer, s.ring_timeout, 0.0),
    };
    Fate {
        outcome,
        ring,
        amd,
        talk,
        wrap,
    }
}
