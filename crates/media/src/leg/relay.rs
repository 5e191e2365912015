//! The bridge's relay: a packet received on one leg is rewritten onto the other leg's
//! outgoing stream and sent straight out of its socket, on the receiving leg's loop thread.
//! Nothing crosses a channel or waits in a buffer.

use std::borrow::Cow;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tokio::time::Instant;

use super::{LegInner, TxPart};
use crate::outbox;
use crate::rtp::{self, OutHeader};
use crate::session::{Inbound, Source};
use crate::sys::{MAX_DATAGRAM, lock, send_now};

impl LegInner {
    /// Sends a packet relayed from leg `from` out of this leg (called on the other leg's task,
    /// holding that leg's receive lock: lock order is always rx before tx).
    pub(super) fn relay_in(self: &Arc<Self>, now: Instant, from: u64, inbound: &Inbound<'_>) {
        let mut tx = lock(&self.tx);
        if !tx.jobs.is_empty() {
            // A prompt or DTMF is playing to this side: it has the floor.
            return;
        }
        let Some(remote) = tx.remote else {
            return;
        };
        let (packet, samples, pt, source_codec, stream) = match *inbound {
            Inbound::Audio {
                codec,
                packet,
                stream,
            } => (
                packet,
                packet.payload.len() as u32,
                tx.payload_type,
                Some(codec),
                stream,
            ),
            Inbound::Event { packet, stream, .. } => match tx.dtmf_pt {
                Some(pt) => (packet, 0, pt, None, stream),
                None => return,
            },
            _ => return,
        };
        let source = Source::Relay { leg: from, stream };
        let Some(stamp) = tx.stream.relay(
            now.into_std(),
            source,
            packet.sequence,
            packet.timestamp,
            samples,
            packet.payload.len(),
        ) else {
            return;
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let header = OutHeader {
            marker: stamp.marker || packet.marker,
            payload_type: pt,
            sequence: stamp.sequence,
            timestamp: stamp.timestamp,
            ssrc: tx.stream.ssrc(),
        };
        let Some(n) = rtp::write_packet(&header, packet.payload, &mut buf) else {
            return;
        };
        if let Some(codec) = source_codec {
            codec.transcode_in_place(&mut buf[rtp::HEADER_LEN..n], tx.codec);
        }
        let Some(wire) = tx.seal_rtp(&buf[..n]) else {
            return;
        };
        // On an io_uring receive loop the send joins the batch's; elsewhere it goes now.
        if !outbox::queue_send(self, self.rtp.as_raw_fd(), &wire, remote)
            && send_now(&self.rtp, &wire, remote).is_err()
        {
            tx.send_errors += 1;
        }
        tx.sent_since_report = true;
    }
}

impl TxPart {
    /// An RTP packet as it goes on the wire: SRTP-protected when the leg has keys. `None`
    /// (counted as a send error) when protection fails, which only a context past 2^48
    /// packets does.
    pub(crate) fn seal_rtp<'a>(&mut self, packet: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        self.seal(packet, false)
    }

    /// An RTCP packet as it goes on the wire (SRTCP when the leg has keys).
    pub(crate) fn seal_rtcp<'a>(&mut self, packet: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        self.seal(packet, true)
    }

    fn seal<'a>(&mut self, packet: &'a [u8], rtcp: bool) -> Option<Cow<'a, [u8]>> {
        let Some(srtp) = self.srtp.as_mut() else {
            return Some(Cow::Borrowed(packet));
        };
        let sealed = if rtcp {
            srtp.protect_rtcp(packet)
        } else {
            srtp.protect_rtp(packet)
        };
        match sealed {
            Ok(sealed) => Some(Cow::Owned(sealed.into())),
            Err(err) => {
                tracing::warn!(%err, "SRTP protection failed, packet not sent");
                self.send_errors += 1;
                None
            }
        }
    }

    pub(crate) fn set_relay_attached(&mut self, attached: bool, now: Instant) {
        self.relay_attached = attached;
        if !attached && self.comfort_silence && self.next_due.is_none() {
            self.next_due = Some(now);
        }
    }
}
