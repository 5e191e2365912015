//! A campaign's pacing settings: the supervisor's (the campaign file's `[pacing]` section, checked
//! by `domain`) and the pacer's own, which only this crate checks.

use domain::Pacing;
use std::fmt;
use std::time::Duration;

/// The shortest ring before a call may be given up on (US and UK rules: about four rings).
pub const MIN_RING: Duration = Duration::from_secs(15);

/// The line cap of [`Config::default`]: none. A campaign's `max_lines` is at most 10000; the
/// simulator runs without a cap unless told one.
pub const NO_LINE_CAP: u32 = u32::MAX;

/// A campaign's pacing settings. Every field can be changed while the campaign runs
/// ([`crate::Pacer::set_config`]); the change takes effect at the next decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The supervisor's settings: dial mode, ratio, `max_ratio` (the cap of every mode with
    /// agents: calls in progress per agent logged in and not paused, VICIdial's "dial level"),
    /// abandon target and window, `max_lines` (calls in progress at once) and `min_agents`
    /// (predictive mode needs that many agents logged in and not paused; below it the pacer
    /// dials progressively at 1:1, because small teams are where predictive over-dials).
    /// [`Pacing::problems`] checks them, not [`Config::validate`]. The pacer has no use for
    /// `min_ratio`: its model has no lower bound.
    pub settings: Pacing,
    /// The share of the abandon target the predictive controller aims at, so that normal
    /// fluctuations stay under the target (5/6: run at 2.5% for a 3% rule).
    pub setpoint: f64,
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
    /// The simulator's defaults: the file's settings but for a 24-hour window, 5 agents for
    /// predictive mode and no line cap.
    fn default() -> Self {
        Config {
            settings: Pacing {
                abandon_window: domain::AbandonWindow::Day,
                max_lines: NO_LINE_CAP,
                min_agents: 5,
                ..Pacing::default()
            },
            setpoint: 2.5 / 3.0,
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
        /// The setting's name, a field of [`Config`].
        setting: &'static str,
        /// The value given.
        value: String,
        /// Why it was refused.
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
            ConfigError::Invalid { setting, .. } => setting,
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
    /// Checks the pacer's own settings (not [`Config::settings`], which are the campaign's);
    /// the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = self.setpoint;
        check(
            s.is_finite() && s > 0.0 && s <= 1.0,
            "setpoint",
            s,
            "must be a fraction of the target above 0 and at most 1",
        )?;
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
        assert_eq!(bad(|c| c.setpoint = 0.0).setting(), "setpoint");
        assert_eq!(bad(|c| c.setpoint = f64::NAN).setting(), "setpoint");
        assert_eq!(bad(|c| c.max_cps = Some(0.0)).setting(), "max_cps");
        assert_eq!(
            bad(|c| c.connect_grace = Duration::from_secs(11)).setting(),
            "connect_grace"
        );
        assert_eq!(
            bad(|c| c.cancel_after = Some(Duration::from_secs(5))).setting(),
            "cancel_after"
        );
        assert_eq!(
            bad(|c| c.memory = Duration::from_secs(1)).setting(),
            "memory"
        );
        let msg = bad(|c| c.setpoint = 1.5).to_string();
        assert!(msg.contains("setpoint") && msg.contains("1.5"), "{msg}");
    }

    #[test]
    fn the_campaign_settings_are_checked_by_domain_alone() {
        let mut c = Config::default();
        c.settings.ratio = -1.0;
        c.validate().unwrap();
        assert_eq!(c.settings.problems()[0].0, "ratio");
    }
}
