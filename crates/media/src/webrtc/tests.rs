//! The front against a DTLS client playing the browser, with no socket: datagrams are passed
//! by hand between the two sans-IO endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;

use super::ice::tests::check;
use super::*;
use crate::srtp::{Protector, SrtpSuite, Unprotector};

const BROWSER: &str = "127.0.0.1:50000";
const US: &str = "127.0.0.1:40000";

struct Browser {
    dtls: Endpoint,
    fingerprint: String,
    ufrag: String,
}

fn browser(
    profiles: Vec<SrtpProtectionProfile>,
) -> (Browser, Arc<rtc_dtls::config::HandshakeConfig>) {
    let crypto = crate::srtp::provider().crypto();
    let cert = Certificate::generate_self_signed(vec!["browser".to_owned()], crypto).unwrap();
    let fingerprint = super::front::tests_fingerprint(cert.certificate[0].as_ref());
    let config = ConfigBuilder::default()
        .with_crypto_provider(crate::srtp::provider().clone())
        .with_certificates(vec![cert])
        .with_srtp_protection_profiles(profiles)
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(true, None)
        .unwrap();
    (
        Browser {
            dtls: Endpoint::new(BROWSER.parse().unwrap(), TransportProtocol::UDP, None),
            fingerprint,
            ufrag: "brow".into(),
        },
        Arc::new(config),
    )
}

fn offer(b: &Browser) -> BrowserOffer {
    BrowserOffer {
        ice_ufrag: b.ufrag.clone(),
        ice_pwd: "browserpasswordbrowserpw".into(),
        fingerprint: b.fingerprint.clone(),
        mid: Some("0".into()),
        codec: (0, crate::Codec::Pcmu),
        dtmf: Some(126),
    }
}

/// Runs the handshake to its end, passing datagrams both ways; returns the browser's keys.
fn handshake(
    front: &mut Front,
    b: &mut Browser,
    config: Arc<rtc_dtls::config::HandshakeConfig>,
    now: Instant,
) -> Option<(
    rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile,
    Vec<u8>,
)> {
    let us: SocketAddr = US.parse().unwrap();
    let from: SocketAddr = BROWSER.parse().unwrap();
    b.dtls.connect(now, us, config, None).unwrap();
    let mut done = false;
    for _ in 0..50 {
        while let Some(m) = b.dtls.poll_transmit() {
            front.handle(now, from, &m.message);
        }
        while let Some((to, data)) = front.poll_transmit() {
            assert_eq!(to, from);
            for event in b
                .dtls
                .read(now, us, None, BytesMut::from(&data[..]))
                .unwrap_or_default()
            {
                if matches!(event, EndpointEvent::HandshakeComplete) {
                    done = true;
                }
            }
        }
        if done {
            break;
        }
    }
    if !done {
        return None;
    }
    let state = b.dtls.get_connection_state(us).unwrap();
    let profile = state.srtp_protection_profile();
    let len = match profile {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => 2 * (16 + 12),
        _ => 2 * (16 + 14),
    };
    let m = state
        .export_keying_material(rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], len)
        .unwrap();
    Some((profile, m.as_ref().to_vec()))
}

fn checked_front(b: &Browser) -> (Front, LocalIce) {
    let identity = DtlsIdentity::generate().unwrap();
    let ice = LocalIce::random();
    let mut front = Front::new(&identity, &offer(b), US.parse().unwrap(), ice.clone()).unwrap();
    let now = Instant::now();
    front.handle(
        now,
        BROWSER.parse().unwrap(),
        &check(&ice, &b.ufrag, true, &ice.pwd),
    );
    let (to, _) = front.poll_transmit().expect("a binding response");
    assert_eq!(to, BROWSER.parse::<SocketAddr>().unwrap());
    (front, ice)
}

#[test]
fn classify_follows_rfc_7983() {
    assert_eq!(classify(&[0, 1]), PacketKind::Stun);
    assert_eq!(classify(&[22, 254]), PacketKind::Dtls);
    assert_eq!(classify(&[0x80, 0]), PacketKind::Rtp);
    assert_eq!(classify(&[]), PacketKind::Other);
    assert_eq!(classify(&[64]), PacketKind::Other);
}

#[test]
fn dtls_srtp_keys_match_the_browsers_both_ways() {
    for (profile, suite) in [
        (
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            SrtpSuite::AesCm128HmacSha1_80,
        ),
        (
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpSuite::AeadAes128Gcm,
        ),
    ] {
        let (mut b, config) = browser(vec![profile]);
        let (mut front, _) = checked_front(&b);
        let (got, material) =
            handshake(&mut front, &mut b, config, Instant::now()).expect("handshake");
        assert_eq!(got, profile);
        let Some(FrontEvent::Connected { remote, srtp }) = front.poll_event() else {
            panic!("no keys");
        };
        assert_eq!(remote, BROWSER.parse::<SocketAddr>().unwrap());
        assert_eq!(srtp.suite, suite);
        // The browser (client) protects with the client key: we open it with our remote key,
        // and what we protect, the browser's server-key context opens.
        let (k, s) = if suite == SrtpSuite::AeadAes128Gcm {
            (16, 12)
        } else {
            (16, 14)
        };
        let client = [&material[..k], &material[2 * k..2 * k + s]].concat();
        let server = [&material[k..2 * k], &material[2 * k + s..]].concat();
        let packet = [0x80u8, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 1, 2, 3, 4];
        let mut browser_tx = Protector::new(suite, &crate::srtp::SrtpKey::new(&client)).unwrap();
        let mut ours_rx = Unprotector::new(suite, &srtp.remote).unwrap();
        let sealed = browser_tx.protect_rtp(&packet).unwrap();
        assert_eq!(&ours_rx.unprotect_rtp(&sealed).unwrap()[..], &packet[..]);
        let mut ours_tx = Protector::new(suite, &srtp.local).unwrap();
        let mut browser_rx = Unprotector::new(suite, &crate::srtp::SrtpKey::new(&server)).unwrap();
        let sealed = ours_tx.protect_rtp(&packet).unwrap();
        assert_eq!(&browser_rx.unprotect_rtp(&sealed).unwrap()[..], &packet[..]);
    }
}

#[test]
fn dtls_from_an_unchecked_address_is_ignored() {
    let (mut b, config) = browser(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]);
    let identity = DtlsIdentity::generate().unwrap();
    let mut front = Front::new(
        &identity,
        &offer(&b),
        US.parse().unwrap(),
        LocalIce::random(),
    )
    .unwrap();
    assert!(handshake(&mut front, &mut b, config, Instant::now()).is_none());
    assert!(front.poll_event().is_none());
    assert!(front.refused() > 0);
}

#[test]
fn a_browser_with_another_certificate_is_refused() {
    let (mut b, config) = browser(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]);
    b.fingerprint = "00:11".into();
    let (mut front, _) = checked_front(&b);
    assert!(handshake(&mut front, &mut b, config, Instant::now()).is_none());
    assert!(matches!(
        front.poll_event(),
        Some(FrontEvent::Closed { .. })
    ));
}

#[test]
fn close_notify_from_the_browser_ends_the_front() {
    let (mut b, config) = browser(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]);
    let (mut front, _) = checked_front(&b);
    let now = Instant::now();
    handshake(&mut front, &mut b, config, now).expect("handshake");
    assert!(matches!(
        front.poll_event(),
        Some(FrontEvent::Connected { .. })
    ));
    b.dtls.stop(now, US.parse().unwrap());
    while let Some(m) = b.dtls.poll_transmit() {
        front.handle(now, BROWSER.parse().unwrap(), &m.message);
    }
    assert!(matches!(
        front.poll_event(),
        Some(FrontEvent::Closed { .. })
    ));
    let _ = Duration::ZERO;
}

#[test]
fn garbage_offers_and_datagrams_never_panic() {
    let (b, _) = browser(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]);
    let (mut front, _) = checked_front(&b);
    let from: SocketAddr = BROWSER.parse().unwrap();
    let base = super::sdp::tests::CHROMIUM_OFFER.as_bytes();
    for round in 0..2_000u32 {
        let len = rand::random_range(0..300usize);
        let mut bytes: Vec<u8> = (0..len).map(|_| rand::random()).collect();
        // STUN- and DTLS-looking starts, and offers cut or spliced at random.
        match round % 4 {
            0 => bytes.insert(0, 0),
            1 => bytes.insert(0, 22),
            2 => {
                let cut = rand::random_range(0..base.len());
                bytes = [&base[..cut], &bytes[..]].concat();
            }
            _ => {}
        }
        front.handle(Instant::now(), from, &bytes);
        let _ = parse_offer(&String::from_utf8_lossy(&bytes));
    }
    while front.poll_transmit().is_some() {}
    let _ = Duration::ZERO;
}
