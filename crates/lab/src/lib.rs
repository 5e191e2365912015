//! A telephone network in a box for the dialer's demos and tests, in real SIP and RTP over
//! loopback (the dialer sees nothing it would not see from a real carrier and real phones).
//!
//! - [`Carrier`]: a SIP trunk answering each INVITE per a seeded outcome [`Mix`] (live answers
//!   with a real greeting from the media crate's labelled corpus and a conversation, answering
//!   machines with a beep that record the message left, busy, ringing until cancelled, special
//!   information tones then 404, 503) with per-number [`Override`]s for tests. It records per
//!   call what it did and what audio it received ([`CallRecord`]) and keeps counters.
//! - [`AgentPhone`]: an agent's SIP phone: registers (digest), calls the dialer in, talks when a
//!   caller is bridged into its leg (it hears the caller's voice), ends the call with `#` after
//!   its own talk time, sets a disposition by digit in wrap-up, pauses at random. Its behaviour
//!   is the sans-IO [`AgentBrain`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), lab::LabError> {
//! use lab::{AgentConfig, AgentPhone, Bank, BankConfig, Carrier, CarrierConfig};
//!
//! let bank = Bank::load(&BankConfig::default())?;
//! let mut config = CarrierConfig::new(bank.clone());
//! config.planner.mix = "human=25,machine=10,busy=10,no-answer=40,sit=5,unavailable=10".parse()?;
//! let carrier = Carrier::start(config).await?;
//! // Point the dialer's trunk at carrier.uri(); the dialer listens at sip:127.0.0.1:5060.
//! let agent = AgentPhone::start(
//!     AgentConfig::new("agent1", "secret1", "sip:127.0.0.1:5060".parse()?),
//!     &bank,
//! )
//! .await?;
//! // ... later
//! println!("{:?}", carrier.counters());
//! agent.logout().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod agent;
mod audio;
mod carrier;
mod dist;
mod error;
mod hear;
mod link;
mod plan;
mod pool;

pub use agent::{
    AgentAction, AgentBehaviour, AgentBrain, AgentConfig, AgentCounters, AgentHooks, AgentPhone,
    DISPOSITION_DIGITS, Dispositions, PausePolicy, PhoneState,
};
pub use audio::{
    ABANDON_MESSAGE_WAV, Bank, BankConfig, Greeting, VOICEMAIL_MESSAGE_WAV, default_corpus, script,
    silence, sit_tones, tone,
};
pub use carrier::{CallRecord, Carrier, CarrierConfig, CarrierCounters, Ending, Step};
pub use dist::{Dist, parse_duration};
pub use error::LabError;
pub use hear::{Ear, Heard, Segment, Vad, VoiceChange};
pub use link::remote_media;
pub use plan::{Behaviour, Callee, Mix, Override, Plan, Planner};
pub use pool::{Agents, expand};
