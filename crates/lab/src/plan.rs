//! What the carrier does with each call, decided before it happens: the outcome (from the mix
//! or a per-number override) and every timing, drawn from a generator seeded by the lab's seed,
//! the number and how many times that number was called before. The same seed and the same
//! numbers give the same calls, whatever order the dialer places them in.

use crate::LabError;
use crate::dist::Dist;
use media::detect::SitCode;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a call to the lab carrier comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Callee {
    /// A person answers: rings, 200, a greeting, then talks until done.
    Human,
    /// An answering machine: rings, 200, a greeting ending in a beep, then records a message.
    Machine,
    /// 486 Busy Here after a short ring.
    Busy,
    /// 180 Ringing until the dialer cancels.
    NoAnswer,
    /// 183 with early media playing special information tones, then 404.
    Sit,
    /// 503 Service Unavailable.
    Unavailable,
}

impl Callee {
    /// Every outcome, in the mix's order.
    pub const ALL: [Callee; 6] = [
        Callee::Human,
        Callee::Machine,
        Callee::Busy,
        Callee::NoAnswer,
        Callee::Sit,
        Callee::Unavailable,
    ];

    /// The name used in mixes, overrides and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Callee::Human => "human",
            Callee::Machine => "machine",
            Callee::Busy => "busy",
            Callee::NoAnswer => "no-answer",
            Callee::Sit => "sit",
            Callee::Unavailable => "unavailable",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Callee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Callee {
    type Err = LabError;

    fn from_str(text: &str) -> Result<Callee, LabError> {
        let t = text.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match t.as_str() {
            "human" | "live" => Callee::Human,
            "machine" | "am" => Callee::Machine,
            "busy" | "486" => Callee::Busy,
            "no-answer" | "noanswer" => Callee::NoAnswer,
            "sit" | "invalid" | "404" => Callee::Sit,
            "unavailable" | "503" => Callee::Unavailable,
            _ => {
                return Err(LabError::config(
                    format!("outcome {text:?}"),
                    "expected human, machine, busy, no-answer, sit or unavailable",
                ));
            }
        })
    }
}

/// The shares of outcomes, as weights (normalised when drawn).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    weights: [f64; 6],
}

impl Default for Mix {
    /// The mix `dialer simulate` assumes by default: 25% live, 10% machines, 10% busy, 15%
    /// failed (5% SIT, 10% 503), 40% no answer.
    fn default() -> Self {
        Mix {
            weights: [25.0, 10.0, 10.0, 40.0, 5.0, 10.0],
        }
    }
}

impl Mix {
    /// Every call comes to `outcome`.
    pub fn only(outcome: Callee) -> Mix {
        let mut weights = [0.0; 6];
        weights[outcome.index()] = 1.0;
        Mix { weights }
    }

    /// A mix from (outcome, weight) pairs; outcomes not named get weight 0.
    pub fn from_weights(pairs: &[(Callee, f64)]) -> Result<Mix, LabError> {
        let mut weights = [0.0; 6];
        for &(outcome, weight) in pairs {
            if !weight.is_finite() || weight < 0.0 {
                return Err(LabError::config(
                    format!("mix weight of {outcome}"),
                    "must be a number, zero or more",
                ));
            }
            weights[outcome.index()] += weight;
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(LabError::config("mix", "every weight is zero"));
        }
        Ok(Mix { weights })
    }

    /// The share of calls coming to `outcome` (0-1).
    pub fn share(&self, outcome: Callee) -> f64 {
        self.weights[outcome.index()] / self.weights.iter().sum::<f64>()
    }

    /// The outcome at `u` (uniform in 0-1) along the cumulative shares.
    pub fn pick(&self, u: f64) -> Callee {
        let total: f64 = self.weights.iter().sum();
        let mut acc = 0.0;
        for outcome in Callee::ALL {
            acc += self.weights[outcome.index()] / total;
            if u < acc && self.weights[outcome.index()] > 0.0 {
                return outcome;
            }
        }
        Callee::ALL
            .into_iter()
            .rev()
            .find(|o| self.weights[o.index()] > 0.0)
            .unwrap_or(Callee::NoAnswer)
    }
}

impl FromStr for Mix {
    /// `human=25,machine=10,busy=10,no-answer=40,sit=5,unavailable=10` (weights, any scale).
    type Err = LabError;

    fn from_str(text: &str) -> Result<Mix, LabError> {
        let mut pairs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(|| {
                LabError::config(
                    format!("mix {text:?}"),
                    format!("{part:?} is not NAME=WEIGHT"),
                )
            })?;
            let weight: f64 = weight.trim().trim_end_matches('%').parse().map_err(|_| {
                LabError::config(
                    format!("mix {text:?}"),
                    format!("{part:?}: weight is not a number"),
                )
            })?;
            pairs.push((name.parse::<Callee>()?, weight));
        }
        Mix::from_weights(&pairs)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for outcome in Callee::ALL {
            let share = self.share(outcome);
            if share > 0.0 {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{outcome}={:.1}", share * 100.0)?;
            }
        }
        Ok(())
    }
}

/// Forces an outcome for numbers matching a pattern: an exact number, or a prefix ending in `*`.
/// A leading `+` is ignored on both sides, so `+1555*` and `1555*` match the same numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    prefix: String,
    exact: bool,
    /// The forced outcome.
    pub outcome: Callee,
}

impl Override {
    /// Numbers matching `pattern` (`+15550100` or `+1555*`) come to `outcome`.
    pub fn new(pattern: &str, outcome: Callee) -> Result<Override, LabError> {
        let p = pattern.trim();
        let (body, exact) = match p.strip_suffix('*') {
            Some(body) => (body, false),
            None => (p, true),
        };
        let body = body.strip_prefix('+').unwrap_or(body);
        if body.contains(['*', '=', ',', ' ']) || (exact && body.is_empty()) {
            return Err(LabError::config(
                format!("override {pattern:?}"),
                "expected a number, or a prefix ending in *",
            ));
        }
        Ok(Override {
            prefix: body.to_owned(),
            exact,
            outcome,
        })
    }

    /// Whether `number` matches.
    pub fn matches(&self, number: &str) -> bool {
        let n = number.strip_prefix('+').unwrap_or(number);
        if self.exact {
            n == self.prefix
        } else {
            n.starts_with(&self.prefix)
        }
    }
}

impl FromStr for Override {
    /// `PATTERN=OUTCOME`, e.g. `+1555010*=busy`.
    type Err = LabError;

    fn from_str(text: &str) -> Result<Override, LabError> {
        let (pattern, outcome) = text.rsplit_once('=').ok_or_else(|| {
            LabError::config(format!("override {text:?}"), "expected PATTERN=OUTCOME")
        })?;
        Override::new(pattern, outcome.parse()?)
    }
}

/// The timings of the carrier's callees.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// From the INVITE to the first 180 (post-dial delay).
    pub post_dial: Dist,
    /// From the INVITE to a person's answer (the simulator's default: lognormal, median 10 s).
    pub ring_human: Dist,
    /// From the INVITE to a machine's answer.
    pub ring_machine: Dist,
    /// From the INVITE to 486 Busy.
    pub busy_after: Dist,
    /// From the INVITE to the 183 of a SIT, or to the 503.
    pub fail_after: Dist,
    /// A person's silence between the greeting and the first words of the conversation.
    pub pause: Dist,
    /// How long a person talks after the greeting before saying goodbye (BYE).
    pub talk: Dist,
    /// A person's pauses between sentences (the agent talks then).
    pub gap: Dist,
    /// A person who heard nobody this long after the greeting hangs up (a silent call).
    pub patience: Duration,
    /// A person whose talk time is over hangs up at the first pause this long of the other
    /// side (nobody hangs up mid-sentence, so a message is heard to its end), or after
    /// `polite_limit` more at most.
    pub polite: Duration,
    /// The longest a person whose talk time is over waits for that pause.
    pub polite_limit: Duration,
    /// A machine stops recording a message after this long.
    pub message_limit: Duration,
    /// A machine ends the recording after this much silence following a message.
    pub message_silence: Duration,
    /// A machine hangs up when no message started this long after the beep.
    pub message_wait: Duration,
    /// Nobody answers: the network gives up (480) after this long if the dialer never cancels.
    pub no_answer_limit: Duration,
    /// The special information tone played before 404.
    pub sit: SitCode,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            post_dial: Dist::secs(0.5, 1.5),
            ring_human: Dist::lognormal(10.5, 0.3),
            ring_machine: Dist::lognormal(12.5, 0.35),
            busy_after: Dist::secs(2.0, 6.0),
            fail_after: Dist::secs(0.5, 4.0),
            pause: Dist::secs(0.3, 1.2),
            talk: Dist::lognormal(60.0, 0.6),
            gap: Dist::secs(0.8, 2.5),
            patience: Duration::from_secs(8),
            polite: Duration::from_millis(800),
            polite_limit: Duration::from_secs(30),
            message_limit: Duration::from_secs(30),
            message_silence: Duration::from_secs(3),
            message_wait: Duration::from_secs(10),
            no_answer_limit: Duration::from_secs(180),
            sit: SitCode::VacantCode,
        }
    }
}

/// Everything decided about one call before it is answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// What the call comes to.
    pub outcome: Callee,
    /// Whether an override (not the mix) chose the outcome.
    pub forced: bool,
    /// From the INVITE to 180.
    pub post_dial: Duration,
    /// From the INVITE to the final response (200, 486, 404 after the SIT, 503).
    pub ring: Duration,
    /// Which greeting (index among the bank's human or machine greetings).
    pub greeting: usize,
    /// Silence between the greeting and the conversation (a person).
    pub pause: Duration,
    /// Length of the conversation after the greeting (a person).
    pub talk: Duration,
    /// Seed of the conversation's sentence order and pauses.
    pub script_seed: u64,
}

/// FNV-1a: a hash that is the same on every platform and Rust version, for seeds.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A generator for (seed, what, n): reproducible and independent per number and attempt.
pub(crate) fn rng_for(seed: u64, what: &str, n: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(
        seed ^ stable_hash(what.as_bytes()).rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// Decides calls: a mix, overrides and timings under one seed.
#[derive(Debug, Clone)]
pub struct Planner {
    /// The outcome mix.
    pub mix: Mix,
    /// Per-number overrides, first match wins.
    pub overrides: Vec<Override>,
    /// The timings.
    pub behaviour: Behaviour,
    /// The seed.
    pub seed: u64,
}

impl Planner {
    /// Plans the `attempt`-th call (0 for the first) to `number`, choosing among `greetings`
    /// human and machine greetings.
    pub fn plan(&self, number: &str, attempt: u64, greetings: (usize, usize)) -> Plan {
        let mut rng = rng_for(self.seed, number, attempt);
        let u: f64 = rng.random();
        let forced = self.overrides.iter().find(|o| o.matches(number));
        let outcome = forced.map_or_else(|| self.mix.pick(u), |o| o.outcome);
        let b = &self.behaviour;
        let post_dial = b.post_dial.sample(&mut rng);
        let ring = match outcome {
            Callee::Human => b.ring_human.sample(&mut rng),
            Callee::Machine => b.ring_machine.sample(&mut rng),
            Callee::Busy => b.busy_after.sample(&mut rng),
            Callee::Sit | Callee::Unavailable => b.fail_after.sample(&mut rng),
            Callee::NoAnswer => b.no_answer_limit,
        };
        let count = match outcome {
            Callee::Machine => greetings.1,
            _ => greetings.0,
        };
        let greeting = if count > 0 {
            rng.random_range(0..count)
        } else {
            0
        };
        Plan {
            outcome,
            forced: forced.is_some(),
            post_dial: post_dial.min(ring),
            ring,
            greeting,
            pause: b.pause.sample(&mut rng),
            talk: b.talk.sample(&mut rng),
            script_seed: rng.random(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planner(mix: Mix) -> Planner {
        Planner {
            mix,
            overrides: vec![
                "+1555000*=busy".parse().unwrap(),
                "15550019999=sit".parse().unwrap(),
            ],
            behaviour: Behaviour::default(),
            seed: 42,
        }
    }

    #[test]
    fn mixes_parse_and_pick_in_proportion() {
        let mix: Mix = "human=25, machine=25,busy=50%".parse().unwrap();
        assert_eq!(mix.share(Callee::Busy), 0.5);
        assert_eq!(mix.to_string(), "human=25.0,machine=25.0,busy=50.0");
        assert_eq!(mix.pick(0.0), Callee::Human);
        assert_eq!(mix.pick(0.3), Callee::Machine);
        assert_eq!(mix.pick(0.99999), Callee::Busy);
        assert_eq!(Mix::only(Callee::Sit).pick(0.5), Callee::Sit);
        for bad in ["", "human", "human=x", "robot=1", "human=-1", "human=0"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} was accepted");
        }
        let p = planner(Mix::default());
        let mut counts = std::collections::HashMap::new();
        for i in 0..20_000u64 {
            *counts
                .entry(p.plan(&format!("+1202{i:07}"), 0, (5, 5)).outcome)
                .or_insert(0u32) += 1;
        }
        let human = f64::from(counts[&Callee::Human]) / 20_000.0;
        assert!((0.23..0.27).contains(&human), "human share {human}");
    }

    #[test]
    fn plans_are_reproducible_and_overrides_win() {
        let p = planner(Mix::default());
        let a = p.plan("+12025550100", 0, (10, 10));
        assert_eq!(a, p.plan("+12025550100", 0, (10, 10)));
        assert_ne!(
            a.script_seed,
            p.plan("+12025550100", 1, (10, 10)).script_seed
        );
        assert_eq!(p.plan("+15550001234", 0, (1, 1)).outcome, Callee::Busy);
        assert!(p.plan("15550001234", 3, (1, 1)).forced);
        assert_eq!(p.plan("+15550019999", 0, (1, 1)).outcome, Callee::Sit);
        assert!(!p.plan("+155500199990", 0, (1, 1)).forced);
        assert!("=busy".parse::<Override>().is_err());
        assert!("+1*5=busy".parse::<Override>().is_err());
        assert!("+1555*=nothing".parse::<Override>().is_err());
    }

    #[test]
    fn timings_follow_the_outcome() {
        let p = planner(Mix::only(Callee::Busy));
        for i in 0..200 {
            let plan = p.plan(&format!("+1303{i:07}"), 0, (3, 4));
            assert!(plan.ring >= Duration::from_secs(2) && plan.ring <= Duration::from_secs(6));
            assert!(plan.post_dial <= plan.ring);
            assert!(plan.greeting < 3);
        }
    }
}
