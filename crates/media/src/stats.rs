//! Per-leg counters: what was received, lost, reordered, dropped (and why), sent, and what the
//! peer reported about our stream.

use std::net::SocketAddr;
use std::time::Duration;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The RTP header is truncated or its padding is impossible.
    Malformed,
    /// The RTP version is not 2.
    BadVersion,
    /// A payload type nobody negotiated.
    UnknownPayloadType,
    /// From an address other than the peer's while the peer is sending.
    Stranger,
    /// Another SSRC while the current one is live.
    SsrcMismatch,
    /// A packet already received.
    Duplicate,
    /// A sequence jump too large to be loss, not confirmed by the next packet.
    SequenceJump,
    /// More datagrams per second than any real call sends.
    Flood,
    /// Arrived before the peer's address and codecs were known.
    NotReady,
    /// A telephone-event payload that is not a DTMF event.
    BadEvent,
    /// Larger than any G.711 packet we accept.
    TooLarge,
    /// An RTCP datagram that does not parse.
    BadRtcp,
    /// An SRTP or SRTCP packet whose authentication tag does not verify.
    SrtpAuth,
    /// An SRTP or SRTCP packet already received (replay protection).
    SrtpReplay,
}

/// Dropped datagrams, one counter per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// See [`DropReason::Malformed`].
    pub malformed: u64,
    /// See [`DropReason::BadVersion`].
    pub bad_version: u64,
    /// See [`DropReason::UnknownPayloadType`].
    pub unknown_payload_type: u64,
    /// See [`DropReason::Stranger`].
    pub stranger: u64,
    /// See [`DropReason::SsrcMismatch`].
    pub ssrc_mismatch: u64,
    /// See [`DropReason::Duplicate`].
    pub duplicate: u64,
    /// See [`DropReason::SequenceJump`].
    pub sequence_jump: u64,
    /// See [`DropReason::Flood`].
    pub flood: u64,
    /// See [`DropReason::NotReady`].
    pub not_ready: u64,
    /// See [`DropReason::BadEvent`].
    pub bad_event: u64,
    /// See [`DropReason::TooLarge`].
    pub too_large: u64,
    /// See [`DropReason::BadRtcp`].
    pub bad_rtcp: u64,
    /// See [`DropReason::SrtpAuth`].
    pub srtp_auth: u64,
    /// See [`DropReason::SrtpReplay`].
    pub srtp_replay: u64,
    /// Dropped by the kernel before we could read them, because the leg's socket queue was
    /// full: a flood faster than the receive loop reads one socket, or the loop falling behind.
    pub overflow: u64,
}

impl DropCounts {
    /// Adds one to the counter of `reason`.
    pub fn count(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Malformed => &mut self.malformed,
            DropReason::BadVersion => &mut self.bad_version,
            DropReason::UnknownPayloadType => &mut self.unknown_payload_type,
            DropReason::Stranger => &mut self.stranger,
            DropReason::SsrcMismatch => &mut self.ssrc_mismatch,
            DropReason::Duplicate => &mut self.duplicate,
            DropReason::SequenceJump => &mut self.sequence_jump,
            DropReason::Flood => &mut self.flood,
            DropReason::NotReady => &mut self.not_ready,
            DropReason::BadEvent => &mut self.bad_event,
            DropReason::TooLarge => &mut self.too_large,
            DropReason::BadRtcp => &mut self.bad_rtcp,
            DropReason::SrtpAuth => &mut self.srtp_auth,
            DropReason::SrtpReplay => &mut self.srtp_replay,
        };
        *counter += 1;
    }

    /// All dropped datagrams.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.bad_version
            + self.unknown_payload_type
            + self.stranger
            + self.ssrc_mismatch
            + self.duplicate
            + self.sequence_jump
            + self.flood
            + self.not_ready
            + self.bad_event
            + self.too_large
            + self.bad_rtcp
            + self.srtp_auth
            + self.srtp_replay
            + self.overflow
    }
}

/// What the peer's RTCP says about the stream we send it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteReport {
    /// Fraction of our packets lost in the last interval, 0.0-1.0.
    pub fraction_lost: f32,
    /// Our packets lost in total.
    pub cumulative_lost: u32,
    /// Interarrival jitter of our stream at the peer.
    pub jitter: Duration,
    /// Round-trip time, when the peer echoes our sender reports.
    pub round_trip: Option<Duration>,
}

/// A snapshot of one leg's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegStats {
    /// Where we send (the latched source, else the signalled address).
    pub remote: Option<SocketAddr>,
    /// The peer's current SSRC.
    pub remote_ssrc: Option<u32>,
    /// Our SSRC.
    pub local_ssrc: u32,
    /// RTP packets accepted (audio, events, comfort noise), duplicates excluded.
    pub packets_received: u64,
    /// Payload octets accepted.
    pub bytes_received: u64,
    /// Packets the current stream should have had by its sequence numbers.
    pub packets_expected: u64,
    /// Packets lost on the current stream (RFC 3550 cumulative loss).
    pub packets_lost: i64,
    /// Lost over expected on the current stream, 0.0-1.0.
    pub loss_fraction: f32,
    /// Interarrival jitter of the peer's stream (RFC 3550 A.8).
    pub jitter: Duration,
    /// Packets that arrived out of order (kept).
    pub packets_reordered: u64,
    /// Times the peer's SSRC changed and was followed.
    pub ssrc_changes: u32,
    /// Times the peer's address changed and was followed.
    pub relatches: u32,
    /// DTMF digits received.
    pub dtmf_received: u64,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Payload octets sent.
    pub bytes_sent: u64,
    /// Packets relayed into this leg from a bridged leg that could not be sent (socket busy).
    pub send_errors: u64,
    /// RTCP reports sent and received.
    pub rtcp_sent: u64,
    /// RTCP datagrams received and understood.
    pub rtcp_received: u64,
    /// Dropped datagrams, by reason.
    pub dropped: DropCounts,
    /// Packets that came too late for the detectors and recorder: their time had already been
    /// played out (lost, or filled with silence), so they were only relayed.
    pub packets_late: u64,
    /// Silence fed to the detectors and recorder in place of lost packets and while the peer
    /// sent nothing (discontinuous transmission).
    pub silence_filled: Duration,
    /// The peer's view of our stream, from its last RTCP report.
    pub remote_report: Option<RemoteReport>,
    /// The SRTP suite protecting both directions, `None` for plain RTP.
    pub srtp: Option<crate::srtp::SrtpSuite>,
}
