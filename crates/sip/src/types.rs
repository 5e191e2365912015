//! Small value types shared by the whole crate: transports, methods, SIP URIs, name-addrs.
//!
//! They wrap rsip's types so that no other crate needs rsip.

use std::fmt;
use std::str::FromStr;

/// The transport a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// UDP: unreliable, so transactions retransmit (timers A, E, G).
    #[default]
    Udp,
    /// TCP: reliable and stream-framed by Content-Length.
    Tcp,
    /// TLS over TCP (RFC 3261 26.2): framed as TCP; what `sips:` URIs mean.
    Tls,
}

impl Transport {
    /// Whether messages may be lost in transit (retransmission timers run only then).
    pub fn is_unreliable(self) -> bool {
        matches!(self, Transport::Udp)
    }

    /// The token used in Via and in `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The port a URI without one means: 5061 for TLS, 5060 otherwise (RFC 3261 19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }

    /// Whether messages travel on connections (TCP, TLS) rather than datagrams.
    pub fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    pub(crate) fn to_rsip(self) -> rsip::Transport {
        match self {
            Transport::Udp => rsip::Transport::Udp,
            Transport::Tcp => rsip::Transport::Tcp,
            Transport::Tls => rsip::Transport::Tls,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("udp") {
            Ok(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Ok(Transport::Tcp)
        } else if s.eq_ignore_ascii_case("tls") {
            Ok(Transport::Tls)
        } else {
            Err(crate::Error::UnsupportedTransport(s.to_owned()))
        }
    }
}

/// A SIP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE: starts a call or changes its session.
    Invite,
    /// ACK: confirms a final response to an INVITE.
    Ack,
    /// BYE: ends a call.
    Bye,
    /// CANCEL: abandons a pending INVITE.
    Cancel,
    /// REGISTER: binds an address of record to a contact.
    Register,
    /// OPTIONS: asks for capabilities (used as a keepalive).
    Options,
    /// UPDATE: changes session parameters without a new INVITE (RFC 3311).
    Update,
    /// INFO: mid-call application data (RFC 6086).
    Info,
    /// PRACK: acknowledges a reliable provisional response (RFC 3262).
    Prack,
    /// MESSAGE: instant message (RFC 3428).
    Message,
    /// NOTIFY: event notification (RFC 6665).
    Notify,
    /// REFER: asks the peer to call a third party (RFC 3515).
    Refer,
    /// SUBSCRIBE: event subscription (RFC 6665).
    Subscribe,
    /// PUBLISH: event state publication (RFC 3903).
    Publish,
}

impl Method {
    /// The method's name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Publish => "PUBLISH",
        }
    }

    pub(crate) fn from_rsip(method: rsip::Method) -> Self {
        match method {
            rsip::Method::Ack => Method::Ack,
            rsip::Method::Bye => Method::Bye,
            rsip::Method::Cancel => Method::Cancel,
            rsip::Method::Info => Method::Info,
            rsip::Method::Invite => Method::Invite,
            rsip::Method::Message => Method::Message,
            rsip::Method::Notify => Method::Notify,
            rsip::Method::Options => Method::Options,
            rsip::Method::PRack => Method::Prack,
            rsip::Method::Publish => Method::Publish,
            rsip::Method::Refer => Method::Refer,
            rsip::Method::Register => Method::Register,
            rsip::Method::Subscribe => Method::Subscribe,
            rsip::Method::Update => Method::Update,
        }
    }

    pub(crate) fn to_rsip(self) -> rsip::Method {
        match self {
            Method::Ack => rsip::Method::Ack,
            Method::Bye => rsip::Method::Bye,
            Method::Cancel => rsip::Method::Cancel,
            Method::Info => rsip::Method::Info,
            Method::Invite => rsip::Method::Invite,
            Method::Message => rsip::Method::Message,
            Method::Notify => rsip::Method::Notify,
            Method::Options => rsip::Method::Options,
            Method::Prack => rsip::Method::PRack,
            Method::Publish => rsip::Method::Publish,
            Method::Refer => rsip::Method::Refer,
            Method::Register => rsip::Method::Register,
            Method::Subscribe => rsip::Method::Subscribe,
            Method::Update => rsip::Method::Update,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `sip:` or `sips:` URI, such as a trunk (`sip:carrier.example.com:5060;transport=tcp`,
/// `sips:carrier.example.com`) or a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri(pub(crate) rsip::Uri);

impl Uri {
    /// The user part, if any (`alice` in `sip:alice@host`).
    pub fn user(&self) -> Option<&str> {
        self.0.user()
    }

    /// The host (a domain name or an IP address, IPv6 without brackets).
    pub fn host(&self) -> String {
        host_string(&self.0.host_with_port.host)
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.0
            .host_with_port
            .port
            .as_ref()
            .map(|port| *port.value())
    }

    /// The transport the URI asks for: TLS for a `sips:` URI (RFC 3261 19.1), else its
    /// `transport=` parameter (UDP, TCP or TLS), if any.
    pub fn transport(&self) -> Option<Transport> {
        if self.is_sips() {
            return Some(Transport::Tls);
        }
        self.0.params.iter().find_map(|param| match param {
            rsip::Param::Transport(rsip::Transport::Udp) => Some(Transport::Udp),
            rsip::Param::Transport(rsip::Transport::Tcp) => Some(Transport::Tcp),
            rsip::Param::Transport(rsip::Transport::Tls) => Some(Transport::Tls),
            _ => None,
        })
    }

    /// Whether this is a `sips:` URI: every hop to it must be TLS.
    pub fn is_sips(&self) -> bool {
        matches!(self.0.scheme, Some(rsip::Scheme::Sips))
    }

    /// The same URI with another user part (for example the number to call at a trunk).
    pub fn with_user(&self, user: &str) -> Uri {
        let mut uri = self.0.clone();
        uri.auth = Some(rsip::Auth {
            user: user.to_owned(),
            password: None,
        });
        Uri(uri)
    }

    /// A `sip:user@host:port` URI for an address.
    pub fn from_addr(user: Option<&str>, addr: std::net::SocketAddr) -> Uri {
        Uri(rsip::Uri {
            scheme: Some(rsip::Scheme::Sip),
            auth: user.map(|user| rsip::Auth {
                user: user.to_owned(),
                password: None,
            }),
            host_with_port: rsip::HostWithPort::from(addr),
            params: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// The same URI with a `transport=` parameter (replacing any other).
    pub fn with_transport(&self, transport: Transport) -> Uri {
        let mut uri = self.0.clone();
        uri.params
            .retain(|param| !matches!(param, rsip::Param::Transport(_)));
        if transport != Transport::Udp && !(transport == Transport::Tls && self.is_sips()) {
            uri.params.push(rsip::Param::Transport(transport.to_rsip()));
        }
        Uri(uri)
    }
}

pub(crate) fn host_string(host: &rsip::Host) -> String {
    match host {
        rsip::Host::Domain(domain) => domain.to_string(),
        rsip::Host::IpAddr(ip) => ip.to_string(),
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Uri {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = |why: &str| crate::Error::InvalidUri {
            uri: s.to_owned(),
            why: why.to_owned(),
        };
        if s.bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
        {
            return Err(bad("contains spaces, control characters or angle brackets"));
        }
        let scheme = |prefix: &str| {
            s.get(..prefix.len())
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(prefix))
        };
        let sips = scheme("sips:");
        if !sips && !scheme("sip:") {
            return Err(bad("only sip: and sips: URIs are supported"));
        }
        let uri = contain_panic(|| rsip::Uri::try_from(s))
            .ok_or_else(|| bad("the URI parser failed"))?
            .map_err(|err| bad(&err.to_string()))?;
        if host_string(&uri.host_with_port.host).is_empty() {
            return Err(bad("no host"));
        }
        let transport = uri.params.iter().find_map(|param| match param {
            rsip::Param::Transport(t) => Some(*t),
            _ => None,
        });
        match transport {
            None | Some(rsip::Transport::Tls) => {}
            Some(rsip::Transport::Udp) if sips => {
                return Err(bad("a sips: URI is reached over TLS only, not UDP"));
            }
            // RFC 3261 26.2.2: `sips:...;transport=tcp` is the old way to say TLS over TCP.
            Some(rsip::Transport::Udp | rsip::Transport::Tcp) => {}
            Some(other) => {
                return Err(bad(&format!(
                    "transport {other} is not supported (UDP, TCP, TLS)"
                )));
            }
        }
        Ok(Uri(uri))
    }
}

/// A TCP connection, as numbered by the transport driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a message goes: the transport, the peer's address and, on TCP, the connection to use
/// when one is known (a response goes back on the connection its request came in on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// The peer's address.
    pub addr: std::net::SocketAddr,
    /// The TCP connection, if one must be used.
    pub conn: Option<ConnId>,
}

impl Destination {
    /// A destination without a pinned connection.
    pub fn new(transport: Transport, addr: std::net::SocketAddr) -> Self {
        Destination {
            transport,
            addr,
            conn: None,
        }
    }
}

/// A display name and a URI, as in From, To and P-Asserted-Identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, shown by phones (`"ACME Sales"`); quoted on the wire.
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
}

impl NameAddr {
    /// A name-addr without a display name.
    pub fn new(uri: Uri) -> Self {
        NameAddr { display: None, uri }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.display {
            Some(display) if !display.is_empty() => {
                f.write_str("\"")?;
                for c in display.chars() {
                    // A quoted-string escapes `"` and `\`; control characters are dropped so that
                    // a display name can never break the header line.
                    match c {
                        '"' | '\\' => write!(f, "\\{c}")?,
                        c if c.is_control() => {}
                        c => write!(f, "{c}")?,
                    }
                }
                write!(f, "\" <{}>", self.uri)
            }
            _ => write!(f, "<{}>", self.uri),
        }
    }
}

/// Runs `f`, turning a panic into `None`. rsip's parser is not hardened against hostile input, so
/// every call into it on outside data goes through here.
pub(crate) fn contain_panic<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip_and_parts() {
        let uri: Uri = "sip:carrier.example.com:5070;transport=tcp"
            .parse()
            .unwrap();
        assert_eq!(uri.host(), "carrier.example.com");
        assert_eq!(uri.port(), Some(5070));
        assert_eq!(uri.transport(), Some(Transport::Tcp));
        let callee = uri.with_user("+15551234567");
        assert_eq!(
            callee.to_string(),
            "sip:+15551234567@carrier.example.com:5070;transport=TCP"
        );
    }

    #[test]
    fn sips_and_transport_tls_mean_tls() {
        let uri: Uri = "sips:carrier.example.com".parse().unwrap();
        assert!(uri.is_sips());
        assert_eq!(uri.transport(), Some(Transport::Tls));
        assert_eq!(uri.port(), None);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!(
            uri.with_user("+15551234567").to_string(),
            "sips:+15551234567@carrier.example.com"
        );
        let uri: Uri = "sip:10.0.0.1:5071;transport=tls".parse().unwrap();
        assert!(!uri.is_sips());
        assert_eq!(uri.transport(), Some(Transport::Tls));
        let legacy: Uri = "sips:h;transport=tcp".parse().unwrap();
        assert_eq!(legacy.transport(), Some(Transport::Tls));
        assert_eq!("tls".parse::<Transport>().unwrap(), Transport::Tls);
        assert_eq!(Transport::Tls.to_string(), "TLS");
    }

    #[test]
    fn bad_uris_are_refused() {
        for bad in [
            "",
            "tel:+1555",
            "sip:",
            "sip:a b",
            "sip:x\r\nVia: y",
            "sip:h;transport=sctp",
            "sips:h;transport=udp",
            "sipx:h",
        ] {
            assert!(bad.parse::<Uri>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn display_names_are_quoted_and_escaped() {
        let addr = NameAddr {
            display: Some("Bob \"the\" \r\nBuilder".into()),
            uri: "sip:bob@example.com".parse().unwrap(),
        };
        assert_eq!(
            addr.to_string(),
            "\"Bob \\\"the\\\" Builder\" <sip:bob@example.com>"
        );
    }
}
