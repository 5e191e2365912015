//! Live estimators with priors and exponential forgetting: the answer mix, ring times to each
//! outcome, AMD time, talk and wrap-up time distributions.
//!
//! Every estimator weighs an observation made at time `t` by `exp((t - origin) / tau)`, so
//! older observations fade with a half-life of `tau * ln 2` without touching every stored
//! weight on each update; the scale is renormalised now and then. A prior of fixed weight is
//! added when tables are rebuilt, so the first minutes of a campaign are sane and a quiet
//! campaign never runs on an empty estimate.

use crate::config::Priors;
use crate::math::lognormal_cdf;
use serde::Serialize;

/// Exponential weights grow without bound between renormalisations; past this, renormalise.
const RESCALE_AT: f64 = 1e100;

/// A decaying weight clock shared by the estimators' bins.
#[derive(Debug, Clone)]
struct Decay {
    origin: f64,
    tau: f64,
}

impl Decay {
    fn weight(&self, t: f64) -> f64 {
        ((t - self.origin) / self.tau).exp()
    }
}

/// A histogram of durations with forgetting and a prior; read through its rebuilt CDF table.
#[derive(Debug, Clone)]
pub(crate) struct Hist {
    width: f64,
    decay: Decay,
    data: Vec<f64>,
    data_total: f64,
    data_sum: f64,
    prior: Vec<f64>,
    prior_sum: f64,
    prior_total: f64,
    /// `cdf[i]` = P(X <= i * width); `len = bins + 1`.
    cdf: Vec<f64>,
    mean: f64,
    count: f64,
}

impl Hist {
    /// A histogram of `bins` bins of `width` seconds whose prior is the distribution `prior_cdf`
    /// with `weight` observations' worth of mass.
    pub(crate) fn new(
        width: f64,
        bins: usize,
        tau: f64,
        weight: f64,
        prior_cdf: impl Fn(f64) -> f64,
    ) -> Self {
        let mut prior = vec![0.0; bins];
        let mut prior_sum = 0.0;
        let mut last = 0.0;
        for (i, p) in prior.iter_mut().enumerate() {
            let c = if i + 1 == bins {
                1.0
            } else {
                prior_cdf((i + 1) as f64 * width)
            };
            *p = (c - last).max(0.0) * weight;
            prior_sum += *p * (i as f64 + 0.5) * width;
            last = c;
        }
        let mut h = Hist {
            width,
            decay: Decay { origin: 0.0, tau },
            data: vec![0.0; bins],
            data_total: 0.0,
            data_sum: 0.0,
            prior_total: prior.iter().sum(),
            prior,
            prior_sum,
            cdf: vec![0.0; bins + 1],
            mean: 0.0,
            count: 0.0,
        };
        h.rebuild(0.0);
        h
    }

    /// Records one duration `x` seconds observed at time `t`.
    pub(crate) fn observe(&mut self, t: f64, x: f64) {
        if !x.is_finite() || x < 0.0 {
            return;
        }
        let mut w = self.decay.weight(t);
        if w > RESCALE_AT {
            self.rescale(t);
            w = 1.0;
        }
        let i = ((x / self.width) as usize).min(self.data.len() - 1);
        self.data[i] += w;
        self.data_total += w;
        self.data_sum += w * x;
    }

    fn rescale(&mut self, t: f64) {
        let f = 1.0 / self.decay.weight(t);
        self.data.iter_mut().for_each(|d| *d *= f);
        self.data_total *= f;
        self.data_sum *= f;
        self.decay.origin = t;
    }

    /// Recomputes the CDF table with the data weighed as seen from `now`.
    pub(crate) fn rebuild(&mut self, now: f64) {
        let f = 1.0 / self.decay.weight(now);
        let total = self.data_total * f + self.prior_total;
        self.count = self.data_total * f;
        self.mean = (self.data_sum * f + self.prior_sum) / total;
        let mut acc = 0.0;
        self.cdf[0] = 0.0;
        for i in 0..self.data.len() {
            acc += self.data[i] * f + self.prior[i];
            self.cdf[i + 1] = (acc / total).min(1.0);
        }
    }

    /// P(X <= x), interpolated linearly inside a bin.
    #[inline]
    pub(crate) fn cdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        let pos = x / self.width;
        let i = pos as usize;
        if i + 1 >= self.cdf.len() {
            return 1.0;
        }
        let lo = self.cdf[i];
        lo + (self.cdf[i + 1] - lo) * (pos - i as f64)
    }

    /// The `q`-quantile.
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        let i = self.cdf.partition_point(|&c| c < q);
        if i == 0 {
            return 0.0;
        }
        if i >= self.cdf.len() {
            return (self.cdf.len() - 1) as f64 * self.width;
        }
        let (lo, hi) = (self.cdf[i - 1], self.cdf[i]);
        let frac = if hi > lo { (q - lo) / (hi - lo) } else { 0.0 };
        (i as f64 - 1.0 + frac) * self.width
    }

    /// The mean of the data and prior together.
    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }

    /// The weight of real observations behind the estimate, as seen at the last rebuild.
    pub(crate) fn count(&self) -> f64 {
        self.count
    }
}

/// Shares of a few categories with forgetting and a prior.
#[derive(Debug, Clone)]
pub(crate) struct Shares<const N: usize> {
    decay: Decay,
    data: [f64; N],
    prior: [f64; N],
    share: [f64; N],
}

impl<const N: usize> Shares<N> {
    pub(crate) fn new(tau: f64, prior: [f64; N], weight: f64) -> Self {
        let sum: f64 = prior.iter().sum();
        let prior = prior.map(|p| p / sum * weight);
        let mut s = Shares {
            decay: Decay { origin: 0.0, tau },
            data: [0.0; N],
            prior,
            share: [0.0; N],
        };
        s.rebuild(0.0);
        s
    }

    pub(crate) fn observe(&mut self, t: f64, category: usize) {
        let mut w = self.decay.weight(t);
        if w > RESCALE_AT {
            let f = 1.0 / w;
            self.data.iter_mut().for_each(|d| *d *= f);
            self.decay.origin = t;
            w = 1.0;
        }
        self.data[category] += w;
    }

    pub(crate) fn rebuild(&mut self, now: f64) {
        let f = 1.0 / self.decay.weight(now);
        let total: f64 = self
            .data
            .iter()
            .zip(&self.prior)
            .map(|(d, p)| d * f + p)
            .sum();
        for i in 0..N {
            self.share[i] = (self.data[i] * f + self.prior[i]) / total;
        }
    }

    #[inline]
    pub(crate) fn share(&self, category: usize) -> f64 {
        self.share[category]
    }
}

/// A rate of events per second with forgetting (no prior: it starts at zero).
#[derive(Debug, Clone)]
pub(crate) struct Rate {
    decay: Decay,
    sum: f64,
    start: Option<f64>,
}

impl Rate {
    pub(crate) fn new(tau: f64) -> Self {
        Rate {
            decay: Decay { origin: 0.0, tau },
            sum: 0.0,
            start: None,
        }
    }

    pub(crate) fn observe(&mut self, t: f64) {
        self.start.get_or_insert(t);
        let mut w = self.decay.weight(t);
        if w > RESCALE_AT {
            self.sum /= w;
            self.decay.origin = t;
            w = 1.0;
        }
        self.sum += w;
    }

    /// Events per second as seen at `now`.
    pub(crate) fn per_second(&self, now: f64) -> f64 {
        let Some(start) = self.start else { return 0.0 };
        let tau = self.decay.tau;
        // Early on the exponential window is not yet full: divide by the part that is.
        let span = tau * (1.0 - (-(now - start).max(1.0) / tau).exp());
        self.sum / self.decay.weight(now) / span
    }
}

/// Call outcomes, in the order [`Shares`] indexes them.
pub(crate) const LIVE: usize = 0;
pub(crate) const MACHINE: usize = 1;
pub(crate) const BUSY: usize = 2;
pub(crate) const NO_ANSWER: usize = 3;
pub(crate) const FAILED: usize = 4;

/// Every estimator the pacer learns from events.
#[derive(Debug, Clone)]
pub(crate) struct Estimators {
    pub(crate) outcome: Shares<5>,
    /// Time from placing to the end of ringing, per outcome (answer for live and machine).
    pub(crate) ring: [Hist; 5],
    pub(crate) amd_human: Hist,
    pub(crate) amd_machine: Hist,
    pub(crate) talk: Hist,
    pub(crate) wrap: Hist,
    /// After a call: back to ready (0) or paused (1).
    pub(crate) after_call: Shares<2>,
    pub(crate) live_rate: Rate,
    pub(crate) placed_rate: Rate,
    pub(crate) dirty: bool,
    pub(crate) built_at: f64,
}

fn lognormal_mean_to_median(mean: f64, sigma: f64) -> f64 {
    mean / (sigma * sigma / 2.0).exp()
}

impl Estimators {
    pub(crate) fn new(priors: &Priors, half_life: f64) -> Self {
        let tau = half_life / std::f64::consts::LN_2;
        let w = priors.weight.max(0.1);
        let ring_live = priors.ring_live.as_secs_f64().max(0.5);
        let timeout = priors.ring_timeout.as_secs_f64().max(1.0);
        let ring = |median: f64, sigma: f64| {
            Hist::new(0.25, 480, tau, w, move |x| lognormal_cdf(x, median, sigma))
        };
        let talk_sigma = 0.8;
        let talk_median = lognormal_mean_to_median(priors.talk.as_secs_f64().max(1.0), talk_sigma);
        let wrap = priors.wrap_up.as_secs_f64().max(0.5);
        let amd_h = priors.amd_human.as_secs_f64().max(0.05);
        let amd_m = priors.amd_machine.as_secs_f64().max(0.05);
        Estimators {
            outcome: Shares::new(
                tau,
                [
                    priors.live,
                    priors.machine,
                    priors.busy,
                    priors.no_answer,
                    priors.failed,
                ]
                .map(|p| p.max(1e-3)),
                w,
            ),
            ring: [
                ring(ring_live, 0.35),
                ring(ring_live * 1.2, 0.4),
                ring(5.0, 0.4),
                ring(timeout, 0.05),
                ring(2.0, 0.6),
            ],
            amd_human: Hist::new(0.1, 300, tau, w, move |x| lognormal_cdf(x, amd_h, 0.25)),
            amd_machine: Hist::new(0.1, 300, tau, w, move |x| lognormal_cdf(x, amd_m, 0.25)),
            talk: Hist::new(1.0, 3600, tau, w, move |x| {
                lognormal_cdf(x, talk_median, talk_sigma)
            }),
            wrap: Hist::new(0.5, 1200, tau, w, move |x| lognormal_cdf(x, wrap, 0.4)),
            after_call: Shares::new(tau, [0.99, 0.01], w),
            live_rate: Rate::new(tau / 2.0),
            placed_rate: Rate::new(30.0),
            dirty: true,
            built_at: f64::NEG_INFINITY,
        }
    }

    /// Rebuilds the tables the model reads, if anything changed.
    pub(crate) fn rebuild(&mut self, now: f64) {
        if !self.dirty {
            return;
        }
        self.outcome.rebuild(now);
        for h in &mut self.ring {
            h.rebuild(now);
        }
        self.amd_human.rebuild(now);
        self.amd_machine.rebuild(now);
        self.talk.rebuild(now);
        self.wrap.rebuild(now);
        self.after_call.rebuild(now);
        self.dirty = false;
        self.built_at = now;
    }

    /// A snapshot for the dashboard.
    pub(crate) fn figures(&self, now: f64) -> Estimates {
        let o = &self.outcome;
        Estimates {
            live: o.share(LIVE),
            machine: o.share(MACHINE),
            busy: o.share(BUSY),
            no_answer: o.share(NO_ANSWER),
            failed: o.share(FAILED),
            ring_to_live_mean: self.ring[LIVE].mean(),
            ring_to_live_median: self.ring[LIVE].quantile(0.5),
            amd_human_mean: self.amd_human.mean(),
            amd_machine_mean: self.amd_machine.mean(),
            talk_mean: self.talk.mean(),
            talk_median: self.talk.quantile(0.5),
            talk_p90: self.talk.quantile(0.9),
            wrap_up_mean: self.wrap.mean(),
            pause_after_call: self.after_call.share(1),
            live_per_minute: self.live_rate.per_second(now) * 60.0,
            talk_samples: self.talk.count(),
        }
    }
}

/// The live estimates, as the dashboard shows them (times in seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimates {
    /// Share of calls answered by a person.
    pub live: f64,
    /// Share answered by a machine.
    pub machine: f64,
    /// Share busy.
    pub busy: f64,
    /// Share not answered.
    pub no_answer: f64,
    /// Share failed.
    pub failed: f64,
    /// Mean time from placing a call to a person answering.
    pub ring_to_live_mean: f64,
    /// Median of the same.
    pub ring_to_live_median: f64,
    /// Mean time for AMD to say human.
    pub amd_human_mean: f64,
    /// Mean time for AMD to say machine.
    pub amd_machine_mean: f64,
    /// Mean talk time.
    pub talk_mean: f64,
    /// Median talk time.
    pub talk_median: f64,
    /// 90th percentile of talk time.
    pub talk_p90: f64,
    /// Mean wrap-up time.
    pub wrap_up_mean: f64,
    /// Share of calls after which the agent paused instead of becoming ready.
    pub pause_after_call: f64,
    /// Live answers per minute, lately.
    pub live_per_minute: f64,
    /// Recent talk-time observations behind the estimate (the prior not counted).
    pub talk_samples: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_learns_and_forgets() {
        let mut h = Hist::new(1.0, 100, 60.0, 5.0, |x| lognormal_cdf(x, 10.0, 0.3));
        assert!((h.quantile(0.5) - 10.0).abs() < 1.0);
        for i in 0..500 {
            h.observe(i as f64 * 0.1, 40.0);
        }
        h.rebuild(50.0);
        assert!((h.quantile(0.5) - 40.5).abs() < 1.0, "{}", h.quantile(0.5));
        for i in 0..5000 {
            h.observe(1000.0 + i as f64 * 0.1, 20.0);
        }
        h.rebuild(1500.0);
        assert!((h.mean() - 20.0).abs() < 0.5, "{}", h.mean());
        assert!(h.cdf(1e9) == 1.0 && h.cdf(-1.0) == 0.0);
    }

    #[test]
    fn shares_follow_a_change() {
        let mut s = Shares::new(100.0, [0.5, 0.5], 10.0);
        for i in 0..2000 {
            s.observe(i as f64, usize::from(i % 10 == 0));
        }
        s.rebuild(2000.0);
        assert!((s.share(1) - 0.1).abs() < 0.05);
    }

    #[test]
    fn rate_counts_per_second() {
        let mut r = Rate::new(300.0);
        for i in 0..3000 {
            r.observe(i as f64 * 0.5);
        }
        assert!(
            (r.per_second(1500.0) - 2.0).abs() < 0.1,
            "{}",
            r.per_second(1500.0)
        );
    }
}
