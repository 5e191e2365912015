//! The crate's error type.

use std::net::SocketAddr;

/// What can go wrong when using the SIP endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transport other than UDP, TCP or TLS was asked for.
    #[error("unsupported transport {0:?} (UDP, TCP and TLS are supported)")]
    UnsupportedTransport(String),
    /// A URI could not be used.
    #[error("invalid SIP URI {uri:?}: {why}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// Why it was refused.
        why: String,
    },
    /// A phone number is not in E.164 form (`+` and up to 15 digits).
    #[error("invalid phone number {0:?}: expected E.164 such as +15551234567")]
    InvalidNumber(String),
    /// A header name or value would break the message (not a token, or holds a line break).
    #[error("invalid header {name:?}: {why}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// Why it was refused.
        why: String,
    },
    /// A calls-per-second cap of zero.
    #[error("the calls-per-second cap must be at least 1")]
    ZeroCps,
    /// A socket could not be bound.
    #[error("cannot bind {transport} {addr}: {source}")]
    Bind {
        /// UDP, TCP or TLS.
        transport: crate::Transport,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// No listener of the transport a destination needs.
    #[error("no {0} listener is configured")]
    NoListener(crate::Transport),
    /// A host name did not resolve.
    #[error("cannot resolve {host}: {why}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        why: String,
    },
    /// A TLS setting could not be used: a certificate, key or CA file.
    #[error("TLS: {what}: {why}")]
    TlsSettings {
        /// The file or setting.
        what: String,
        /// Why it was refused.
        why: String,
    },
    /// The endpoint's driver has stopped (shut down or crashed).
    #[error("the SIP endpoint has shut down")]
    Closed,
    /// The call is not in a state where this action makes sense.
    #[error("cannot {action} a call that is {state}")]
    InvalidState {
        /// What was asked.
        action: &'static str,
        /// The call's state.
        state: &'static str,
    },
    /// The SDP could not be used.
    #[error(transparent)]
    Sdp(#[from] crate::sdp::SdpError),
    /// A request got a final non-2xx answer or none.
    #[error("{method} failed: {code} {reason}")]
    Rejected {
        /// The request's method.
        method: crate::Method,
        /// The status code (408 when nothing answered).
        code: u16,
        /// The reason phrase.
        reason: String,
    },
}
