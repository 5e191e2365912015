//! The sans-IO core of an RTP leg: what to make of each datagram that arrives (accept, or drop
//! and count why), and how to number what we send so the peer sees one continuous stream.
//!
//! Nothing here owns a socket or reads the clock: the driver in [`crate::leg`] passes the
//! arrival time and source address in, which is what lets the tests below replay loss,
//! reordering, duplicates and hostile traffic without a network.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dtmf::DtmfReceiver;
use crate::g711::Codec;
use crate::rtcp::{ReceptionStats, SeqVerdict};
use crate::rtp::{self, RtpError, RtpPacket};
use crate::stats::{DropCounts, DropReason};

/// What a payload type was negotiated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadKind {
    /// Not negotiated: packets carrying it are dropped.
    #[default]
    Unknown,
    /// G.711 audio.
    Audio(Codec),
    /// RFC 4733 telephone-event.
    Event,
    /// RFC 3389 comfort noise (payload type 13): accepted, not played.
    ComfortNoise,
}

/// How long the latched source must be quiet before packets from another address may take over
/// (a NAT rebinding, or the carrier moving media); shorter would let a stranger hijack a call.
pub const RELATCH_AFTER: Duration = Duration::from_millis(1000);
/// How long the current SSRC must be quiet before a new SSRC is followed. A real source switch
/// (early media to answer, a transfer inside the carrier) leaves a gap; a stranger's packets
/// interleaved with a live stream never do.
pub const SSRC_SWITCH_AFTER: Duration = Duration::from_millis(60);
/// Sustained datagrams per second accepted on one leg before the excess counts as a flood
/// (G.711 at 10 ms packets is 100 per second, plus RTCP and DTMF).
pub const FLOOD_RATE: f64 = 400.0;
/// Burst allowance of the flood limiter.
pub const FLOOD_BURST: f64 = 100.0;

/// What one datagram turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Audio from the peer, ready to decode or relay.
    Audio {
        /// The codec of the payload.
        codec: Codec,
        /// The packet.
        packet: RtpPacket<'a>,
        /// The key of the stream it belongs to (changes on an SSRC change or restart).
        stream: u32,
    },
    /// A telephone-event packet; `digit` is set on the first packet of a new event.
    Event {
        /// The packet.
        packet: RtpPacket<'a>,
        /// The digit, once per event.
        digit: Option<char>,
        /// The key of the stream it belongs to.
        stream: u32,
    },
    /// Comfort noise: accepted (it keeps the source alive) but not played.
    ComfortNoise,
    /// RTCP on a multiplexed port, for the RTCP handler.
    Rtcp(&'a [u8]),
    /// Dropped, and counted under this reason.
    Dropped(DropReason),
}

/// A token bucket that bounds how many datagrams one leg processes per second.
#[derive(Debug, Clone)]
struct FloodGuard {
    tokens: f64,
    last: Option<Instant>,
}

impl FloodGuard {
    fn admit(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * FLOOD_RATE;
            self.tokens = (self.tokens + refill).min(FLOOD_BURST);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The receiving half of a leg: address latching, SSRC lock, sequence tracking, counters.
#[derive(Debug, Clone)]
pub struct RxSession {
    kinds: [PayloadKind; 128],
    ready: bool,
    /// The address the peer's SDP gave.
    signalled: Option<SocketAddr>,
    symmetric: bool,
    rtcp_mux: bool,
    latched: Option<SocketAddr>,
    last_accept: Option<Instant>,
    ssrc: Option<u32>,
    /// Bumped whenever the incoming stream changes identity, so relays start a new segment.
    stream: u32,
    stats: ReceptionStats,
    dtmf: DtmfReceiver,
    epoch: Instant,
    flood: FloodGuard,
    drops: DropCounts,
    ssrc_changes: u32,
    relatches: u32,
    reordered: u64,
    duplicates: u64,
    bytes: u64,
}

impl RxSession {
    /// A session that accepts nothing until [`RxSession::configure`] is called; `epoch` is any
    /// fixed instant (the arrival-time origin for jitter).
    pub fn new(epoch: Instant, symmetric: bool) -> Self {
        RxSession {
            kinds: [PayloadKind::Unknown; 128],
            ready: false,
            signalled: None,
            symmetric,
            rtcp_mux: false,
            latched: None,
            last_accept: None,
            ssrc: None,
            stream: 0,
            stats: ReceptionStats::default(),
            dtmf: DtmfReceiver::default(),
            epoch,
            flood: FloodGuard {
                tokens: FLOOD_BURST,
                last: None,
            },
            drops: DropCounts::default(),
            ssrc_changes: 0,
            relatches: 0,
            reordered: 0,
            duplicates: 0,
            bytes: 0,
        }
    }

    /// Sets what the peer negotiated. Called again (early media, then the answer; a re-INVITE),
    /// it forgets the latched address and SSRC so the new source is followed at once.
    pub fn configure(
        &mut self,
        signalled: SocketAddr,
        kinds: &[(u8, PayloadKind)],
        rtcp_mux: bool,
    ) {
        self.kinds = [PayloadKind::Unknown; 128];
        for &(pt, kind) in kinds {
            self.kinds[(pt & 0x7F) as usize] = kind;
        }
        self.signalled = Some(signalled);
        self.rtcp_mux = rtcp_mux;
        if self.latched != Some(signalled) {
            self.latched = None;
        }
        self.forget_ssrc();
        self.ready = true;
    }

    fn forget_ssrc(&mut self) {
        if self.ssrc.take().is_some() {
            self.stream = self.stream.wrapping_add(1);
        }
        self.stats.reset();
    }

    /// Where to send: the latched source (symmetric RTP), else the signalled address.
    pub fn send_to(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    /// Judges one datagram that arrived at `now` from `from`.
    pub fn receive<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Inbound<'a> {
        let verdict = self.judge(now, from, datagram);
        if let Inbound::Dropped(reason) = verdict {
            self.drops.count(reason);
        }
        verdict
    }

    /// The checks that come before any work on a datagram's content (the flood limit, and
    /// whether the peer is known yet), counted as drops when they fail. A caller that must
    /// do costly work first (SRTP) asks this, then [`RxSession::receive_admitted`].
    pub fn admit(&mut self, now: Instant) -> bool {
        let reason = if !self.flood.admit(now) {
            DropReason::Flood
        } else if !self.ready {
            DropReason::NotReady
        } else {
            return true;
        };
        self.drops.count(reason);
        false
    }

    /// Judges a datagram that [`RxSession::admit`] let through.
    pub fn receive_admitted<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Inbound<'a> {
        let verdict = self.judge_content(now, from, datagram);
        if let Inbound::Dropped(reason) = verdict {
            self.drops.count(reason);
        }
        verdict
    }

    fn judge<'a>(&mut self, now: Instant, from: SocketAddr, datagram: &'a [u8]) -> Inbound<'a> {
        if !self.flood.admit(now) {
            return Inbound::Dropped(DropReason::Flood);
        }
        if !self.ready {
            return Inbound::Dropped(DropReason::NotReady);
        }
        self.judge_content(now, from, datagram)
    }

    fn judge_content<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Inbound<'a> {
        if self.rtcp_mux && rtp::is_rtcp(datagram) {
            if !self.address_ok(now, from, false) {
                return Inbound::Dropped(DropReason::Stranger);
            }
            return Inbound::Rtcp(datagram);
        }
        let packet = match rtp::parse(datagram) {
            Ok(packet) => packet,
            Err(RtpError::BadVersion(_)) => return Inbound::Dropped(DropReason::BadVersion),
            Err(RtpError::Truncated | RtpError::BadPadding) => {
                return Inbound::Dropped(DropReason::Malformed);
            }
        };
        let kind = self.kinds[packet.payload_type as usize];
        if kind == PayloadKind::Unknown {
            return Inbound::Dropped(DropReason::UnknownPayloadType);
        }
        if !self.address_ok(now, from, true) {
            return Inbound::Dropped(DropReason::Stranger);
        }
        match self.ssrc {
            Some(current) if current != packet.ssrc => {
                let quiet = self
                    .last_accept
                    .is_none_or(|t| now.saturating_duration_since(t) >= SSRC_SWITCH_AFTER);
                if !quiet {
                    return Inbound::Dropped(DropReason::SsrcMismatch);
                }
                self.forget_ssrc();
                self.ssrc = Some(packet.ssrc);
                self.ssrc_changes += 1;
            }
            Some(_) => {}
            None => self.ssrc = Some(packet.ssrc),
        }
        let arrival = (now.saturating_duration_since(self.epoch).as_micros() as i64) * 8 / 1000;
        let verdict = if kind == PayloadKind::Event {
            self.stats.update_event(packet.sequence)
        } else {
            self.stats
                .update(packet.sequence, packet.timestamp, arrival)
        };
        match verdict {
            SeqVerdict::Duplicate => {
                self.duplicates += 1;
                return Inbound::Dropped(DropReason::Duplicate);
            }
            SeqVerdict::Jump => return Inbound::Dropped(DropReason::SequenceJump),
            SeqVerdict::Restarted => self.stream = self.stream.wrapping_add(1),
            SeqVerdict::Reordered => self.reordered += 1,
            SeqVerdict::Ok => {}
        }
        self.latch(now, from);
        self.bytes += packet.payload.len() as u64;
        match kind {
            PayloadKind::Audio(codec) => Inbound::Audio {
                codec,
                packet,
                stream: self.stream,
            },
            PayloadKind::Event => match self.dtmf.receive(packet.timestamp, packet.payload) {
                Ok(digit) => Inbound::Event {
                    packet,
                    digit,
                    stream: self.stream,
                },
                Err(_) => Inbound::Dropped(DropReason::BadEvent),
            },
            PayloadKind::ComfortNoise => Inbound::ComfortNoise,
            PayloadKind::Unknown => Inbound::Dropped(DropReason::UnknownPayloadType),
        }
    }

    /// Whether a packet from `from` may be accepted; `media` packets may latch.
    fn address_ok(&mut self, now: Instant, from: SocketAddr, media: bool) -> bool {
        match self.latched {
            Some(addr) if addr == from => true,
            Some(_) => {
                // The signalled address always wins; otherwise a stranger may take over only
                // once the latched source has gone quiet.
                let quiet = self
                    .last_accept
                    .is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_AFTER);
                if media && (Some(from) == self.signalled || (self.symmetric && quiet)) {
                    self.relatches += 1;
                    self.latched = None;
                    self.forget_ssrc();
                    true
                } else {
                    false
                }
            }
            None => {
                if self.symmetric {
                    true
                } else {
                    // Without symmetric RTP only the signalled IP may send (any port: some
                    // devices send from another port than they receive on).
                    self.signalled.is_some_and(|s| s.ip() == from.ip())
                }
            }
        }
    }

    fn latch(&mut self, now: Instant, from: SocketAddr) {
        if self.latched.is_none() {
            self.latched = Some(from);
        }
        self.last_accept = Some(now);
    }

    /// When the last packet was accepted.
    pub fn last_accept(&self) -> Option<Instant> {
        self.last_accept
    }

    /// The locked SSRC of the peer's stream.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// The sequence and jitter statistics of the current stream.
    pub fn stats(&self) -> &ReceptionStats {
        &self.stats
    }

    /// Mutable statistics, for building a report block.
    pub fn stats_mut(&mut self) -> &mut ReceptionStats {
        &mut self.stats
    }

    /// Dropped datagrams by reason.
    pub fn drops(&self) -> &DropCounts {
        &self.drops
    }

    /// Counts a datagram dropped by the driver (too large, or a bad RTCP packet).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops.count(reason);
    }

    /// Accepted SSRC changes, address re-latches, reordered and duplicate packets, and payload
    /// octets.
    pub fn counters(&self) -> (u32, u32, u64, u64, u64) {
        (
            self.ssrc_changes,
            self.relatches,
            self.reordered,
            self.duplicates,
            self.bytes,
        )
    }
}

/// Who produced the packets of a segment of our outgoing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Generated here: prompts, DTMF, comfort silence.
    Local,
    /// Relayed from another leg's incoming stream `stream`.
    Relay {
        /// The other leg's id.
        leg: u64,
        /// Its stream key (see [`Inbound::Audio::stream`]).
        stream: u32,
    },
}

/// Sequence and timestamp of one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sequence number.
    pub sequence: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The marker bit (first packet of a segment: the far end resynchronises its jitter buffer).
    pub marker: bool,
}

/// The sending half of a leg: one SSRC for the leg's life, sequence numbers and timestamps that
/// run on without a jump however often the source changes (prompt, comfort silence, one callee,
/// the next callee).
#[derive(Debug, Clone)]
pub struct TxStream {
    ssrc: u32,
    next_seq: u16,
    next_ts: u32,
    last_ts: u32,
    last_send: Option<Instant>,
    segment: Option<Source>,
    seq_offset: u16,
    ts_offset: u32,
    segment_first_seq: u16,
    packets: u64,
    octets: u64,
}

impl TxStream {
    /// A stream with the given SSRC and random initial sequence number and timestamp (RFC 3550
    /// asks for random starts).
    pub fn new(ssrc: u32, first_seq: u16, first_ts: u32) -> Self {
        TxStream {
            ssrc,
            next_seq: first_seq,
            next_ts: first_ts,
            last_ts: first_ts,
            last_send: None,
            segment: None,
            seq_offset: 0,
            ts_offset: 0,
            segment_first_seq: 0,
            packets: 0,
            octets: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Where a new segment's timestamps start: after the last packet's audio, and at least as
    /// far on as wall-clock time has moved since it was sent.
    fn continuation(&self, now: Instant) -> u32 {
        match self.last_send {
            Some(last) => {
                let elapsed = now.saturating_duration_since(last);
                let by_clock = self.last_ts.wrapping_add(samples_in(elapsed));
                if (by_clock.wrapping_sub(self.next_ts) as i32) > 0 {
                    by_clock
                } else {
                    self.next_ts
                }
            }
            None => self.next_ts,
        }
    }

    /// The timestamp for a locally generated packet, and its marker bit; starts a local
    /// segment if another source was sending.
    pub fn local_timestamp(&mut self, now: Instant) -> (u32, bool) {
        if self.segment == Some(Source::Local) {
            return (self.next_ts, false);
        }
        self.next_ts = self.continuation(now);
        self.segment = Some(Source::Local);
        (self.next_ts, true)
    }

    /// Records a locally generated packet stamped `timestamp` after which the stream's time
    /// stands at `next_ts`; returns its sequence number.
    pub fn commit_local(
        &mut self,
        now: Instant,
        timestamp: u32,
        next_ts: u32,
        octets: usize,
    ) -> u16 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.next_ts = next_ts;
        self.last_ts = timestamp;
        self.record(now, octets);
        seq
    }

    /// Maps a packet relayed from `source` onto our stream, or `None` if it predates the
    /// current segment (a late packet from before a switch, which would go backwards).
    pub fn relay(
        &mut self,
        now: Instant,
        source: Source,
        in_seq: u16,
        in_ts: u32,
        samples: u32,
        octets: usize,
    ) -> Option<Stamp> {
        let mut marker = false;
        if self.segment != Some(source) {
            let base_ts = self.continuation(now);
            self.ts_offset = base_ts.wrapping_sub(in_ts);
            self.seq_offset = self.next_seq.wrapping_sub(in_seq);
            self.segment_first_seq = in_seq;
            self.segment = Some(source);
            marker = true;
        } else if (in_seq.wrapping_sub(self.segment_first_seq) as i16) < 0 {
            return None;
        }
        let sequence = in_seq.wrapping_add(self.seq_offset);
        let timestamp = in_ts.wrapping_add(self.ts_offset);
        if (sequence.wrapping_sub(self.next_seq) as i16) >= 0 {
            self.next_seq = sequence.wrapping_add(1);
        }
        let end = timestamp.wrapping_add(samples);
        if (end.wrapping_sub(self.next_ts) as i32) > 0 {
            self.next_ts = end;
        }
        if (timestamp.wrapping_sub(self.last_ts) as i32) >= 0 {
            self.last_ts = timestamp;
        }
        self.record(now, octets);
        Some(Stamp {
            sequence,
            timestamp,
            marker,
        })
    }

    fn record(&mut self, now: Instant, octets: usize) {
        self.last_send = Some(now);
        self.packets += 1;
        self.octets += octets as u64;
    }

    /// Whether the stream's current segment is relayed from another leg (not local audio).
    pub fn relaying(&self) -> bool {
        matches!(self.segment, Some(Source::Relay { .. }))
    }

    /// When we last sent.
    pub fn last_send(&self) -> Option<Instant> {
        self.last_send
    }

    /// Packets and payload octets sent.
    pub fn sent(&self) -> (u64, u64) {
        (self.packets, self.octets)
    }

    /// The RTP timestamp that corresponds to `now` (for a sender report).
    pub fn rtp_time_at(&self, now: Instant) -> u32 {
        match self.last_send {
            Some(last) => self
                .last_ts
                .wrapping_add(samples_in(now.saturating_duration_since(last))),
            None => self.next_ts,
        }
    }
}

/// 8 kHz samples in a duration.
pub fn samples_in(d: Duration) -> u32 {
    (d.as_micros() * 8 / 1000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{OutHeader, write_packet};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + 160];
        let n = write_packet(
            &OutHeader {
                marker: false,
                payload_type: pt,
                sequence: seq,
                timestamp: ts,
                ssrc,
            },
            &[0xFF; 160],
            &mut buf,
        )
        .unwrap();
        buf.truncate(n);
        buf
    }

    fn session(now: Instant) -> RxSession {
        let mut s = RxSession::new(now, true);
        s.configure(
            addr(4000),
            &[
                (0, PayloadKind::Audio(Codec::Pcmu)),
                (101, PayloadKind::Event),
                (13, PayloadKind::ComfortNoise),
            ],
            false,
        );
        s
    }

    fn accepted(i: &Inbound<'_>) -> bool {
        matches!(i, Inbound::Audio { .. })
    }

    #[test]
    fn nothing_is_accepted_before_the_peer_is_known() {
        let t0 = Instant::now();
        let mut s = RxSession::new(t0, true);
        assert_eq!(
            s.receive(t0, addr(4000), &packet(0, 1, 0, 7)),
            Inbound::Dropped(DropReason::NotReady)
        );
        assert_eq!(s.drops().not_ready, 1);
    }

    #[test]
    fn hostile_packets_are_dropped_and_counted_by_reason() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert!(accepted(&s.receive(ms(0), addr(4000), &packet(0, 1, 0, 7))));
        // Wrong version, truncated, unknown payload type.
        let mut v1 = packet(0, 2, 160, 7);
        v1[0] = 0x40;
        assert_eq!(
            s.receive(ms(1), addr(4000), &v1),
            Inbound::Dropped(DropReason::BadVersion)
        );
        assert_eq!(
            s.receive(ms(2), addr(4000), &[0x80, 0, 1]),
            Inbound::Dropped(DropReason::Malformed)
        );
        assert_eq!(
            s.receive(ms(3), addr(4000), &packet(96, 2, 160, 7)),
            Inbound::Dropped(DropReason::UnknownPayloadType)
        );
        // A stranger's address while the source is live.
        assert_eq!(
            s.receive(ms(4), addr(6666), &packet(0, 2, 160, 7)),
            Inbound::Dropped(DropReason::Stranger)
        );
        // A sudden SSRC change interleaved with the live stream.
        assert!(accepted(&s.receive(
            ms(20),
            addr(4000),
            &packet(0, 2, 160, 7)
        )));
        assert_eq!(
            s.receive(ms(25), addr(4000), &packet(0, 900, 5000, 8)),
            Inbound::Dropped(DropReason::SsrcMismatch)
        );
        // A duplicate.
        assert_eq!(
            s.receive(ms(30), addr(4000), &packet(0, 2, 160, 7)),
            Inbound::Dropped(DropReason::Duplicate)
        );
        // A broken DTMF payload.
        let mut ev = packet(101, 3, 320, 7);
        ev.truncate(14);
        assert_eq!(
            s.receive(ms(40), addr(4000), &ev),
            Inbound::Dropped(DropReason::BadEvent)
        );
        let d = s.drops();
        assert_eq!(
            (
                d.bad_version,
                d.malformed,
                d.unknown_payload_type,
                d.stranger,
                d.ssrc_mismatch
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!((d.duplicate, d.bad_event), (1, 1));
        assert_eq!(s.stats().received(), 3);
        assert_eq!(s.send_to(), Some(addr(4000)));
    }

    #[test]
    fn a_flood_is_cut_to_the_allowed_rate() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut floods = 0;
        // 10,000 datagrams within one second.
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_micros(i as u64 * 100);
            if s.receive(now, addr(4000), &packet(0, i as u16, i * 160, 7))
                == Inbound::Dropped(DropReason::Flood)
            {
                floods += 1;
            }
        }
        assert!(floods > 9_000, "{floods}");
        assert_eq!(s.drops().flood, floods);
    }

    #[test]
    fn symmetric_rtp_latches_to_the_real_source_and_relatches_after_silence() {
        let t0 = Instant::now();
        let mut s = session(t0);
        // The peer is behind a NAT: media arrives from another address than signalled.
        assert!(accepted(&s.receive(t0, addr(5000), &packet(0, 1, 0, 7))));
        assert_eq!(s.send_to(), Some(addr(5000)));
        // After a long silence, a new address takes over (NAT rebinding).
        let later = t0 + Duration::from_secs(2);
        assert!(accepted(&s.receive(
            later,
            addr(5002),
            &packet(0, 2, 160, 7)
        )));
        assert_eq!(s.send_to(), Some(addr(5002)));
        assert_eq!(s.counters().1, 1);
    }

    #[test]
    fn a_real_ssrc_change_is_followed_after_a_gap() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.receive(t0, addr(4000), &packet(0, 1, 0, 7));
        let later = t0 + Duration::from_millis(100);
        assert!(accepted(&s.receive(
            later,
            addr(4000),
            &packet(0, 500, 9000, 9)
        )));
        assert_eq!(s.ssrc(), Some(9));
        assert_eq!(s.counters().0, 1);
    }

    #[test]
    fn reordered_packets_are_kept_and_counted() {
        let t0 = Instant::now();
        let mut s = session(t0);
        for (i, seq) in [1u16, 3, 2, 4].iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 20);
            assert!(accepted(&s.receive(
                now,
                addr(4000),
                &packet(0, *seq, *seq as u32 * 160, 7)
            )));
        }
        assert_eq!(s.counters().2, 1);
        assert_eq!(s.stats().lost(), 0);
    }

    #[test]
    fn dtmf_is_reported_once_per_event() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut digits = vec![];
        for i in 0..6u16 {
            let mut p = packet(101, 10 + i, 800, 7);
            p.truncate(12);
            p.extend_from_slice(&[5, if i >= 3 { 0x8A } else { 0x0A }, 0, 160]);
            if let Inbound::Event { digit: Some(d), .. } =
                s.receive(t0 + Duration::from_millis(i as u64 * 20), addr(4000), &p)
            {
                digits.push(d);
            }
        }
        assert_eq!(digits, vec!['5']);
    }

    #[test]
    fn relayed_streams_continue_without_a_jump() {
        let t0 = Instant::now();
        let mut tx = TxStream::new(1, 100, 1000);
        // Comfort silence: two local packets.
        for i in 0..2u64 {
            let now = t0 + Duration::from_millis(20 * i);
            let (ts, _) = tx.local_timestamp(now);
            tx.commit_local(now, ts, ts + 160, 160);
        }
        assert_eq!(tx.local_timestamp(t0).0, 1320);
        // The first callee arrives 20 ms later with its own numbering.
        let call1 = Source::Relay { leg: 7, stream: 0 };
        let now = t0 + Duration::from_millis(40);
        let s = tx.relay(now, call1, 5000, 777_000, 160, 160).unwrap();
        assert_eq!((s.sequence, s.timestamp, s.marker), (102, 1320, true));
        let s = tx
            .relay(
                now + Duration::from_millis(20),
                call1,
                5001,
                777_160,
                160,
                160,
            )
            .unwrap();
        assert_eq!((s.sequence, s.timestamp, s.marker), (103, 1480, false));
        // A packet lost in the callee's network: the gap carries through.
        let s = tx
            .relay(
                now + Duration::from_millis(60),
                call1,
                5003,
                777_480,
                160,
                160,
            )
            .unwrap();
        assert_eq!((s.sequence, s.timestamp), (105, 1800));
        // The next call, one second later: timestamps move on by the wall-clock gap.
        let call2 = Source::Relay { leg: 8, stream: 0 };
        let later = now + Duration::from_millis(1060);
        let s = tx.relay(later, call2, 1, 42, 160, 160).unwrap();
        assert_eq!(
            (s.sequence, s.timestamp, s.marker),
            (106, 1800 + 8000, true)
        );
        // A late packet of call 2 from before its first one is dropped.
        assert_eq!(
            tx.relay(later, call2, 0, 42u32.wrapping_sub(160), 160, 160),
            None
        );
    }
}
