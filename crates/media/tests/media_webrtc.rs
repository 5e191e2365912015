//! A WebRTC leg over real UDP on loopback, its peer webrtc-rs's own DTLS client (the `rtc`
//! family's sans-IO endpoint, the same code `RTCPeerConnection` runs) playing the browser: the
//! browser's ICE checks are answered from the leg's port, DTLS runs to its end, the keys it
//! exports are the leg's SRTP, audio crosses both ways, a second front replaces the first on
//! the same leg, and a browser that stops checking is reported down. Each check runs on each
//! receive loop backend. (The real browser's test is `tests/interop_chromium_webrtc.rs`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use media::rtp::{self, OutHeader};
use media::srtp::{Protector, SrtpKey, SrtpSuite, Unprotector};
use media::webrtc::{BrowserOffer, DtlsIdentity, Front, LocalIce, WebrtcEvent, ice};
use media::{Codec, Leg, LegOptions, MediaRuntime, PortAllocator, WebrtcEvents};
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use tokio::net::UdpSocket;
use tokio::time::timeout;

mod support;
use support::on_each_backend;

const WAIT: Duration = Duration::from_secs(5);

fn ports() -> PortAllocator {
    PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap()
}

fn hex_fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The browser: a socket, a DTLS client, its certificate's fingerprint and ICE credentials.
struct Browser {
    socket: UdpSocket,
    fingerprint: String,
    config: Arc<rtc_dtls::config::HandshakeConfig>,
    ufrag: String,
}

impl Browser {
    async fn new() -> Browser {
        let provider: Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider> =
            Arc::new(rtc_srtp::crypto::providers::RingProvider::new());
        let cert =
            Certificate::generate_self_signed(vec!["browser".into()], provider.crypto()).unwrap();
        let fingerprint = hex_fingerprint(cert.certificate[0].as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(true, None)
            .unwrap();
        Browser {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            fingerprint,
            config: Arc::new(config),
            ufrag: "brow".into(),
        }
    }

    fn offer(&self) -> BrowserOffer {
        BrowserOffer {
            ice_ufrag: self.ufrag.clone(),
            ice_pwd: "browserpasswordbrowserpw".into(),
            fingerprint: self.fingerprint.clone(),
            mid: Some("0".into()),
            codec: (0, Codec::Pcmu),
            dtmf: Some(101),
        }
    }

    /// Checks the leg (ICE), answered; then runs DTLS to its end. The browser's SRTP keys:
    /// (what it protects with, what it opens with).
    async fn connect(&self, leg: SocketAddr, ice: &LocalIce) -> (Protector, Unprotector) {
        let check = ice::binding_request(&ice.ufrag, &self.ufrag, &ice.pwd, true);
        self.socket.send_to(&check, leg).await.unwrap();
        let mut buf = vec![0u8; 2048];
        let (n, _) = timeout(WAIT, self.socket.recv_from(&mut buf))
            .await
            .expect("a binding response")
            .unwrap();
        assert!(buf[0] < 4, "a STUN answer, got {:?}", &buf[..n.min(4)]);
        let local = self.socket.local_addr().unwrap();
        let mut dtls = Endpoint::new(local, rtc_shared::TransportProtocol::UDP, None);
        dtls.connect(Instant::now(), leg, self.config.clone(), None)
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(m) = dtls.poll_transmit() {
                self.socket.send_to(&m.message, leg).await.unwrap();
            }
            assert!(Instant::now() < deadline, "DTLS did not finish");
            let Ok(Ok((n, _))) =
                timeout(Duration::from_millis(200), self.socket.recv_from(&mut buf)).await
            else {
                let _ = dtls.handle_timeout(leg, Instant::now());
                continue;
            };
            if !(20..64).contains(&buf[0]) {
                continue;
            }
            let events = dtls
                .read(Instant::now(), leg, None, BytesMut::from(&buf[..n]))
                .unwrap();
            if events
                .iter()
                .any(|e| matches!(e, EndpointEvent::HandshakeComplete))
            {
                while let Some(m) = dtls.poll_transmit() {
                    self.socket.send_to(&m.message, leg).await.unwrap();
                }
                break;
            }
        }
        let state = dtls.get_connection_state(leg).unwrap();
        assert_eq!(
            state.srtp_protection_profile(),
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm
        );
        let m = state
            .export_keying_material(rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], 56)
            .unwrap();
        let m = m.as_ref();
        let client = [&m[..16], &m[32..44]].concat();
        let server = [&m[16..32], &m[44..56]].concat();
        let suite = SrtpSuite::AeadAes128Gcm;
        (
            Protector::new(suite, &SrtpKey::new(&client)).unwrap(),
            Unprotector::new(suite, &SrtpKey::new(&server)).unwrap(),
        )
    }

    /// Sends `count` protected PCMU packets of a steady value from `seq`.
    async fn speak(&self, leg: SocketAddr, tx: &mut Protector, seq: u16, count: u16) {
        for i in 0..count {
            let mut buf = [0u8; 200];
            let n = rtp::write_packet(
                &OutHeader {
                    marker: false,
                    payload_type: 0,
                    sequence: seq + i,
                    timestamp: u32::from(seq + i) * 160,
                    ssrc: 0x5eed,
                },
                &[0x55; 160],
                &mut buf,
            )
            .unwrap();
            let sealed = tx.protect_rtp(&buf[..n]).unwrap();
            self.socket.send_to(&sealed, leg).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for an SRTP packet from the leg that `rx` opens (comfort silence).
    async fn hear(&self, rx: &mut Unprotector) {
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no SRTP audio from the leg");
            let Ok(Ok((n, _))) =
                timeout(Duration::from_millis(200), self.socket.recv_from(&mut buf)).await
            else {
                continue;
            };
            if (128..192).contains(&buf[0])
                && !(192..224).contains(&buf[1])
                && rx.unprotect_rtp(&buf[..n]).is_ok()
            {
                return;
            }
        }
    }
}

fn attach(leg: &Leg, browser: &Browser, consent: Duration) -> (LocalIce, WebrtcEvents) {
    let identity = DtlsIdentity::generate().unwrap();
    let ice = LocalIce::random();
    let front = Front::new(
        &identity,
        &browser.offer(),
        leg.local_rtp_addr(),
        ice.clone(),
    )
    .unwrap();
    let events = leg.attach_webrtc(front, (0, Codec::Pcmu), Some(101), consent);
    (ice, events)
}

async fn audio_crosses_both_ways_under_dtls_keys_and_a_new_front_replaces_the_old(
    media: MediaRuntime,
) {
    let (leg, _events) = media
        .open_leg(
            &ports(),
            LegOptions {
                comfort_silence: true,
                media_timeout: None,
                ..LegOptions::default()
            },
        )
        .unwrap();
    let browser = Browser::new().await;
    let (ice, mut events) = attach(&leg, &browser, Duration::from_secs(30));
    let to = leg.local_rtp_addr();
    let (mut tx, mut rx) = browser.connect(to, &ice).await;
    assert_eq!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(WebrtcEvent::Connected {
            remote: browser.socket.local_addr().unwrap()
        })
    );
    assert_eq!(leg.stats().srtp, Some(SrtpSuite::AeadAes128Gcm));
    browser.hear(&mut rx).await;
    browser.speak(to, &mut tx, 1, 20).await;
    let got = testkit::wait_for(WAIT, || async { leg.stats().packets_received >= 20 }).await;
    assert!(got, "{:?}", leg.stats());

    // The page reconnects: a new front on the same leg, new keys; the old front's reports end.
    let second = Browser::new().await;
    let (ice2, mut events2) = attach(&leg, &second, Duration::from_secs(30));
    assert_eq!(timeout(WAIT, events.recv()).await.unwrap(), None);
    let (mut tx2, mut rx2) = second.connect(to, &ice2).await;
    assert!(matches!(
        timeout(WAIT, events2.recv()).await.unwrap(),
        Some(WebrtcEvent::Connected { .. })
    ));
    second.hear(&mut rx2).await;
    let before = leg.stats().packets_received;
    second.speak(to, &mut tx2, 500, 20).await;
    let got = testkit::wait_for(WAIT, || async {
        leg.stats().packets_received >= before + 20
    })
    .await;
    assert!(got, "{:?}", leg.stats());
    leg.close();
}

async fn a_browser_that_stops_checking_is_reported_down(media: MediaRuntime) {
    let (leg, _events) = media.open_leg(&ports(), LegOptions::default()).unwrap();
    let browser = Browser::new().await;
    let (ice, mut events) = attach(&leg, &browser, Duration::from_secs(2));
    browser.connect(leg.local_rtp_addr(), &ice).await;
    assert!(matches!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(WebrtcEvent::Connected { .. })
    ));
    match timeout(WAIT, events.recv()).await.unwrap() {
        Some(WebrtcEvent::Down { reason }) => assert!(reason.contains("consent"), "{reason}"),
        other => panic!("not down: {other:?}"),
    }
}

on_each_backend!(
    audio_crosses_both_ways_under_dtls_keys_and_a_new_front_replaces_the_old,
    a_browser_that_stops_checking_is_reported_down,
);
