//! Calling hours in the callee's local time, and the pure check the engine re-runs before dialling.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The hours of one weekday: closed, or open from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayHours {
    /// No calls that day.
    Closed,
    /// Calls from `start` up to (not including) `end`, local time.
    Open {
        /// First minute calls may start.
        start: NaiveTime,
        /// First minute calls may no longer start.
        end: NaiveTime,
    },
}

impl DayHours {
    /// Open from `start` to `end` (hours and minutes).
    pub fn open(start: (u32, u32), end: (u32, u32)) -> Self {
        let time = |(h, m): (u32, u32)| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        Self::Open {
            start: time(start),
            end: time(end),
        }
    }

    fn contains(self, time: NaiveTime) -> bool {
        match self {
            Self::Closed => false,
            Self::Open { start, end } => start <= time && time < end,
        }
    }
}

impl fmt::Display for DayHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("closed"),
            Self::Open { start, end } => {
                let end = if *end == NaiveTime::MIN && *start != NaiveTime::MIN {
                    "24:00".to_owned()
                } else {
                    end.format("%H:%M").to_string()
                };
                write!(f, "{}-{end}", start.format("%H:%M"))
            }
        }
    }
}

impl std::str::FromStr for DayHours {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("closed") {
            return Ok(Self::Closed);
        }
        let bad = || format!("`{s}` must be \"HH:MM-HH:MM\" (e.g. \"08:00-21:00\") or \"closed\"");
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let parse = |t: &str| {
            let t = t.trim();
            if t == "24:00" {
                return Ok(None);
            }
            NaiveTime::parse_from_str(t, "%H:%M")
                .map(Some)
                .map_err(|_| bad())
        };
        let start = parse(start)?.ok_or_else(bad)?;
        let end = parse(end)?;
        Ok(Self::Open {
            start,
            // 24:00 is stored as midnight and read as "to the end of the day".
            end: end.unwrap_or(NaiveTime::MIN),
        })
    }
}

impl Serialize for DayHours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DayHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Calling hours per weekday in the callee's local time; a day not given uses `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CallingHours {
    /// Hours of every day not listed (default 08:00-21:00).
    pub default: DayHours,
    /// Monday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mon: Option<DayHours>,
    /// Tuesday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tue: Option<DayHours>,
    /// Wednesday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wed: Option<DayHours>,
    /// Thursday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thu: Option<DayHours>,
    /// Friday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fri: Option<DayHours>,
    /// Saturday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sat: Option<DayHours>,
    /// Sunday.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sun: Option<DayHours>,
    /// Allows hours outside 08:00-21:00 (the US and UK limits): never on by default.
    pub override_legal_limits: bool,
}

impl Default for CallingHours {
    fn default() -> Self {
        Self {
            default: DayHours::open((8, 0), (21, 0)),
            mon: None,
            tue: None,
            wed: None,
            thu: None,
            fri: None,
            sat: None,
            sun: None,
            override_legal_limits: false,
        }
    }
}

impl CallingHours {
    /// The hours of one weekday.
    pub fn day(&self, weekday: Weekday) -> DayHours {
        let specific = match weekday {
            Weekday::Mon => self.mon,
            Weekday::Tue => self.tue,
            Weekday::Wed => self.wed,
            Weekday::Thu => self.thu,
            Weekday::Fri => self.fri,
            Weekday::Sat => self.sat,
            Weekday::Sun => self.sun,
        };
        specific.unwrap_or(self.default)
    }

    /// Whether a call may start `now` to a callee in any of `zones`.
    ///
    /// A number whose prefix spans several zones is callable only when every one of them is open
    /// (the strictest reading); an empty list is never open. DST is handled by `chrono-tz`.
    pub fn is_open(&self, zones: &[Tz], now: DateTime<Utc>) -> bool {
        !zones.is_empty() && zones.iter().all(|zone| self.is_open_in(*zone, now))
    }

    /// Whether calls may start `now` in one zone.
    pub fn is_open_in(&self, zone: Tz, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&zone);
        let time = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second())
            .unwrap_or(NaiveTime::MIN);
        self.day(local.weekday()).contains_local(time)
    }

    /// The problems of these hours, as (field, reason).
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let legal_start = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN);
        let legal_end = NaiveTime::from_hms_opt(21, 0, 0).unwrap_or(NaiveTime::MIN);
        let mut problems = Vec::new();
        let days = [
            ("default", Some(self.default)),
            ("mon", self.mon),
            ("tue", self.tue),
            ("wed", self.wed),
            ("thu", self.thu),
            ("fri", self.fri),
            ("sat", self.sat),
            ("sun", self.sun),
        ];
        for (name, hours) in days {
            let Some(DayHours::Open { start, end }) = hours else {
                continue;
            };
            let to_midnight = end == NaiveTime::MIN;
            if !to_midnight && start >= end {
                problems.push((
                    name.to_owned(),
                    format!(
                        "{} ends before it starts (windows cannot cross midnight)",
                        DayHours::Open { start, end }
                    ),
                ));
            } else if !self.override_legal_limits
                && (start < legal_start || to_midnight || end > legal_end)
            {
                problems.push((
                    name.to_owned(),
                    format!(
                        "{} goes outside 08:00-21:00, the US and UK limit; set \
                         calling_hours.override_legal_limits = true only where the law allows it",
                        DayHours::Open { start, end }
                    ),
                ));
            }
        }
        problems
    }
}

impl DayHours {
    fn contains_local(self, time: NaiveTime) -> bool {
        match self {
            // An end of 24:00 is stored as midnight: open to the end of the day.
            Self::Open { start, end } if end == NaiveTime::MIN => time >= start,
            other => other.contains(time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::{Chicago, Los_Angeles, New_York};
    use chrono_tz::Europe::London;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn default_is_eight_to_nine_local() {
        let hours = CallingHours::default();
        // 2026-07-15 is a Wednesday; New York is UTC-4 in summer.
        assert!(!hours.is_open(&[New_York], utc(2026, 7, 15, 11, 59)));
        assert!(hours.is_open(&[New_York], utc(2026, 7, 15, 12, 0)));
        assert!(hours.is_open(&[New_York], utc(2026, 7, 16, 0, 59)));
        assert!(!hours.is_open(&[New_York], utc(2026, 7, 16, 1, 0)));
    }

    #[test]
    fn dst_changes_the_utc_window() {
        let hours = CallingHours::default();
        // 13:30 UTC is 08:30 in New York in winter (UTC-5) but 09:30 in summer (UTC-4); 12:30
        // UTC is 07:30 in winter (closed) and 08:30 in summer (open).
        assert!(!hours.is_open(&[New_York], utc(2026, 1, 14, 12, 30)));
        assert!(hours.is_open(&[New_York], utc(2026, 7, 15, 12, 30)));
        // Around the spring change (2026-03-08 02:00 local): Saturday 7 March 12:30 UTC is
        // 07:30 EST (closed); Monday 9 March 12:30 UTC is 08:30 EDT (open).
        assert!(!hours.is_open(&[New_York], utc(2026, 3, 7, 12, 30)));
        assert!(hours.is_open(&[New_York], utc(2026, 3, 9, 12, 30)));
        // London changes on a different date (29 March 2026): on 16 March, 07:30 UTC is 07:30
        // GMT (closed) while New York is already on summer time.
        assert!(!hours.is_open(&[London], utc(2026, 3, 16, 7, 30)));
        assert!(hours.is_open(&[London], utc(2026, 3, 30, 7, 30)));
    }

    #[test]
    fn several_zones_must_all_be_open() {
        let hours = CallingHours::default();
        // 15:30 UTC in July: 11:30 New York, 10:30 Chicago, 08:30 Los Angeles: all open.
        assert!(hours.is_open(&[New_York, Chicago, Los_Angeles], utc(2026, 7, 15, 15, 30)));
        // 14:30 UTC: 07:30 in Los Angeles, so a number spanning it is not callable yet.
        assert!(hours.is_open(&[New_York, Chicago], utc(2026, 7, 15, 14, 30)));
        assert!(!hours.is_open(&[New_York, Los_Angeles], utc(2026, 7, 15, 14, 30)));
        // No known zone: never callable.
        assert!(!hours.is_open(&[], utc(2026, 7, 15, 15, 30)));
    }

    #[test]
    fn weekday_overrides_use_the_local_weekday() {
        let hours = CallingHours {
            sun: Some(DayHours::Closed),
            ..CallingHours::default()
        };
        // Monday 2026-07-20 03:00 UTC is still Sunday 20:00 in Los Angeles: closed.
        assert!(!hours.is_open(&[Los_Angeles], utc(2026, 7, 20, 3, 0)));
        // The same instant is Sunday 23:00 in New York: closed anyway (after 21:00).
        // Saturday 2026-07-18 18:00 UTC is 11:00 Saturday in Los Angeles: open.
        assert!(hours.is_open(&[Los_Angeles], utc(2026, 7, 18, 18, 0)));
    }

    #[test]
    fn parse_and_print() {
        let h: DayHours = "09:30-17:00".parse().unwrap();
        assert_eq!(h, DayHours::open((9, 30), (17, 0)));
        assert_eq!(h.to_string(), "09:30-17:00");
        assert_eq!("closed".parse::<DayHours>().unwrap(), DayHours::Closed);
        assert!("9am-5pm".parse::<DayHours>().is_err());
        let late: DayHours = "08:00-24:00".parse().unwrap();
        assert_eq!(late.to_string(), "08:00-24:00");
    }
}
