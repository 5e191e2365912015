//! SRTP legs over real UDP sockets on loopback: two phones speaking SRTP, each keyed by its
//! own SDES keys, bridged through two SRTP legs; audio crosses both ways intact, RTCP is SRTCP
//! both ways, and forged, replayed and plain packets are counted and dropped without
//! disturbing the call. Each check runs on each receive loop backend.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use media::rtp::{self, OutHeader};
use media::srtp::{Protector, SrtpConfig, SrtpKey, SrtpSuite, Unprotector};
use media::{Bridge, Codec, LegOptions, MediaRuntime, PortAllocator, RemoteMedia};
use tokio::net::UdpSocket;

mod support;
use support::on_each_backend;

fn ports() -> PortAllocator {
    PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap()
}

fn random_key(suite: SrtpSuite, seed: u8) -> SrtpKey {
    let bytes: Vec<u8> = (0..suite.key_salt_len())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
        .collect();
    SrtpKey::new(&bytes)
}

/// A phone speaking SRTP: its key protects what it sends, the leg's what it receives.
struct SrtpPhone {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    ssrc: u32,
    seq: std::cell::Cell<u16>,
    ts: std::cell::Cell<u32>,
    protector: Mutex<Protector>,
    unprotector: Mutex<Unprotector>,
    /// The keys as the leg must be given them.
    leg_side: SrtpConfig,
}

impl SrtpPhone {
    async fn new(suite: SrtpSuite, ssrc: u32, seed: u8) -> SrtpPhone {
        let phone_key = random_key(suite, seed);
        let leg_key = random_key(suite, seed.wrapping_add(100));
        // Two sockets on consecutive ports, so the leg's RTCP (RTP port + 1) reaches us.
        let (rtp, rtcp) = loop {
            let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = rtp.local_addr().unwrap().port();
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port.wrapping_add(1))).await {
                break (rtp, rtcp);
            }
        };
        SrtpPhone {
            rtp,
            rtcp,
            ssrc,
            seq: std::cell::Cell::new(100),
            ts: std::cell::Cell::new(8_000),
            protector: Mutex::new(Protector::new(suite, &phone_key).unwrap()),
            unprotector: Mutex::new(Unprotector::new(suite, &leg_key).unwrap()),
            leg_side: SrtpConfig {
                suite,
                local: leg_key,
                remote: phone_key,
            },
        }
    }

    fn addr(&self) -> SocketAddr {
        self.rtp.local_addr().unwrap()
    }

    fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let n = rtp::write_packet(
            &OutHeader {
                marker: false,
                payload_type: 0,
                sequence: self.seq.get(),
                timestamp: self.ts.get(),
                ssrc: self.ssrc,
            },
            payload,
            &mut buf,
        )
        .unwrap();
        self.seq.set(self.seq.get().wrapping_add(1));
        self.ts
            .set(self.ts.get().wrapping_add(payload.len() as u32));
        buf[..n].to_vec()
    }

    /// Sends mu-law audio as 20 ms SRTP packets, paced in real time; returns what was sent.
    async fn talk(&self, to: SocketAddr, pcm: &[i16]) -> Vec<Vec<u8>> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut sent = vec![];
        for chunk in pcm.chunks(160) {
            tick.tick().await;
            let mut payload = vec![0u8; chunk.len()];
            Codec::Pcmu.encode(chunk, &mut payload);
            let secret = {
                let plain = self.packet(&payload);
                self.protector.lock().unwrap().protect_rtp(&plain).unwrap()
            };
            self.rtp.send_to(&secret, to).await.unwrap();
            sent.push(secret.to_vec());
        }
        sent
    }

    /// The payloads of the SRTP packets received for `d` (or until `until`); fails on any
    /// packet that does not authenticate.
    async fn listen(&self, d: Duration, until: usize) -> Vec<Vec<u8>> {
        let mut got = vec![];
        let end = tokio::time::Instant::now() + d;
        let mut buf = [0u8; 2048];
        while got.len() < until {
            let Ok(Ok((n, _))) = tokio::time::timeout_at(end, self.rtp.recv_from(&mut buf)).await
            else {
                break;
            };
            let plain = self
                .unprotector
                .lock()
                .unwrap()
                .unprotect_rtp(&buf[..n])
                .expect("every packet from the leg authenticates under its key");
            let packet = rtp::parse(&plain).unwrap();
            got.push(packet.payload.to_vec());
        }
        got
    }
}

fn sine(freq: f32, secs: f32) -> Vec<i16> {
    (0..(8000.0 * secs) as usize)
        .map(|i| ((i as f32 * freq * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16)
        .collect()
}

fn decode(payloads: &[Vec<u8>]) -> Vec<i16> {
    let mut out = vec![];
    for p in payloads {
        let mut pcm = vec![0i16; p.len()];
        Codec::Pcmu.decode(p, &mut pcm);
        out.extend(pcm);
    }
    out
}

fn crossings_per_second(pcm: &[i16]) -> f32 {
    let n = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    n as f32 / (pcm.len() as f32 / 8000.0) / 2.0
}

on_each_backend! {
    two_srtp_legs_bridged_carry_audio_both_ways_and_drop_forgeries,
}

async fn two_srtp_legs_bridged_carry_audio_both_ways_and_drop_forgeries(media: MediaRuntime) {
    // The callee on AES_CM_128_HMAC_SHA1_80, the agent on _32: each leg has its own keys.
    let callee = SrtpPhone::new(SrtpSuite::AesCm128HmacSha1_80, 0x1111, 1).await;
    let agent = SrtpPhone::new(SrtpSuite::AesCm128HmacSha1_32, 0x2222, 2).await;
    let options = LegOptions {
        rtcp_interval: Duration::from_millis(300),
        ..LegOptions::default()
    };
    let (callee_leg, _ce) = media.open_leg(&ports(), options.clone()).unwrap();
    let (agent_leg, _ae) = media.open_leg(&ports(), options).unwrap();
    callee_leg
        .set_remote(
            &RemoteMedia::new(callee.addr(), Codec::Pcmu).with_srtp(callee.leg_side.clone()),
        )
        .unwrap();
    agent_leg
        .set_remote(&RemoteMedia::new(agent.addr(), Codec::Pcmu).with_srtp(agent.leg_side.clone()))
        .unwrap();
    let _bridge = Bridge::connect(&callee_leg, &agent_leg).unwrap();

    let callee_says = sine(440.0, 1.0);
    let agent_says = sine(1000.0, 1.0);
    let (callee_sent, _, heard_by_agent, heard_by_callee) = tokio::join!(
        callee.talk(callee_leg.local_rtp_addr(), &callee_says),
        agent.talk(agent_leg.local_rtp_addr(), &agent_says),
        agent.listen(Duration::from_secs(5), 50),
        callee.listen(Duration::from_secs(5), 50),
    );
    assert_eq!(heard_by_agent.len(), 50, "packets reaching the agent");
    assert_eq!(heard_by_callee.len(), 50, "packets reaching the callee");
    let pcm = decode(&heard_by_agent);
    for (i, (&sent, &heard)) in callee_says.iter().zip(&pcm).enumerate() {
        assert!(
            (sent as i32 - heard as i32).abs() <= 300,
            "sample {i}: {sent} vs {heard}"
        );
    }
    assert!((430.0..450.0).contains(&crossings_per_second(&pcm)));
    assert!((990.0..1010.0).contains(&crossings_per_second(&decode(&heard_by_callee))));

    // Replayed, forged, plain and truncated packets: counted, dropped, and the call goes on.
    let to_callee_leg = callee_leg.local_rtp_addr();
    for replayed in callee_sent.iter().take(5) {
        callee.rtp.send_to(replayed, to_callee_leg).await.unwrap();
    }
    let mut forged = callee_sent[10].clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    forged[3] = forged[3].wrapping_add(200); // a new sequence number: not a replay
    callee.rtp.send_to(&forged, to_callee_leg).await.unwrap();
    let plain = callee.packet(&[0xFF; 160]);
    callee.rtp.send_to(&plain, to_callee_leg).await.unwrap();
    callee
        .rtp
        .send_to(&[0x80, 0, 0], to_callee_leg)
        .await
        .unwrap();
    let more = sine(440.0, 0.2);
    let (_, after) = tokio::join!(
        callee.talk(to_callee_leg, &more),
        agent.listen(Duration::from_secs(5), 10),
    );
    assert_eq!(after.len(), 10, "the call goes on after the attack");

    // RTCP both ways as SRTCP: the phones' reports are understood by the legs, and theirs
    // authenticate at the phones.
    let mut report = [0u8; 8];
    report.copy_from_slice(&[0x80, 201, 0, 1, 0, 0, 0x11, 0x11]);
    let srtcp = callee
        .protector
        .lock()
        .unwrap()
        .protect_rtcp(&report)
        .unwrap();
    callee
        .rtcp
        .send_to(&srtcp, callee_leg.local_rtcp_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), callee.rtcp.recv_from(&mut buf))
        .await
        .expect("an RTCP report from the leg")
        .unwrap();
    let opened = callee
        .unprotector
        .lock()
        .unwrap()
        .unprotect_rtcp(&buf[..n])
        .expect("the leg's SRTCP authenticates");
    assert!(matches!(opened[1], 200 | 201), "SR or RR first");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stats = callee_leg.stats();
    assert_eq!(stats.srtp, Some(SrtpSuite::AesCm128HmacSha1_80));
    assert_eq!(stats.dropped.srtp_replay, 5, "{:?}", stats.dropped);
    // The forged one, and the plain one (no valid tag).
    assert_eq!(stats.dropped.srtp_auth, 2, "{:?}", stats.dropped);
    assert_eq!(stats.dropped.malformed, 1, "{:?}", stats.dropped);
    assert_eq!(stats.rtcp_received, 1, "{stats:?}");
    assert!(stats.packets_received >= 60, "{stats:?}");
    let agent_stats = agent_leg.stats();
    assert_eq!(agent_stats.srtp, Some(SrtpSuite::AesCm128HmacSha1_32));
    assert_eq!(agent_stats.dropped.total(), 0, "{agent_stats:?}");
}
