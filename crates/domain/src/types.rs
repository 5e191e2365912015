//! The dialer's small vocabulary: campaign and contact statuses, outcomes, AMD verdicts and
//! dispositions, each with the text it is written as (files, JSON, the database).

use crate::error::Error;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        /// Call back at a set time (see [`Disposition::callback_at`]).
        Callback = "callback",
        /// The callee asked not to be called: a global do-not-call entry is written at once.
        DoNotCall = "do_not_call",
        /// Wrong person or number: never redialled.
        WrongNumber = "wrong_number",
        /// Anything else: the contact is done.
        Other = "other",
    }
}

/// An agent's disposition of a connected call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Disposition {
    /// What happened.
    pub kind: DispositionKind,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For [`DispositionKind::Callback`]: when to call back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_at: Option<DateTime<Utc>>,
    /// For a callback: only this agent takes it (otherwise anyone).
    #[serde(default)]
    pub callback_personal: bool,
}

impl Disposition {
    /// A disposition of `kind` with nothing else.
    pub fn new(kind: DispositionKind) -> Self {
        Disposition {
            kind,
            note: None,
            callback_at: None,
            callback_personal: false,
        }
    }

    /// Refuses a callback without its time, and a personal callback without the agent who
    /// promised it (`agent_id`).
    pub fn check(&self, agent_id: Option<i64>) -> Result<(), Error> {
        if self.kind == DispositionKind::Callback && self.callback_at.is_none() {
            return Err(Error::Invalid("a callback needs callback_at".into()));
        }
        if self.callback_personal && agent_id.is_none() {
            return Err(Error::Invalid(
                "a personal callback needs the agent who promised it".into(),
            ));
        }
        Ok(())
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
