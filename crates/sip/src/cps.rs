//! The calls-per-second cap of a trunk, on governor's GCRA with a burst of 1: INVITEs are
//! spaced evenly, never sent in bursts.
//!
//! A plain "check, sleep until the earliest allowed instant, check again" loop loses whatever the
//! timer oversleeps on every call: at 500 calls/s (2 ms apart) tokio's millisecond timer made it
//! 318 calls/s and governor's own `until_ready` 465 (measured on the development machine). So
//! the limiter runs on a clock of our own ([`SlotClock`]): a call that had to wait is charged at
//! the instant its slot was due, not at the instant the timer woke us. The rate then holds
//! exactly, and two INVITEs are never closer than one period minus the timer's lateness.

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A clock the limiter sets itself (nanoseconds since the limiter's origin).
#[derive(Debug, Clone, Default)]
pub struct SlotClock(Arc<AtomicU64>);

impl SlotClock {
    fn set(&self, since_origin: Duration) {
        self.0.store(
            since_origin.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }
}

impl Clock for SlotClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.load(Ordering::Relaxed))
    }
}

/// The sans-IO limiter: asks governor, with the current time passed in.
pub struct CpsCore {
    limiter: RateLimiter<NotKeyed, InMemoryState, SlotClock, NoOpMiddleware<Nanos>>,
    clock: SlotClock,
    origin: Instant,
    cps: NonZeroU32,
}

impl std::fmt::Debug for CpsCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpsCore").field("cps", &self.cps).finish()
    }
}

impl CpsCore {
    /// A limiter for `cps` calls per second, with time counted from `origin`.
    pub fn new(cps: NonZeroU32, origin: Instant) -> Self {
        let quota = Quota::per_second(cps).allow_burst(NonZeroU32::MIN);
        let clock = SlotClock::default();
        CpsCore {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            origin,
            cps,
        }
    }

    /// The cap.
    pub fn cps(&self) -> NonZeroU32 {
        self.cps
    }

    /// Takes a slot at `now`, or says when the next one is due.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        self.clock.set(now.saturating_duration_since(self.origin));
        match self.limiter.check() {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let due = not_until.earliest_possible();
                Err(self.origin + Duration::from_nanos(due.as_u64()))
            }
        }
    }

    /// Takes the slot that was due at `due` (we slept until it and woke at `now`), charging it
    /// at `due`. If we woke more than a period late, the slot is charged at `now` instead.
    pub fn take_due(&mut self, due: Instant, now: Instant) -> Result<(), Instant> {
        let period = Duration::from_secs(1) / self.cps.get();
        let charged = if now.saturating_duration_since(due) < period {
            due
        } else {
            now
        };
        self.try_take(charged)
    }
}

/// The async limiter shared by every call on one trunk. Waiters are served in order.
#[derive(Debug)]
pub struct CpsLimiter {
    core: tokio::sync::Mutex<CpsCore>,
    cps: NonZeroU32,
}

impl CpsLimiter {
    /// A limiter for `cps` calls per second.
    pub fn new(cps: NonZeroU32) -> Self {
        CpsLimiter {
            core: tokio::sync::Mutex::new(CpsCore::new(cps, Instant::now())),
            cps,
        }
    }

    /// The cap.
    pub fn cps(&self) -> NonZeroU32 {
        self.cps
    }

    /// Waits for the next slot. Cancel-safe: a dropped waiter takes no slot.
    pub async fn wait(&self) {
        // tokio's Mutex is fair, so callers get slots in the order they asked.
        let mut core = self.core.lock().await;
        let mut due = match core.try_take(Instant::now()) {
            Ok(()) => return,
            Err(due) => due,
        };
        loop {
            tokio::time::sleep_until(due.into()).await;
            match core.take_due(due, Instant::now()) {
                Ok(()) => return,
                Err(next) => due = next,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates `calls` back-to-back waiters with a timer that wakes `late` after each due time.
    fn simulate(cps: u32, calls: usize, late: Duration) -> Vec<Instant> {
        let start = Instant::now();
        let mut pacer = CpsCore::new(NonZeroU32::new(cps).unwrap(), start);
        let mut now = start;
        let mut sent = Vec::new();
        for _ in 0..calls {
            match pacer.try_take(now) {
                Ok(()) => sent.push(now),
                Err(mut due) => loop {
                    now = now.max(due + late);
                    match pacer.take_due(due, now) {
                        Ok(()) => {
                            sent.push(now);
                            break;
                        }
                        Err(next) => due = next,
                    }
                },
            }
        }
        sent
    }

    #[test]
    fn rate_holds_despite_a_late_timer() {
        // 500 cps with a timer that always oversleeps by 0.9 ms (almost half a period).
        let sent = simulate(500, 5001, Duration::from_micros(900));
        let span = *sent.last().unwrap() - sent[0];
        let rate = 5000.0 / span.as_secs_f64();
        assert!((rate - 500.0).abs() / 500.0 < 0.001, "rate {rate}");
        // Never two INVITEs at once: the closest pair is a period apart (the lateness cancels).
        let closest = sent.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        assert!(
            closest >= Duration::from_micros(1999),
            "closest {closest:?}"
        );
    }

    #[test]
    fn a_burst_of_callers_is_spread_evenly() {
        let sent = simulate(10, 11, Duration::ZERO);
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|gap| *gap == Duration::from_millis(100)),
            "{gaps:?}"
        );
    }

    #[test]
    fn very_late_wakeups_do_not_cause_bursts() {
        // A stall of 5 periods: the next call goes at once, the one after a full period later.
        let start = Instant::now();
        let mut pacer = CpsCore::new(NonZeroU32::new(100).unwrap(), start);
        pacer.try_take(start).unwrap();
        let due = pacer.try_take(start).unwrap_err();
        let woke = due + Duration::from_millis(50);
        pacer.take_due(due, woke).unwrap();
        assert_eq!(pacer.try_take(woke), Err(woke + Duration::from_millis(10)));
    }

    #[tokio::test]
    async fn async_pacer_spaces_real_waiters() {
        let pacer = Arc::new(CpsLimiter::new(NonZeroU32::new(200).unwrap()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..21 {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                pacer.wait().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        // 21 calls at 200/s take 100 ms at least (no burst), whatever the machine's load.
        let last = times.iter().max().unwrap();
        assert!(*last - start >= Duration::from_millis(99));
    }
}
