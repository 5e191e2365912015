//! Logging an agent in from a browser (`POST /api/v1/agents/{id}/webrtc`) against the served
//! API and a real engine, the browser played by webrtc-rs's DTLS client over UDP (the real
//! Chromium's test is `tests/interop_chromium_webrtc.rs`): the answer is ICE-lite with the
//! node's host candidate, DTLS comes up on it and SRTP audio flows; a second offer replaces
//! the browser's connection and the agent keeps its state; a browser gone for the grace period
//! logs the agent out; bad offers get 422 naming the reason.

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use media::srtp::{SrtpKey, SrtpSuite, Unprotector};
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use serde_json::json;
use support::{Api, Db, campaign_toml, nowhere};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// The browser: a socket, a DTLS client certificate, ICE credentials.
struct Browser {
    socket: UdpSocket,
    fingerprint: String,
    config: Arc<rtc_dtls::config::HandshakeConfig>,
    ufrag: String,
}

/// What the answer says of the node's side.
struct Answer {
    ufrag: String,
    pwd: String,
    candidate: SocketAddr,
}

impl Browser {
    async fn new() -> Browser {
        let provider: Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider> =
            Arc::new(rtc_srtp::crypto::providers::RingProvider::new());
        let cert =
            Certificate::generate_self_signed(vec!["browser".into()], provider.crypto()).unwrap();
        use sha2::Digest;
        let fingerprint = sha2::Sha256::digest(cert.certificate[0].as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(true, None)
            .unwrap();
        Browser {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            fingerprint,
            config: Arc::new(config),
            ufrag: format!("u{}", rand_suffix()),
        }
    }

    /// An offer as Chromium writes it, gathering complete.
    fn offer(&self) -> String {
        let addr = self.socket.local_addr().unwrap();
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             m=audio {port} UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 127.0.0.1\r\n\
             a=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host generation 0\r\n\
             a=ice-ufrag:{ufrag}\r\na=ice-pwd:browserpasswordbrowserpw\r\n\
             a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\n\
             a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n",
            port = addr.port(),
            ufrag = self.ufrag,
            fp = self.fingerprint
        )
    }

    /// Checks the node (ICE) and runs DTLS to its end; the unprotector of the node's audio.
    async fn connect(&self, answer: &Answer) -> Unprotector {
        let leg = answer.candidate;
        let check =
            media::webrtc::ice::binding_request(&answer.ufrag, &self.ufrag, &answer.pwd, true);
        self.socket.send_to(&check, leg).await.unwrap();
        let mut buf = vec![0u8; 2048];
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
        let m = state
            .export_keying_material(rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], 60)
            .unwrap();
        let m = m.as_ref();
        let server = [&m[16..32], &m[46..60]].concat();
        Unprotector::new(SrtpSuite::AesCm128HmacSha1_80, &SrtpKey::new(&server)).unwrap()
    }

    /// Waits for the node's audio (comfort silence) under the DTLS keys.
    async fn hear(&self, rx: &mut Unprotector) {
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no SRTP audio from the node");
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

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn read_answer(sdp: &str) -> Answer {
    let attr = |key: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix(&format!("a={key}:")))
            .unwrap_or_else(|| panic!("no a={key} in\n{sdp}"))
            .trim()
            .to_owned()
    };
    let candidate = attr("candidate");
    let parts: Vec<&str> = candidate.split_whitespace().collect();
    assert!(sdp.contains("a=ice-lite"), "{sdp}");
    assert!(sdp.contains("a=setup:passive"), "{sdp}");
    assert!(
        sdp.contains("m=audio ") && sdp.contains(" 0 126\r\n"),
        "{sdp}"
    );
    Answer {
        ufrag: attr("ice-ufrag"),
        pwd: attr("ice-pwd"),
        candidate: format!("{}:{}", parts[4], parts[5]).parse().unwrap(),
    }
}

/// A campaign the agent is assigned to, and the agent; its id.
async fn agent_with_campaign(api: &Api) -> i64 {
    let (status, body) = api.apply_toml(&campaign_toml("web", nowhere())).await;
    assert!(status == 200 || status == 201, "{body:#}");
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "browser1", "password": "browser-pass", "campaigns": ["web"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    agent["id"].as_i64().unwrap()
}

async fn post_offer(api: &Api, agent: i64, browser: &Browser) -> Answer {
    let (status, body) = api
        .post_json(
            &format!("/api/v1/agents/{agent}/webrtc"),
            &json!({"sdp": browser.offer(), "campaign": "web"}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    read_answer(body["sdp"].as_str().unwrap())
}

async fn state(api: &Api, agent: i64) -> serde_json::Value {
    api.get(&format!("/api/v1/agents/{agent}")).await.1["state"].clone()
}

async fn a_browser_logs_in_reconnects_keeping_its_state_and_logs_out(db: Db) {
    let Some(api) = Api::start(db).await else {
        return;
    };
    let agent = agent_with_campaign(&api).await;
    let browser = Browser::new().await;
    let answer = post_offer(&api, agent, &browser).await;
    assert_eq!(state(&api, agent).await, "ready");
    let (_, view) = api.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(view["campaign"], "web", "{view:#}");
    let mut rx = browser.connect(&answer).await;
    browser.hear(&mut rx).await;

    let (status, body) = api
        .post_json(
            &format!("/api/v1/agents/{agent}/pause"),
            &json!({"reason": "break"}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    // The page reconnects (a network blip): the same leg, a new connection, the same state.
    let again = Browser::new().await;
    let second = post_offer(&api, agent, &again).await;
    assert_eq!(second.candidate, answer.candidate, "the same leg");
    assert_ne!(second.ufrag, answer.ufrag, "new ICE credentials");
    let mut rx = again.connect(&second).await;
    again.hear(&mut rx).await;
    assert_eq!(state(&api, agent).await, "paused");

    let (status, body) = api.post(&format!("/api/v1/agents/{agent}/logout")).await;
    assert_eq!(status, 200, "{body:#}");
    let out = testkit::wait_for(WAIT, || async { state(&api, agent).await == "logged_out" }).await;
    assert!(out, "{}", state(&api, agent).await);
}

on_both!(a_browser_logs_in_reconnects_keeping_its_state_and_logs_out);

#[tokio::test]
async fn a_browser_gone_past_the_grace_period_logs_the_agent_out() {
    let Some(api) = Api::start_with(Db::Sqlite, |config, _| {
        config.webrtc_consent = Duration::from_secs(1);
        config.webrtc_grace = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let agent = agent_with_campaign(&api).await;
    let browser = Browser::new().await;
    let answer = post_offer(&api, agent, &browser).await;
    browser.connect(&answer).await;
    assert_eq!(state(&api, agent).await, "ready");
    // No more consent checks: down after 1 s, logged out 1 s later.
    let out = testkit::wait_for(Duration::from_secs(10), || async {
        state(&api, agent).await == "logged_out"
    })
    .await;
    assert!(out, "{}", state(&api, agent).await);
}

#[tokio::test]
async fn bad_offers_get_422_naming_the_reason() {
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    let agent = agent_with_campaign(&api).await;
    let browser = Browser::new().await;
    let good = browser.offer();
    let cases = [
        ("not sdp at all".to_owned(), "not SDP"),
        (good.replace("m=audio", "m=video"), "no audio"),
        (
            good.replace(" 111 0 8 126", " 111 126")
                .replace("a=rtpmap:0 PCMU/8000\r\n", "")
                .replace("a=rtpmap:8 PCMA/8000\r\n", ""),
            "neither PCMU nor PCMA",
        ),
        (
            good.replace("a=fingerprint", "a=x-fingerprint"),
            "fingerprint",
        ),
        (good.replace("a=rtcp-mux\r\n", ""), "rtcp-mux"),
    ];
    for (sdp, reason) in cases {
        let (status, body) = api
            .post_json(
                &format!("/api/v1/agents/{agent}/webrtc"),
                &json!({"sdp": sdp}),
            )
            .await;
        assert_eq!(status, 422, "{reason}: {body:#}");
        let text = body.to_string();
        assert!(text.contains(reason), "{reason} not in {text}");
    }
    assert_eq!(state(&api, agent).await, "logged_out");
    // A campaign that does not exist: 404; an unknown agent: 404.
    let (status, _) = api
        .post_json(
            &format!("/api/v1/agents/{agent}/webrtc"),
            &json!({"sdp": good, "campaign": "nope"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .post_json("/api/v1/agents/999999/webrtc", &json!({"sdp": good}))
        .await;
    assert_eq!(status, 404);
}
