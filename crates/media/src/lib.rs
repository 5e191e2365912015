//! Audio for the dialer: RTP legs over UDP (with RTCP), G.711, RFC 4733 DTMF, prompt playback,
//! the bridge between a callee and an agent, stereo call recording, and answering-machine and
//! tone detection ([`detect`]).
//!
//! A [`MediaRuntime`] owns the receive loops that read the legs' RTP sockets, set up by a
//! [`MediaConfig`] (how many threads, io_uring or epoll, which priority). A [`Leg`] is one RTP
//! session on a port pair from a [`PortAllocator`], opened through a runtime. Its address goes
//! into the SDP; [`Leg::set_remote`] takes the peer's. The receive loop and the leg's own task
//! receive, check, count and decode; a listener gets the decoded audio (for detection),
//! [`Leg::play`] sends a [`Prompt`], [`Bridge::connect`] relays two legs into each other, and
//! [`Recording`] writes a stereo WAV.
//!
//! ```no_run
//! # async fn demo() -> Result<(), media::MediaError> {
//! use media::{
//!     Bridge, Codec, LegEvent, LegOptions, MediaConfig, MediaRuntime, PortAllocator, Prompt,
//!     RemoteMedia,
//! };
//!
//! let media = MediaRuntime::new(MediaConfig::default());
//! let ports = PortAllocator::new("127.0.0.1".parse().unwrap(), 20000..=29999)?;
//! let (callee, mut events) = media.open_leg(&ports, LegOptions::default())?;
//! // ... offer callee.local_rtp_addr() in the INVITE; the answer says where the callee is:
//! callee.set_remote(&RemoteMedia::new("127.0.0.1:4000".parse().unwrap(), Codec::Pcmu).with_dtmf(101))?;
//! // Hear the greeting (an answering-machine detector goes here).
//! callee.set_listener(Some(Box::new(|samples: &[i16], rtp_ts: u32| {
//!     let _ = (samples, rtp_ts);
//! })));
//! // An agent's leg, up for the whole shift, hearing silence between calls.
//! let (agent, _agent_events) =
//!     media.open_leg(&ports, LegOptions { comfort_silence: true, ..Default::default() })?;
//! let bridge = Bridge::connect(&callee, &agent)?;
//! // ... the call ends:
//! drop(bridge);
//! # let prompt = Prompt::from_samples(vec![0; 8000], "x");
//! callee.play(&prompt);
//! while let Some(event) = events.recv().await {
//!     if let LegEvent::PlaybackFinished { .. } = event { break }
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod bridge;
mod bulk;
mod config;
pub mod detect;
pub mod dtmf;
mod error;
pub mod g711;
mod leg;
mod outbox;
pub mod playout;
mod ports;
mod prompt;
mod reactor;
mod record;
pub mod rtcp;
pub mod rtp;
mod runtime;
pub mod session;
mod slots;
pub mod srtp;
mod stats;
mod sys;
mod tap;
mod uring;
pub mod webrtc;

pub use bridge::Bridge;
pub use config::{ConfigError, MAX_THREADS, MediaConfig, MediaIo, MediaPriority};
pub use error::MediaError;
pub use g711::Codec;
pub use leg::{
    AudioListener, Leg, LegEvent, LegEvents, LegOptions, PlaybackId, Ptime, RemoteMedia,
    WebrtcEvents,
};
pub use ports::PortAllocator;
pub use prompt::{Prompt, PromptError};
pub use record::{Recording, RecordingSummary};
pub use runtime::{MediaRuntime, ReceiveLoopStats};
pub use stats::{DropCounts, DropReason, LegStats, RemoteReport};
