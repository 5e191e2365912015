//! The browser's SDP offer, read down to what the WebRTC agent leg needs, and our answer.
//!
//! One audio m-line (BUNDLE of it alone), G.711 so the bridge relays without transcoding,
//! rtcp-mux, ICE credentials and a DTLS fingerprint. The answer is ICE-lite with our host
//! candidate, `a=setup:passive` (we are the DTLS server) and the chosen codec.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rtc_sdp::SessionDescription;
use rtc_sdp::description::media::MediaDescription;

use crate::g711::Codec;

/// Why a browser's offer cannot be answered (each names what is wrong, for a 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The text is not SDP.
    #[error("the offer is not SDP: {0}")]
    NotSdp(String),
    /// No `m=audio` line.
    #[error("the offer has no audio m-line")]
    NoAudio,
    /// The audio m-line offers neither PCMU nor PCMA.
    #[error(
        "the offer's audio offers neither PCMU nor PCMA (G.711 is relayed without transcoding)"
    )]
    NoG711,
    /// No `a=fingerprint` (or not SHA-256).
    #[error("the offer has no sha-256 DTLS fingerprint (a=fingerprint)")]
    NoFingerprint,
    /// No ICE credentials.
    #[error("the offer has no ICE credentials (a=ice-ufrag and a=ice-pwd)")]
    NoIce,
    /// The audio m-line is not DTLS-SRTP.
    #[error("the offer's audio is not DTLS-SRTP (UDP/TLS/RTP/SAVPF), its protocol is {0}")]
    NotDtlsSrtp(String),
    /// The browser insists on being the DTLS server.
    #[error(
        "the offer has a=setup:passive; the dialer is the DTLS server, the browser must offer actpass or active"
    )]
    SetupPassive,
    /// RTP and RTCP on separate ports.
    #[error("the offer has no a=rtcp-mux; RTP and RTCP must share the port")]
    NoRtcpMux,
}

/// What the browser offered that the leg uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserOffer {
    /// The browser's ICE username fragment.
    pub ice_ufrag: String,
    /// The browser's ICE password.
    pub ice_pwd: String,
    /// The browser's certificate fingerprint (SHA-256, colon-separated hex, lower case).
    pub fingerprint: String,
    /// The audio m-line's `a=mid`.
    pub mid: Option<String>,
    /// The G.711 codec chosen (the browser's first) and its payload type.
    pub codec: (u8, Codec),
    /// The telephone-event payload type at 8 kHz, if offered.
    pub dtmf: Option<u8>,
}

/// Our side of the answer.
#[derive(Debug, Clone)]
pub struct LocalIce {
    /// Our username fragment.
    pub ufrag: String,
    /// Our password.
    pub pwd: String,
}

impl LocalIce {
    /// Fresh random credentials (RFC 8445: at least 24 bits of ufrag, 128 of password).
    pub fn random() -> LocalIce {
        LocalIce {
            ufrag: random_token(8),
            pwd: random_token(24),
        }
    }
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Reads a browser's offer.
pub fn parse_offer(text: &str) -> Result<BrowserOffer, OfferError> {
    if !text.trim_start().starts_with("v=") {
        return Err(OfferError::NotSdp("it does not start with v=".into()));
    }
    // The parser wants CRLF or LF lines; a JSON client may have sent either.
    let session = SessionDescription::unmarshal(&mut std::io::Cursor::new(text.as_bytes()))
        .map_err(|err| OfferError::NotSdp(err.to_string()))?;
    let audio = session
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio" && m.media_name.port.value != 0)
        .ok_or(OfferError::NoAudio)?;
    let protos = audio.media_name.protos.join("/");
    if !protos.contains("TLS") {
        return Err(OfferError::NotDtlsSrtp(protos));
    }
    let attr = |key: &str| -> Option<String> {
        media_attr(audio, key).or_else(|| session.attribute(key).cloned())
    };
    let (Some(ice_ufrag), Some(ice_pwd)) = (attr("ice-ufrag"), attr("ice-pwd")) else {
        return Err(OfferError::NoIce);
    };
    let fingerprint = attr("fingerprint")
        .and_then(|value| {
            let (algorithm, hex) = value.trim().split_once(' ')?;
            algorithm
                .eq_ignore_ascii_case("sha-256")
                .then(|| hex.trim().to_ascii_lowercase())
        })
        .ok_or(OfferError::NoFingerprint)?;
    if attr("setup").is_some_and(|s| s.trim() == "passive") {
        return Err(OfferError::SetupPassive);
    }
    if !audio.has_attribute("rtcp-mux") {
        return Err(OfferError::NoRtcpMux);
    }
    let mut codec = None;
    let mut dtmf = None;
    for format in &audio.media_name.formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        let name = rtpmap(audio, pt).or(match pt {
            0 => Some("PCMU/8000".into()),
            8 => Some("PCMA/8000".into()),
            _ => None,
        });
        let Some(name) = name else { continue };
        let name = name.to_ascii_uppercase();
        if codec.is_none() && name.starts_with("PCMU/8000") {
            codec = Some((pt, Codec::Pcmu));
        } else if codec.is_none() && name.starts_with("PCMA/8000") {
            codec = Some((pt, Codec::Pcma));
        } else if dtmf.is_none() && name.starts_with("TELEPHONE-EVENT/8000") {
            dtmf = Some(pt);
        }
    }
    Ok(BrowserOffer {
        ice_ufrag,
        ice_pwd,
        fingerprint,
        mid: media_attr(audio, "mid"),
        codec: codec.ok_or(OfferError::NoG711)?,
        dtmf,
    })
}

fn media_attr(media: &MediaDescription, key: &str) -> Option<String> {
    media
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
}

fn rtpmap(media: &MediaDescription, pt: u8) -> Option<String> {
    media
        .attributes
        .iter()
        .filter(|a| a.key == "rtpmap")
        .filter_map(|a| a.value.as_deref())
        .find_map(|v| {
            let (p, name) = v.split_once(' ')?;
            (p.trim().parse::<u8>().ok()? == pt).then(|| name.trim().to_owned())
        })
}

/// Our answer: ICE-lite, our host candidate at `local`, DTLS server with `fingerprint`.
pub fn answer(
    offer: &BrowserOffer,
    local: SocketAddr,
    ice: &LocalIce,
    fingerprint: &str,
) -> String {
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let port = local.port();
    let (pt, codec) = offer.codec;
    let mut formats = pt.to_string();
    if let Some(dtmf) = offer.dtmf {
        let _ = write!(formats, " {dtmf}");
    }
    let session_id: u64 = rand::random_range(1..(1u64 << 62));
    let mut s = String::new();
    let _ = write!(
        s,
        "v=0\r\no=- {session_id} 2 IN {family} {ip}\r\ns=-\r\nt=0 0\r\n"
    );
    if let Some(mid) = &offer.mid {
        let _ = write!(s, "a=group:BUNDLE {mid}\r\n");
    }
    let _ = write!(
        s,
        "a=ice-lite\r\nm=audio {port} UDP/TLS/RTP/SAVPF {formats}\r\nc=IN {family} {ip}\r\n"
    );
    let _ = write!(
        s,
        "a=candidate:1 1 udp 2130706431 {ip} {port} typ host\r\na=end-of-candidates\r\n"
    );
    let _ = write!(
        s,
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:passive\r\n",
        ice.ufrag,
        ice.pwd,
        fingerprint.to_ascii_uppercase()
    );
    if let Some(mid) = &offer.mid {
        let _ = write!(s, "a=mid:{mid}\r\n");
    }
    let _ = write!(
        s,
        "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:{pt} {}/8000\r\n",
        match codec {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    );
    if let Some(dtmf) = offer.dtmf {
        let _ = write!(
            s,
            "a=rtpmap:{dtmf} telephone-event/8000\r\na=fmtp:{dtmf} 0-15\r\n"
        );
    }
    s.push_str("a=ptime:20\r\n");
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What Chromium 13x offers for one audio track, ICE gathering complete.
    pub(crate) const CHROMIUM_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS 2b2f4d1c\r\n\
m=audio 51234 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 127.0.0.1\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 127.0.0.1 51234 typ host generation 0\r\n\
a=ice-ufrag:Ab3d\r\n\
a=ice-pwd:0123456789abcdefghijklmn\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=msid:2b2f4d1c 7e1f\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1111 cname:xyz\r\n";

    #[test]
    fn chromium_offer_gives_pcmu_dtmf_and_credentials() {
        let offer = parse_offer(CHROMIUM_OFFER).unwrap();
        assert_eq!(offer.codec, (0, Codec::Pcmu));
        assert_eq!(offer.dtmf, Some(126));
        assert_eq!(offer.ice_ufrag, "Ab3d");
        assert_eq!(offer.mid.as_deref(), Some("0"));
        assert!(offer.fingerprint.starts_with("aa:bb:cc"));
        let ice = LocalIce::random();
        let text = answer(&offer, "10.1.2.3:40000".parse().unwrap(), &ice, "ab:cd");
        for line in [
            "a=ice-lite",
            "m=audio 40000 UDP/TLS/RTP/SAVPF 0 126",
            "a=candidate:1 1 udp 2130706431 10.1.2.3 40000 typ host",
            "a=setup:passive",
            "a=group:BUNDLE 0",
            "a=fingerprint:sha-256 AB:CD",
            "a=rtcp-mux",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        // Our answer is itself SDP the parser reads.
        SessionDescription::unmarshal(&mut std::io::Cursor::new(text.as_bytes())).unwrap();
    }

    #[test]
    fn bad_offers_are_named() {
        let cases = [
            ("hello", OfferError::NotSdp(String::new())),
            (
                &CHROMIUM_OFFER.replace("m=audio 51234", "m=video 51234")[..],
                OfferError::NoAudio,
            ),
            (
                &CHROMIUM_OFFER
                    .replace("a=rtpmap:0 PCMU/8000\r\n", "")
                    .replace("a=rtpmap:8 PCMA/8000\r\n", "")
                    .replace(" 9 0 8 13", " 9 13")[..],
                OfferError::NoG711,
            ),
            (
                &CHROMIUM_OFFER.replace("a=fingerprint:", "a=x-fingerprint:")[..],
                OfferError::NoFingerprint,
            ),
            (
                &CHROMIUM_OFFER.replace("a=ice-pwd:", "a=x-ice-pwd:")[..],
                OfferError::NoIce,
            ),
            (
                &CHROMIUM_OFFER.replace("a=setup:actpass", "a=setup:passive")[..],
                OfferError::SetupPassive,
            ),
            (
                &CHROMIUM_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP")[..],
                OfferError::NotDtlsSrtp(String::new()),
            ),
        ];
        for (text, want) in cases {
            let got = parse_offer(text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{got}"
            );
        }
    }
}
