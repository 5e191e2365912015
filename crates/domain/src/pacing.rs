//! The `[pacing]` section's rules: the dial mode's names, and the one check of the supervisor's
//! settings that the campaign file, the API and the pacer all rely on.

use crate::error::Error;
use crate::spec::{AbandonWindow, DialMode, Pacing};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A supervisor's change to a running campaign's pacing; fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PacingPatch {
    /// Dial mode.
    pub mode: Option<DialMode>,
    /// Lines per idle agent (progressive) and the predictive starting ratio.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.1, maximum = 20.0))]
    pub ratio: Option<f64>,
    /// Lowest ratio (checked and stored; no mode reads it).
    #[cfg_attr(feature = "openapi", schema(minimum = 0.1, maximum = 20.0))]
    pub min_ratio: Option<f64>,
    /// Highest ratio of the predictive pacer.
    #[cfg_attr(feature = "openapi", schema(minimum = 1.0, maximum = 20.0))]
    pub max_ratio: Option<f64>,
    /// Abandon target (0.03 = 3%; above needs `override_legal_limits`).
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, exclusive_maximum = 1.0))]
    pub abandon_target: Option<f64>,
    /// Abandon window.
    pub abandon_window: Option<AbandonWindow>,
    /// Most calls in progress at once.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    pub max_lines: Option<u32>,
    /// Fewest agents for predictive mode.
    pub min_agents: Option<u32>,
    /// Allows an abandon target above 3%.
    pub override_legal_limits: Option<bool>,
}

impl PacingPatch {
    /// The pacing section with this patch applied.
    pub fn apply(&self, pacing: &Pacing) -> Pacing {
        let mut p = pacing.clone();
        if let Some(v) = self.mode {
            p.mode = v;
        }
        if let Some(v) = self.ratio {
            p.ratio = v;
        }
        if let Some(v) = self.min_ratio {
            p.min_ratio = v;
        }
        if let Some(v) = self.max_ratio {
            p.max_ratio = v;
        }
        if let Some(v) = self.abandon_target {
            p.abandon_target = v;
        }
        if let Some(v) = self.abandon_window {
            p.abandon_window = v;
        }
        if let Some(v) = self.max_lines {
            p.max_lines = v;
        }
        if let Some(v) = self.min_agents {
            p.min_agents = v;
        }
        if let Some(v) = self.override_legal_limits {
            p.override_legal_limits = v;
        }
        p
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &PacingPatch::default()
    }
}

impl DialMode {
    /// The lowercase name used in campaign files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preview => "preview",
            Self::Progressive => "progressive",
            Self::Predictive => "predictive",
            Self::Agentless => "agentless",
        }
    }
}

impl fmt::Display for DialMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any case, and `power` for progressive (the name some dialers give 1:1 progressive dialing).
impl FromStr for DialMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "preview" => Ok(Self::Preview),
            "progressive" | "power" => Ok(Self::Progressive),
            "predictive" => Ok(Self::Predictive),
            "agentless" => Ok(Self::Agentless),
            _ => Err(Error::Invalid(format!(
                "setting `mode` = {s}: must be one of preview, progressive, predictive, agentless"
            ))),
        }
    }
}

impl Pacing {
    /// Every refused setting, as (field within `[pacing]`, reason); empty when all are good.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut bad = |field: &'static str, reason: String| problems.push((field, reason));
        for (field, value) in [
            ("ratio", self.ratio),
            ("min_ratio", self.min_ratio),
            ("max_ratio", self.max_ratio),
        ] {
            if !(value.is_finite() && (0.1..=20.0).contains(&value)) {
                bad(field, format!("{value} must be between 0.1 and 20"));
            }
        }
        // The pacer caps every automatic mode at max_ratio calls per active agent: below one it
        // would leave ready agents without a call even in progressive 1:1.
        if (0.1..1.0).contains(&self.max_ratio) {
            bad(
                "max_ratio",
                format!(
                    "{} is below 1 (one call in progress per active agent)",
                    self.max_ratio
                ),
            );
        }
        if self.min_ratio > self.max_ratio {
            bad(
                "min_ratio",
                format!(
                    "{} is above pacing.max_ratio ({})",
                    self.min_ratio, self.max_ratio
                ),
            );
        }
        if self.ratio > self.max_ratio {
            bad(
                "ratio",
                format!(
                    "{} is above pacing.max_ratio ({})",
                    self.ratio, self.max_ratio
                ),
            );
        }
        let target = self.abandon_target;
        if !(target.is_finite() && (0.0..1.0).contains(&target)) {
            bad(
                "abandon_target",
                format!("{target} must be a fraction between 0 and 1 (0.03 = 3%)"),
            );
        } else if target > 0.03 && !self.override_legal_limits {
            bad(
                "abandon_target",
                format!(
                    "{target} is above the 3% US and UK limit; set pacing.override_legal_limits = \
                     true only where the law allows it"
                ),
            );
        }
        if self.max_lines == 0 || self.max_lines > 10_000 {
            bad(
                "max_lines",
                format!("{} must be between 1 and 10000", self.max_lines),
            );
        }
        if self.mode == DialMode::Predictive && self.min_agents == 0 {
            bad(
                "min_agents",
                "predictive mode needs at least 1 agent".into(),
            );
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &Pacing) -> Vec<&'static str> {
        p.problems().into_iter().map(|(field, _)| field).collect()
    }

    #[test]
    fn defaults_are_good() {
        assert!(Pacing::default().problems().is_empty());
    }

    #[test]
    fn mode_names_round_trip_and_power_is_progressive() {
        for mode in [
            DialMode::Preview,
            DialMode::Progressive,
            DialMode::Predictive,
            DialMode::Agentless,
        ] {
            assert_eq!(mode.to_string().parse::<DialMode>().unwrap(), mode);
            // The name the campaign file uses (serde) is the same.
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
        assert_eq!(
            "Predictive".parse::<DialMode>().unwrap(),
            DialMode::Predictive
        );
        assert_eq!("power".parse::<DialMode>().unwrap(), DialMode::Progressive);
        let err = "turbo".parse::<DialMode>().unwrap_err().to_string();
        assert!(err.contains("mode") && err.contains("turbo"), "{err}");
    }

    /// Rules the pacer relies on: a ratio within its cap, and a cap of at least one call in
    /// progress per active agent (inside the 0.1-20 range of every ratio).
    #[test]
    fn the_pacers_stricter_rules_hold() {
        let p = Pacing {
            ratio: 2.0,
            max_ratio: 1.5,
            ..Pacing::default()
        };
        assert_eq!(fields(&p), vec!["ratio"]);
        let p = Pacing {
            ratio: 0.4,
            min_ratio: 0.4,
            max_ratio: 0.5,
            ..Pacing::default()
        };
        assert_eq!(fields(&p), vec!["max_ratio"]);
        let p = Pacing {
            max_ratio: 1.0,
            ..Pacing::default()
        };
        assert!(p.problems().is_empty(), "{:?}", p.problems());
    }

    #[test]
    fn nonsense_is_refused_by_field() {
        let bad = |f: fn(&mut Pacing)| {
            let mut p = Pacing::default();
            f(&mut p);
            fields(&p)
        };
        assert_eq!(bad(|p| p.ratio = f64::NAN), vec!["ratio"]);
        assert_eq!(bad(|p| p.ratio = -1.0), vec!["ratio"]);
        assert_eq!(bad(|p| p.abandon_target = 1.5), vec!["abandon_target"]);
        assert_eq!(bad(|p| p.abandon_target = 0.05), vec!["abandon_target"]);
        assert!(
            bad(|p| {
                p.abandon_target = 0.05;
                p.override_legal_limits = true;
            })
            .is_empty()
        );
        assert_eq!(bad(|p| p.max_lines = 0), vec!["max_lines"]);
        assert_eq!(bad(|p| p.min_agents = 0), vec!["min_agents"]);
        assert!(
            bad(|p| {
                p.mode = DialMode::Progressive;
                p.min_agents = 0;
            })
            .is_empty()
        );
    }
}
