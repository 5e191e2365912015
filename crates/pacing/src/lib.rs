//! The pacing engine of the dialer: how many calls to start now.
//!
//! A [`Pacer`] is a sans-IO state machine, one per campaign. The engine feeds it every event
//! with its time ([`Pacer::handle`]) and asks it, after each event and on a short tick, what to
//! do ([`Pacer::decide`]): start N calls, cancel these ringing calls. It owns no clock, socket
//! or thread, and the same events give the same decisions.
//!
//! Modes: preview (no automatic calls), progressive (ready agents x ratio), predictive (a model
//! of who will be free and who will answer a few seconds ahead, with a threshold steered so the
//! abandon rate tracks its target, and a guard on the regulator's window) and agentless
//! (line and calls-per-second caps). [`sim`] is a discrete-event simulation of a campaign that
//! drives the same pacer; `docs/pacing.md` explains the model and its figures.
//!
//! ```
//! use pacing::{AgentId, CallId, Config, Event, Pacer};
//! use std::time::Duration;
//!
//! let mut pacer = Pacer::new(Config::default()).unwrap();
//! let t0 = Duration::ZERO;
//! for a in 0..20 {
//!     pacer.handle(t0, Event::AgentLoggedIn(AgentId(a)));
//!     pacer.handle(t0, Event::AgentReady(AgentId(a)));
//! }
//! let decision = pacer.decide(t0);
//! assert!(decision.start >= 20);
//! for n in 0..decision.start {
//!     pacer.handle(t0, Event::CallPlaced(CallId(n as u64)));
//! }
//! println!("{:?}", pacer.figures(t0).reason);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod config;
mod estimate;
mod event;
mod math;
mod model;
mod pacer;
pub mod sim;
mod window;

pub use config::{Config, ConfigError, MIN_RING, NO_LINE_CAP, Priors};
pub use estimate::Estimates;
pub use event::{AgentId, CallId, Decision, EndReason, Event, Reason};
pub use pacer::{AbandonFigures, AgentTally, CallTally, Figures, ModelCheck, Pacer};
pub use window::HistoryBucket;
