//! The errors of the media crate.

use std::net::IpAddr;
use std::ops::RangeInclusive;

/// What went wrong opening, configuring, bridging or recording a leg.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Every even port of the range (and the odd one after it) is taken.
    #[error("no free RTP port pair in {ip} {range:?}")]
    NoFreePorts {
        /// The local address.
        ip: IpAddr,
        /// The configured range.
        range: RangeInclusive<u16>,
    },
    /// The range cannot hold one RTP/RTCP pair.
    #[error("port range {0:?} holds no even/odd pair")]
    BadPortRange(RangeInclusive<u16>),
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// Packetisation other than 10-60 ms in 10 ms steps.
    #[error("unsupported packetisation time {0} ms (10-60 ms, in 10 ms steps)")]
    BadPtime(u32),
    /// The remote description lists no audio codec.
    #[error("the remote media lists no G.711 codec")]
    NoCodec,
    /// The leg was closed.
    #[error("the leg is closed")]
    Closed,
    /// One of the legs is already in a bridge.
    #[error("leg {0} is already bridged")]
    AlreadyBridged(u64),
    /// A leg cannot be bridged to itself.
    #[error("a leg cannot be bridged to itself")]
    SameLeg,
    /// The peer accepts no telephone-event, or a digit is not DTMF.
    #[error("cannot send DTMF: {0}")]
    Dtmf(String),
    /// The recording file could not be created or written.
    #[error("recording {path}: {reason}")]
    Recording {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The SRTP keys could not be installed.
    #[error("SRTP: {0}")]
    Srtp(#[from] crate::srtp::SrtpError),
    /// Not called inside a tokio runtime.
    #[error("legs must be opened inside a tokio runtime")]
    NoRuntime,
}
