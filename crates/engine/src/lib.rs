//! The campaign runtime of the dialer: it leases due contacts, places calls through the SIP
//! trunk, follows them through ringing, early media, answer and answering-machine detection,
//! connects live answers into the longest-waiting agent's open leg within two seconds (or
//! abandons them with the campaign's message), keeps the agents' states, and writes every step
//! and outcome to the store as it happens.
//!
//! [`Engine`] is the facade the API, `dialer serve` and `dialer demo` use. Inside, each
//! campaign is an actor around a sans-IO core that owns its [`pacing::Pacer`], its agent pool
//! and every call's state machine, and decides on every event and a 250 ms tick; each call's
//! SIP and media I/O is a task that pumps happenings into the core and carries out its actions.
//! The decisions are tested without sockets or sleeps, up to a campaign hour on virtual time.
//! State shared by several nodes sits behind [`ClusterState`] ([`InProcess`] for one node).
//!
//! Agents log in with a SIP phone: it calls `sip:<campaign or username>@<engine>` and answers
//! the engine's digest challenge with the agent's username and password (registering first is
//! optional); the engine answers with a leg that plays comfort silence, and live calls are
//! bridged into it. See `docs/engine.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), engine::EngineError> {
//! use engine::{Engine, EngineConfig, InProcess};
//! let store = store::Store::connect("sqlite://dialer.db?mode=rwc").await?;
//! store.migrate().await?;
//! let engine = Engine::start(EngineConfig::new("node-1"), store, InProcess::shared()).await?;
//! let spec = domain::CampaignSpec::from_toml(&std::fs::read_to_string("campaigns/demo.toml").unwrap())?;
//! engine.apply_campaign(&spec).await?;
//! engine.start_campaign("demo").await?;
//! let mut events = engine.subscribe();
//! while let Ok(event) = events.recv().await {
//!     println!("{}", serde_json::to_string(&event).unwrap());
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod agent;
mod call;
mod campaign;
#[cfg(test)]
mod campaign_hour;
mod cluster;
mod config;
mod core;
mod days;
mod driver;
mod engine;
mod error;
mod inbox;
mod pool;
mod screen;
mod secrets;
mod setup;
mod shared;
mod view;
mod webrtc;

pub use cluster::{ClusterState, Counters, InProcess};
pub use config::EngineConfig;
pub use engine::{Engine, MAX_DTMF_DIGITS};
pub use error::{ClusterError, EngineError, Result};
pub use inbox::to_media as leg_media;
pub use media::{MediaConfig, MediaIo, MediaPriority, ReceiveLoopStats};
pub use screen::{AgentLine, ContactCard, LineCall, render_script};
pub use secrets::{TrunkSecrets, confined_path};
pub use view::{
    AbandonView, AgentCounts, AgentDay, AgentSpec, AgentState, AgentView, CallCounts, CallState,
    CallTotals, CallUpdate, CampaignFigures, CampaignView, EngineEvent, PacingView, ShutdownReport,
    Snapshot, TrunkFigures, TrunkRegistrationState,
};
