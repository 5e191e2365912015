//! SDES key exchange for SRTP (RFC 4568): the SDP `a=crypto` attribute, parsed and written,
//! and the choice of a crypto line when answering.
//!
//! A line reads `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<len>]
//! [<session params>]`. The suites understood are AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568,
//! 30 bytes of key and salt) and AEAD_AES_128_GCM (RFC 7714, 28 bytes). What the media side
//! cannot do is refused with a reason, per line, so an answerer can pass over a line it cannot
//! honour and take the next: an MKI (the `rtc-srtp` contexts carry none), several keys in one
//! line (they need an MKI), a key lifetime shorter than 2^20 packets (keys are never renewed
//! within a call), and session parameters other than `WSH=` (a hint) and `KDR=0` (the default).
//!
//! Keys are secrets: [`MasterKey`]'s `Debug` prints no key bytes, errors never quote the key
//! text, and the only way to the base64 form is [`CryptoAttribute::to_sdp_value`], which writes
//! SDP (that is sent over TLS, see `docs/sip.md`).
//!
//! ```
//! use sip::sdes::{CryptoAttribute, CryptoSuite};
//! let line = CryptoAttribute::parse(
//!     "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20",
//! )
//! .unwrap();
//! assert_eq!(line.tag, 1);
//! assert_eq!(line.suite, CryptoSuite::AesCm128HmacSha1_80);
//! assert!(!format!("{line:?}").contains("WVNf"));
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The longest key and salt of a suite we speak (AES_CM_128: 16 + 14 bytes).
pub const MAX_KEY_SALT: usize = 30;

/// Why an `a=crypto` attribute cannot be used. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    /// The line has fewer than the tag, the suite and the key parameters.
    #[error("a=crypto needs a tag, a crypto suite and key parameters")]
    Incomplete,
    /// The tag is not 1 to 9 digits.
    #[error("a=crypto tag {0:?} is not 1 to 9 digits")]
    BadTag(String),
    /// A suite we do not implement.
    #[error(
        "crypto suite {0:?} is not supported (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM are)"
    )]
    UnsupportedSuite(String),
    /// A key method other than `inline`.
    #[error("key method {0:?} is not supported (only inline)")]
    UnsupportedKeyMethod(String),
    /// Several `inline:` keys in one line (RFC 4568 allows it only with an MKI).
    #[error("several keys in one a=crypto line are not supported")]
    SeveralKeys,
    /// The key is not base64.
    #[error("the inline key is not valid base64")]
    BadBase64,
    /// The key and salt have the wrong length for the suite.
    #[error("the inline key has {got} bytes, {suite} needs {expected}")]
    BadKeyLength {
        /// The suite's name.
        suite: &'static str,
        /// Bytes it needs.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// The lifetime field does not parse.
    #[error("key lifetime {0:?} is not a number or 2^n")]
    BadLifetime(String),
    /// A lifetime shorter than we can honour without renewing keys.
    #[error(
        "key lifetime of {0} packets is too short: keys are not renewed within a call (2^20 or more is accepted)"
    )]
    ShortLifetime(u64),
    /// The key carries a master key identifier.
    #[error("an MKI (master key identifier) is not supported")]
    Mki,
    /// A session parameter we do not implement (RFC 4568 6.3: the line must be refused).
    #[error("session parameter {0:?} is not supported")]
    UnsupportedSessionParam(String),
}

/// An SRTP crypto suite named in `a=crypto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag (RFC 4568 6.2.1).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, 32-bit HMAC-SHA1 tag on RTP (RFC 4568 6.2.2).
    AesCm128HmacSha1_32,
    /// AES-128 GCM (RFC 7714).
    AeadAes128Gcm,
}

impl CryptoSuite {
    /// Every suite, in our order of preference for offers.
    pub const ALL: [CryptoSuite; 3] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
        CryptoSuite::AeadAes128Gcm,
    ];

    /// The name as SDP writes it.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite of an SDP name (case-sensitive, as RFC 4568's grammar is).
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Master key bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt bytes.
    pub fn salt_len(self) -> usize {
        match self {
            CryptoSuite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// Key and salt, as the inline parameter carries them.
    pub fn key_salt_len(self) -> usize {
        self.key_len() + self.salt_len()
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and salt. Its `Debug` and `Display` never show the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    bytes: [u8; MAX_KEY_SALT],
    len: u8,
}

impl MasterKey {
    /// A fresh random key and salt for `suite` (the system's CSPRNG, via `rand`).
    pub fn random(suite: CryptoSuite) -> MasterKey {
        let mut bytes: [u8; MAX_KEY_SALT] = rand::random();
        bytes[suite.key_salt_len()..].fill(0);
        MasterKey {
            bytes,
            len: suite.key_salt_len() as u8,
        }
    }

    /// Key and salt from raw bytes; `None` unless they are [`MAX_KEY_SALT`] bytes or fewer.
    pub fn from_bytes(raw: &[u8]) -> Option<MasterKey> {
        if raw.len() > MAX_KEY_SALT {
            return None;
        }
        let mut bytes = [0u8; MAX_KEY_SALT];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(MasterKey {
            bytes,
            len: raw.len() as u8,
        })
    }

    /// Key and salt concatenated.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<{} bytes, redacted>)", self.len)
    }
}

/// One `a=crypto` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that the answer's line repeats (RFC 4568 5.1).
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// The master key and salt of the line's author: it protects what the author sends.
    pub key: MasterKey,
    /// The key's lifetime in packets, when given.
    pub lifetime: Option<u64>,
}

/// Shortest key lifetime accepted: about 5.8 hours of 20 ms packets.
const MIN_LIFETIME: u64 = 1 << 20;

impl CryptoAttribute {
    /// A line with a fresh random key.
    pub fn fresh(tag: u32, suite: CryptoSuite) -> CryptoAttribute {
        CryptoAttribute {
            tag,
            suite,
            key: MasterKey::random(suite),
            lifetime: None,
        }
    }

    /// Parses the value of an `a=crypto` attribute (what follows `a=crypto:`).
    pub fn parse(value: &str) -> Result<CryptoAttribute, SdesError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(SdesError::Incomplete);
        };
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::BadTag(crate::message::truncate(tag, 20)));
        }
        let tag: u32 = tag
            .parse()
            .map_err(|_| SdesError::BadTag(crate::message::truncate(tag, 20)))?;
        let suite = CryptoSuite::from_name(suite)
            .ok_or_else(|| SdesError::UnsupportedSuite(crate::message::truncate(suite, 40)))?;
        if key_params.contains(';') {
            return Err(SdesError::SeveralKeys);
        }
        let (method, info) = key_params
            .split_once(':')
            .ok_or_else(|| SdesError::UnsupportedKeyMethod(String::new()))?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(SdesError::UnsupportedKeyMethod(crate::message::truncate(
                method, 20,
            )));
        }
        let mut parts = info.split('|');
        let encoded = parts.next().unwrap_or_default();
        let mut lifetime = None;
        for part in parts {
            if part.contains(':') {
                return Err(SdesError::Mki);
            }
            if lifetime.is_some() {
                return Err(SdesError::BadLifetime(crate::message::truncate(part, 20)));
            }
            lifetime = Some(parse_lifetime(part)?);
        }
        if let Some(packets) = lifetime
            && packets < MIN_LIFETIME
        {
            return Err(SdesError::ShortLifetime(packets));
        }
        let raw = STANDARD
            .decode(encoded)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| SdesError::BadBase64)?;
        if raw.len() != suite.key_salt_len() {
            return Err(SdesError::BadKeyLength {
                suite: suite.name(),
                expected: suite.key_salt_len(),
                got: raw.len(),
            });
        }
        for param in fields {
            let name = param.split('=').next().unwrap_or_default();
            let supported = name == "WSH" || param == "KDR=0";
            if !supported {
                return Err(SdesError::UnsupportedSessionParam(
                    crate::message::truncate(param, 40),
                ));
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key: MasterKey::from_bytes(&raw).ok_or(SdesError::BadBase64)?,
            lifetime,
        })
    }

    /// The attribute's value as SDP carries it. It holds the key: it goes into SDP and
    /// nowhere else (never a log line).
    pub fn to_sdp_value(&self) -> String {
        let mut value = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key.as_bytes())
        );
        if let Some(lifetime) = self.lifetime {
            if lifetime.is_power_of_two() {
                value.push_str(&format!("|2^{}", lifetime.trailing_zeros()));
            } else {
                value.push_str(&format!("|{lifetime}"));
            }
        }
        value
    }
}

fn parse_lifetime(text: &str) -> Result<u64, SdesError> {
    let bad = || SdesError::BadLifetime(crate::message::truncate(text, 20));
    match text.strip_prefix("2^") {
        Some(exponent) => {
            let exponent: u32 = exponent.parse().map_err(|_| bad())?;
            // RFC 3711 caps SRTP at 2^48 packets per key.
            if exponent > 48 {
                return Err(bad());
            }
            Ok(1u64 << exponent)
        }
        None => {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            text.parse().map_err(|_| bad())
        }
    }
}

/// Whether SRTP is wanted on a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpMode {
    /// SRTP when the peer offers or accepts it, plain RTP otherwise. Our offer is `RTP/AVP`
    /// with crypto lines ("best effort", as baresip's `mediaenc=srtp` and many SBCs do it).
    Optional,
    /// SRTP or no call: our offer is `RTP/SAVP`, a plain offer is refused (488), a plain
    /// answer to our offer fails the call.
    Required,
}

/// Our side of SDES on a leg: the mode and one line with a fresh key per suite we offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSrtp {
    /// Optional or required.
    pub mode: SrtpMode,
    /// Our crypto lines, tags 1, 2, ... in order of preference.
    pub lines: Vec<CryptoAttribute>,
}

impl LocalSrtp {
    /// Every suite we speak, each with a fresh key.
    pub fn new(mode: SrtpMode) -> LocalSrtp {
        LocalSrtp::with_suites(mode, &CryptoSuite::ALL)
    }

    /// The given suites, in that order, each with a fresh key.
    pub fn with_suites(mode: SrtpMode, suites: &[CryptoSuite]) -> LocalSrtp {
        LocalSrtp {
            mode,
            lines: suites
                .iter()
                .enumerate()
                .map(|(i, suite)| CryptoAttribute::fresh(i as u32 + 1, *suite))
                .collect(),
        }
    }

    fn line_for(&self, suite: CryptoSuite) -> Option<&CryptoAttribute> {
        self.lines.iter().find(|line| line.suite == suite)
    }
}

/// The SRTP session a negotiation settled on: one suite, a key each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite.
    pub suite: CryptoSuite,
    /// Ours: it protects what we send.
    pub local: MasterKey,
    /// The peer's: it protects what we receive.
    pub remote: MasterKey,
}

/// What an offer or answer's audio stream says about SRTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCrypto {
    /// The transport protocol is `RTP/SAVP` (or `RTP/SAVPF`).
    pub secure_profile: bool,
    /// The crypto lines that parsed, in order.
    pub lines: Vec<CryptoAttribute>,
    /// Lines that did not, with the reason (no key material in either).
    pub refused: Vec<(String, SdesError)>,
}

impl RemoteCrypto {
    /// Reads the protocol and `a=crypto` attributes of an audio stream.
    pub fn read<'a>(
        protos: &[String],
        crypto_values: impl Iterator<Item = Option<&'a str>>,
    ) -> RemoteCrypto {
        let secure_profile = protos.iter().any(|p| p.starts_with("SAVP"));
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        for value in crypto_values {
            let value = value.unwrap_or_default();
            match CryptoAttribute::parse(value) {
                Ok(line) => lines.push(line),
                Err(err) => {
                    // Only the tag and suite, never the key field, identify the line.
                    let label: Vec<&str> = value.split_ascii_whitespace().take(2).collect();
                    refused.push((crate::message::truncate(&label.join(" "), 60), err));
                }
            }
        }
        RemoteCrypto {
            secure_profile,
            lines,
            refused,
        }
    }

    /// Whether the stream asks for SRTP at all.
    pub fn wants_srtp(&self) -> bool {
        self.secure_profile || !self.lines.is_empty() || !self.refused.is_empty()
    }

    fn reasons(&self) -> String {
        let reasons: Vec<String> = self
            .refused
            .iter()
            .map(|(label, err)| format!("{label}: {err}"))
            .collect();
        if reasons.is_empty() {
            "no a=crypto line".to_owned()
        } else {
            reasons.join("; ")
        }
    }
}

/// Why SDES negotiation failed for a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The offer is `RTP/SAVP` and SRTP is off here.
    #[error("the offer requires SRTP (RTP/SAVP) and SRTP is not enabled for this peer")]
    NotEnabled,
    /// SRTP is required here and the peer's SDP has none.
    #[error("SRTP is required and the peer's SDP offers plain RTP")]
    Required,
    /// No crypto line we can use.
    #[error("no usable a=crypto line ({0})")]
    NoUsableLine(String),
    /// The answer's crypto line does not match one of ours.
    #[error("the answer's a=crypto (tag {tag}, {suite}) matches none of our offered lines")]
    AnswerMismatch {
        /// The answer's tag.
        tag: u32,
        /// The answer's suite.
        suite: CryptoSuite,
    },
}

/// As the answerer: the SRTP session for `offer` given `local`, and the line our answer
/// carries (`None` for plain RTP). The first of the offer's lines that parses and whose suite
/// we offer wins (RFC 4568 7.1.1: the offerer lists its preference first).
pub fn choose_for_answer(
    local: Option<&LocalSrtp>,
    offer: &RemoteCrypto,
) -> Result<Option<(CryptoAttribute, SrtpKeys)>, NegotiationError> {
    let Some(local) = local else {
        return if offer.secure_profile {
            Err(NegotiationError::NotEnabled)
        } else {
            Ok(None)
        };
    };
    let chosen = offer
        .lines
        .iter()
        .find_map(|theirs| local.line_for(theirs.suite).map(|ours| (theirs, ours)));
    match chosen {
        Some((theirs, ours)) => Ok(Some((
            CryptoAttribute {
                tag: theirs.tag,
                suite: theirs.suite,
                key: ours.key,
                lifetime: None,
            },
            SrtpKeys {
                suite: theirs.suite,
                local: ours.key,
                remote: theirs.key,
            },
        ))),
        None if offer.secure_profile || local.mode == SrtpMode::Required => {
            if offer.wants_srtp() {
                Err(NegotiationError::NoUsableLine(offer.reasons()))
            } else {
                Err(NegotiationError::Required)
            }
        }
        // A best-effort offer whose lines we cannot use: plain RTP.
        None => Ok(None),
    }
}

/// As the offerer: the SRTP session the peer's `answer` settles, given our offer's `local`.
pub fn from_answer(
    local: Option<&LocalSrtp>,
    answer: &RemoteCrypto,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    let Some(local) = local else {
        // We offered plain RTP: an answer may not add SRTP (RFC 4568 5.1.2).
        return Ok(None);
    };
    let Some(theirs) = answer.lines.first() else {
        if answer.secure_profile || !answer.refused.is_empty() {
            return Err(NegotiationError::NoUsableLine(answer.reasons()));
        }
        return match local.mode {
            SrtpMode::Required => Err(NegotiationError::Required),
            SrtpMode::Optional => Ok(None),
        };
    };
    let ours = local
        .lines
        .iter()
        .find(|line| line.tag == theirs.tag && line.suite == theirs.suite)
        .ok_or(NegotiationError::AnswerMismatch {
            tag: theirs.tag,
            suite: theirs.suite,
        })?;
    Ok(Some(SrtpKeys {
        suite: ours.suite,
        local: ours.key,
        remote: theirs.key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY80: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    fn read(protos: &[&str], lines: &[&str]) -> RemoteCrypto {
        let protos: Vec<String> = protos.iter().map(|p| p.to_string()).collect();
        RemoteCrypto::read(&protos, lines.iter().map(|l| Some(*l)))
    }

    #[test]
    fn the_rfc_example_parses() {
        // RFC 4568 section 9.1's example.
        let line =
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20"))
                .unwrap();
        assert_eq!(line.tag, 1);
        assert_eq!(line.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(line.key.as_bytes().len(), 30);
        assert_eq!(line.lifetime, Some(1 << 20));
        assert_eq!(
            line.to_sdp_value(),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20")
        );
        let again = CryptoAttribute::parse(&line.to_sdp_value()).unwrap();
        assert_eq!(again, line);
    }

    #[test]
    fn suites_and_session_params() {
        let gcm = STANDARD.encode([7u8; 28]);
        let line = CryptoAttribute::parse(&format!("9 AEAD_AES_128_GCM inline:{gcm}")).unwrap();
        assert_eq!(line.suite, CryptoSuite::AeadAes128Gcm);
        let ok = CryptoAttribute::parse(&format!(
            "2 AES_CM_128_HMAC_SHA1_32 inline:{KEY80} WSH=64 KDR=0"
        ))
        .unwrap();
        assert_eq!(ok.suite, CryptoSuite::AesCm128HmacSha1_32);
        // A decimal lifetime, and a key without padding.
        let unpadded = STANDARD.encode([1u8; 30]).trim_end_matches('=').to_owned();
        let line = CryptoAttribute::parse(&format!(
            "3 AES_CM_128_HMAC_SHA1_80 inline:{unpadded}|2000000"
        ))
        .unwrap();
        assert_eq!(line.lifetime, Some(2_000_000));
        assert_eq!(line.key.as_bytes(), &[1u8; 30]);
    }

    #[test]
    fn malformed_and_unsupported_lines_are_refused_with_the_reason() {
        let cases: Vec<(String, SdesError)> = vec![
            ("".into(), SdesError::Incomplete),
            ("1 AES_CM_128_HMAC_SHA1_80".into(), SdesError::Incomplete),
            (
                format!("x1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}"),
                SdesError::BadTag("x1".into()),
            ),
            (
                format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}"),
                SdesError::BadTag("1234567890".into()),
            ),
            (
                format!("1 F8_128_HMAC_SHA1_80 inline:{KEY80}"),
                SdesError::UnsupportedSuite("F8_128_HMAC_SHA1_80".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 uri:{KEY80}"),
                SdesError::UnsupportedKeyMethod("uri".into()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 nokeymethod".into(),
                SdesError::UnsupportedKeyMethod(String::new()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!".into(),
                SdesError::BadBase64,
            ),
            (
                format!(
                    "1 AES_CM_128_HMAC_SHA1_80 inline:{}",
                    STANDARD.encode([0u8; 16])
                ),
                SdesError::BadKeyLength {
                    suite: "AES_CM_128_HMAC_SHA1_80",
                    expected: 30,
                    got: 16,
                },
            ),
            (
                format!("1 AEAD_AES_128_GCM inline:{KEY80}"),
                SdesError::BadKeyLength {
                    suite: "AEAD_AES_128_GCM",
                    expected: 28,
                    got: 30,
                },
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20|1:4"),
                SdesError::Mki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1:4"),
                SdesError::Mki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^10"),
                SdesError::ShortLifetime(1024),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^99"),
                SdesError::BadLifetime("2^99".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|abc"),
                SdesError::BadLifetime("abc".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80};inline:{KEY80}"),
                SdesError::SeveralKeys,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} UNENCRYPTED_SRTP"),
                SdesError::UnsupportedSessionParam("UNENCRYPTED_SRTP".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} KDR=24"),
                SdesError::UnsupportedSessionParam("KDR=24".into()),
            ),
        ];
        for (text, expected) in cases {
            let got = CryptoAttribute::parse(&text);
            assert_eq!(got, Err(expected.clone()), "{text}");
            // No message quotes the key.
            assert!(!expected.to_string().contains("WVNf"), "{expected}");
        }
    }

    #[test]
    fn keys_never_show_in_debug_output_or_errors() {
        let local = LocalSrtp::new(SrtpMode::Required);
        let debug = format!("{local:?}");
        for line in &local.lines {
            let value = line.to_sdp_value();
            let encoded = value.split("inline:").nth(1).unwrap();
            assert!(!debug.contains(encoded), "{debug}");
        }
        assert!(debug.contains("redacted"));
        // Fresh keys differ from line to line and from leg to leg.
        let other = LocalSrtp::new(SrtpMode::Required);
        assert_ne!(local.lines[0].key, other.lines[0].key);
        assert_ne!(local.lines[0].key, local.lines[1].key);
        assert_eq!(local.lines[2].key.as_bytes().len(), 28);
    }

    #[test]
    fn the_answerer_takes_the_offers_first_usable_line_with_a_key_of_its_own() {
        let offer = read(
            &["RTP", "SAVP"],
            &[
                &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY80}"),
                &format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY80}"),
                &format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}"),
            ],
        );
        assert_eq!(offer.lines.len(), 2);
        assert_eq!(offer.refused.len(), 1);
        let local = LocalSrtp::new(SrtpMode::Optional);
        let (line, keys) = choose_for_answer(Some(&local), &offer).unwrap().unwrap();
        assert_eq!(line.tag, 2);
        assert_eq!(keys.suite, CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(keys.remote, offer.lines[0].key);
        assert_eq!(keys.local, local.lines[1].key);
        assert_eq!(line.key, keys.local);
        // The offerer, reading that answer, settles on the same keys seen from its side.
        let ours = LocalSrtp {
            mode: SrtpMode::Required,
            lines: offer.lines.clone(),
        };
        let answer = read(&["RTP", "SAVP"], &[&line.to_sdp_value()]);
        let settled = from_answer(Some(&ours), &answer).unwrap().unwrap();
        assert_eq!(settled.local, keys.remote);
        assert_eq!(settled.remote, keys.local);
    }

    #[test]
    fn offers_and_modes() {
        let required = LocalSrtp::new(SrtpMode::Required);
        let optional = LocalSrtp::new(SrtpMode::Optional);
        let plain = read(&["RTP", "AVP"], &[]);
        let savp_unusable = read(&["RTP", "SAVP"], &["1 F8_128_HMAC_SHA1_80 inline:AAAA"]);
        let best_effort = read(
            &["RTP", "AVP"],
            &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}")],
        );
        let best_effort_unusable = read(&["RTP", "AVP"], &["1 F8_128_HMAC_SHA1_80 inline:AAAA"]);

        // SRTP off: a SAVP offer is refused, best effort is answered plain.
        assert_eq!(
            choose_for_answer(None, &savp_unusable),
            Err(NegotiationError::NotEnabled)
        );
        assert_eq!(choose_for_answer(None, &best_effort), Ok(None));
        assert_eq!(choose_for_answer(None, &plain), Ok(None));
        // Required: a plain offer is refused; best effort is taken.
        assert_eq!(
            choose_for_answer(Some(&required), &plain),
            Err(NegotiationError::Required)
        );
        assert!(
            choose_for_answer(Some(&required), &best_effort)
                .unwrap()
                .is_some()
        );
        let err = choose_for_answer(Some(&required), &best_effort_unusable).unwrap_err();
        assert!(err.to_string().contains("F8_128_HMAC_SHA1_80"), "{err}");
        // Optional: best effort taken, unusable best effort and plain answered plain, a SAVP
        // offer without a usable line refused.
        assert!(
            choose_for_answer(Some(&optional), &best_effort)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            choose_for_answer(Some(&optional), &best_effort_unusable),
            Ok(None)
        );
        assert_eq!(choose_for_answer(Some(&optional), &plain), Ok(None));
        assert!(matches!(
            choose_for_answer(Some(&optional), &savp_unusable),
            Err(NegotiationError::NoUsableLine(_))
        ));
    }

    #[test]
    fn answers_are_checked_against_our_offer() {
        let required = LocalSrtp::new(SrtpMode::Required);
        let optional = LocalSrtp::new(SrtpMode::Optional);
        let plain = read(&["RTP", "AVP"], &[]);
        assert_eq!(
            from_answer(Some(&required), &plain),
            Err(NegotiationError::Required)
        );
        assert_eq!(from_answer(Some(&optional), &plain), Ok(None));
        assert_eq!(from_answer(None, &plain), Ok(None));
        // A tag we did not offer, or our tag with another suite.
        let wrong = read(
            &["RTP", "SAVP"],
            &[&format!("7 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}")],
        );
        assert!(matches!(
            from_answer(Some(&required), &wrong),
            Err(NegotiationError::AnswerMismatch { tag: 7, .. })
        ));
        let swapped = read(
            &["RTP", "SAVP"],
            &[&format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}")],
        );
        assert!(from_answer(Some(&required), &swapped).is_err());
        // A SAVP answer whose line does not parse.
        let broken = read(&["RTP", "SAVP"], &["1 AES_CM_128_HMAC_SHA1_80 inline:!!"]);
        assert!(matches!(
            from_answer(Some(&optional), &broken),
            Err(NegotiationError::NoUsableLine(_))
        ));
    }
}
