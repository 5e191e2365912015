//! SRTP and SRTCP (RFC 3711) for a leg, on `rtc-srtp` (the webrtc-rs project's contexts, with
//! the ring provider): [`Protector`] for what a leg sends, [`Unprotector`] for what it
//! receives, keyed per direction from SDES (RFC 4568, negotiated by the SIP crate).
//!
//! A packet that fails authentication or is a replay is dropped and counted
//! ([`UnprotectError`], then `srtp_auth` / `srtp_replay` in the leg's drop counts), never
//! passed on. `rtc-srtp` keeps state per SSRC and creates it before authenticating, so an
//! attacker sending packets with ever new SSRCs would grow that state without bound. The
//! receive side therefore keeps two contexts: the *established* one sees only the SSRC that
//! authenticated last, and a *probe* context, rebuilt after [`PROBE_SSRCS`] failed SSRCs,
//! takes everything else; a probe that authenticates a new SSRC becomes the established
//! context (a real SSRC change). Memory stays bounded whatever arrives.
//!
//! Keys never reach a log line: [`SrtpKey`]'s `Debug` prints no bytes.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// Failed SSRCs a probe context may hold before it is rebuilt.
pub const PROBE_SSRCS: usize = 16;
/// Replay window for SRTP, in packets: as wide as the reordering the receive path accepts.
const RTP_REPLAY_WINDOW: usize = 128;
/// Replay window for SRTCP.
const RTCP_REPLAY_WINDOW: usize = 64;

/// An SRTP crypto suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES-128 counter mode, HMAC-SHA1 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 32-bit tag on RTP (80 on RTCP).
    AesCm128HmacSha1_32,
    /// AES-128 GCM (RFC 7714).
    AeadAes128Gcm,
}

impl SrtpSuite {
    fn profile(self) -> ProtectionProfile {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            SrtpSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }

    /// Master key plus master salt, in bytes.
    pub fn key_salt_len(self) -> usize {
        let profile = self.profile();
        profile.key_len() + profile.salt_len()
    }

    /// Bytes SRTP adds to each RTP packet (the authentication tag).
    pub fn rtp_overhead(self) -> usize {
        let profile = self.profile();
        profile.rtp_auth_tag_len() + profile.aead_auth_tag_len()
    }
}

/// A master key followed by its master salt. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey(Vec<u8>);

impl SrtpKey {
    /// Key and salt concatenated, as SDES carries them.
    pub fn new(key_and_salt: &[u8]) -> SrtpKey {
        SrtpKey(key_and_salt.to_vec())
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpKey(<{} bytes, redacted>)", self.0.len())
    }
}

/// The SRTP session of a leg: a suite and a key per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpConfig {
    /// The suite.
    pub suite: SrtpSuite,
    /// Our key: it protects what the leg sends.
    pub local: SrtpKey,
    /// The peer's key: it protects what the leg receives.
    pub remote: SrtpKey,
}

/// Why SRTP contexts could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The key and salt do not have the suite's length.
    #[error("an SRTP key for {suite:?} must be {expected} bytes of key and salt, not {got}")]
    KeyLength {
        /// The suite.
        suite: SrtpSuite,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The SRTP library refused (the text is its, and carries no key).
    #[error("SRTP context: {0}")]
    Context(String),
    /// A packet could not be protected.
    #[error("cannot protect the packet: {0}")]
    Protect(String),
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnprotectError {
    /// The authentication tag does not verify: forged, corrupted, or keyed differently.
    Auth,
    /// A packet already received (replay protection).
    Replay,
    /// Too short or not RTP/RTCP at all.
    Malformed,
}

/// The process's crypto provider (ring), shared by SRTP, STUN and DTLS.
pub(crate) fn provider() -> &'static Arc<dyn RTCCryptoProvider> {
    static PROVIDER: OnceLock<Arc<dyn RTCCryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(RingProvider::new()))
}

fn context(suite: SrtpSuite, key: &SrtpKey, replay: bool) -> Result<Context, SrtpError> {
    let profile = suite.profile();
    if key.0.len() != suite.key_salt_len() {
        return Err(SrtpError::KeyLength {
            suite,
            expected: suite.key_salt_len(),
            got: key.0.len(),
        });
    }
    let (master_key, master_salt) = key.0.split_at(profile.key_len());
    let (rtp, rtcp) = if replay {
        (
            Some(srtp_replay_protection(RTP_REPLAY_WINDOW)),
            Some(srtcp_replay_protection(RTCP_REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(
        master_key,
        master_salt,
        profile,
        rtp,
        rtcp,
        provider().crypto(),
    )
    .map_err(|err| SrtpError::Context(err.to_string()))
}

/// Protects what a leg sends: RTP and RTCP under our key.
pub struct Protector {
    context: Context,
    suite: SrtpSuite,
}

impl fmt::Debug for Protector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protector({:?})", self.suite)
    }
}

impl Protector {
    /// A context for `suite` under `key` (ours).
    pub fn new(suite: SrtpSuite, key: &SrtpKey) -> Result<Protector, SrtpError> {
        Ok(Protector {
            context: context(suite, key, false)?,
            suite,
        })
    }

    /// An RTP packet (header and payload) made SRTP.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        self.context
            .encrypt_rtp(packet)
            .map_err(|err| SrtpError::Protect(err.to_string()))
    }

    /// A compound RTCP packet made SRTCP.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        self.context
            .encrypt_rtcp(packet)
            .map_err(|err| SrtpError::Protect(err.to_string()))
    }
}

/// One direction of receiving (RTP or RTCP): the established context and the probe.
struct Guarded {
    established: Option<(u32, Context)>,
    probe: Context,
    probed: Vec<u32>,
}

impl Guarded {
    fn new(suite: SrtpSuite, key: &SrtpKey) -> Result<Guarded, SrtpError> {
        Ok(Guarded {
            established: None,
            probe: context(suite, key, true)?,
            probed: Vec::new(),
        })
    }

    fn open(
        &mut self,
        ssrc: u32,
        suite: SrtpSuite,
        key: &SrtpKey,
        decrypt: impl Fn(&mut Context) -> Result<BytesMut, rtc_shared::error::Error>,
    ) -> Result<BytesMut, UnprotectError> {
        if let Some((established, context)) = &mut self.established
            && *established == ssrc
        {
            return guard(|| decrypt(context));
        }
        if !self.probed.contains(&ssrc) {
            if self.probed.len() >= PROBE_SSRCS {
                // Only failures fill it: a fresh probe forgets the strangers' state.
                self.probe = context(suite, key, true).map_err(|_| UnprotectError::Malformed)?;
                self.probed.clear();
            }
            self.probed.push(ssrc);
        }
        let plain = guard(|| decrypt(&mut self.probe))?;
        let fresh = context(suite, key, true).map_err(|_| UnprotectError::Malformed)?;
        let promoted = std::mem::replace(&mut self.probe, fresh);
        self.established = Some((ssrc, promoted));
        self.probed.clear();
        Ok(plain)
    }
}

/// Runs a decryption with any panic inside the library contained (it runs on a receive loop
/// shared by many calls).
fn guard(
    run: impl FnOnce() -> Result<BytesMut, rtc_shared::error::Error>,
) -> Result<BytesMut, UnprotectError> {
    use rtc_shared::error::Error;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(plain)) => Ok(plain),
        Ok(Err(Error::SrtpSsrcDuplicated(..) | Error::SrtcpSsrcDuplicated(..))) => {
            Err(UnprotectError::Replay)
        }
        Ok(Err(
            Error::RtpFailedToVerifyAuthTag
            | Error::RtcpFailedToVerifyAuthTag
            | Error::ErrFailedToVerifyAuthTag,
        )) => Err(UnprotectError::Auth),
        Ok(Err(_)) | Err(_) => Err(UnprotectError::Malformed),
    }
}

/// Unprotects what a leg receives: SRTP and SRTCP under the peer's key, with replay
/// protection, and state bounded whatever SSRCs arrive.
pub struct Unprotector {
    suite: SrtpSuite,
    key: SrtpKey,
    rtp: Guarded,
    rtcp: Guarded,
}

impl fmt::Debug for Unprotector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unprotector({:?})", self.suite)
    }
}

impl Unprotector {
    /// Contexts for `suite` under `key` (the peer's).
    pub fn new(suite: SrtpSuite, key: &SrtpKey) -> Result<Unprotector, SrtpError> {
        Ok(Unprotector {
            suite,
            key: key.clone(),
            rtp: Guarded::new(suite, key)?,
            rtcp: Guarded::new(suite, key)?,
        })
    }

    /// The RTP packet inside an SRTP one.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, UnprotectError> {
        if packet.len() < 12 {
            return Err(UnprotectError::Malformed);
        }
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        self.rtp
            .open(ssrc, self.suite, &self.key, |c| c.decrypt_rtp(packet))
    }

    /// The compound RTCP packet inside an SRTCP one.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, UnprotectError> {
        if packet.len() < 8 {
            return Err(UnprotectError::Malformed);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        self.rtcp
            .open(ssrc, self.suite, &self.key, |c| c.decrypt_rtcp(packet))
    }
}

/// Both directions of a leg's SRTP, made from its [`SrtpConfig`].
pub(crate) fn pair(config: &SrtpConfig) -> Result<(Protector, Unprotector), SrtpError> {
    Ok((
        Protector::new(config.suite, &config.local)?,
        Unprotector::new(config.suite, &config.remote)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{OutHeader, write_packet};

    const SUITES: [SrtpSuite; 3] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes128Gcm,
    ];

    fn key(suite: SrtpSuite, fill: u8) -> SrtpKey {
        SrtpKey::new(&vec![fill; suite.key_salt_len()])
    }

    fn packet(ssrc: u32, sequence: u16, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let header = OutHeader {
            marker: false,
            payload_type: 0,
            sequence,
            timestamp: sequence as u32 * 160,
            ssrc,
        };
        let n = write_packet(&header, payload, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn rtp_round_trips_for_every_suite_and_replays_are_refused() {
        for suite in SUITES {
            let k = key(suite, 7);
            let mut tx = Protector::new(suite, &k).unwrap();
            let mut rx = Unprotector::new(suite, &k).unwrap();
            for seq in 0..300u16 {
                let plain = packet(0x1234, seq, &[seq as u8; 160]);
                let secret = tx.protect_rtp(&plain).unwrap();
                assert_eq!(secret.len(), plain.len() + suite.rtp_overhead());
                assert_ne!(
                    &secret[12..172],
                    &plain[12..172],
                    "{suite:?}: payload encrypted"
                );
                assert_eq!(&rx.unprotect_rtp(&secret).unwrap()[..], &plain[..]);
                if seq == 10 {
                    assert_eq!(rx.unprotect_rtp(&secret), Err(UnprotectError::Replay));
                }
            }
        }
    }

    #[test]
    fn rtcp_round_trips_and_forgeries_are_refused() {
        for suite in SUITES {
            let k = key(suite, 3);
            let mut tx = Protector::new(suite, &k).unwrap();
            let mut rx = Unprotector::new(suite, &k).unwrap();
            // A receiver report with no blocks, SSRC 0x55.
            let rr = [0x80, 201, 0, 1, 0, 0, 0, 0x55];
            let secret = tx.protect_rtcp(&rr).unwrap();
            assert_eq!(&rx.unprotect_rtcp(&secret).unwrap()[..], &rr[..]);
            assert_eq!(rx.unprotect_rtcp(&secret), Err(UnprotectError::Replay));
            let mut forged = tx.protect_rtcp(&rr).unwrap();
            let last = forged.len() - 1;
            forged[last] ^= 1;
            assert_eq!(rx.unprotect_rtcp(&forged), Err(UnprotectError::Auth));
        }
    }

    #[test]
    fn wrong_keys_tampering_and_garbage_are_dropped_without_panicking() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let mut tx = Protector::new(suite, &key(suite, 1)).unwrap();
        let mut rx = Unprotector::new(suite, &key(suite, 2)).unwrap();
        let secret = tx.protect_rtp(&packet(9, 1, &[1; 160])).unwrap();
        assert_eq!(rx.unprotect_rtp(&secret), Err(UnprotectError::Auth));
        let mut right = Unprotector::new(suite, &key(suite, 1)).unwrap();
        let mut tampered = secret.clone();
        tampered[20] ^= 0x40;
        assert_eq!(right.unprotect_rtp(&tampered), Err(UnprotectError::Auth));
        assert!(right.unprotect_rtp(&secret).is_ok());
        for garbage in [&[][..], &[0x80; 5][..], &[0x80; 12][..], &[0xff; 40][..]] {
            assert!(right.unprotect_rtp(garbage).is_err());
            assert!(right.unprotect_rtcp(garbage).is_err());
        }
    }

    #[test]
    fn forged_ssrcs_neither_grow_state_nor_disturb_the_real_stream() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let k = key(suite, 5);
        let mut tx = Protector::new(suite, &k).unwrap();
        let mut rx = Unprotector::new(suite, &k).unwrap();
        let mut forger = Protector::new(suite, &key(suite, 6)).unwrap();
        for seq in 0..2_000u16 {
            let real = tx.protect_rtp(&packet(42, seq, &[0; 160])).unwrap();
            assert!(rx.unprotect_rtp(&real).is_ok(), "seq {seq}");
            let fake = forger
                .protect_rtp(&packet(1_000 + seq as u32, seq, &[0; 160]))
                .unwrap();
            assert_eq!(rx.unprotect_rtp(&fake), Err(UnprotectError::Auth));
            assert!(rx.rtp.probed.len() <= PROBE_SSRCS);
        }
        // A real change of SSRC is followed.
        let switched = tx.protect_rtp(&packet(43, 9, &[0; 160])).unwrap();
        assert!(rx.unprotect_rtp(&switched).is_ok());
        let next = tx.protect_rtp(&packet(43, 10, &[0; 160])).unwrap();
        assert!(rx.unprotect_rtp(&next).is_ok());
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        let suite = SrtpSuite::AeadAes128Gcm;
        let err = Protector::new(suite, &key(SrtpSuite::AesCm128HmacSha1_80, 1)).unwrap_err();
        assert_eq!(
            err,
            SrtpError::KeyLength {
                suite,
                expected: 28,
                got: 30
            }
        );
        let config = SrtpConfig {
            suite,
            local: SrtpKey::new(&[0xAB; 28]),
            remote: SrtpKey::new(&[0xCD; 28]),
        };
        let text = format!("{config:?}");
        assert!(
            !text.contains("171") && !text.contains("AB") && !text.contains("ab"),
            "{text}"
        );
    }
}
