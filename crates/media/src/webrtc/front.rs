//! The sans-IO WebRTC front of a leg: ICE-lite and the DTLS server that keys SRTP (RFC 5764).
//!
//! Input: a STUN or DTLS datagram and the time; output: datagrams to send, events (keys,
//! closed), and when to be woken for DTLS retransmissions. It owns no socket and reads no
//! clock; the leg's driver ([`crate::Leg::attach_webrtc`]) feeds it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_shared::error::Error as RtcError;

use super::ice::{IceLite, StunRefusal};
use super::sdp::{BrowserOffer, LocalIce};
use super::{PacketKind, WebrtcError, classify};
use crate::srtp::{SrtpConfig, SrtpKey, SrtpSuite};

/// Addresses that passed a STUN check and may speak DTLS (the browser's candidates).
const MAX_CHECKED: usize = 8;

/// The process's DTLS certificate (self-signed, made at start) and its SHA-256 fingerprint.
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: Certificate,
    fingerprint: String,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DtlsIdentity({})", self.fingerprint)
    }
}

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<DtlsIdentity, WebrtcError> {
        let crypto = crate::srtp::provider().crypto();
        let certificate = Certificate::generate_self_signed(vec!["dialer".to_owned()], crypto)
            .map_err(|err| WebrtcError::Certificate(err.to_string()))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| WebrtcError::Certificate("no certificate made".into()))?;
        let fingerprint = sha256_fingerprint(der.as_ref())?;
        Ok(DtlsIdentity {
            certificate,
            fingerprint,
        })
    }

    /// `a=fingerprint:sha-256` value: colon-separated hex, lower case.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn sha256_fingerprint(der: &[u8]) -> Result<String, WebrtcError> {
    let crypto = crate::srtp::provider().crypto();
    let hash = crypto
        .hash(rtc_dtls::crypto_provider::HashAlgorithm::Sha256, der)
        .map_err(|err| WebrtcError::Certificate(err.to_string()))?;
    Ok(hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// What the front reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontEvent {
    /// The DTLS handshake finished: media goes to `remote` under these SRTP keys.
    Connected {
        /// The browser's address (nominated by ICE, else the DTLS peer's).
        remote: SocketAddr,
        /// Keys from the DTLS-SRTP exporter.
        srtp: SrtpConfig,
    },
    /// The browser nominated another address after the handshake (its network changed).
    Moved {
        /// Where media now goes.
        remote: SocketAddr,
    },
    /// The browser closed DTLS (close_notify), or the handshake failed for good.
    Closed {
        /// Why.
        reason: String,
    },
}

/// ICE-lite + DTLS server of one browser session.
pub struct Front {
    ice: IceLite,
    dtls: Endpoint,
    checked: Vec<SocketAddr>,
    dtls_peer: Option<SocketAddr>,
    media_to: Option<SocketAddr>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<FrontEvent>,
    closed: bool,
    /// Counts of packets refused, for logs and tests.
    refused: u64,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("dtls_peer", &self.dtls_peer)
            .field("media_to", &self.media_to)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Front {
    /// A front answering `offer` with `ice` credentials, as DTLS server with `identity`.
    pub fn new(
        identity: &DtlsIdentity,
        offer: &BrowserOffer,
        local: SocketAddr,
        ice: LocalIce,
    ) -> Result<Front, WebrtcError> {
        let config = server_config(identity, offer.fingerprint.clone())?;
        Ok(Front {
            ice: IceLite::new(ice, offer.ice_ufrag.clone()),
            dtls: Endpoint::new(local, TransportProtocol::UDP, Some(config)),
            checked: Vec::new(),
            dtls_peer: None,
            media_to: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            closed: false,
            refused: 0,
        })
    }

    /// Takes one STUN or DTLS datagram from `from`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.closed {
            return;
        }
        match classify(datagram) {
            PacketKind::Stun => self.on_stun(now, from, datagram),
            PacketKind::Dtls => self.on_dtls(now, from, datagram),
            _ => self.refused += 1,
        }
    }

    fn on_stun(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        match self.ice.handle(now, from, datagram) {
            Ok(reply) => {
                if !self.checked.contains(&from) {
                    if self.checked.len() >= MAX_CHECKED {
                        self.checked.remove(0);
                    }
                    self.checked.push(from);
                }
                self.transmits.push_back((from, reply));
                if let (Some(nominated), Some(current)) = (self.ice.nominated(), self.media_to)
                    && nominated != current
                {
                    self.media_to = Some(nominated);
                    self.events
                        .push_back(FrontEvent::Moved { remote: nominated });
                }
            }
            Err(StunRefusal::NotARequest) => {}
            Err(refusal) => {
                self.refused += 1;
                tracing::debug!(%from, ?refusal, "STUN check refused");
            }
        }
    }

    fn on_dtls(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // DTLS only from an address the browser proved with a signed check: nobody else can
        // start handshakes on the leg's port.
        if !self.checked.contains(&from) || self.dtls_peer.is_some_and(|peer| peer != from) {
            self.refused += 1;
            return;
        }
        self.dtls_peer = Some(from);
        let result = self.dtls.read(now, from, None, BytesMut::from(datagram));
        self.drain_transmits();
        match result {
            Ok(events) => {
                for event in events {
                    match event {
                        EndpointEvent::HandshakeComplete => self.on_handshake(from),
                        EndpointEvent::PeerClosed => self.close_with("the browser closed DTLS"),
                        _ => {}
                    }
                }
            }
            Err(
                err @ (RtcError::ErrNoMatchingCertificateFingerprint | RtcError::ErrNonCertificate),
            ) => {
                self.close_with(&format!("DTLS handshake refused: {err}"));
            }
            Err(err) => tracing::debug!(%from, %err, "DTLS record refused"),
        }
    }

    fn on_handshake(&mut self, peer: SocketAddr) {
        match self.export_keys(peer) {
            Ok(srtp) => {
                let remote = self.ice.nominated().unwrap_or(peer);
                self.media_to = Some(remote);
                self.events
                    .push_back(FrontEvent::Connected { remote, srtp });
            }
            Err(err) => self.close_with(&err.to_string()),
        }
    }

    fn export_keys(&self, peer: SocketAddr) -> Result<SrtpConfig, WebrtcError> {
        let state = self
            .dtls
            .get_connection_state(peer)
            .ok_or_else(|| WebrtcError::Keys("no DTLS association".into()))?;
        let suite = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => SrtpSuite::AesCm128HmacSha1_80,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => SrtpSuite::AesCm128HmacSha1_32,
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => SrtpSuite::AeadAes128Gcm,
            other => {
                return Err(WebrtcError::Keys(format!(
                    "SRTP profile {other:?} not supported"
                )));
            }
        };
        let (key_len, salt_len) = suite_lengths(suite);
        let material = state
            .export_keying_material(
                rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
                &[],
                2 * (key_len + salt_len),
            )
            .map_err(|err| WebrtcError::Keys(err.to_string()))?;
        let m = material.as_ref();
        // RFC 5764 4.2: client key, server key, client salt, server salt.
        let client_key = &m[..key_len];
        let server_key = &m[key_len..2 * key_len];
        let client_salt = &m[2 * key_len..2 * key_len + salt_len];
        let server_salt = &m[2 * key_len + salt_len..];
        let join = |k: &[u8], s: &[u8]| SrtpKey::new(&[k, s].concat());
        let (local, remote) = if state.is_client() {
            (join(client_key, client_salt), join(server_key, server_salt))
        } else {
            (join(server_key, server_salt), join(client_key, client_salt))
        };
        Ok(SrtpConfig {
            suite,
            local,
            remote,
        })
    }

    fn close_with(&mut self, reason: &str) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(FrontEvent::Closed {
                reason: reason.to_owned(),
            });
        }
    }

    fn drain_transmits(&mut self) {
        while let Some(message) = self.dtls.poll_transmit() {
            self.transmits
                .push_back((message.transport.peer_addr, message.message.to_vec()));
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FrontEvent> {
        self.events.pop_front()
    }

    /// When [`Front::handle_timeout`] is next due (a DTLS retransmission).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dtls_peer
            .and_then(|peer| self.dtls.poll_timeout(&peer))
    }

    /// Retransmits what is due at `now`; a handshake out of retransmissions ends the front.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(peer) = self.dtls_peer else { return };
        if let Err(err) = self.dtls.handle_timeout(peer, now) {
            self.close_with(&format!("DTLS handshake failed: {err}"));
        }
        self.drain_transmits();
    }

    /// When the browser last sent a valid STUN check (consent, RFC 7675).
    pub fn last_check(&self) -> Option<Instant> {
        self.ice.last_check()
    }

    /// Where media goes, once connected.
    pub fn media_to(&self) -> Option<SocketAddr> {
        self.media_to
    }

    /// Ends the session with a close_notify to the browser.
    pub fn close(&mut self, now: Instant) {
        if let Some(peer) = self.dtls_peer {
            self.dtls.stop(now, peer);
            self.drain_transmits();
        }
        self.closed = true;
    }

    /// Packets refused (not from a checked address, bad checks, stray kinds).
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

fn suite_lengths(suite: SrtpSuite) -> (usize, usize) {
    match suite {
        SrtpSuite::AeadAes128Gcm => (16, 12),
        _ => (16, 14),
    }
}

fn server_config(
    identity: &DtlsIdentity,
    expected: String,
) -> Result<Arc<HandshakeConfig>, WebrtcError> {
    let verify: rtc_dtls::config::VerifyPeerCertificateFn = Arc::new(
        move |certs: &[Vec<u8>], _chains: &[rustls_pki_types::CertificateDer<'static>]| {
            let first = certs.first().ok_or(RtcError::ErrNonCertificate)?;
            let got = sha256_fingerprint(first)
                .map_err(|_| RtcError::ErrNoMatchingCertificateFingerprint)?;
            if got == expected {
                Ok(())
            } else {
                Err(RtcError::ErrNoMatchingCertificateFingerprint)
            }
        },
    );
    ConfigBuilder::default()
        .with_crypto_provider(crate::srtp::provider().clone())
        .with_certificates(vec![identity.certificate.clone()])
        .with_srtp_protection_profiles(vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ])
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(false, None)
        .map(Arc::new)
        .map_err(|err| WebrtcError::Certificate(err.to_string()))
}

/// The fingerprint of a DER certificate, for the tests' browser.
#[cfg(test)]
pub(crate) fn tests_fingerprint(der: &[u8]) -> String {
    sha256_fingerprint(der).unwrap()
}
