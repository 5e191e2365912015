//! When a trunk registration is sent (sans-IO): a refresh before the granted time runs out, a
//! retry with exponential backoff after a failure. The time is passed in; the endpoint's task
//! sleeps until [`RefreshSchedule::next`] and reports what the registrar said.

use std::time::{Duration, Instant, SystemTime};

/// Where a trunk registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationState {
    /// The first REGISTER has not been answered yet.
    #[default]
    Registering,
    /// The registrar holds our binding.
    Registered,
    /// The last REGISTER failed (its code in [`RegistrationStatus::code`]); retried later.
    Failed,
    /// Given up (the campaign stopped): unregistered.
    Unregistered,
}

impl RegistrationState {
    /// The state's name, as shown in figures and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Registering => "registering",
            RegistrationState::Registered => "registered",
            RegistrationState::Failed => "failed",
            RegistrationState::Unregistered => "unregistered",
        }
    }
}

/// A trunk registration's state, as the engine shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrationStatus {
    /// Where it stands.
    pub state: RegistrationState,
    /// The status code of the last failure (408: no answer); `None` while it succeeds, or if
    /// the failure was not a SIP answer (a DNS error).
    pub code: Option<u16>,
    /// Why the last attempt failed.
    pub reason: Option<String>,
    /// Seconds the registrar granted at the last success.
    pub expires: Option<u32>,
    /// When the last successful REGISTER was answered.
    pub last_refresh: Option<SystemTime>,
    /// Successful REGISTERs (the first and its refreshes).
    pub refreshes: u64,
    /// Failures in a row.
    pub failures: u32,
}

impl RegistrationStatus {
    /// A success at `at` for `granted` seconds.
    pub fn registered(&mut self, at: SystemTime, granted: u32) {
        self.state = RegistrationState::Registered;
        self.code = None;
        self.reason = None;
        self.expires = Some(granted);
        self.last_refresh = Some(at);
        self.refreshes += 1;
        self.failures = 0;
    }

    /// A failure with `code` (none if there was no SIP answer).
    pub fn failed(&mut self, code: Option<u16>, reason: &str) {
        self.state = RegistrationState::Failed;
        self.code = code;
        self.reason = Some(reason.to_owned());
        self.failures = self.failures.saturating_add(1);
    }
}

/// How long after a success to refresh a binding granted for `granted`: about 90% of it, at
/// least 5 s before it runs out, never sooner than half of it (RFC 3261 10.2.4 leaves the
/// margin to the client).
pub fn refresh_after(granted: Duration) -> Duration {
    let margin = (granted / 10).max(Duration::from_secs(5));
    (granted / 2).max(granted.saturating_sub(margin))
}

/// What to ask for at once after a REGISTER asking for `asked` seconds was answered 423
/// Interval Too Brief with `min_expires` (RFC 3261 10.2.8): the registrar's minimum when it is
/// longer than what was asked; `None` (a plain failure, retried with backoff) when the answer
/// named no minimum or one that would not help.
pub fn interval_too_brief(asked: u32, min_expires: Option<u32>) -> Option<u32> {
    min_expires.filter(|&min| min > asked)
}

/// When to send the next REGISTER.
#[derive(Debug, Clone)]
pub struct RefreshSchedule {
    base: Duration,
    max: Duration,
    failures: u32,
    next: Instant,
    registered: bool,
}

impl RefreshSchedule {
    /// A schedule whose first REGISTER is due at `now`; failures wait `base`, doubling up to
    /// `max`.
    pub fn new(now: Instant, base: Duration, max: Duration) -> Self {
        RefreshSchedule {
            base,
            max: max.max(base),
            failures: 0,
            next: now,
            registered: false,
        }
    }

    /// When the next REGISTER is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Whether the last REGISTER succeeded.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The registrar granted `granted` at `now`; returns the wait until the refresh.
    pub fn registered(&mut self, now: Instant, granted: Duration) -> Duration {
        self.failures = 0;
        self.registered = !granted.is_zero();
        let wait = if granted.is_zero() {
            self.base
        } else {
            refresh_after(granted)
        };
        self.next = now + wait;
        wait
    }

    /// The REGISTER failed at `now`; returns the wait until the retry.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.registered = false;
        let doubled = self
            .base
            .checked_mul(1u32.checked_shl(self.failures.min(20)).unwrap_or(u32::MAX))
            .unwrap_or(self.max);
        let wait = doubled.min(self.max);
        self.failures = self.failures.saturating_add(1);
        self.next = now + wait;
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn refreshes_before_the_binding_runs_out() {
        assert_eq!(refresh_after(S(600)), S(540));
        assert_eq!(refresh_after(S(3600)), S(3240));
        // Short grants: 5 s early, but not before half.
        assert_eq!(refresh_after(S(20)), S(15));
        assert_eq!(refresh_after(S(6)), S(3));
    }

    #[test]
    fn failures_back_off_then_a_success_resets() {
        let t0 = Instant::now();
        let mut schedule = RefreshSchedule::new(t0, S(5), S(60));
        assert_eq!(schedule.next(), t0);
        let waits: Vec<Duration> = (0..6).map(|_| schedule.failed(t0)).collect();
        assert_eq!(waits, vec![S(5), S(10), S(20), S(40), S(60), S(60)]);
        assert!(!schedule.is_registered());
        assert_eq!(schedule.registered(t0, S(600)), S(540));
        assert!(schedule.is_registered());
        assert_eq!(schedule.next(), t0 + S(540));
        assert_eq!(schedule.failed(t0), S(5));
    }

    #[test]
    fn a_too_brief_interval_is_asked_again_at_the_registrars_minimum() {
        assert_eq!(interval_too_brief(60, Some(3600)), Some(3600));
        // No Min-Expires, or one no longer than what was refused: nothing better to ask for.
        assert_eq!(interval_too_brief(60, None), None);
        assert_eq!(interval_too_brief(3600, Some(3600)), None);
        assert_eq!(interval_too_brief(3600, Some(60)), None);
    }

    #[test]
    fn status_keeps_the_last_failure_until_a_success() {
        let mut status = RegistrationStatus::default();
        assert_eq!(status.state, RegistrationState::Registering);
        status.failed(Some(403), "Forbidden");
        status.failed(Some(403), "Forbidden");
        assert_eq!(
            (status.state, status.code, status.failures),
            (RegistrationState::Failed, Some(403), 2)
        );
        status.registered(SystemTime::UNIX_EPOCH, 300);
        assert_eq!(status.state, RegistrationState::Registered);
        assert_eq!(
            (status.code, status.failures, status.refreshes),
            (None, 0, 1)
        );
    }
}
