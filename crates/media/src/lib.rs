//! Audio for the dialer (being built): RTP legs, G.711, answering-machine and tone detection,
//! prompts, the bridge and recordings.

pub mod detect;
