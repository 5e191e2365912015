//! SDP offer/answer for the dialer's audio legs, on `rtc::sdp` (the `rtc-sdp` crate).
//!
//! The media side deals in socket addresses and payload types, not SDP: [`offer`] and [`answer`]
//! turn a [`LocalMedia`] into SDP, and [`Sdp::remote_media`] turns the peer's SDP into a
//! [`RemoteMedia`] (where to send RTP, with which codec and payload type).
//!
//! ```
//! use sip::sdp::{self, LocalMedia, Codec};
//! let local = LocalMedia::new("192.0.2.10:40000".parse().unwrap());
//! let offer = sdp::offer(&local, &sdp::Origin::new());
//! let remote = offer.remote_media(&[Codec::Pcmu, Codec::Pcma]).unwrap();
//! assert_eq!(remote.addr.port(), 40000);
//! assert_eq!(remote.codec, Codec::Pcmu);
//! assert_eq!(remote.telephone_event, Some(101));
//! ```

use rtc_sdp::SessionDescription;
use rtc_sdp::description::common::{Address, Attribute, ConnectionInformation};
use rtc_sdp::description::media::{MediaDescription, MediaName, RangedPort};
use rtc_sdp::description::session::{Origin as SdpOrigin, TimeDescription, Timing};

use crate::sdes::{self, CryptoAttribute, LocalSrtp, RemoteCrypto, SrtpKeys, SrtpMode};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Why an SDP body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The text is not SDP.
    #[error("unparsable SDP: {0}")]
    Syntax(String),
    /// The body is larger than we accept.
    #[error("SDP body of {0} bytes is too large")]
    TooLarge(usize),
    /// No `m=audio` section with a non-zero port.
    #[error("no active audio stream in the SDP")]
    NoAudio,
    /// No connection address for the audio stream.
    #[error("no usable connection address (c=) for the audio stream")]
    NoAddress,
    /// None of the offered codecs is one we support.
    #[error("no codec in common (offered payload types: {0})")]
    NoCommonCodec(String),
    /// The SDP's parser panicked on this input (contained).
    #[error("the SDP parser panicked on this input")]
    ParserPanic,
    /// SRTP (SDES, RFC 4568) could not be agreed.
    #[error("SRTP: {0}")]
    Srtp(#[from] crate::sdes::NegotiationError),
}

/// An audio codec the dialer speaks on its RTP legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 mu-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

/// Media direction (RFC 3264 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways.
    #[default]
    SendRecv,
    /// We (the SDP's author) only send: the peer is put on hold.
    SendOnly,
    /// The author only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(key: &str) -> Option<Direction> {
        Some(match key {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The direction seen from the other side (sendonly becomes recvonly).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    fn can_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    fn can_receive(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(send: bool, receive: bool) -> Direction {
        match (send, receive) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// Our side of an RTP leg: where we receive and what we can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Where we receive RTP (the IP goes into `c=`, the port into `m=`).
    pub addr: SocketAddr,
    /// Codecs in order of preference.
    pub codecs: Vec<Codec>,
    /// The payload type offered for RFC 4733 telephone-event (DTMF), or `None` not to offer it.
    pub telephone_event: Option<u8>,
    /// Our direction (sendrecv normally).
    pub direction: Direction,
    /// Packetisation time in milliseconds (`a=ptime`), 20 by default.
    pub ptime: u32,
    /// SRTP with SDES keys (RFC 4568), or `None` for plain RTP only.
    pub srtp: Option<LocalSrtp>,
}

impl LocalMedia {
    /// PCMU, then PCMA, telephone-event on payload type 101, sendrecv, 20 ms packets.
    pub fn new(addr: SocketAddr) -> Self {
        LocalMedia {
            addr,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            ptime: 20,
            srtp: None,
        }
    }

    /// With SRTP in `mode`, every suite offered with a fresh key.
    pub fn with_srtp(mut self, mode: SrtpMode) -> Self {
        self.srtp = Some(LocalSrtp::new(mode));
        self
    }
}

/// What the peer's SDP says about its audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP (`c=` address and `m=` port). `0.0.0.0` means "on hold" (RFC 2543 style).
    pub addr: SocketAddr,
    /// The codec to use.
    pub codec: Codec,
    /// Its payload type in this session.
    pub payload_type: u8,
    /// The telephone-event payload type, if the peer accepts DTMF events.
    pub telephone_event: Option<u8>,
    /// The peer's direction, as the peer wrote it.
    pub direction: Direction,
    /// The SRTP keys agreed, when the stream is SRTP. Set by [`answer`] and [`answered`];
    /// [`Sdp::remote_media`] alone does not negotiate and leaves it `None`.
    pub srtp: Option<SrtpKeys>,
}

/// A session description, as carried in a SIP body.
#[derive(Clone, PartialEq, Eq)]
pub struct Sdp(String);

impl Sdp {
    /// Wraps SDP text.
    pub fn new(text: impl Into<String>) -> Sdp {
        Sdp(text.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the SDP with `rtc::sdp`, with any parser panic contained.
    pub fn parse(&self) -> Result<SessionDescription, SdpError> {
        if self.0.len() > 16 * 1024 {
            return Err(SdpError::TooLarge(self.0.len()));
        }
        let text = self.0.as_str();
        std::panic::catch_unwind(|| {
            SessionDescription::unmarshal(&mut std::io::Cursor::new(text.as_bytes()))
        })
        .map_err(|_| SdpError::ParserPanic)?
        .map_err(|err| SdpError::Syntax(crate::message::truncate(&err.to_string(), 200)))
    }

    /// The peer's audio stream, choosing the first of its formats that is in `supported`.
    pub fn remote_media(&self, supported: &[Codec]) -> Result<RemoteMedia, SdpError> {
        let session = self.parse()?;
        let (media, chosen, telephone_event) = pick_audio(&session, supported)?;
        let address = media
            .connection_information
            .as_ref()
            .or(session.connection_information.as_ref())
            .and_then(|info| info.address.as_ref())
            .and_then(|address| address.address.parse::<IpAddr>().ok())
            .ok_or(SdpError::NoAddress)?;
        let port = u16::try_from(media.media_name.port.value).map_err(|_| SdpError::NoAudio)?;
        Ok(RemoteMedia {
            addr: SocketAddr::new(address, port),
            codec: chosen.0,
            payload_type: chosen.1,
            telephone_event,
            direction: direction_of(&session, media),
            srtp: None,
        })
    }

    /// The SRTP view of the audio stream: its protocol and `a=crypto` lines.
    pub fn crypto(&self) -> Result<RemoteCrypto, SdpError> {
        let session = self.parse()?;
        let media = session
            .media_descriptions
            .iter()
            .find(|media| media.media_name.media == "audio" && media.media_name.port.value > 0)
            .ok_or(SdpError::NoAudio)?;
        Ok(RemoteCrypto::read(
            &media.media_name.protos,
            media
                .attributes
                .iter()
                .filter(|attribute| attribute.key == "crypto")
                .map(|attribute| attribute.value.as_deref()),
        ))
    }
}

impl fmt::Debug for Sdp {
    /// The text with SRTP keys (`inline:...` up to the next `|`, space or line end) redacted,
    /// so that a logged event or call never shows one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(at) = rest.find("inline:") {
            let (head, tail) = rest.split_at(at + "inline:".len());
            shown.push_str(head);
            shown.push_str("<redacted>");
            let end = tail
                .find(|c: char| c == '|' || c.is_ascii_whitespace())
                .unwrap_or(tail.len());
            rest = &tail[end..];
        }
        shown.push_str(rest);
        write!(f, "Sdp({shown:?})")
    }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `o=` line's session id and version, kept per call so that every new SDP we send in one
/// session has the same id and a version one higher (RFC 3264 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Session id.
    pub id: u64,
    /// Session version, incremented for each changed description.
    pub version: u64,
}

impl Origin {
    /// A fresh origin with a random id.
    pub fn new() -> Self {
        let id = rand::random::<u32>() as u64;
        Origin { id, version: id }
    }
}

impl Default for Origin {
    fn default() -> Self {
        Self::new()
    }
}

fn rtpmap(payload_type: u8, name: &str) -> Attribute {
    Attribute::new("rtpmap".into(), Some(format!("{payload_type} {name}/8000")))
}

/// The telephone events we send and understand (RFC 4733: DTMF 0-9, `*`, `#`, A-D, flash).
const OUR_EVENTS: u32 = (1 << 17) - 1;

/// The events an `a=fmtp` value such as `0-15` or `0-11,16` names, as a mask of events 0-31
/// (ours are 0-16; the ones above 31 are no business of ours). `None` when it is malformed.
fn parse_events(value: &str) -> Option<u32> {
    let mut mask = 0u32;
    for part in value.split(',') {
        let part = part.trim();
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
            None => {
                let one = part.parse::<u16>().ok()?;
                (one, one)
            }
        };
        if first > last || last > 255 {
            return None;
        }
        for event in first..=last.min(31) {
            mask |= 1 << event;
        }
    }
    Some(mask)
}

/// An events mask written as `a=fmtp` writes it: `0-15`, `0-11,16`.
fn format_events(mask: u32) -> String {
    let mut parts = Vec::new();
    let mut event = 0u32;
    while event < 32 {
        if mask & (1 << event) == 0 {
            event += 1;
            continue;
        }
        let first = event;
        while event < 32 && mask & (1 << event) != 0 {
            event += 1;
        }
        let last = event - 1;
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(",")
}

/// The telephone events the peer's SDP accepts on payload type `pt`: its `a=fmtp` list, or
/// RFC 4733's default 0-15 when it gives none (or one we cannot read).
fn offered_events(session: &SessionDescription, pt: u8) -> u32 {
    let prefix = pt.to_string();
    session
        .media_descriptions
        .iter()
        .filter(|media| media.media_name.media == "audio")
        .flat_map(|media| media.attributes.iter())
        .filter(|attribute| attribute.key == "fmtp")
        .filter_map(|attribute| attribute.value.as_deref())
        .find_map(|value| {
            let (format, params) = value.split_once(' ')?;
            (format.trim() == prefix).then(|| parse_events(params))
        })
        .flatten()
        .unwrap_or((1 << 16) - 1)
}

/// What the `m=` line's protocol and the crypto attributes say.
struct Protection<'a> {
    secure_profile: bool,
    lines: &'a [CryptoAttribute],
}

fn describe(
    local: &LocalMedia,
    origin: &Origin,
    formats: &[(u8, &str)],
    direction: Direction,
    events: u32,
    protection: Protection<'_>,
) -> Sdp {
    let ip = local.addr.ip();
    let address_type = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut attributes: Vec<Attribute> = formats
        .iter()
        .map(|(payload_type, name)| rtpmap(*payload_type, name))
        .collect();
    for (payload_type, name) in formats {
        if name.starts_with("telephone-event") {
            attributes.push(Attribute::new(
                "fmtp".into(),
                Some(format!("{payload_type} {}", format_events(events))),
            ));
        }
    }
    attributes.push(Attribute::new(
        "ptime".into(),
        Some(local.ptime.to_string()),
    ));
    attributes.push(Attribute::new(direction.attribute().into(), None));
    for line in protection.lines {
        attributes.push(Attribute::new("crypto".into(), Some(line.to_sdp_value())));
    }
    let profile = if protection.secure_profile {
        "SAVP"
    } else {
        "AVP"
    };
    let session = SessionDescription {
        version: 0,
        origin: SdpOrigin {
            username: "dialer".into(),
            session_id: origin.id,
            session_version: origin.version,
            network_type: "IN".into(),
            address_type: address_type.into(),
            unicast_address: ip.to_string(),
        },
        session_name: "dialer".into(),
        connection_information: Some(ConnectionInformation {
            network_type: "IN".into(),
            address_type: address_type.into(),
            address: Some(Address {
                address: ip.to_string(),
                ttl: None,
                range: None,
            }),
        }),
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        media_descriptions: vec![MediaDescription {
            media_name: MediaName {
                media: "audio".into(),
                port: RangedPort {
                    value: local.addr.port() as isize,
                    range: None,
                },
                protos: vec!["RTP".into(), profile.into()],
                formats: formats.iter().map(|(pt, _)| pt.to_string()).collect(),
            },
            attributes,
            ..Default::default()
        }],
        ..Default::default()
    };
    Sdp(session.marshal())
}

/// An SDP offer for `local`, with `origin`'s session id and version in the `o=` line.
pub fn offer(local: &LocalMedia, origin: &Origin) -> Sdp {
    let telephone_event = local.telephone_event.map(|pt| (pt, "telephone-event"));
    let formats: Vec<(u8, &str)> = local
        .codecs
        .iter()
        .map(|codec| (codec.payload_type(), codec.name()))
        .chain(telephone_event)
        .collect();
    let protection = match &local.srtp {
        Some(srtp) => Protection {
            secure_profile: srtp.mode == SrtpMode::Required,
            lines: &srtp.lines,
        },
        None => Protection {
            secure_profile: false,
            lines: &[],
        },
    };
    describe(
        local,
        origin,
        &formats,
        local.direction,
        OUR_EVENTS,
        protection,
    )
}

/// The peer's stream from its `answer` to our offer of `local`, with the SRTP keys it settles:
/// an answer without SRTP to an offer that required it, or one whose crypto line is not one of
/// ours, is an error (the call cannot go on).
pub fn answered(local: &LocalMedia, answer: &Sdp) -> Result<RemoteMedia, SdpError> {
    let remote = answer.remote_media(&local.codecs)?;
    let srtp = sdes::from_answer(local.srtp.as_ref(), &answer.crypto()?)?;
    Ok(RemoteMedia { srtp, ..remote })
}

/// Our answer to the peer's `offer`, and the peer's stream as the answer settles it. Uses the
/// first of the offerer's codecs that `local` supports (RFC 3264 section 6.1), answers
/// telephone-event on the offerer's payload type, and mirrors a hold (sendonly becomes recvonly).
pub fn answer(
    local: &LocalMedia,
    offer: &Sdp,
    origin: &Origin,
) -> Result<(Sdp, RemoteMedia), SdpError> {
    let remote = offer.remote_media(&local.codecs)?;
    let crypto = offer.crypto()?;
    let chosen = sdes::choose_for_answer(local.srtp.as_ref(), &crypto)?;
    // Only the events both sides know (RFC 4733 section 2.4.1): the answer never widens the
    // offer's list; with none in common, no telephone-event at all.
    let events = match remote.telephone_event {
        Some(pt) => offered_events(&offer.parse()?, pt) & OUR_EVENTS,
        None => 0,
    };
    let telephone_event = local
        .telephone_event
        .and(remote.telephone_event)
        .filter(|_| events != 0);
    let mut formats = vec![(remote.payload_type, remote.codec.name())];
    if let Some(pt) = telephone_event {
        formats.push((pt, "telephone-event"));
    }
    let direction = Direction::from_flags(
        local.direction.can_send() && remote.direction.can_receive(),
        local.direction.can_receive() && remote.direction.can_send(),
    );
    let line: Vec<CryptoAttribute> = chosen.iter().map(|(line, _)| *line).collect();
    let protection = Protection {
        // A best-effort offer (RTP/AVP with crypto lines) is answered in kind.
        secure_profile: crypto.secure_profile && chosen.is_some(),
        lines: &line,
    };
    let sdp = describe(local, origin, &formats, direction, events, protection);
    Ok((
        sdp,
        RemoteMedia {
            telephone_event,
            srtp: chosen.map(|(_, keys)| keys),
            ..remote
        },
    ))
}

fn direction_of(session: &SessionDescription, media: &MediaDescription) -> Direction {
    media
        .attributes
        .iter()
        .chain(session.attributes.iter())
        .find_map(|attribute| Direction::from_attribute(&attribute.key))
        .unwrap_or_default()
}

type Picked<'a> = (&'a MediaDescription, (Codec, u8), Option<u8>);

fn pick_audio<'a>(
    session: &'a SessionDescription,
    supported: &[Codec],
) -> Result<Picked<'a>, SdpError> {
    let media = session
        .media_descriptions
        .iter()
        .find(|media| media.media_name.media == "audio" && media.media_name.port.value > 0)
        .ok_or(SdpError::NoAudio)?;
    // rtpmap lines name dynamic payload types; 0 and 8 are static and may come without one.
    let names: Vec<(u8, String)> = media
        .attributes
        .iter()
        .filter(|attribute| attribute.key == "rtpmap")
        .filter_map(|attribute| {
            let value = attribute.value.as_deref()?;
            let (pt, encoding) = value.split_once(' ')?;
            let name = encoding.split('/').next()?.trim();
            Some((pt.trim().parse().ok()?, name.to_owned()))
        })
        .collect();
    let name_of = |pt: u8| -> Option<&str> {
        names
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, name)| name.as_str())
            .or(match pt {
                0 => Some("PCMU"),
                8 => Some("PCMA"),
                _ => None,
            })
    };
    let formats: Vec<u8> = media
        .media_name
        .formats
        .iter()
        .filter_map(|format| format.parse().ok())
        .collect();
    let chosen = formats
        .iter()
        .find_map(|pt| {
            let codec = Codec::from_name(name_of(*pt)?)?;
            supported.contains(&codec).then_some((codec, *pt))
        })
        .ok_or_else(|| {
            SdpError::NoCommonCodec(crate::message::truncate(
                &media.media_name.formats.join(" "),
                100,
            ))
        })?;
    let telephone_event = formats
        .iter()
        .copied()
        .find(|pt| name_of(*pt).is_some_and(|name| name.eq_ignore_ascii_case("telephone-event")));
    Ok((media, chosen, telephone_event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered_events(fmtp: Option<&str>) -> Option<String> {
        let fmtp = fmtp.map_or(String::new(), |f| format!("a=fmtp:101 {f}\r\n"));
        let offer = Sdp::new(format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{fmtp}"
        ));
        let local = LocalMedia::new("127.0.0.1:5000".parse().unwrap());
        let (sdp, remote) = answer(&local, &offer, &Origin::new()).unwrap();
        let line = sdp
            .as_str()
            .lines()
            .find_map(|l| l.strip_prefix("a=fmtp:101 ").map(str::to_owned));
        assert_eq!(line.is_some(), remote.telephone_event.is_some());
        line
    }

    #[test]
    fn telephone_events_are_answered_as_the_offers_intersection_with_ours() {
        assert_eq!(answered_events(Some("0-15")).as_deref(), Some("0-15"));
        assert_eq!(answered_events(Some("0-11,16")).as_deref(), Some("0-11,16"));
        assert_eq!(answered_events(Some("0-255")).as_deref(), Some("0-16"));
        assert_eq!(
            answered_events(Some(" 0-9 , 11")).as_deref(),
            Some("0-9,11")
        );
        // No list means RFC 4733's default, 0-15; so does a list we cannot read.
        assert_eq!(answered_events(None).as_deref(), Some("0-15"));
        assert_eq!(answered_events(Some("x-y")).as_deref(), Some("0-15"));
        // Nothing in common: no telephone-event in the answer.
        assert_eq!(answered_events(Some("32-40")), None);
        // Our offer lists what we know.
        let local = LocalMedia::new("127.0.0.1:5000".parse().unwrap());
        assert!(
            offer(&local, &Origin::new())
                .as_str()
                .contains("a=fmtp:101 0-16\r\n")
        );
    }

    const SIPP_SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n";

    #[test]
    fn offer_lists_codecs_and_dtmf() {
        let local = LocalMedia::new("10.1.2.3:30000".parse().unwrap());
        let sdp = offer(&local, &Origin { id: 7, version: 7 });
        let text = sdp.as_str();
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 10.1.2.3\r\n"));
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(text.contains("a=sendrecv\r\n"));
    }

    #[test]
    fn sipp_answer_is_understood() {
        let remote = Sdp::new(SIPP_SDP)
            .remote_media(&[Codec::Pcmu, Codec::Pcma])
            .unwrap();
        assert_eq!(remote.addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!((remote.codec, remote.payload_type), (Codec::Pcma, 8));
        assert_eq!(remote.telephone_event, Some(101));
        assert_eq!(remote.direction, Direction::SendRecv);
    }

    #[test]
    fn answer_follows_offerer_order_and_mirrors_hold() {
        let local = LocalMedia::new("10.1.2.3:30000".parse().unwrap());
        let hold = SIPP_SDP.to_owned() + "a=sendonly\r\n";
        let (sdp, remote) = answer(&local, &Sdp::new(hold), &Origin::new()).unwrap();
        assert_eq!(remote.codec, Codec::Pcma);
        assert_eq!(remote.direction, Direction::SendOnly);
        assert!(sdp.as_str().contains("m=audio 30000 RTP/AVP 8 101\r\n"));
        assert!(sdp.as_str().contains("a=recvonly\r\n"));
    }

    /// baresip 1.0's offer with `;mediaenc=srtp-mand`.
    const SAVP_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 10000 RTP/SAVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

    #[test]
    fn srtp_offers_carry_savp_and_a_crypto_line_per_suite() {
        let local =
            LocalMedia::new("10.1.2.3:30000".parse().unwrap()).with_srtp(SrtpMode::Required);
        let text = offer(&local, &Origin::new()).as_str().to_owned();
        assert!(
            text.contains("m=audio 30000 RTP/SAVP 0 8 101\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("a=crypto:").count(), 3, "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(text.contains("a=crypto:3 AEAD_AES_128_GCM inline:"));
        // Best effort: RTP/AVP with the same lines.
        let optional =
            LocalMedia::new("10.1.2.3:30000".parse().unwrap()).with_srtp(SrtpMode::Optional);
        let text = offer(&optional, &Origin::new()).as_str().to_owned();
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert_eq!(text.matches("a=crypto:").count(), 3);
        // Plain: none.
        let plain = LocalMedia::new("10.1.2.3:30000".parse().unwrap());
        assert!(!offer(&plain, &Origin::new()).as_str().contains("crypto"));
    }

    #[test]
    fn a_savp_offer_is_answered_with_our_own_key_and_the_offerer_reads_it() {
        let local =
            LocalMedia::new("10.1.2.3:30000".parse().unwrap()).with_srtp(SrtpMode::Optional);
        let (sdp, remote) = answer(&local, &Sdp::new(SAVP_OFFER), &Origin::new()).unwrap();
        let text = sdp.as_str();
        assert!(text.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{text}");
        assert_eq!(text.matches("a=crypto:").count(), 1, "{text}");
        assert!(
            text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"),
            "{text}"
        );
        assert!(!text.contains("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"));
        let keys = remote.srtp.unwrap();
        assert_eq!(keys.suite, sdes::CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(keys.local, local.srtp.as_ref().unwrap().lines[1].key);
        // Neither side's key shows in the SDP's Debug form.
        let debug = format!("{sdp:?} {:?}", Sdp::new(SAVP_OFFER));
        assert!(
            !debug.contains("WVNf") && debug.contains("inline:<redacted>"),
            "{debug}"
        );
        let ours = sdp.as_str().split("inline:").nth(1).unwrap().trim();
        assert!(!debug.contains(ours), "{debug}");
        // Without SRTP allowed the offer is refused; so is a plain offer when it is required.
        let plain_local = LocalMedia::new("10.1.2.3:30000".parse().unwrap());
        assert!(matches!(
            answer(&plain_local, &Sdp::new(SAVP_OFFER), &Origin::new()),
            Err(SdpError::Srtp(sdes::NegotiationError::NotEnabled))
        ));
        let required = plain_local.clone().with_srtp(SrtpMode::Required);
        assert!(matches!(
            answer(&required, &Sdp::new(SIPP_SDP), &Origin::new()),
            Err(SdpError::Srtp(sdes::NegotiationError::Required))
        ));
        // Our offer, their answer made by the same function: each side's keys mirror.
        let ours = LocalMedia::new("10.9.9.9:20000".parse().unwrap()).with_srtp(SrtpMode::Required);
        let our_offer = offer(&ours, &Origin::new());
        let (their_answer, their_view) = answer(&local, &our_offer, &Origin::new()).unwrap();
        let our_view = answered(&ours, &their_answer).unwrap();
        let (a, b) = (our_view.srtp.unwrap(), their_view.srtp.unwrap());
        assert_eq!((a.suite, a.local, a.remote), (b.suite, b.remote, b.local));
        assert_eq!(a.suite, sdes::CryptoSuite::AesCm128HmacSha1_80);
        // A plain answer to our required offer fails.
        assert!(answered(&ours, &Sdp::new(SIPP_SDP)).is_err());
    }

    #[test]
    fn unusable_offers_are_reported() {
        let video_only = SIPP_SDP.replace("m=audio", "m=video");
        assert_eq!(
            Sdp::new(video_only).remote_media(&[Codec::Pcmu]),
            Err(SdpError::NoAudio)
        );
        let g729 = SIPP_SDP
            .replace("RTP/AVP 8 101", "RTP/AVP 18")
            .replace("a=rtpmap:8 PCMA/8000\r\n", "");
        assert!(matches!(
            Sdp::new(g729).remote_media(&[Codec::Pcmu, Codec::Pcma]),
            Err(SdpError::NoCommonCodec(_))
        ));
        assert!(Sdp::new("hello").remote_media(&[Codec::Pcmu]).is_err());
    }
}
