//! The abandon rate over the regulator's rolling window (24 hours or 30 days).

use std::collections::VecDeque;
use std::time::Duration;

/// Stored history of one past stretch of time, to seed the window at start
/// ([`crate::Pacer::seed_window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryBucket {
    /// How long before "now" this stretch ended (per-hour buckets: 0 h, 1 h, 2 h, ...).
    pub ago: Duration,
    /// Live-answered calls in it (connected or abandoned).
    pub live: u64,
    /// Abandoned calls in it.
    pub abandoned: u64,
}

/// Live answers and abandons in fixed-width buckets over the window.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    width: f64,
    buckets: usize,
    /// (bucket index, live, abandoned), oldest first.
    ring: VecDeque<(i64, u64, u64)>,
    live: u64,
    abandoned: u64,
}

/// Buckets per window: 1 minute for 24 hours, 30 minutes for 30 days.
const BUCKETS: usize = 1440;

impl Window {
    pub(crate) fn new(window: Duration) -> Self {
        Window {
            width: window.as_secs_f64() / BUCKETS as f64,
            buckets: BUCKETS,
            ring: VecDeque::new(),
            live: 0,
            abandoned: 0,
        }
    }

    /// The same counts in a window of another length.
    pub(crate) fn resized(&self, window: Duration) -> Self {
        let mut w = Window::new(window);
        for &(i, live, abandoned) in &self.ring {
            w.add((i as f64 + 0.5) * self.width, live, abandoned);
        }
        w
    }

    fn index(&self, t: f64) -> i64 {
        (t / self.width).floor() as i64
    }

    /// Drops what has left the window at `now`.
    pub(crate) fn expire(&mut self, now: f64) {
        let oldest = self.index(now) - self.buckets as i64 + 1;
        while let Some(&(i, l, a)) = self.ring.front() {
            if i >= oldest {
                break;
            }
            self.live -= l;
            self.abandoned -= a;
            self.ring.pop_front();
        }
    }

    fn add(&mut self, t: f64, live: u64, abandoned: u64) {
        let i = self.index(t);
        self.live += live;
        self.abandoned += abandoned;
        // Events come in time order, seeds are sorted: insert from the back.
        let pos = self.ring.iter().rposition(|&(j, _, _)| j <= i);
        match pos {
            Some(p) if self.ring[p].0 == i => {
                self.ring[p].1 += live;
                self.ring[p].2 += abandoned;
            }
            Some(p) => self.ring.insert(p + 1, (i, live, abandoned)),
            None => self.ring.push_front((i, live, abandoned)),
        }
    }

    pub(crate) fn live(&mut self, now: f64) {
        self.add(now, 1, 0);
        self.expire(now);
    }

    pub(crate) fn abandon(&mut self, now: f64) {
        self.add(now, 0, 1);
        self.expire(now);
    }

    /// Adds stored history seen from `now`; replaces nothing already counted.
    pub(crate) fn seed(&mut self, now: f64, history: &[HistoryBucket]) {
        let mut sorted: Vec<_> = history.to_vec();
        sorted.sort_by_key(|b| std::cmp::Reverse(b.ago));
        for b in sorted {
            // A bucket that ended `ago` before now is counted just inside its end.
            let t = now - b.ago.as_secs_f64() - self.width * 0.5;
            self.add(t, b.live, b.abandoned);
        }
        self.expire(now);
    }

    /// (live, abandoned) in the window.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.live, self.abandoned)
    }

    /// The rate over the window (0 when nothing was answered).
    pub(crate) fn rate(&self) -> f64 {
        if self.live == 0 {
            0.0
        } else {
            self.abandoned as f64 / self.live as f64
        }
    }

    /// Abandons the window can still take before its rate crosses `target`.
    pub(crate) fn headroom(&self, target: f64) -> f64 {
        target * self.live as f64 - self.abandoned as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_seeds_and_expires() {
        let mut w = Window::new(Duration::from_secs(24 * 3600));
        let hour = Duration::from_secs(3600);
        w.seed(
            0.0,
            &[
                HistoryBucket {
                    ago: hour * 2,
                    live: 100,
                    abandoned: 3,
                },
                HistoryBucket {
                    ago: hour * 23,
                    live: 50,
                    abandoned: 5,
                },
                HistoryBucket {
                    ago: hour * 30,
                    live: 999,
                    abandoned: 999,
                },
            ],
        );
        assert_eq!(w.totals(), (150, 8));
        w.live(10.0);
        w.abandon(11.0);
        assert_eq!(w.totals(), (151, 9));
        // Two hours later the bucket from 23 hours ago has left the window.
        w.expire(2.0 * 3600.0);
        assert_eq!(w.totals(), (101, 4));
        assert!((w.headroom(0.03) - (3.03 - 4.0)).abs() < 1e-9);
    }
}
