//! The retry rules: what a contact becomes when an attempt ends or an agent disposes of a call.
//!
//! Pure functions of the contact as it stands, the outcome and the campaign's definition; the
//! store runs them inside the transaction that reads (and locks) the contact and writes the
//! result, so they decide on what is current.

use crate::spec::CampaignSpec;
use crate::types::{ContactStatus, DispositionKind, Outcome};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Where the contact stands after an attempt or a disposition (what the API answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactAfter {
    /// Contact id.
    pub contact_id: i64,
    /// New status.
    pub status: ContactStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it is due again (pending and callback contacts).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A contact as it stands when one of its attempts ends, before the attempt is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactBefore {
    /// Contact id.
    pub id: i64,
    /// Its status (a `callback` contact is dialled because a callback was promised).
    pub status: ContactStatus,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When it is due as stored (while leased: the lease's end).
    pub next_attempt_at: DateTime<Utc>,
}

/// How an attempt ended, as the retry rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptEnd {
    /// The outcome.
    pub outcome: Outcome,
    /// When the call ended (retry delays count from here).
    pub ended_at: DateTime<Utc>,
    /// Whether an agent already set a disposition on this call: it has decided the contact's
    /// fate, and the outcome only counts the attempt.
    pub disposed: bool,
}

/// What a contact becomes after an attempt, from [`after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAttempt {
    /// Its status now.
    pub status: ContactStatus,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// Attempts the rules still allow (0 once the contact is no longer dialled).
    pub attempts_left: u32,
    /// When it is due; unchanged from [`ContactBefore::next_attempt_at`] unless a retry was
    /// scheduled.
    pub next_attempt_at: DateTime<Utc>,
    /// Whether the number goes on the global do-not-call list (the callee opted out).
    pub add_dnc: bool,
    /// Whether this attempt was the promised callback, which now counts as made.
    pub callback_made: bool,
}

impl AfterAttempt {
    /// The contact as the API shows it.
    pub fn contact_after(&self, contact_id: i64) -> ContactAfter {
        ContactAfter {
            contact_id,
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: matches!(
                self.status,
                ContactStatus::Pending | ContactStatus::Callback
            )
            .then_some(self.next_attempt_at),
        }
    }
}

/// What `contact` becomes after the attempt that ended as `end`, under `spec`'s retry rules.
///
/// A connected call or a message left on a machine ends the contact, a number that does not
/// exist is never redialled, an opt-out puts it on the do-not-call list. Other outcomes are
/// retried after their rule's delay while attempts are left (the lower of the rule's and the
/// campaign's `max_attempts`), keeping a callback a callback; then the contact is exhausted. A
/// contact an agent disposed of, or one on the do-not-call list, keeps its status: only the
/// attempt is counted.
pub fn after(end: &AttemptEnd, contact: &ContactBefore, spec: &CampaignSpec) -> AfterAttempt {
    let attempts = contact.attempts.saturating_add(1);
    let global = spec.retry.max_attempts;
    let left = |max: u32| max.saturating_sub(attempts);
    let mut next = AfterAttempt {
        status: contact.status,
        attempts,
        attempts_left: left(global),
        next_attempt_at: contact.next_attempt_at,
        add_dnc: false,
        callback_made: contact.status == ContactStatus::Callback,
    };
    if end.disposed || contact.status == ContactStatus::Dnc {
        if !matches!(
            contact.status,
            ContactStatus::Pending | ContactStatus::Callback
        ) {
            next.attempts_left = 0;
        }
        return next;
    }
    match end.outcome {
        Outcome::Connected | Outcome::MachineMessageLeft => next.status = ContactStatus::Done,
        Outcome::InvalidNumber => next.status = ContactStatus::Invalid,
        Outcome::DoNotCall => {
            next.status = ContactStatus::Dnc;
            next.add_dnc = true;
        }
        retryable => {
            let rule = spec.retry_rule(retryable);
            let max = rule
                .and_then(|r| r.max_attempts)
                .map_or(global, |m| m.min(global));
            match rule {
                Some(rule) if attempts < max => {
                    next.status = if contact.status == ContactStatus::Callback {
                        ContactStatus::Callback
                    } else {
                        ContactStatus::Pending
                    };
                    next.attempts_left = left(max);
                    let delay = TimeDelta::milliseconds(rule.delay.as_millis_i64());
                    next.next_attempt_at = end
                        .ended_at
                        .checked_add_signed(delay)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    return next;
                }
                _ => next.status = ContactStatus::Exhausted,
            }
        }
    }
    next.attempts_left = 0;
    next
}

/// The status an agent's disposition gives the contact.
pub fn after_disposition(kind: DispositionKind) -> ContactStatus {
    match kind {
        DispositionKind::Sale | DispositionKind::NotInterested | DispositionKind::Other => {
            ContactStatus::Done
        }
        DispositionKind::WrongNumber => ContactStatus::Invalid,
        DispositionKind::DoNotCall => ContactStatus::Dnc,
        DispositionKind::Callback => ContactStatus::Callback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Dur, RetryRule};
    use chrono::TimeZone;

    const SPEC: &str = r#"
name = "t"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "prompts/abandon.wav"
[retry]
max_attempts = 4
busy = { delay = "15m", max_attempts = 2 }
no_answer = { delay = "2h" }
[trunk]
uri = "sip:127.0.0.1:5060"
"#;

    fn spec() -> CampaignSpec {
        CampaignSpec::from_toml(SPEC).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
    }

    fn leased_until() -> DateTime<Utc> {
        t0() + TimeDelta::minutes(2)
    }

    fn contact(status: ContactStatus, attempts: u32) -> ContactBefore {
        ContactBefore {
            id: 7,
            status,
            attempts,
            next_attempt_at: leased_until(),
        }
    }

    fn end(outcome: Outcome) -> AttemptEnd {
        AttemptEnd {
            outcome,
            ended_at: t0(),
            disposed: false,
        }
    }

    #[test]
    fn final_outcomes_end_the_contact() {
        for (outcome, status) in [
            (Outcome::Connected, ContactStatus::Done),
            (Outcome::MachineMessageLeft, ContactStatus::Done),
            (Outcome::InvalidNumber, ContactStatus::Invalid),
            (Outcome::DoNotCall, ContactStatus::Dnc),
        ] {
            let next = after(&end(outcome), &contact(ContactStatus::Pending, 0), &spec());
            assert_eq!(next.status, status, "{outcome}");
            assert_eq!(next.attempts, 1);
            assert_eq!(next.attempts_left, 0);
            assert_eq!(
                next.next_attempt_at,
                leased_until(),
                "{outcome}: not rescheduled"
            );
            assert_eq!(next.add_dnc, outcome == Outcome::DoNotCall);
            assert!(!next.callback_made);
            assert_eq!(next.contact_after(7).next_attempt_at, None);
        }
    }

    #[test]
    fn retryable_outcomes_wait_their_rules_delay() {
        let s = spec();
        for outcome in [
            Outcome::Busy,
            Outcome::NoAnswer,
            Outcome::MachineHungUp,
            Outcome::Failed,
            Outcome::Rejected,
            Outcome::Abandoned,
        ] {
            let rule = s.retry_rule(outcome).unwrap();
            let next = after(&end(outcome), &contact(ContactStatus::Pending, 0), &s);
            assert_eq!(next.status, ContactStatus::Pending, "{outcome}");
            assert_eq!(next.attempts, 1);
            assert_eq!(
                next.next_attempt_at,
                t0() + TimeDelta::milliseconds(rule.delay.as_millis_i64()),
                "{outcome}"
            );
            assert!(!next.add_dnc);
            let shown = next.contact_after(7);
            assert_eq!(shown.next_attempt_at, Some(next.next_attempt_at));
            assert_eq!(shown.contact_id, 7);
        }
        let busy = after(&end(Outcome::Busy), &contact(ContactStatus::Pending, 0), &s);
        assert_eq!(busy.next_attempt_at, t0() + TimeDelta::minutes(15));
        assert_eq!(busy.attempts_left, 1, "busy's own limit is 2");
        let no_answer = after(
            &end(Outcome::NoAnswer),
            &contact(ContactStatus::Pending, 0),
            &s,
        );
        assert_eq!(no_answer.next_attempt_at, t0() + TimeDelta::hours(2));
        assert_eq!(no_answer.attempts_left, 3, "the campaign's limit is 4");
    }

    #[test]
    fn exhausted_attempts_end_the_contact() {
        let s = spec();
        // The campaign's limit: the fourth attempt is the last.
        let next = after(
            &end(Outcome::NoAnswer),
            &contact(ContactStatus::Pending, 3),
            &s,
        );
        assert_eq!(next.status, ContactStatus::Exhausted);
        assert_eq!((next.attempts, next.attempts_left), (4, 0));
        assert_eq!(next.next_attempt_at, leased_until());
        assert_eq!(next.contact_after(7).next_attempt_at, None);
        // The rule's own, lower limit.
        let next = after(&end(Outcome::Busy), &contact(ContactStatus::Pending, 1), &s);
        assert_eq!(next.status, ContactStatus::Exhausted);
        // A rule's limit above the campaign's does not raise it.
        let mut high = s.clone();
        high.retry.busy = RetryRule {
            delay: Dur::secs(900),
            max_attempts: Some(10),
        };
        let next = after(
            &end(Outcome::Busy),
            &contact(ContactStatus::Pending, 3),
            &high,
        );
        assert_eq!(next.status, ContactStatus::Exhausted);
        let next = after(
            &end(Outcome::Busy),
            &contact(ContactStatus::Pending, 2),
            &high,
        );
        assert_eq!(
            (next.status, next.attempts_left),
            (ContactStatus::Pending, 1)
        );
    }

    #[test]
    fn a_callback_stays_a_callback_and_counts_as_made() {
        let s = spec();
        let next = after(
            &end(Outcome::NoAnswer),
            &contact(ContactStatus::Callback, 1),
            &s,
        );
        assert_eq!(next.status, ContactStatus::Callback);
        assert!(next.callback_made);
        assert_eq!(next.next_attempt_at, t0() + TimeDelta::hours(2));
        let next = after(
            &end(Outcome::Connected),
            &contact(ContactStatus::Callback, 1),
            &s,
        );
        assert_eq!(next.status, ContactStatus::Done);
        assert!(next.callback_made);
        let next = after(
            &end(Outcome::NoAnswer),
            &contact(ContactStatus::Callback, 3),
            &s,
        );
        assert_eq!(next.status, ContactStatus::Exhausted);
        assert!(next.callback_made);
    }

    #[test]
    fn do_not_call_contacts_keep_their_status() {
        for outcome in Outcome::ALL {
            let next = after(&end(*outcome), &contact(ContactStatus::Dnc, 1), &spec());
            assert_eq!(next.status, ContactStatus::Dnc, "{outcome}");
            assert_eq!((next.attempts, next.attempts_left), (2, 0));
            assert_eq!(next.next_attempt_at, leased_until());
            assert!(!next.add_dnc, "{outcome}: listed already");
        }
    }

    #[test]
    fn a_disposition_decides_over_the_outcome() {
        let due = t0() + TimeDelta::days(1);
        for status in [
            ContactStatus::Done,
            ContactStatus::Invalid,
            ContactStatus::Dnc,
            ContactStatus::Callback,
        ] {
            let before = ContactBefore {
                next_attempt_at: due,
                ..contact(status, 0)
            };
            let disposed = AttemptEnd {
                disposed: true,
                ..end(Outcome::Connected)
            };
            let next = after(&disposed, &before, &spec());
            assert_eq!(next.status, status);
            assert_eq!(next.attempts, 1);
            assert_eq!(next.next_attempt_at, due);
            assert!(!next.add_dnc);
            let shown = next.contact_after(7);
            assert_eq!(
                shown.next_attempt_at,
                (status == ContactStatus::Callback).then_some(due)
            );
        }
    }

    #[test]
    fn dispositions_set_the_status() {
        for (kind, status) in [
            (DispositionKind::Sale, ContactStatus::Done),
            (DispositionKind::NotInterested, ContactStatus::Done),
            (DispositionKind::Other, ContactStatus::Done),
            (DispositionKind::WrongNumber, ContactStatus::Invalid),
            (DispositionKind::DoNotCall, ContactStatus::Dnc),
            (DispositionKind::Callback, ContactStatus::Callback),
        ] {
            assert_eq!(after_disposition(kind), status);
        }
    }
}
