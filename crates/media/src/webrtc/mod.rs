//! The WebRTC agent leg's front: a browser's RTCPeerConnection terminated on an ordinary
//! [`crate::Leg`]. The leg keeps its RTP path, bridge and SRTP; in front of its socket, STUN
//! (ICE-lite) and DTLS datagrams are told apart by their first byte (RFC 7983) and handed to a
//! sans-IO [`Front`], whose DTLS-SRTP keys are then installed in the leg's SRTP.
//!
//! * [`sdp`]: the browser's offer read, our answer written;
//! * [`ice`]: the ICE-lite responder (binding requests, nomination, consent);
//! * [`front`]: ICE + DTLS server, keys out.

pub mod front;
pub mod ice;
pub mod sdp;

pub use front::{DtlsIdentity, Front, FrontEvent};
pub use sdp::{BrowserOffer, LocalIce, OfferError, answer, parse_offer};

/// What a datagram on a WebRTC leg's port is, by its first byte (RFC 7983 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// 0-3: STUN.
    Stun,
    /// 20-63: DTLS.
    Dtls,
    /// 128-191: RTP or RTCP.
    Rtp,
    /// Anything else (ZRTP, TURN channels, garbage).
    Other,
}

/// Classifies a datagram by its first byte.
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => PacketKind::Rtp,
        _ => PacketKind::Other,
    }
}

/// Why a WebRTC front could not be made or keyed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebrtcError {
    /// The DTLS certificate or configuration.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// SRTP keys could not be exported.
    #[error("DTLS-SRTP keys: {0}")]
    Keys(String),
}

/// What the leg's WebRTC driver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebrtcEvent {
    /// ICE and DTLS are up, SRTP keys installed: audio flows.
    Connected {
        /// The browser's address.
        remote: std::net::SocketAddr,
    },
    /// The browser went away: consent expired (no check for the consent timeout) or DTLS closed.
    Down {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
