//! Small shared types: statuses, outcomes, and the millisecond timestamps the schema uses.

use crate::error::Error;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// A stored timestamp back to a `DateTime`.
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Invalid(format!(
                        "`{other}` is not a {}: use one of {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

text_enum! {
    /// Whether a campaign dials.
    CampaignStatus {
        /// Dialling.
        Running = "running",
        /// Not dialling for now; calls in flight finish.
        Paused = "paused",
        /// Finished or switched off.
        Stopped = "stopped",
    }
}

text_enum! {
    /// Where a contact stands.
    ContactStatus {
        /// Waiting for its next attempt.
        Pending = "pending",
        /// A callback was promised; dialled before pending contacts.
        Callback = "callback",
        /// Finished: connected, a message left, or an agent's final disposition.
        Done = "done",
        /// No attempts left under the retry rules.
        Exhausted = "exhausted",
        /// The number does not exist (SIT tone, 404, agent's "wrong number"): never redialled.
        Invalid = "invalid",
        /// On a do-not-call list: never dialled.
        Dnc = "dnc",
    }
}

text_enum! {
    /// How an attempt ended.
    Outcome {
        /// A live person answered and was connected to an agent (or heard the agentless message).
        Connected = "connected",
        /// A live person answered and no agent was free in time: the abandon message was played.
        Abandoned = "abandoned",
        /// An answering machine answered and was hung up on.
        MachineHungUp = "machine_hung_up",
        /// An answering machine answered and the campaign's message was left after the beep.
        MachineMessageLeft = "machine_message_left",
        /// 486/600 busy.
        Busy = "busy",
        /// Rang for the whole ring timeout unanswered.
        NoAnswer = "no_answer",
        /// Declined or unavailable (403, 480, 603, ...).
        Rejected = "rejected",
        /// The number does not exist (special information tone, 404, 484): never redialled.
        InvalidNumber = "invalid_number",
        /// Carrier or network failure (5xx, timeouts); the attempt keeps the code and reason.
        Failed = "failed",
        /// The callee asked not to be called again (e.g. an opt-out key in agentless mode).
        DoNotCall = "do_not_call",
    }
}

impl Outcome {
    /// Whether a live person answered (counts in the abandon-rate denominator).
    pub fn is_live_answer(self) -> bool {
        matches!(self, Self::Connected | Self::Abandoned)
    }
}

text_enum! {
    /// What answering-machine detection said.
    AmdResult {
        /// A person.
        Human = "human",
        /// An answering machine or voicemail.
        Machine = "machine",
        /// Undecided; treated as a person.
        NotSure = "notsure",
    }
}

text_enum! {
    /// What an agent records at the end of a connected call.
    DispositionKind {
        /// A sale or the campaign's goal reached: the contact is done.
        Sale = "sale",
        /// Not interested: the contact is done.
        NotInterested = "not_interested",
        /// Call back at a set time (see [`crate::Disposition::callback_at`]).
        Callback = "callback",
        /// The callee asked not to be called: a global do-not-call entry is written at once.
        DoNotCall = "do_not_call",
        /// Wrong person or number: never redialled.
        WrongNumber = "wrong_number",
        /// Anything else: the contact is done.
        Other = "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>().unwrap(), *outcome);
        }
        for status in ContactStatus::ALL {
            assert_eq!(status.as_str().parse::<ContactStatus>().unwrap(), *status);
        }
        assert!("sold".parse::<DispositionKind>().is_err());
        let json = serde_json::to_string(&Outcome::MachineHungUp).unwrap();
        assert_eq!(json, "\"machine_hung_up\"");
    }
}
