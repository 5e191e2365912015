//! RFC 4733 telephone-event: DTMF digits carried as RTP events, received and sent.

/// Why a telephone-event payload or a digit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// The payload is shorter than the 4 bytes of an event.
    #[error("telephone-event payload shorter than 4 bytes")]
    Truncated,
    /// The event code is not a DTMF digit (0-15).
    #[error("telephone-event {0} is not a DTMF digit")]
    NotDtmf(u8),
    /// The character is not one of 0-9, *, #, A-D.
    #[error("{0:?} is not a DTMF digit")]
    BadDigit(char),
}

/// The event code of a DTMF character (RFC 4733 section 3.2).
pub fn event_of(digit: char) -> Result<u8, DtmfError> {
    match digit {
        '0'..='9' => Ok(digit as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        'A'..='D' => Ok(12 + (digit as u8 - b'A')),
        'a'..='d' => Ok(12 + (digit as u8 - b'a')),
        _ => Err(DtmfError::BadDigit(digit)),
    }
}

/// The DTMF character of an event code.
pub fn digit_of(event: u8) -> Result<char, DtmfError> {
    match event {
        0..=9 => Ok((b'0' + event) as char),
        10 => Ok('*'),
        11 => Ok('#'),
        12..=15 => Ok((b'A' + event - 12) as char),
        _ => Err(DtmfError::NotDtmf(event)),
    }
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// The event code (0-15 for DTMF).
    pub event: u8,
    /// The end bit: this is one of the (usually three) final packets of the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Parses the first 4 bytes of a telephone-event payload.
    pub fn parse(payload: &[u8]) -> Result<EventPayload, DtmfError> {
        if payload.len() < 4 {
            return Err(DtmfError::Truncated);
        }
        Ok(EventPayload {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3F,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// The 4 payload bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Turns a stream of telephone-event packets into digits, each reported once although it is
/// carried by many packets (updates and three end packets, any of which may be lost).
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    /// RTP timestamp and event of the event last reported: every packet of one event shares them.
    current: Option<(u32, u8)>,
}

impl DtmfReceiver {
    /// Takes one telephone-event packet and returns the digit if it starts a new event.
    pub fn receive(&mut self, timestamp: u32, payload: &[u8]) -> Result<Option<char>, DtmfError> {
        let event = EventPayload::parse(payload)?;
        let digit = digit_of(event.event)?;
        if self.current == Some((timestamp, event.event)) {
            return Ok(None);
        }
        self.current = Some((timestamp, event.event));
        Ok(Some(digit))
    }
}

/// Volume of the digits we send, in -dBm0 (RFC 4733 suggests levels around -10 dBm0).
const SEND_VOLUME: u8 = 10;
/// How many times the end packet is sent (RFC 4733 section 2.5.1.4).
const END_REPEATS: u8 = 3;

/// Generates the packets of one digit: a first packet with the marker bit, updates every packet
/// interval with a growing duration, then three end packets. All share one RTP timestamp.
#[derive(Debug, Clone)]
pub struct DtmfTone {
    event: u8,
    total: u16,
    step: u16,
    sent: u16,
    ends_sent: u8,
}

impl DtmfTone {
    /// A tone for `digit` lasting `duration_samples`, with a packet every `step_samples`.
    pub fn new(digit: char, duration_samples: u16, step_samples: u16) -> Result<Self, DtmfError> {
        Ok(DtmfTone {
            event: event_of(digit)?,
            total: duration_samples.max(step_samples),
            step: step_samples.max(1),
            sent: 0,
            ends_sent: 0,
        })
    }

    /// The next packet: (marker, payload), or `None` when the tone is over.
    pub fn next_packet(&mut self) -> Option<(bool, [u8; 4])> {
        if self.ends_sent >= END_REPEATS {
            return None;
        }
        let first = self.sent == 0;
        self.sent = self.sent.saturating_add(self.step).min(self.total);
        let end = self.sent >= self.total;
        if end {
            self.ends_sent += 1;
        }
        let payload = EventPayload {
            event: self.event,
            end,
            volume: SEND_VOLUME,
            duration: self.sent,
        };
        Some((first, payload.to_bytes()))
    }

    /// The tone's duration in timestamp units.
    pub fn duration(&self) -> u16 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_both_ways() {
        for (i, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(event_of(c), Ok(i as u8));
            assert_eq!(digit_of(i as u8), Ok(c));
        }
        assert_eq!(event_of('x'), Err(DtmfError::BadDigit('x')));
        assert_eq!(digit_of(16), Err(DtmfError::NotDtmf(16)));
    }

    #[test]
    fn a_sent_tone_is_received_as_one_digit() {
        let mut tone = DtmfTone::new('7', 800, 160).unwrap();
        let mut rx = DtmfReceiver::default();
        let mut digits = vec![];
        let mut packets = vec![];
        while let Some((marker, payload)) = tone.next_packet() {
            packets.push((marker, EventPayload::parse(&payload).unwrap()));
            if let Some(d) = rx.receive(4000, &payload).unwrap() {
                digits.push(d);
            }
        }
        assert_eq!(digits, vec!['7']);
        // 5 updates (the last being the first end packet) + 2 more end packets.
        assert_eq!(packets.len(), 7);
        assert!(packets[0].0);
        assert!(packets[1..].iter().all(|(m, _)| !m));
        assert_eq!(packets.iter().filter(|(_, p)| p.end).count(), 3);
        assert_eq!(packets.last().unwrap().1.duration, 800);
        // The same digit again is a new event (new timestamp).
        assert_eq!(
            rx.receive(
                9000,
                &EventPayload {
                    event: 7,
                    end: false,
                    volume: 10,
                    duration: 160
                }
                .to_bytes()
            ),
            Ok(Some('7'))
        );
    }

    #[test]
    fn broken_payloads_are_errors() {
        let mut rx = DtmfReceiver::default();
        assert_eq!(rx.receive(0, &[1, 2]), Err(DtmfError::Truncated));
        assert_eq!(rx.receive(0, &[40, 0, 0, 160]), Err(DtmfError::NotDtmf(40)));
    }
}
