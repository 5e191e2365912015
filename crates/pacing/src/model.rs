//! The predictive model: who will be free and who will be waiting, a few seconds ahead.
//!
//! A new call placed now reaches a person (if it does) at a random "live-ready" time `t`: ring
//! time plus the AMD decision. We take `J` points `t_j`, the midpoints of `J` equal-probability
//! slices of that time's distribution. At each point we estimate the balance `D_j`, agents free
//! by `t_j + grace` minus callers needing one by `t_j`:
//!
//! * agents: ready ones, plus each talking or wrapping agent's probability of being done by then
//!   *given how long it has already talked or wrapped up* (from the learned distributions, not
//!   their means; a talking agent's remaining talk is convolved with the wrap-up distribution);
//! * callers: waiting ones, plus each call in flight's probability of turning into a live answer
//!   by then *given how long it has rung* (or been in AMD);
//! * calls the next decisions will place and that answer first ("overtakers"), by their mean
//!   only: the pacer places them when agents free up, so their number moves with the agents'
//!   and its variance cancels against theirs (measured in the simulator: the realised variance
//!   of the balance is that of agents and callers alone);
//! * the other new calls of the same decision, each ahead with probability `g_j`.
//!
//! Agents and callers are independent Bernoulli variables: means and variances add, and the
//! balance is treated as normal. Two numbers come out of it for one more call:
//!
//! * its **cost**, `P(D_j < 1/2)` averaged over the points: the chance that the callers up to
//!   its answer outnumber the agents free by then. Decisions compare this to the threshold.
//! * its own **risk** of being abandoned. A caller who finds no agent is abandoned after the
//!   grace and frees no agent, so callers abandoned before this one do not count against it:
//!   it is abandoned only if the balance, followed over time from its known value now (ready
//!   agents minus waiting callers, plus agents free within the grace), reaches a new low at
//!   its answer. With the path taken as a Brownian bridge from its start `s` to its end `b`,
//!   that is `P(b < 1/2) - exp(2 e (mu - s) / var) P(b < 1/2 - 2 e)` (for `s + e > 1/2`),
//!   `e = 0.5826` being the continuity correction of a unit-step walk's minimum (Siegmund).
//!
//! The cost is the larger: it also counts the abandons the call causes later, by taking an
//! agent that a caller behind it needed. Without the distinction the model over-predicted
//! each call's abandons three times at 200 agents; thresholding the own risk instead of the
//! cost gave less occupancy for the same abandons (measured, `docs/pacing.md`). The controller
//! learns how the two relate from the calls it places.

// Parallel per-point arrays read best indexed by the point.
#![allow(clippy::needless_range_loop)]

use crate::estimate::{Estimators, Hist, LIVE, MACHINE};
use crate::math::{ln_normal_cdf, normal_cdf};

/// Number of horizon points.
pub(crate) const J: usize = 8;
/// Wrap-up quantiles a talking agent's remaining talk is convolved with.
const K: usize = 8;
/// Continuity correction of the running minimum of a walk with unit steps (Siegmund's 0.5826).
const MIN_CORRECTION: f64 = 0.5826;

/// One entity's contribution: its probability at each point, and (agents only) its probability
/// of being free within the grace from now (index `J`).
pub(crate) type Contrib = [f64; J + 1];

/// A contribution that is certain at every point (a ready agent, a waiting caller).
pub(crate) const CERTAIN: Contrib = [1.0; J + 1];

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
    /// Agents expected free within the grace from now (ready ones included).
    pub(crate) soon: f64,
    /// Expected overtakers at each point, at the current dialing pace.
    overtakers: [f64; J],
    grace: f64,
    amd_mean: f64,
    talk_mean: f64,
    wrap_mean: f64,
    stay: f64,
    /// Integral of a new call's live-ready CDF up to each point: overtakers per unit of rate.
    overtake: [f64; J],
    /// Wrap-up quantiles (midpoints of `K` equal-probability slices).
    wrap_q: [f64; K],
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

/// P(X <= elapsed + x | X > elapsed) for a learned duration, or an exponential tail of mean
/// `mean` once the distribution says the duration is overdue.
fn finish_within(h: &Hist, elapsed: f64, x: f64, mean: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let done = h.cdf(elapsed);
    let left = 1.0 - done;
    if left < 1e-9 {
        1.0 - (-x / mean.max(1.0)).exp()
    } else {
        ((h.cdf(elapsed + x) - done) / left).clamp(0.0, 1.0)
    }
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
            soon: 0.0,
            overtakers: [0.0; J],
            grace: 2.0,
            amd_mean: 2.0,
            talk_mean: 120.0,
            wrap_mean: 10.0,
            stay: 1.0,
            overtake: [0.0; J],
            wrap_q: [10.0; K],
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
        self.talk_mean = est.talk.mean().max(1.0);
        self.wrap_mean = est.wrap.mean();
        self.amd_mean = est.amd_human.mean();
        self.stay = est.after_call.share(0);
        for (k, w) in self.wrap_q.iter_mut().enumerate() {
            *w = est.wrap.quantile((k as f64 + 0.5) / K as f64);
        }
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

    /// Clears the sums for a new quantum; `rate` is the current dialing pace (calls/s).
    pub(crate) fn reset(&mut self, quantum: i64, at: f64, rate: f64) {
        self.quantum = Some(quantum);
        self.at = at;
        self.f_mean = [0.0; J];
        self.f_var = [0.0; J];
        self.l_mean = [0.0; J];
        self.l_var = [0.0; J];
        self.soon = 0.0;
        for j in 0..J {
            self.overtakers[j] = rate.max(0.0) * self.overtake[j];
        }
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

    pub(crate) fn add_agent(&mut self, c: &Contrib, sign: f64) {
        for j in 0..J {
            self.f_mean[j] += sign * c[j];
            self.f_var[j] += sign * c[j] * (1.0 - c[j]);
        }
        self.soon += sign * c[J];
    }

    pub(crate) fn add_call(&mut self, c: &Contrib, sign: f64) {
        for j in 0..J {
            self.l_mean[j] += sign * c[j];
            self.l_var[j] += sign * c[j] * (1.0 - c[j]);
        }
    }

    /// An agent's contribution from its chance of being free within `x` seconds from now: at
    /// each point plus the grace, and within the grace alone.
    fn agent_row(&self, free_within: impl Fn(f64) -> f64) -> Contrib {
        let mut c = [0.0; J + 1];
        for j in 0..J {
            c[j] = free_within(self.t[j] + self.grace) * self.stay;
        }
        c[J] = free_within(self.grace) * self.stay;
        c
    }

    /// An agent talking for `elapsed` seconds: P(done talking and wrapping up by each point),
    /// the remaining talk convolved with the wrap-up quantiles.
    pub(crate) fn talking(&self, est: &Estimators, elapsed: f64) -> Contrib {
        self.agent_row(|x| {
            let p: f64 = self
                .wrap_q
                .iter()
                .map(|w| finish_within(&est.talk, elapsed, x - w, self.talk_mean))
                .sum();
            p / K as f64
        })
    }

    /// An agent wrapping up for `elapsed` seconds.
    pub(crate) fn wrapping(&self, est: &Estimators, elapsed: f64) -> Contrib {
        self.agent_row(|x| finish_within(&est.wrap, elapsed, x, self.wrap_mean))
    }

    /// A call placed `elapsed` seconds ago and not answered yet: P(live-ready by each point).
    pub(crate) fn dialing(&self, est: &Estimators, elapsed: f64) -> Contrib {
        let o = &est.outcome;
        let unresolved: f64 = (0..5)
            .map(|k| o.share(k) * (1.0 - est.ring[k].cdf(elapsed)))
            .sum();
        let mut c = [0.0; J + 1];
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
        let mut c = [0.0; J + 1];
        let denom = q * sh + (1.0 - q) * sm;
        if denom < 1e-12 {
            // Overdue for both verdicts: it will be one of them very soon.
            c[..J].fill(q);
            return c;
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

    /// Mean and variance of the balance at point `j` with `others` new calls beside this one.
    #[inline]
    fn point(&self, j: usize, others: f64) -> (f64, f64) {
        let g = self.g[j];
        let mean = self.f_mean[j] - self.l_mean[j] - self.overtakers[j] - others * g;
        let var = (self.f_var[j] + self.l_var[j] + others * g * (1.0 - g)).max(0.0) + 0.05;
        (mean, var)
    }

    /// What one more call, placed now beside `others` new calls, costs in abandons if it
    /// reaches a person: the chance that the callers up to its answer outnumber the agents free
    /// by then. This counts callers abandoned before it as still ahead of it, so it is more than
    /// its own abandon probability ([`Model::risk`]): the difference is the abandons it causes
    /// later by taking an agent another caller needed. Decisions compare this cost to the
    /// threshold; it gave more occupancy for the same abandons than the call's own probability.
    pub(crate) fn cost(&self, others: f64) -> f64 {
        let mut sum = 0.0;
        for j in 0..J {
            let (mean, var) = self.point(j, others);
            sum += normal_cdf((0.5 - mean) / var.sqrt());
        }
        sum / J as f64
    }

    /// The probability that one more call, placed now beside `others` new calls, is itself
    /// abandoned if it reaches a person. `known` is the balance now: ready agents minus waiting
    /// callers.
    pub(crate) fn risk(&self, others: f64, known: f64) -> f64 {
        let start = known + self.soon + MIN_CORRECTION;
        let upper = start.min(0.5);
        let mut sum = 0.0;
        for j in 0..J {
            let (mean, var) = self.point(j, others);
            let sd = var.sqrt();
            // Ends below one free agent, and at a new low of the path from `start`.
            let z = (upper - mean) / sd;
            let ln_e = 2.0 * MIN_CORRECTION * (mean - start + MIN_CORRECTION) / var;
            let reached = (ln_e + ln_normal_cdf(z - 2.0 * MIN_CORRECTION / sd)).exp();
            sum += (normal_cdf(z) - reached).clamp(0.0, 1.0);
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

    /// Expected free agents and live callers at the median point.
    pub(crate) fn balance(&self) -> (f64, f64) {
        (self.f_mean[J / 2], self.l_mean[J / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with hand-set sums at every point (no estimators needed).
    fn model(f_mean: f64, l_mean: f64, var: f64, soon: f64) -> Model {
        let mut m = Model::new();
        m.f_mean = [f_mean; J];
        m.l_mean = [l_mean; J];
        m.f_var = [var / 2.0; J];
        m.l_var = [var / 2.0; J];
        m.soon = soon;
        m.g = [0.1; J];
        m
    }

    #[test]
    fn more_calls_more_risk() {
        let m = model(12.0, 4.0, 9.0, 1.0);
        let mut last = 0.0;
        for k in 0..40 {
            let p = m.cost(k as f64);
            let r = m.risk(k as f64, 2.0);
            assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&r));
            assert!(r <= p + 1e-12, "own risk {r} above cost {p}");
            assert!(p >= last - 1e-12, "not monotone at {k}: {p} < {last}");
            last = p;
        }
        assert!(last > 0.1, "{last}");
    }

    #[test]
    fn abandoned_callers_ahead_do_not_count_twice() {
        // The same end balance is less risky when the path starts low (callers now waiting will
        // be abandoned or served before this call answers) than when it drains steadily from a
        // high start.
        let m = model(10.0, 10.0, 6.0, 0.0);
        let from_low = m.risk(0.0, -3.0);
        let from_high = m.risk(0.0, 8.0);
        assert!(from_low < from_high, "{from_low} vs {from_high}");
        // From far above, the path drains steadily and the end is its low: the plain tail.
        let steep = m.risk(0.0, 60.0);
        assert!(
            (steep - m.cost(0.0)).abs() < 1e-3,
            "{steep} vs {}",
            m.cost(0.0)
        );
    }

    #[test]
    fn tiny_variance_does_not_overflow() {
        let m = model(200.0, 0.0, 0.0, 0.0);
        let (p, r) = (m.cost(0.0), m.risk(0.0, 0.0));
        assert!(p < 1e-6 && r.is_finite() && r < 1e-6, "{p} {r}");
        let m = model(0.0, 30.0, 0.0, 0.0);
        let (p, r) = (m.cost(0.0), m.risk(0.0, 0.0));
        assert!(p > 0.999 && r.is_finite() && r > 0.99, "{p} {r}");
    }
}
