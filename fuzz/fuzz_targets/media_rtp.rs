//! The RTP/RTCP receive path of a leg: every datagram a stranger can send to an RTP port goes
//! through `RxSession::receive` (version, header, padding, payload type, address and SSRC
//! checks, sequence tracking, RFC 4733 parsing), then RTCP parsing and the playout buffer.
//! The input is split into datagrams by a length prefix, so sequences of packets (reordering,
//! SSRC changes, floods) are explored too.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media::Codec;
use media::playout::Playout;
use media::session::{Inbound, PayloadKind, RxSession};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let peer = SocketAddr::from(([127, 0, 0, 1], 4000));
    let stranger = SocketAddr::from(([127, 0, 0, 2], 4000));
    let mut session = RxSession::new(t0, true);
    session.configure(
        peer,
        &[
            (0, PayloadKind::Audio(Codec::Pcmu)),
            (8, PayloadKind::Audio(Codec::Pcma)),
            (101, PayloadKind::Event),
            (13, PayloadKind::ComfortNoise),
        ],
        data.first().is_some_and(|b| b & 1 == 1),
    );
    let mut playout = Playout::default();
    let mut rest = data;
    let mut step = 0u64;
    while rest.len() >= 2 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let datagram = &rest[2..2 + len];
        rest = &rest[2 + len..];
        step += 1;
        let now = t0 + Duration::from_millis(step * 7);
        let from = if step % 5 == 0 { stranger } else { peer };
        // Every datagram also goes to the RTCP parser, as on the RTCP port.
        let _ = media::rtcp::parse(datagram, 0x1234_5678);
        match session.receive(now, from, datagram) {
            Inbound::Audio { codec, packet, .. } => {
                let mut pcm = [0i16; 1500];
                let n = codec.decode(packet.payload, &mut pcm);
                playout.push(now, packet.timestamp, &pcm[..n], &mut |s, _| {
                    assert!(s.len() <= media::playout::MAX_FRAME);
                });
            }
            Inbound::Rtcp(bytes) => {
                let _ = media::rtcp::parse(bytes, 0x1234_5678);
            }
            _ => {}
        }
        let _ = playout.tick(now, &mut |_, _| {});
    }
    let _ = session.stats().lost();
});
