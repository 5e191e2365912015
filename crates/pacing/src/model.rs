//! The predictive model: who will be free and who will be waiting, a few seconds ahead.
//!
//! A new call placed now reaches a person (if it does) at a random "live-ready" time `t`: ring
//! time plus the AMD decision. We take `J` points `t_j`, the midpoints of `J` equal-probability
//! slices of that time's distribution. At each point we estimate:
//!
//! * `F_j`: agents free by `t_j + grace`: ready agents, plus each talking or wrapping agent's
//!   probability of being done by then *given how long it has already talked or wrapped up*
//!   (from the learned distributions, not their means);
//! * `L_j`: live callers needing an agent by `t_j`: waiting callers, plus each call in flight's
//!   probability of turning into a live answer by then *given how long it has rung*.
//!
//! Both are sums of independent Bernoulli variables: their means and variances add, and their
//! difference is treated as normal. One more call, with `n` other new calls beside it, is
//! abandoned at `t_j` when fewer than one agent is left for it:
//! `P_j = Phi((0.5 - (F_j - L_j - n G_j)) / sigma_j)`, with `G_j` the chance a new call is live
//! by `t_j`. Its abandon probability is the mean of `P_j` over the points.

// Parallel per-point arrays read best indexed by the point.
#![allow(clippy::needless_range_loop)]

use crate::estimate::{Estimators, LIVE, MACHINE};
use crate::math::normal_cdf;

/// Number of horizon points.
pub(crate) const J: usize = 8;

/// One entity's contribution: probability at each point.
pub(crate) type Contrib = [f64; J];

/// The cached sums for one time quantum.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// Quantum index the sums were computed for; `None` when stale.
    pub(crate) quantum: Option<i64>,
    /// The time the contributions are evaluated at (start of the quantum).
    pub(crate) at: f64,
    /// Horizon points: live-ready times of a new call.
    pub(crate) t: [f64; J],
    /// P(a new call is live-ready by `t_j`).
    pub(crate) g: [f64; J],
    pub(crate) f_mean: [f64; J],
    pub(crate) f_var: [f64; J],
    pub(crate) l_mean: [f64; J],
    pub(crate) l_var: [f64; J],
    /// Third cumulant of free agents minus live callers: the normal approximation's skew
    /// correction (sums of rare events are right-skewed, and their tail is what abandons).
    pub(crate) k3: [f64; J],
    /// Cached estimator values for contributions.
    pub(crate) grace: f64,
    pub(crate) wrap_mean: f64,
    pub(crate) talk_mean: f64,
    pub(crate) amd_mean: f64,
    pub(crate) stay: f64,
    /// Integral of a new call's live-ready CDF up to each point: overtakers per unit of rate.
    overtake: [f64; J],
    /// Contributions tabulated over elapsed time, rebuilt with the estimators.
    talk_tab: Vec<Contrib>,
    wrap_tab: Vec<Contrib>,
    dial_tab: Vec<Contrib>,
    amd_tab: Vec<Contrib>,
    /// Whether the tables match the estimators and settings.
    pub(crate) prepared: bool,
}

const TALK_STEP: f64 = 4.0;
const TALK_ROWS: usize = 451;
const WRAP_STEP: f64 = 1.0;
const WRAP_ROWS: usize = 301;
const DIAL_STEP: f64 = 0.5;
const DIAL_ROWS: usize = 241;
const AMD_STEP: f64 = 0.2;
const AMD_ROWS: usize = 151;

#[inline]
fn row(tab: &[Contrib], step: f64, x: f64) -> &Contrib {
    let i = ((x.max(0.0) / step) + 0.5) as usize;
    &tab[i.min(tab.len() - 1)]
}

impl Model {
    pub(crate) fn new() -> Self {
        Model {
            quantum: None,
            at: 0.0,
            t: [0.0; J],
            g: [0.0; J],
            f_mean: [0.0; J],
            f_var: [0.0; J],
            l_mean: [0.0; J],
            l_var: [0.0; J],
            k3: [0.0; J],
            grace: 2.0,
            wrap_mean: 10.0,
            talk_mean: 120.0,
            amd_mean: 2.0,
            stay: 1.0,
            overtake: [0.0; J],
            talk_tab: Vec::new(),
            wrap_tab: Vec::new(),
            dial_tab: Vec::new(),
            amd_tab: Vec::new(),
            prepared: false,
        }
    }

    /// Sets the horizon points from the estimators and tabulates every contribution.
    pub(crate) fn prepare(&mut self, est: &Estimators, grace: f64) {
        self.grace = grace;
        self.wrap_mean = est.wrap.mean();
        self.talk_mean = est.talk.mean().max(1.0);
        self.amd_mean = est.amd_human.mean();
        self.stay = est.after_call.share(0);
        let live = est.outcome.share(LIVE);
        let ring = &est.ring[LIVE];
        for j in 0..J {
            let q = (j as f64 + 0.5) / J as f64;
            self.t[j] = self.amd_mean + ring.quantile(q);
            self.g[j] = live * q;
            // Integral over placement delays s in (0, t_j) of P(live by t_j - s), per call.
            const STEP: f64 = 0.5;
            let mut integral = 0.0;
            let mut s = STEP * 0.5;
            while s < self.t[j] {
                integral += ring.cdf(self.t[j] - s - self.amd_mean) * STEP;
                s += STEP;
            }
            self.overtake[j] = live * integral;
        }
        self.talk_tab = (0..TALK_ROWS)
            .map(|i| self.talking(est, i as f64 * TALK_STEP))
            .collect();
        self.wrap_tab = (0..WRAP_ROWS)
            .map(|i| self.wrapping(est, i as f64 * WRAP_STEP))
            .collect();
        self.dial_tab = (0..DIAL_ROWS)
            .map(|i| self.dialing(est, i as f64 * DIAL_STEP))
            .collect();
        self.amd_tab = (0..AMD_ROWS)
            .map(|i| self.answered(est, i as f64 * AMD_STEP))
            .collect();
        self.prepared = true;
        self.quantum = None;
    }

    /// Clears the sums for a new quantum.
    pub(crate) fn reset(&mut self, quantum: i64, at: f64) {
        self.quantum = Some(quantum);
        self.at = at;
        self.f_mean = [0.0; J];
        self.f_var = [0.0; J];
        self.l_mean = [0.0; J];
        self.l_var = [0.0; J];
        self.k3 = [0.0; J];
    }

    /// Tabulated contribution of an agent talking for `elapsed` seconds.
    #[inline]
    pub(crate) fn talk_row(&self, elapsed: f64) -> &Contrib {
        row(&self.talk_tab, TALK_STEP, elapsed)
    }

    /// Tabulated contribution of an agent wrapping up for `elapsed` seconds.
    #[inline]
    pub(crate) fn wrap_row(&self, elapsed: f64) -> &Contrib {
        row(&self.wrap_tab, WRAP_STEP, elapsed)
    }

    /// Tabulated contribution of a call dialing for `elapsed` seconds.
    #[inline]
    pub(crate) fn dial_row(&self, elapsed: f64) -> &Contrib {
        row(&self.dial_tab, DIAL_STEP, elapsed)
    }

    /// Tabulated contribution of a call in AMD for `elapsed` seconds.
    #[inline]
    pub(crate) fn amd_row(&self, elapsed: f64) -> &Contrib {
        row(&self.amd_tab, AMD_STEP, elapsed)
    }

    /// Adds the calls placed after now, at `rate` per second, that are live by each point.
    pub(crate) fn add_overtakers(&mut self, rate: f64) {
        for j in 0..J {
            let m = rate.max(0.0) * self.overtake[j];
            self.l_mean[j] += m;
            self.l_var[j] += m;
            self.k3[j] -= m;
        }
    }

    pub(crate) fn add_agent(&mut self, c: &Contrib, sign: f64) {
        for j in 0..J {
            let (p, v) = (c[j], c[j] * (1.0 - c[j]));
            self.f_mean[j] += sign * p;
            self.f_var[j] += sign * v;
            self.k3[j] += sign * v * (1.0 - 2.0 * p);
        }
    }

    pub(crate) fn add_call(&mut self, c: &Contrib, sign: f64) {
        for j in 0..J {
            let (p, v) = (c[j], c[j] * (1.0 - c[j]));
            self.l_mean[j] += sign * p;
            self.l_var[j] += sign * v;
            self.k3[j] -= sign * v * (1.0 - 2.0 * p);
        }
    }

    /// An agent talking for `elapsed` seconds: P(done talking and wrapping up by each point).
    pub(crate) fn talking(&self, est: &Estimators, elapsed: f64) -> Contrib {
        let talk = &est.talk;
        let done = talk.cdf(elapsed);
        let left = 1.0 - done;
        let mut c = [0.0; J];
        for j in 0..J {
            let y = elapsed + self.t[j] + self.grace - self.wrap_mean;
            let p = if y <= elapsed {
                0.0
            } else if left < 1e-9 {
                1.0 - (-(y - elapsed) / self.talk_mean).exp()
            } else {
                ((talk.cdf(y) - done) / left).clamp(0.0, 1.0)
            };
            c[j] = p * self.stay;
        }
        c
    }

    /// An agent wrapping up for `elapsed` seconds.
    pub(crate) fn wrapping(&self, est: &Estimators, elapsed: f64) -> Contrib {
        let wrap = &est.wrap;
        let done = wrap.cdf(elapsed);
        let left = 1.0 - done;
        let mut c = [0.0; J];
        for j in 0..J {
            let x = self.t[j] + self.grace;
            let p = if left < 1e-9 {
                1.0 - (-x / self.wrap_mean.max(1.0)).exp()
            } else {
                ((wrap.cdf(elapsed + x) - done) / left).clamp(0.0, 1.0)
            };
            c[j] = p * self.stay;
        }
        c
    }

    /// A call placed `elapsed` seconds ago and not answered yet: P(live-ready by each point).
    pub(crate) fn dialing(&self, est: &Estimators, elapsed: f64) -> Contrib {
        let o = &est.outcome;
        let unresolved: f64 = (0..5)
            .map(|k| o.share(k) * (1.0 - est.ring[k].cdf(elapsed)))
            .sum();
        let mut c = [0.0; J];
        if unresolved < 1e-12 {
            return c;
        }
        let ring = &est.ring[LIVE];
        let base = ring.cdf(elapsed);
        let scale = o.share(LIVE) / unresolved;
        for j in 0..J {
            let y = elapsed + self.t[j] - self.amd_mean;
            c[j] = ((ring.cdf(y) - base).max(0.0) * scale).min(1.0);
        }
        c
    }

    /// A call answered `elapsed` seconds ago, AMD still listening.
    pub(crate) fn answered(&self, est: &Estimators, elapsed: f64) -> Contrib {
        let o = &est.outcome;
        let (l, m) = (o.share(LIVE), o.share(MACHINE));
        let q = l / (l + m);
        let h_done = est.amd_human.cdf(elapsed);
        let sh = 1.0 - h_done;
        let sm = 1.0 - est.amd_machine.cdf(elapsed);
        let mut c = [0.0; J];
        let denom = q * sh + (1.0 - q) * sm;
        if denom < 1e-12 {
            // Overdue for both verdicts: it will be one of them very soon.
            return [q; J];
        }
        let human = q * sh / denom;
        for j in 0..J {
            let p = if sh < 1e-9 {
                1.0
            } else {
                (est.amd_human.cdf(elapsed + self.t[j]) - h_done) / sh
            };
            c[j] = (human * p).clamp(0.0, 1.0);
        }
        c
    }

    /// The probability that one more call, placed now beside `others` new calls, is abandoned
    /// if it reaches a person.
    pub(crate) fn abandon_probability(&self, others: f64) -> f64 {
        let mut sum = 0.0;
        for j in 0..J {
            let g = self.g[j];
            let mean = self.f_mean[j] - self.l_mean[j] - others * g;
            let v = g * (1.0 - g);
            let var = (self.f_var[j] + self.l_var[j] + others * v).max(0.0) + 0.05;
            let sd = var.sqrt();
            let z = (0.5 - mean) / sd;
            // First Edgeworth term: P(Z < x) ~ Phi(z) - phi(z) skew / 6 (z^2 - 1).
            let skew = (self.k3[j] - others * v * (1.0 - 2.0 * g)) / (var * sd);
            let pdf = (-0.5 * z * z).exp() * 0.398_942_280_401_432_7;
            let p = normal_cdf(z) - pdf * skew / 6.0 * (z * z - 1.0);
            sum += p.clamp(0.0, 1.0);
        }
        sum / J as f64
    }

    /// Expected live callers left without an agent among the calls already in flight, at the
    /// furthest point: the abandons already "on the way".
    pub(crate) fn exposure(&self) -> f64 {
        let j = J - 1;
        let mean = self.l_mean[j] - self.f_mean[j];
        let sd = (self.f_var[j] + self.l_var[j] + 0.05).sqrt();
        let z = mean / sd;
        let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (sd * pdf + mean * normal_cdf(z)).max(0.0)
    }

    /// Expected free agents minus live callers at the median point.
    pub(crate) fn balance(&self) -> (f64, f64) {
        (self.f_mean[J / 2], self.l_mean[J / 2])
    }
}
