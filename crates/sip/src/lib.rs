//! SIP for the dialer, on `rsip`: UDP, TCP and TLS transports (`sips:` URIs), RFC 3261
//! transactions and dialogs, digest authentication (RFC 7616), a registrar for agent phones,
//! trunk registration, outbound proxies, RFC 3263 server location (NAPTR/SRV on
//! hickory-resolver), session timers (RFC 4028), SDP offer/answer on `rtc::sdp`, and a
//! calls-per-second cap per trunk.
//!
//! The protocol lives in a sans-IO [`core::Core`] (time and bytes in, bytes and events out),
//! tested with a virtual clock; [`Endpoint`] runs it on tokio sockets and gives the campaign
//! engine and the lab an async API. rsip stays inside: no other crate needs it.
//!
//! Placing a call on a trunk:
//!
//! ```no_run
//! # async fn example() -> Result<(), sip::Error> {
//! use sip::{CallEvent, CallerId, Endpoint, EndpointConfig, OutboundCall, TrunkConfig};
//! use sip::sdp::LocalMedia;
//! use std::time::Duration;
//!
//! let (endpoint, _incoming) = Endpoint::bind(EndpointConfig::udp("0.0.0.0:5060".parse().unwrap())).await?;
//! let trunk = endpoint.trunk(TrunkConfig::new("sip:carrier.example.com".parse()?, 10)).await?;
//! let mut call = endpoint
//!     .dial(&trunk, OutboundCall {
//!         number: "+15551234567".into(),
//!         caller_id: CallerId { number: "+15550001111".into(), name: Some("ACME".into()) },
//!         media: LocalMedia::new("192.0.2.10:40000".parse().unwrap()),
//!         ring_timeout: Duration::from_secs(25),
//!         headers: vec![],
//!     })
//!     .await?;
//! while let Some(event) = call.next_event().await {
//!     match event {
//!         CallEvent::Answered { sdp } => { /* start RTP to sdp.remote_media(..) */ }
//!         CallEvent::Ended(end) => println!("{:?}", end.outcome),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod core;
pub mod cps;
pub mod digest;
pub mod dns;
mod endpoint;
mod error;
pub mod message;
pub mod refresh;
pub mod registrar;
pub mod sdes;
pub mod sdp;
pub mod stats;
pub mod tls;
mod transaction;
pub mod transport;
mod types;

pub use crate::core::{
    AuthConfig, CallEnd, CallEvent, EndCause, IncomingInfo, InviteResult, SecretLookup,
};
pub use digest::{Credentials, Secret};
pub use endpoint::{
    Call, CallerId, Endpoint, EndpointConfig, Incoming, IncomingCall, IncomingEvent, Invite,
    OutboundCall, RegisterSpec, Registration, RetryPolicy, Trunk, TrunkConfig, TrunkRegistration,
    resolve,
};
pub use error::Error;
pub use refresh::{RegistrationState, RegistrationStatus};
pub use registrar::{Binding, RegistrarConfig, RegistrationChange};
pub use stats::{Stats, StatsSnapshot};
pub use tls::{TlsClient, TlsServer};
pub use transaction::TimerConfig;
pub use types::{ConnId, Destination, Method, NameAddr, Transport, Uri};
