//! The supervisor's settings for one campaign's pacing, and their validation.

use std::fmt;
use std::time::Duration;

/// The UK regulator's abandon window (Ofcom): a rolling 24 hours.
pub const WINDOW_24H: Duration = Duration::from_secs(24 * 3600);
/// The US regulator's abandon window (FTC TSR): a rolling 30 days.
pub const WINDOW_30D: Duration = Duration::from_secs(30 * 24 * 3600);
/// The shortest ring before a call may be given up on (US and UK rules: about four rings).
pub const MIN_RING: Duration = Duration::from_secs(15);

/// How a campaign decides how many calls to place.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The agent sees the next contact and starts the call: the pacer never starts calls.
    Preview,
    /// Lines = ready agents x [`Config::ratio`], minus calls already in flight.
    Progressive,
    /// The pacer's model chooses the lines, keeping abandons under the target.
    #[default]
    Predictive,
    /// No agents: every answered call gets a recording or IVR, bounded by the line and CPS caps.
    Agentless,
}

impl Mode {
    /// The lowercase name used in campaign files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Preview => "preview",
            Mode::Progressive => "progressive",
            Mode::Predictive => "predictive",
            Mode::Agentless => "agentless",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "preview" => Ok(Mode::Preview),
            "progressive" | "power" => Ok(Mode::Progressive),
            "predictive" => Ok(Mode::Predictive),
            "agentless" => Ok(Mode::Agentless),
            _ => Err(ConfigError::invalid(
                "mode",
                s,
                "must be one of preview, progressive, predictive, agentless",
            )),
        }
    }
}

/// A campaign's pacing settings. Every field can be changed while the campaign runs
/// ([`crate::Pacer::set_config`]); the change takes effect at the next decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Dial mode.
    pub mode: Mode,
    /// Progressive mode: lines per ready agent (1.0 = power dialing).
    pub ratio: f64,
    /// Cap of every automatic mode: calls in progress (dialing, ringing, answered, waiting or
    /// bridged) per agent logged in and not paused. This is VICIdial's "dial level"; 3.0 is its
    /// usual maximum.
    pub max_ratio: f64,
    /// Largest share of live-answered calls that may be abandoned over the window (0.03 = 3%).
    pub abandon_target: f64,
    /// The share of [`Config::abandon_target`] the predictive controller aims at, so that
    /// normal fluctuations stay under the target (5/6: run at 2.5% for a 3% rule).
    pub setpoint: f64,
    /// The regulator's window over which the abandon rate is counted ([`WINDOW_24H`] UK,
    /// [`WINDOW_30D`] US).
    pub abandon_window: Duration,
    /// At most this many calls in progress at once (trunk channels); `None` for no cap.
    pub max_in_flight: Option<u32>,
    /// Predictive mode needs at least this many agents logged in and not paused; below it the
    /// pacer dials progressively at 1:1, because small teams are where predictive over-dials.
    pub min_agents_predictive: u32,
    /// Calls per second the trunk accepts; `None` for no cap.
    pub max_cps: Option<f64>,
    /// A live answer not connected to an agent within this time after the greeting's end is
    /// abandoned (the 2-second rule).
    pub connect_grace: Duration,
    /// Predictive mode may ask to cancel calls that have rung at least this long when it has
    /// over-dialed; `None` never cancels. At least [`MIN_RING`].
    pub cancel_after: Option<Duration>,
    /// Half-life of the live estimators (answer mix, ring, talk and wrap-up times): how fast a
    /// change in the day is followed.
    pub memory: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Predictive,
            ratio: 1.0,
            max_ratio: 3.0,
            abandon_target: 0.03,
            setpoint: 2.5 / 3.0,
            abandon_window: WINDOW_24H,
            max_in_flight: None,
            min_agents_predictive: 5,
            max_cps: None,
            connect_grace: Duration::from_secs(2),
            cancel_after: None,
            memory: Duration::from_secs(600),
        }
    }
}

/// A setting that makes no sense, named with the reason. The pacer keeps its last good settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One setting's value is out of its range or not a number.
    #[error("setting `{setting}` = {value}: {reason}")]
    Invalid {
        /// The setting's name, as in the campaign file's `[pacing]` section.
        setting: &'static str,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Two settings contradict each other.
    #[error("setting `{setting}` = {value} conflicts with `{other}` = {other_value}: {reason}")]
    Conflict {
        /// The setting that was refused.
        setting: &'static str,
        /// Its value.
        value: String,
        /// The setting it contradicts.
        other: &'static str,
        /// That setting's value.
        other_value: String,
        /// Why they contradict.
        reason: &'static str,
    },
}

impl ConfigError {
    fn invalid(setting: &'static str, value: impl fmt::Display, reason: &'static str) -> Self {
        ConfigError::Invalid {
            setting,
            value: value.to_string(),
            reason,
        }
    }

    /// The name of the refused setting.
    pub fn setting(&self) -> &'static str {
        match self {
            ConfigError::Invalid { setting, .. } | ConfigError::Conflict { setting, .. } => setting,
        }
    }
}

fn check(
    ok: bool,
    setting: &'static str,
    value: impl fmt::Display,
    reason: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(setting, value, reason))
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

impl Config {
    /// Checks every setting; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = self.ratio;
        check(
            r.is_finite() && r > 0.0,
            "ratio",
            r,
            "must be a number greater than 0",
        )?;
        check(
            r <= 100.0,
            "ratio",
            r,
            "must be at most 100 lines per ready agent",
        )?;
        let m = self.max_ratio;
        check(
            m.is_finite() && m >= 1.0,
            "max_ratio",
            m,
            "must be a number of at least 1",
        )?;
        check(m <= 100.0, "max_ratio", m, "must be at most 100")?;
        if r > m {
            return Err(ConfigError::Conflict {
                setting: "ratio",
                value: r.to_string(),
                other: "max_ratio",
                other_value: m.to_string(),
                reason: "the progressive ratio cannot be above the maximum ratio",
            });
        }
        let t = self.abandon_target;
        check(
            t.is_finite() && (0.0..=1.0).contains(&t),
            "abandon_target",
            t,
            "must be a fraction between 0 and 1 (0.03 = 3%)",
        )?;
        let s = self.setpoint;
        check(
            s.is_finite() && s > 0.0 && s <= 1.0,
            "setpoint",
            s,
            "must be a fraction of the target above 0 and at most 1",
        )?;
        let w = self.abandon_window;
        check(
            w >= Duration::from_secs(3600) && w <= Duration::from_secs(366 * 24 * 3600),
            "abandon_window",
            secs(w),
            "must be between 1 hour and 366 days",
        )?;
        if let Some(n) = self.max_in_flight {
            check(
                n >= 1,
                "max_in_flight",
                n,
                "must be at least 1 (leave it unset for no cap)",
            )?;
        }
        if let Some(c) = self.max_cps {
            check(
                c.is_finite() && c > 0.0,
                "max_cps",
                c,
                "must be a number greater than 0 (leave it unset for no cap)",
            )?;
        }
        let g = self.connect_grace;
        check(
            g <= Duration::from_secs(10),
            "connect_grace",
            secs(g),
            "must be at most 10 seconds (the rule is 2)",
        )?;
        if let Some(c) = self.cancel_after {
            check(
                c >= MIN_RING,
                "cancel_after",
                secs(c),
                "must be at least 15 seconds: calls ring at least that long",
            )?;
        }
        let mem = self.memory;
        check(
            mem >= Duration::from_secs(30) && mem <= Duration::from_secs(24 * 3600),
            "memory",
            secs(mem),
            "must be between 30 seconds and 24 hours",
        )?;
        if self.mode == Mode::Agentless && self.max_in_flight.is_none() {
            return Err(ConfigError::Conflict {
                setting: "mode",
                value: "agentless".into(),
                other: "max_in_flight",
                other_value: "unset".into(),
                reason: "agentless mode needs a line cap: no agent paces it",
            });
        }
        Ok(())
    }
}

/// What the pacer assumes before it has seen any call (a campaign's first minutes). The
/// estimators start from these and forget them as real calls come in.
#[derive(Debug, Clone, PartialEq)]
pub struct Priors {
    /// Share of calls answered by a person.
    pub live: f64,
    /// Share answered by a machine.
    pub machine: f64,
    /// Share busy.
    pub busy: f64,
    /// Share not answered before the ring timeout.
    pub no_answer: f64,
    /// Share failed (everything else).
    pub failed: f64,
    /// Median time from placing a call to a person answering.
    pub ring_live: Duration,
    /// Ring timeout the engine uses for no answer.
    pub ring_timeout: Duration,
    /// Mean talk time.
    pub talk: Duration,
    /// Mean wrap-up time.
    pub wrap_up: Duration,
    /// Time for AMD to say "human" after the answer.
    pub amd_human: Duration,
    /// Time for AMD to say "machine" after the answer.
    pub amd_machine: Duration,
    /// How many calls' worth of weight the priors keep once real data arrives.
    pub weight: f64,
}

impl Default for Priors {
    fn default() -> Self {
        Priors {
            live: 0.2,
            machine: 0.1,
            busy: 0.1,
            no_answer: 0.4,
            failed: 0.2,
            ring_live: Duration::from_secs(10),
            ring_timeout: Duration::from_secs(25),
            talk: Duration::from_secs(120),
            wrap_up: Duration::from_secs(10),
            amd_human: Duration::from_secs(2),
            amd_machine: Duration::from_secs(3),
            weight: 10.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn nonsense_is_refused_with_the_setting_named() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.ratio = -1.0).setting(), "ratio");
        assert_eq!(bad(|c| c.ratio = f64::NAN).setting(), "ratio");
        assert_eq!(bad(|c| c.abandon_target = 1.5).setting(), "abandon_target");
        assert_eq!(bad(|c| c.ratio = 4.0).setting(), "ratio");
        assert_eq!(bad(|c| c.max_ratio = 0.5).setting(), "max_ratio");
        assert_eq!(
            bad(|c| c.max_in_flight = Some(0)).setting(),
            "max_in_flight"
        );
        assert_eq!(
            bad(|c| c.cancel_after = Some(Duration::from_secs(5))).setting(),
            "cancel_after"
        );
        assert_eq!(bad(|c| c.mode = Mode::Agentless).setting(), "mode");
        let msg = bad(|c| c.abandon_target = 1.5).to_string();
        assert!(
            msg.contains("abandon_target") && msg.contains("1.5"),
            "{msg}"
        );
    }

    #[test]
    fn mode_parses() {
        assert_eq!("Predictive".parse::<Mode>().unwrap(), Mode::Predictive);
        assert_eq!("nope".parse::<Mode>().unwrap_err().setting(), "mode");
    }
}
