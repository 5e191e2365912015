//! The lab's errors.

/// Why the lab could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A setting (mix, duration, distribution, override pattern) is malformed.
    #[error("{what}: {why}")]
    Config {
        /// The setting, as written (`mix`, `talk`, `override +1555*`).
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// The labelled corpus of greetings could not be read.
    #[error("cannot read the greeting corpus at {path}: {why}")]
    Corpus {
        /// The corpus folder or file.
        path: String,
        /// The reason.
        why: String,
    },
    /// No clip of the corpus matches the labels asked for.
    #[error("the corpus has no {truth} clip of kind {kinds}")]
    NoClips {
        /// `human` or `machine`.
        truth: &'static str,
        /// The kinds asked for.
        kinds: String,
    },
    /// One of the lab's own recordings could not be decoded.
    #[error(transparent)]
    Prompt(#[from] media::PromptError),
    /// SIP failed (bind, register, invite).
    #[error(transparent)]
    Sip(#[from] sip::Error),
    /// Media failed (no RTP port, no runtime).
    #[error(transparent)]
    Media(#[from] media::MediaError),
    /// The peer's SDP cannot be used.
    #[error(transparent)]
    Sdp(#[from] sip::sdp::SdpError),
}

impl LabError {
    pub(crate) fn config(what: impl Into<String>, why: impl Into<String>) -> Self {
        LabError::Config {
            what: what.into(),
            why: why.into(),
        }
    }
}
