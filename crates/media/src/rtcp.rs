//! RTCP on `rtc::rtcp` (the `rtc-rtcp` crate it re-exports): reception statistics per RFC 3550 (appendix A.1 sequence tracking, A.3
//! loss, A.8 interarrival jitter), sender/receiver reports, and what the peer reports back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::packet::Packet;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};

const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// What the sequence tracker made of one packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// In order, or after a gap (loss).
    Ok,
    /// Older than the highest seen but not seen before: reordered, still usable.
    Reordered,
    /// Seen before: a duplicate, to be dropped.
    Duplicate,
    /// A jump too large to be loss: the tracker restarted from this packet.
    Restarted,
    /// A jump too large to be loss, not (yet) confirmed by the next packet: dropped.
    Jump,
}

/// Reception statistics of one source (RFC 3550 appendix A).
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: Option<u16>,
    /// Bit i set: sequence `max_seq - i` was received (duplicate detection).
    seen: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in timestamp units, scaled by 16 as in RFC 3550 A.8.
    jitter_q4: u32,
    last_transit: Option<i64>,
    /// Middle 32 bits of the NTP time of the last sender report from this source.
    last_sr: u32,
    last_sr_at: Option<Instant>,
}

impl ReceptionStats {
    /// Records the arrival of audio packet `seq` with timestamp `rtp_ts`, `arrival` expressed
    /// in the same 8 kHz units (any fixed origin): its sequence and its transit time.
    pub fn update(&mut self, seq: u16, rtp_ts: u32, arrival_ts: i64) -> SeqVerdict {
        self.track(seq, Some((rtp_ts, arrival_ts)))
    }

    /// Records the arrival of a telephone-event packet `seq`: its sequence only. An event's
    /// packets all carry the event's start timestamp, so their transit grows with the event's
    /// length and would count as jitter (RFC 3550 A.8 estimates it on the audio alone).
    pub fn update_event(&mut self, seq: u16) -> SeqVerdict {
        self.track(seq, None)
    }

    fn track(&mut self, seq: u16, timing: Option<(u32, i64)>) -> SeqVerdict {
        if !self.started {
            self.restart(seq);
            if let Some((rtp_ts, arrival_ts)) = timing {
                self.note_transit(rtp_ts, arrival_ts);
            }
            return SeqVerdict::Ok;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        let verdict = if delta == 0 {
            return SeqVerdict::Duplicate;
        } else if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            let shifted = if delta >= 64 { 0 } else { self.seen << delta };
            self.seen = shifted | 1;
            self.max_seq = seq;
            self.bad_seq = None;
            SeqVerdict::Ok
        } else if delta as u32 <= RTP_SEQ_MOD - MAX_MISORDER as u32 {
            // A very large jump: accept it only if the next packet follows it (the source
            // restarted), as RFC 3550 A.1 does.
            if self.bad_seq == Some(seq) {
                self.restart(seq);
                SeqVerdict::Restarted
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return SeqVerdict::Jump;
            }
        } else {
            let back = self.max_seq.wrapping_sub(seq) as u32;
            if back < 64 {
                let bit = 1u64 << back;
                if self.seen & bit != 0 {
                    return SeqVerdict::Duplicate;
                }
                self.seen |= bit;
            }
            SeqVerdict::Reordered
        };
        if verdict != SeqVerdict::Restarted {
            self.received += 1;
        }
        if let Some((rtp_ts, arrival_ts)) = timing {
            self.note_transit(rtp_ts, arrival_ts);
        }
        verdict
    }

    fn restart(&mut self, seq: u16) {
        let keep_jitter = self.jitter_q4;
        *self = ReceptionStats {
            started: true,
            max_seq: seq,
            base_seq: seq as u32,
            seen: 1,
            received: 1,
            jitter_q4: keep_jitter,
            last_sr: self.last_sr,
            last_sr_at: self.last_sr_at,
            ..Default::default()
        };
    }

    fn note_transit(&mut self, rtp_ts: u32, arrival_ts: i64) {
        let transit = arrival_ts.wrapping_sub(rtp_ts as i64);
        if let Some(last) = self.last_transit {
            // Timestamps wrap at 2^32: fold the difference into the i32 range.
            let d = (transit.wrapping_sub(last) as i32).unsigned_abs();
            let d = d.min(1 << 24);
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_q4 = (self.jitter_q4 as i64 + d as i64 - ((self.jitter_q4 as i64 + 8) >> 4))
                .clamp(0, u32::MAX as i64) as u32;
        }
        self.last_transit = Some(transit);
    }

    /// Forgets the source (after an SSRC change).
    pub fn reset(&mut self) {
        *self = ReceptionStats::default();
    }

    /// Packets received (not counting duplicates).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The extended highest sequence number received.
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(self.max_seq as u32)
    }

    /// Packets expected from the first to the highest sequence number.
    pub fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.cycles as u64 + self.max_seq as u64 + 1).saturating_sub(self.base_seq as u64)
    }

    /// Cumulative packets lost (expected minus received; negative with duplicates, clamped).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Records a sender report's NTP time (to echo it as LSR) and when it arrived.
    pub fn note_sender_report(&mut self, ntp_time: u64, at: Instant) {
        self.last_sr = (ntp_time >> 16) as u32;
        self.last_sr_at = Some(at);
    }

    /// The reception report block for this source, advancing the interval counters.
    pub fn report_block(&mut self, ssrc: u32, now: Instant) -> ReceptionReport {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior.min(expected);
        let received_interval = self.received - self.received_prior.min(self.received);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let delay = self
            .last_sr_at
            .map(|at| ntp_short(now.saturating_duration_since(at)))
            .unwrap_or(0);
        ReceptionReport {
            ssrc,
            fraction_lost,
            // 24-bit signed on the wire; rtc masks it.
            total_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0xFF_FFFF,
            last_sequence_number: self.extended_max(),
            jitter: self.jitter(),
            last_sender_report: self.last_sr,
            delay,
        }
    }
}

/// A duration in the NTP short format (16.16 seconds), as DLSR is carried.
fn ntp_short(d: Duration) -> u32 {
    ((d.as_secs() << 16) + ((d.subsec_nanos() as u64) << 16) / 1_000_000_000) as u32
}

/// The current wall-clock time in the 64-bit NTP format.
pub fn ntp_now() -> u64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_unix.as_secs() + 2_208_988_800;
    let frac = ((since_unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Our sending side, as an SR reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderInfo {
    /// Our SSRC.
    pub ssrc: u32,
    /// The RTP timestamp that corresponds to now on our stream.
    pub rtp_time: u32,
    /// Packets sent so far.
    pub packets: u32,
    /// Payload octets sent so far.
    pub octets: u32,
    /// Whether we sent RTP since the last report (SR instead of RR).
    pub sent_recently: bool,
}

/// Builds a compound report: SR or RR (with a block for `remote` if we receive), then SDES CNAME.
pub fn build_report(
    sender: &SenderInfo,
    remote: Option<(u32, &mut ReceptionStats)>,
    cname: &str,
    now: Instant,
) -> Option<Bytes> {
    let reports: Vec<ReceptionReport> = remote
        .map(|(ssrc, stats)| vec![stats.report_block(ssrc, now)])
        .unwrap_or_default();
    let first: Box<dyn Packet> = if sender.sent_recently {
        Box::new(SenderReport {
            ssrc: sender.ssrc,
            ntp_time: ntp_now(),
            rtp_time: sender.rtp_time,
            packet_count: sender.packets,
            octet_count: sender.octets,
            reports,
            profile_extensions: Bytes::new(),
        })
    } else {
        Box::new(ReceiverReport {
            ssrc: sender.ssrc,
            reports,
            profile_extensions: Bytes::new(),
        })
    };
    let sdes = cname_packet(sender.ssrc, cname);
    rtc_rtcp::packet::marshal(&[first, sdes])
        .ok()
        .map(|b| b.freeze())
}

/// The SDES packet with our CNAME that every compound report carries.
fn cname_packet(ssrc: u32, cname: &str) -> Box<dyn Packet> {
    Box::new(SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::copy_from_slice(cname.as_bytes()),
            }],
        }],
    })
}

/// Builds a BYE for our SSRC, sent when a leg closes.
pub fn build_bye(ssrc: u32, cname: &str) -> Option<Bytes> {
    let rr: Box<dyn Packet> = Box::new(ReceiverReport {
        ssrc,
        reports: vec![],
        profile_extensions: Bytes::new(),
    });
    let sdes = cname_packet(ssrc, cname);
    let bye: Box<dyn Packet> = Box::new(Goodbye {
        sources: vec![ssrc],
        reason: Bytes::new(),
    });
    rtc_rtcp::packet::marshal(&[rr, sdes, bye])
        .ok()
        .map(|b| b.freeze())
}

/// What the peer told us in one RTCP datagram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtcpInfo {
    /// A sender report from the peer: its SSRC and NTP time.
    pub sender_report: Option<(u32, u64)>,
    /// The peer's reception report about our stream (its view of our loss and jitter).
    pub report_about_us: Option<ReceptionReport>,
    /// The peer said goodbye.
    pub bye: bool,
}

/// Why an RTCP datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed RTCP: {0}")]
pub struct RtcpError(String);

/// Parses an RTCP datagram and extracts what matters for a leg whose SSRC is `our_ssrc`.
pub fn parse(datagram: &[u8], our_ssrc: u32) -> Result<RtcpInfo, RtcpError> {
    // RTCP is always version 2 and at least a 4-byte header; reject others before parsing.
    if datagram.len() < 4 || datagram[0] >> 6 != 2 {
        return Err(RtcpError("not an RTCP version 2 packet".into()));
    }
    let mut buf = datagram;
    let packets = rtc_rtcp::packet::unmarshal(&mut buf).map_err(|e| RtcpError(e.to_string()))?;
    let mut info = RtcpInfo::default();
    for packet in &packets {
        let any = packet.as_any();
        if let Some(sr) = any.downcast_ref::<SenderReport>() {
            info.sender_report = Some((sr.ssrc, sr.ntp_time));
            if let Some(r) = sr.reports.iter().find(|r| r.ssrc == our_ssrc) {
                info.report_about_us = Some(r.clone());
            }
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            if let Some(r) = rr.reports.iter().find(|r| r.ssrc == our_ssrc) {
                info.report_about_us = Some(r.clone());
            }
        } else if any.downcast_ref::<Goodbye>().is_some() {
            info.bye = true;
        }
    }
    Ok(info)
}

/// The round-trip time from a report block about us (RFC 3550 section 6.4.1), if it echoes an SR.
pub fn round_trip(report: &ReceptionReport, arrival_ntp: u64) -> Option<Duration> {
    if report.last_sender_report == 0 {
        return None;
    }
    let arrival = (arrival_ntp >> 16) as u32;
    let rtt = arrival
        .wrapping_sub(report.last_sender_report)
        .wrapping_sub(report.delay);
    // Anything above a minute is a clock or parsing artefact, not a round trip.
    if rtt > 60 << 16 {
        return None;
    }
    Some(Duration::from_micros(((rtt as u64) * 1_000_000) >> 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stats: &mut ReceptionStats, seqs: &[u16]) -> Vec<SeqVerdict> {
        seqs.iter()
            .map(|&s| stats.update(s, s as u32 * 160, s as i64 * 160))
            .collect()
    }

    #[test]
    fn loss_reorder_and_duplicates_are_told_apart() {
        let mut s = ReceptionStats::default();
        let v = feed(&mut s, &[10, 11, 13, 12, 12, 14, 17]);
        use SeqVerdict::*;
        assert_eq!(v, vec![Ok, Ok, Ok, Reordered, Duplicate, Ok, Ok]);
        assert_eq!(s.expected(), 8);
        assert_eq!(s.received(), 6);
        assert_eq!(s.lost(), 2);
        let block = s.report_block(7, Instant::now());
        assert_eq!(block.total_lost, 2);
        assert_eq!(block.fraction_lost, (2 * 256 / 8) as u8);
        assert_eq!(block.last_sequence_number, 17);
        // No new packets: the next interval reports no loss.
        assert_eq!(s.report_block(7, Instant::now()).fraction_lost, 0);
    }

    #[test]
    fn sequence_wrap_counts_cycles() {
        let mut s = ReceptionStats::default();
        feed(&mut s, &[65534, 65535, 0, 1]);
        assert_eq!(s.extended_max(), 65536 + 1);
        assert_eq!(s.expected(), 4);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn a_restarted_source_is_followed_after_two_packets() {
        let mut s = ReceptionStats::default();
        feed(&mut s, &[100, 101]);
        assert_eq!(s.update(40000, 0, 0), SeqVerdict::Jump);
        assert_eq!(s.update(40001, 160, 160), SeqVerdict::Restarted);
        assert_eq!(s.update(40002, 320, 320), SeqVerdict::Ok);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn telephone_events_leave_the_jitter_alone() {
        // 20 ms audio packets arriving on time, then a 2-second key press (100 event packets,
        // one start timestamp), then audio again: the jitter stays that of the audio.
        let mut s = ReceptionStats::default();
        let mut seq = 0u16;
        let mut at = 0i64;
        for _ in 0..50 {
            s.update(seq, at as u32, at + 3);
            seq += 1;
            at += 160;
        }
        let before = s.jitter();
        for _ in 0..100 {
            s.update_event(seq);
            seq += 1;
            at += 160;
        }
        for _ in 0..50 {
            s.update(seq, at as u32, at + 3);
            seq += 1;
            at += 160;
        }
        assert!(s.jitter() <= before + 1, "{} after {before}", s.jitter());
        assert_eq!(s.received(), 200);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn jitter_follows_rfc_3550() {
        let mut s = ReceptionStats::default();
        // Packets 20 ms apart in media time, arriving alternately 0 and 80 units (10 ms) late.
        for i in 0..400u16 {
            let late = if i % 2 == 0 { 0 } else { 80 };
            s.update(i, i as u32 * 160, i as i64 * 160 + late);
        }
        // |D| is always 80; J converges to 80.
        assert!((75..=80).contains(&s.jitter()), "{}", s.jitter());
    }

    #[test]
    fn reports_round_trip_through_rtc() {
        let mut stats = ReceptionStats::default();
        feed(&mut stats, &[1, 2, 4]);
        let now = Instant::now();
        stats.note_sender_report(0x1234_5678_9ABC_DEF0, now);
        let sender = SenderInfo {
            ssrc: 42,
            rtp_time: 8000,
            packets: 50,
            octets: 8000,
            sent_recently: true,
        };
        let bytes = build_report(&sender, Some((99, &mut stats)), "dialer", now).unwrap();
        // Seen from the peer whose SSRC is 99: a report about its stream.
        let info = parse(&bytes, 99).unwrap();
        assert_eq!(info.sender_report.map(|(ssrc, _)| ssrc), Some(42));
        let about = info.report_about_us.unwrap();
        assert_eq!(about.total_lost, 1);
        assert_eq!(about.last_sender_report, 0x5678_9ABC);
        let rr = build_report(
            &SenderInfo {
                sent_recently: false,
                ..sender
            },
            None,
            "x",
            now,
        )
        .unwrap();
        assert_eq!(parse(&rr, 99).unwrap().sender_report, None);
        assert!(parse(&build_bye(42, "x").unwrap(), 1).unwrap().bye);
        assert!(parse(&[0x80, 200, 0], 1).is_err());
        assert!(parse(&[0x40, 200, 0, 0], 1).is_err());
    }

    #[test]
    fn round_trip_time_from_lsr_and_dlsr() {
        let report = ReceptionReport {
            last_sender_report: 0x0001_0000, // 1 s
            delay: 0x0000_8000,              // 0.5 s
            ..Default::default()
        };
        let arrival = (0x0001_C000u64) << 16; // 1.75 s
        let rtt = round_trip(&report, arrival).unwrap();
        assert_eq!(rtt, Duration::from_millis(250));
    }
}
