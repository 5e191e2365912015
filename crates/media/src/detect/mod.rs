//! Answering-machine, tone and beep detection.
//!
//! Both detectors are sans-IO state machines: they are fed 8 kHz linear PCM packets with their RTP
//! timestamps (stream time, never the wall clock) and answer with a verdict or an event. They
//! allocate nothing after construction and do a few multiply-adds per sample, so one core runs
//! thousands of them.
//!
//! - [`AmdDetector`] tells a live person from an answering machine: [`AmdParams`] holds every Asterisk
//!   `app_amd` parameter plus ours; [`AmdDetector::baseline`] runs the Asterisk algorithm itself for
//!   comparison. `docs/amd.md` describes the algorithm and its measured quality.
//! - [`Tones`] reports special information tones ([`SitCode`]), the voicemail beep and fax tones.
//!
//! ```
//! use media::detect::{AmdDetector, AmdParams, AmdResult};
//!
//! let mut amd = AmdDetector::new(AmdParams::default()).unwrap();
//! let mut timestamp = 0u32;
//! let mut verdict = None;
//! // Ten seconds of a silent line, in 20 ms packets.
//! for _ in 0..500 {
//!     let packet = [0i16; 160];
//!     verdict = verdict.or(amd.push(&packet, timestamp));
//!     timestamp = timestamp.wrapping_add(160);
//! }
//! let verdict = verdict.unwrap_or_else(|| amd.finish());
//! // Nobody spoke for 2.5 s: a machine (or a silent greeting).
//! assert_eq!(verdict.result, AmdResult::Machine);
//! assert_eq!(verdict.decided_at_ms, 2500);
//! ```

mod amd;
mod corpus;
mod frame;
mod params;
mod tones;
mod wav;

pub use amd::{AmdCause, AmdDetector, AmdResult, AmdVerdict};
pub use corpus::{Clip, ClipVerdict, Corpus, CorpusError, CorpusReport, Truth, classify};
pub use frame::SAMPLE_RATE;
pub use params::{AmdAlgorithm, AmdParams, ParamError};
pub use tones::{FaxTone, SitCode, ToneEvent, ToneParams, Tones};
pub use wav::{Channel, WavError, read_wav};
