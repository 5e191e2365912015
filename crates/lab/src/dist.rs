//! Durations and the random distributions the lab draws its timings from, with a short text
//! form for command lines: `45s` (fixed), `20s..90s` (uniform), `lognormal:60s:0.6` (lognormal
//! with that mean and shape, the same family `pacing::sim` uses for talk times).

use crate::LabError;
use rand::RngExt;
use rand_distr::{Distribution, LogNormal};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Parses `45s`, `1500ms`, `2m`, `1h`, or a bare number of seconds (`2.5`).
pub fn parse_duration(text: &str) -> Result<Duration, LabError> {
    let t = text.trim();
    let bad = |why: &str| LabError::config(format!("duration {t:?}"), why);
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| bad("not a number with an optional unit (ms, s, m, h)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad("must be zero or more"));
    }
    let seconds = value * scale;
    if seconds > 7.0 * 86_400.0 {
        return Err(bad("longer than a week"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn show_duration(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        write!(f, "{}s", ms / 1000)
    } else {
        write!(f, "{ms}ms")
    }
}

/// A random duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always this long.
    Fixed(Duration),
    /// Uniform between the two (inclusive).
    Uniform(Duration, Duration),
    /// Lognormal with this mean and shape (sigma of the underlying normal), cut at ten times
    /// the mean so that one draw cannot hold a line for hours.
    LogNormal {
        /// The mean.
        mean: Duration,
        /// The shape; 0.6 is a typical talk-time spread.
        sigma: f64,
    },
}

impl Dist {
    /// A uniform range given in seconds.
    pub fn secs(min: f64, max: f64) -> Dist {
        Dist::Uniform(Duration::from_secs_f64(min), Duration::from_secs_f64(max))
    }

    /// A lognormal with this mean (seconds) and shape.
    pub fn lognormal(mean: f64, sigma: f64) -> Dist {
        Dist::LogNormal {
            mean: Duration::from_secs_f64(mean),
            sigma,
        }
    }

    /// Draws one duration.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        match *self {
            Dist::Fixed(d) => d,
            Dist::Uniform(a, b) if b > a => {
                Duration::from_secs_f64(rng.random_range(a.as_secs_f64()..=b.as_secs_f64()))
            }
            Dist::Uniform(a, _) => a,
            Dist::LogNormal { mean, sigma } => {
                let m = mean.as_secs_f64().max(1e-3);
                let sigma = sigma.max(1e-6);
                // The mean of a lognormal is exp(mu + sigma^2 / 2).
                let mu = m.ln() - sigma * sigma / 2.0;
                let x = LogNormal::new(mu, sigma)
                    .map(|d| d.sample(rng))
                    .unwrap_or(m);
                Duration::from_secs_f64(x.min(10.0 * m))
            }
        }
    }

    /// The mean of the distribution (as drawn, before the lognormal's cut).
    pub fn mean(&self) -> Duration {
        match *self {
            Dist::Fixed(d) => d,
            Dist::Uniform(a, b) => (a + b.max(a)) / 2,
            Dist::LogNormal { mean, .. } => mean,
        }
    }
}

impl FromStr for Dist {
    type Err = LabError;

    fn from_str(text: &str) -> Result<Dist, LabError> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("lognormal:") {
            let (mean, sigma) = rest.split_once(':').unwrap_or((rest, "0.6"));
            let sigma: f64 = sigma.trim().parse().map_err(|_| {
                LabError::config(format!("distribution {t:?}"), "the shape is not a number")
            })?;
            if !(0.0..=3.0).contains(&sigma) {
                return Err(LabError::config(
                    format!("distribution {t:?}"),
                    "the shape must be within 0-3",
                ));
            }
            let mean = parse_duration(mean)?;
            if mean.is_zero() {
                return Err(LabError::config(
                    format!("distribution {t:?}"),
                    "the mean must be above zero",
                ));
            }
            return Ok(Dist::LogNormal { mean, sigma });
        }
        if let Some((a, b)) = t.split_once("..") {
            let (a, b) = (parse_duration(a)?, parse_duration(b)?);
            if b < a {
                return Err(LabError::config(
                    format!("distribution {t:?}"),
                    "the range ends before it starts",
                ));
            }
            return Ok(Dist::Uniform(a, b));
        }
        Ok(Dist::Fixed(parse_duration(t)?))
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Dist::Fixed(d) => show_duration(d, f),
            Dist::Uniform(a, b) => {
                show_duration(a, f)?;
                f.write_str("..")?;
                show_duration(b, f)
            }
            Dist::LogNormal { mean, sigma } => {
                f.write_str("lognormal:")?;
                show_duration(mean, f)?;
                write!(f, ":{sigma}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        for bad in ["", "x", "-1s", "5d", "1e9h", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn distributions_round_trip_and_stay_in_range() {
        for text in ["45s", "2s..6s", "lognormal:60s:0.6", "1500ms..2s"] {
            let dist: Dist = text.parse().unwrap();
            assert_eq!(dist.to_string(), text);
        }
        assert!("9s..2s".parse::<Dist>().is_err());
        assert!("lognormal:0s".parse::<Dist>().is_err());
        assert!("lognormal:10s:x".parse::<Dist>().is_err());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let uniform: Dist = "2s..6s".parse().unwrap();
        let lognormal = Dist::lognormal(60.0, 0.6);
        let mut total = 0.0;
        for _ in 0..20_000 {
            let d = uniform.sample(&mut rng);
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(6));
            total += lognormal.sample(&mut rng).as_secs_f64();
        }
        let mean = total / 20_000.0;
        assert!((55.0..65.0).contains(&mean), "lognormal mean {mean}");
    }
}
