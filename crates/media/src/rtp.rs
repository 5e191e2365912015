//! The RTP wire format on `rtc::rtp` (the `rtc-rtp` crate it re-exports): parsing a datagram without copying its payload, and
//! writing a packet into a caller's buffer without allocating.

use rtc_rtp::header::Header;
use rtc_shared::marshal::{Marshal, MarshalSize, Unmarshal};

/// The fixed RTP header length.
pub const HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header, or its CSRC list or extension runs past the end.
    #[error("truncated RTP header")]
    Truncated,
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding length byte claims more padding than the packet holds.
    #[error("RTP padding longer than the payload")]
    BadPadding,
}

/// One parsed RTP packet that borrows its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (start of a talk spurt for audio, start of a DTMF event).
    pub marker: bool,
    /// The payload type.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp (8 kHz for G.711 and telephone-event).
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
    /// The payload, padding removed.
    pub payload: &'a [u8],
}

/// Whether a datagram on a multiplexed port is RTCP rather than RTP (RFC 5761: the second byte,
/// read as an RTP marker+payload type, falls in 192..=223 for RTCP packet types 192-223).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

/// Parses an RTP datagram.
pub fn parse(datagram: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    if datagram.len() < HEADER_LEN {
        return Err(RtpError::Truncated);
    }
    let version = datagram[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let mut cursor = datagram;
    let header = Header::unmarshal(&mut cursor).map_err(|_| RtpError::Truncated)?;
    let mut payload = cursor;
    if header.padding {
        let Some(&pad) = payload.last() else {
            return Err(RtpError::BadPadding);
        };
        let pad = pad as usize;
        if pad == 0 || pad > payload.len() {
            return Err(RtpError::BadPadding);
        }
        payload = &payload[..payload.len() - pad];
    }
    Ok(RtpPacket {
        marker: header.marker,
        payload_type: header.payload_type,
        sequence: header.sequence_number,
        timestamp: header.timestamp,
        ssrc: header.ssrc,
        payload,
    })
}

/// The header fields of a packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutHeader {
    /// The marker bit.
    pub marker: bool,
    /// The payload type.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// Our synchronization source.
    pub ssrc: u32,
}

/// Writes the 12-byte header into `buf` and returns its length; the payload goes after it.
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`]; callers pass a stack buffer of fixed size.
pub fn write_header(out: &OutHeader, buf: &mut [u8]) -> usize {
    let header = Header {
        version: 2,
        marker: out.marker,
        payload_type: out.payload_type & 0x7F,
        sequence_number: out.sequence,
        timestamp: out.timestamp,
        ssrc: out.ssrc,
        ..Default::default()
    };
    debug_assert_eq!(header.marshal_size(), HEADER_LEN);
    match header.marshal_to(&mut buf[..HEADER_LEN]) {
        Ok(n) => n,
        // A plain 12-byte header into a 12-byte slice cannot fail.
        Err(_) => unreachable!("a 12-byte RTP header always fits 12 bytes"),
    }
}

/// Writes a whole packet (header then payload) into `buf`, returning its length, or `None` if
/// it does not fit.
pub fn write_packet(out: &OutHeader, payload: &[u8], buf: &mut [u8]) -> Option<usize> {
    let total = HEADER_LEN + payload.len();
    if buf.len() < total {
        return None;
    }
    write_header(out, buf);
    buf[HEADER_LEN..total].copy_from_slice(payload);
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OutHeader {
        OutHeader {
            marker: true,
            payload_type: 8,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
        }
    }

    #[test]
    fn a_written_packet_parses_back() {
        let mut buf = [0u8; 64];
        let n = write_packet(&sample(), &[1, 2, 3], &mut buf).unwrap();
        assert_eq!(n, 15);
        let p = parse(&buf[..n]).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 65535);
        assert_eq!(p.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.ssrc, 0x0102_0304);
        assert_eq!(p.payload, &[1, 2, 3]);
        assert!(!is_rtcp(&buf[..n]));
    }

    #[test]
    fn broken_packets_are_rejected_with_a_reason() {
        let mut buf = [0u8; 64];
        let n = write_packet(&sample(), &[1, 2, 3, 4], &mut buf).unwrap();
        assert_eq!(parse(&buf[..11]), Err(RtpError::Truncated));
        let mut v1 = buf;
        v1[0] = 0x40;
        assert_eq!(parse(&v1[..n]), Err(RtpError::BadVersion(1)));
        // Four CSRCs announced, none present.
        let mut cc = buf;
        cc[0] |= 0x04;
        assert_eq!(parse(&cc[..n]), Err(RtpError::Truncated));
        // Padding of 200 bytes in a 4-byte payload.
        let mut pad = buf;
        pad[0] |= 0x20;
        pad[n - 1] = 200;
        assert_eq!(parse(&pad[..n]), Err(RtpError::BadPadding));
        // An extension header that runs past the end.
        let mut ext = buf;
        ext[0] |= 0x10;
        assert_eq!(parse(&ext[..14]), Err(RtpError::Truncated));
    }

    #[test]
    fn padding_and_csrcs_are_skipped() {
        let mut buf = vec![0x80 | 0x20 | 0x01, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        buf.extend_from_slice(&[7, 7, 0, 0, 3]); // payload 7 7, padding 3
        let p = parse(&buf).unwrap();
        assert_eq!(p.payload, &[7, 7]);
    }

    #[test]
    fn rtcp_is_told_apart_on_a_muxed_port() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(!is_rtcp(&[0x80, 0x00]));
        assert!(!is_rtcp(&[0x80, 0x80 | 101]));
    }
}
