//! placeholder
#![warn(missing_docs, unreachable_pub)]

pub mod core;
pub mod digest;
mod error;
pub mod message;
pub mod registrar;
pub mod sdp;
pub mod stats;
mod transaction;
mod types;

pub use error::Error;
pub use transaction::TimerConfig;
pub use types::{ConnId, Destination, Method, NameAddr, Transport, Uri};
