//! Agents' days: each agent's figures summed over the sessions of the current day, which ends at
//! midnight in the centre's time zone. Sans-IO: every call takes the wall-clock time.

use crate::view::AgentDay;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// The finished sessions' figures of each agent's latest day.
#[derive(Debug)]
pub(crate) struct AgentDays {
    zone: chrono_tz::Tz,
    days: HashMap<i64, AgentDay>,
}

impl AgentDays {
    /// No agent has a day yet; days end at midnight in `zone`.
    pub(crate) fn new(zone: chrono_tz::Tz) -> Self {
        AgentDays {
            zone,
            days: HashMap::new(),
        }
    }

    /// The day `at` falls on.
    pub(crate) fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// A session begins at `at`: one more that day (the first of a new day starts its figures
    /// again).
    pub(crate) fn login(&mut self, agent: i64, at: DateTime<Utc>) {
        let day = self.day_of(at);
        let entry = self.days.entry(agent).or_insert_with(|| empty(day, at));
        if entry.day != day {
            *entry = empty(day, at);
        }
        entry.sessions += 1;
    }

    /// A session ends at `at` with these figures, which join its day's. A session begun the day
    /// before counts whole in the day it ends, as that day's first session.
    pub(crate) fn logout(&mut self, agent: i64, at: DateTime<Utc>, session: &AgentDay) {
        let day = self.day_of(at);
        let entry = self.days.entry(agent).or_insert_with(|| empty(day, at));
        if entry.day != day {
            *entry = AgentDay {
                sessions: 1,
                ..empty(day, session.first_login)
            };
        }
        add(entry, session);
    }

    /// The agent's day at `at`: its finished sessions' figures plus `running` (the session in
    /// progress); `None` when it has had no session that day.
    pub(crate) fn today(
        &self,
        agent: i64,
        at: DateTime<Utc>,
        running: Option<&AgentDay>,
    ) -> Option<AgentDay> {
        let day = self.day_of(at);
        let mut today = self.days.get(&agent).filter(|d| d.day == day).cloned();
        if let Some(session) = running {
            let today = today.get_or_insert_with(|| AgentDay {
                sessions: 1,
                ..empty(day, session.first_login)
            });
            add(today, session);
        }
        today
    }
}

fn add(day: &mut AgentDay, session: &AgentDay) {
    day.calls += session.calls;
    day.talk_secs += session.talk_secs;
    day.wait_secs += session.wait_secs;
}

/// A day with no session yet, whose first login is `at`.
fn empty(day: NaiveDate, at: DateTime<Utc>) -> AgentDay {
    AgentDay {
        day,
        sessions: 0,
        first_login: at,
        calls: 0,
        talk_secs: 0.0,
        wait_secs: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn session(first_login: DateTime<Utc>, calls: u64, talk: f64, wait: f64) -> AgentDay {
        AgentDay {
            day: NaiveDate::default(),
            sessions: 1,
            first_login,
            calls,
            talk_secs: talk,
            wait_secs: wait,
        }
    }

    #[test]
    fn sessions_of_a_day_add_up_and_the_next_day_starts_again() {
        let mut days = AgentDays::new(chrono_tz::UTC);
        let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap();
        assert_eq!(days.today(1, at(8, 0), None), None);
        days.login(1, at(8, 0));
        days.logout(1, at(12, 0), &session(at(8, 0), 10, 600.0, 3000.0));
        days.login(1, at(13, 0));
        // The running session counts while it runs.
        let running = session(at(13, 0), 2, 100.0, 200.0);
        let today = days.today(1, at(14, 0), Some(&running)).unwrap();
        assert_eq!((today.sessions, today.calls), (2, 12));
        assert_eq!((today.talk_secs, today.wait_secs), (700.0, 3200.0));
        assert_eq!(today.first_login, at(8, 0));
        days.logout(1, at(17, 0), &session(at(13, 0), 3, 150.0, 250.0));
        let today = days.today(1, at(18, 0), None).unwrap();
        assert_eq!(
            (today.sessions, today.calls, today.talk_secs),
            (2, 13, 750.0)
        );
        // Another agent's day is its own.
        assert_eq!(days.today(2, at(18, 0), None), None);
        // The next day has nothing until a login, then starts from zero.
        let tomorrow = Utc.with_ymd_and_hms(2026, 12, 8, 9, 0, 0).unwrap();
        assert_eq!(days.today(1, tomorrow, None), None);
        days.login(1, tomorrow);
        let today = days.today(1, tomorrow, None).unwrap();
        assert_eq!(
            (today.sessions, today.calls, today.first_login),
            (1, 0, tomorrow)
        );
    }

    #[test]
    fn the_day_ends_at_midnight_in_the_centres_time_zone() {
        // 23:30 UTC on the 7th is 00:30 on the 8th in Paris (UTC+1 in winter).
        let mut days = AgentDays::new(chrono_tz::Europe::Paris);
        let evening = Utc.with_ymd_and_hms(2026, 12, 7, 22, 0, 0).unwrap();
        let late = Utc.with_ymd_and_hms(2026, 12, 7, 23, 30, 0).unwrap();
        days.login(1, evening);
        days.logout(1, evening, &session(evening, 4, 0.0, 0.0));
        let today = days.today(1, late, None);
        assert_eq!(today, None, "a new day in Paris");
        assert_eq!(
            days.day_of(late),
            NaiveDate::from_ymd_opt(2026, 12, 8).unwrap()
        );
        // The same instants in UTC are one day.
        let mut utc = AgentDays::new(chrono_tz::UTC);
        utc.login(1, evening);
        utc.logout(1, evening, &session(evening, 4, 0.0, 0.0));
        assert_eq!(utc.today(1, late, None).map(|d| d.calls), Some(4));
    }

    #[test]
    fn a_session_over_midnight_counts_in_the_day_it_ends() {
        let mut days = AgentDays::new(chrono_tz::UTC);
        let start = Utc.with_ymd_and_hms(2026, 12, 7, 22, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 12, 8, 2, 0, 0).unwrap();
        days.login(1, start);
        days.logout(1, end, &session(start, 5, 60.0, 120.0));
        let today = days.today(1, end, None).unwrap();
        assert_eq!(
            (today.sessions, today.calls, today.first_login),
            (1, 5, start)
        );
    }
}
