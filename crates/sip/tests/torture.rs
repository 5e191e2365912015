//! RFC 4475's 49 torture messages, each sent over the wire to a running [`Endpoint`] (UDP, and
//! TCP for the long ones and those whose Content-Length is the point), checking the answer the
//! RFC asks for and that the endpoint still answers an OPTIONS afterwards.
//!
//!     cargo test -p sip --test torture
//!
//! The messages are in `torture/rfc4475.txt`, in the RFC's own notation (see `decode`). Their
//! top Vias send UDP answers to the source address and the Via's port (5060 mostly), so each
//! message goes out from a socket of its own on an address of the 127.0.0.0/8 loopback net,
//! bound to that port: nothing else listens there.

use sip::{AuthConfig, Endpoint, EndpointConfig, Secret, StatsSnapshot, Transport};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long to wait for an answer that must come, and for one that must not.
const ANSWER: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_millis(700);

/// What the RFC asks of an endpoint receiving the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A final response with this code.
    Final(u16),
    /// No answer: a response nobody asked for, or one too broken to use (RFC 4475 3.1.2.5,
    /// 3.1.2.19, 3.3.10).
    Dropped,
    /// TCP only: no answer, the endpoint keeps waiting for the body Content-Length promised.
    Waits,
}

struct Case {
    name: &'static str,
    section: &'static str,
    /// RFC 4475 calls the message valid (it must be understood).
    valid: bool,
    udp: Expect,
    /// Also sent over TCP, with this expectation.
    tcp: Option<Expect>,
}

const fn case(
    name: &'static str,
    section: &'static str,
    valid: bool,
    udp: Expect,
    tcp: Option<Expect>,
) -> Case {
    Case {
        name,
        section,
        valid,
        udp,
        tcp,
    }
}

use Expect::{Dropped, Final, Waits};

/// Every message with its expected handling. INVITEs that reach the call layer are refused 486
/// by the test's phone; REGISTERs are challenged (401) since the endpoint authenticates them.
const CASES: [Case; 49] = [
    // 3.1.1 Valid messages.
    case("wsinv", "3.1.1.1", true, Final(481), Some(Final(481))), // To tag of no dialog
    case("intmeth", "3.1.1.2", true, Final(501), None),           // extension method
    case("esc01", "3.1.1.3", true, Final(486), None),
    case("escnull", "3.1.1.4", true, Final(401), None),
    case("esc02", "3.1.1.5", true, Final(501), None), // RE%47IST%45R is not REGISTER
    case("lwsdisp", "3.1.1.6", true, Final(200), None),
    case("longreq", "3.1.1.7", true, Final(486), Some(Final(486))),
    case("dblreq", "3.1.1.8", true, Final(401), None), // the REGISTER, not the INVITE after it
    case("semiuri", "3.1.1.9", true, Final(200), None),
    case("transports", "3.1.1.10", true, Final(200), None),
    case("mpart01", "3.1.1.11", true, Final(405), Some(Final(405))), // MESSAGE not allowed
    case("unreason", "3.1.1.12", true, Dropped, None), // a response to nothing we sent
    case("noreason", "3.1.1.13", true, Dropped, None),
    // 3.1.2 Invalid messages.
    case("badinv01", "3.1.2.1", false, Final(400), None),
    case("clerr", "3.1.2.2", false, Final(400), Some(Waits)),
    case("ncl", "3.1.2.3", false, Final(400), Some(Final(400))),
    case("scalar02", "3.1.2.4", false, Final(400), None),
    case("scalarlg", "3.1.2.5", false, Dropped, None),
    case("quotbal", "3.1.2.6", false, Final(400), None),
    case("ltgtruri", "3.1.2.7", false, Final(400), None),
    case("lwsruri", "3.1.2.8", false, Final(400), None),
    case("lwsstart", "3.1.2.9", false, Final(400), None),
    case("trws", "3.1.2.10", false, Final(400), None),
    case("escruri", "3.1.2.11", false, Final(400), None),
    // The RFC lets an element that does not need the Date ignore its odd time zone.
    case("baddate", "3.1.2.12", false, Final(486), None),
    case("regbadct", "3.1.2.13", false, Final(400), None),
    case("badaspec", "3.1.2.14", false, Final(400), None),
    case("baddn", "3.1.2.15", false, Final(400), None),
    case("badvers", "3.1.2.16", false, Final(505), None),
    case("mismatch01", "3.1.2.17", false, Final(400), None),
    case("mismatch02", "3.1.2.18", false, Final(400), None),
    case("bigcode", "3.1.2.19", false, Dropped, None),
    // 3.2 Transaction layer: a bare magic cookie falls back to RFC 2543 matching.
    case("badbranch", "3.2.1", true, Final(200), None),
    // 3.3 Application layer.
    case("insuf", "3.3.1", false, Final(400), None),
    case("unkscm", "3.3.2", true, Final(416), None),
    case("novelsc", "3.3.3", true, Final(416), None),
    case("unksm2", "3.3.4", true, Final(400), None), // a registrar needs a SIP AOR in To
    case("bext01", "3.3.5", true, Final(420), None),
    case("invut", "3.3.6", true, Final(415), None),
    case("regaut01", "3.3.7", true, Final(401), None),
    case("multi01", "3.3.8", false, Final(400), None),
    case("mcl01", "3.3.9", false, Final(400), Some(Final(400))),
    case("bcast", "3.3.10", true, Dropped, None),
    case("zeromf", "3.3.11", true, Final(200), None),
    case("cparam01", "3.3.12", true, Final(401), None),
    case("cparam02", "3.3.13", true, Final(401), None),
    case("regescrt", "3.3.14", true, Final(401), None),
    case("sdp01", "3.3.15", true, Final(406), None),
    // 3.4 Backward compatibility.
    case("inv2543", "3.4.1", true, Final(486), Some(Final(486))),
];

/// The messages of `torture/rfc4475.txt` by name. Each starts with a `%%% name` line; every line
/// after it ends in CRLF on the wire; `<hex>..</hex>` stands for the bytes it spells (control
/// characters, non-ASCII text, a binary body, trailing spaces), as in RFC 4475 section 2.2.
fn messages() -> BTreeMap<String, Vec<u8>> {
    let text = include_str!("torture/rfc4475.txt");
    let mut messages = BTreeMap::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    for line in text.lines() {
        if line.starts_with('#') && current.is_none() {
            continue;
        }
        if let Some(name) = line.strip_prefix("%%% ") {
            if let Some((name, bytes)) = current.take() {
                messages.insert(name, bytes);
            }
            current = Some((name.to_owned(), Vec::new()));
            continue;
        }
        let (_, bytes) = current.as_mut().expect("text before the first %%% line");
        bytes.extend(decode(line));
        bytes.extend_from_slice(b"\r\n");
    }
    if let Some((name, bytes)) = current {
        messages.insert(name, bytes);
    }
    messages
}

fn decode(line: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("<hex>") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 5..];
        let end = after.find("</hex>").expect("unterminated <hex>");
        let hex = &after[..end];
        assert!(hex.len().is_multiple_of(2), "odd <hex> length in {line:?}");
        for pair in hex.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).unwrap();
            out.push(u8::from_str_radix(pair, 16).expect("bad <hex> digit"));
        }
        rest = &after[end + 6..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The status code and Call-ID of a response.
fn status_of(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let call_id = text
        .split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (code, call_id)
}

/// The top Via's port of a request, as the endpoint will answer to it over UDP (`None`: rport,
/// so the source port).
fn via_port(message: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let via = unfolded.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v")).then_some(value)
    })?;
    let top = via.split(',').next().unwrap_or("");
    if top.split(';').skip(1).any(|p| p.trim() == "rport") {
        return None;
    }
    let sent_by = top.split(';').next().unwrap_or("");
    let host_port = sent_by.split_whitespace().last().unwrap_or("");
    Some(
        host_port
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(5060),
    )
}

/// Loopback addresses for the test's sockets: 127.a.b.i, with a and b drawn per run.
fn source_ips() -> Vec<Ipv4Addr> {
    let seed = std::process::id();
    let (a, b) = ((seed % 200 + 20) as u8, ((seed / 200) % 250 + 2) as u8);
    (1..=120).map(|i| Ipv4Addr::new(127, a, b, i)).collect()
}

async fn start_endpoint(trusted: Vec<IpAddr>) -> (Endpoint, tokio::task::JoinHandle<()>) {
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    let secrets = Arc::new(|user: &str| (user == "alice").then(|| Secret::Password("x".into())));
    let mut auth = AuthConfig::new("torture.example", secrets);
    auth.trusted = trusted;
    config.auth = Some(auth);
    let (endpoint, mut incoming) = Endpoint::bind(config).await.expect("bind");
    // The test's phone: every call that reaches the call layer is busy.
    let phone = tokio::spawn(async move {
        while let Some(call) = incoming.next_call().await {
            let _ = call.reject(486).await;
        }
    });
    (endpoint, phone)
}

/// Sends `bytes` over UDP from `ip` and returns the first final response, if one comes.
async fn over_udp(endpoint: SocketAddr, ip: Ipv4Addr, bytes: &[u8], wait: Duration) -> Option<u16> {
    let port = via_port(bytes).unwrap_or(0);
    let socket = UdpSocket::bind(SocketAddr::new(ip.into(), port))
        .await
        .unwrap_or_else(|err| panic!("cannot bind {ip}:{port}: {err}"));
    socket.send_to(bytes, endpoint).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok((len, _))) = tokio::time::timeout(left, socket.recv_from(&mut buf)).await else {
            return None;
        };
        let (code, _) = status_of(&buf[..len]);
        if code >= 200 {
            return Some(code);
        }
    }
}

/// Sends `bytes` on a fresh TCP connection; the first final response, if one comes.
async fn over_tcp(endpoint: SocketAddr, bytes: &[u8], wait: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect(endpoint).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16_384];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Each response this endpoint sends has Content-Length 0: split at the blank lines.
        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let (code, _) = status_of(&got[..end]);
            got.drain(..end + 4);
            if code >= 200 {
                return Some(code);
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(len)) if len > 0 => got.extend_from_slice(&buf[..len]),
            _ => return None,
        }
    }
}

/// An OPTIONS the endpoint must answer 200, to show it still works.
fn probe(n: usize) -> Vec<u8> {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKprobe{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:probe@127.0.0.1>\r\n\
         Call-ID: probe-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn outcome(got: Option<u16>) -> Expect {
    match got {
        Some(code) => Final(code),
        None => Dropped,
    }
}

#[tokio::test]
async fn every_rfc4475_message_is_handled_as_the_rfc_says() {
    let messages = messages();
    assert_eq!(messages.len(), 49, "rfc4475.txt holds the 49 messages");
    let ips = source_ips();
    let mut trusted: Vec<IpAddr> = ips.iter().map(|ip| (*ip).into()).collect();
    trusted.push(IpAddr::V4(Ipv4Addr::LOCALHOST)); // the TCP pass connects from 127.0.0.1
    let (endpoint, _phone) = start_endpoint(trusted.clone()).await;
    let udp = endpoint.local_addr(Transport::Udp).unwrap();
    // The TCP pass sends the same messages again: to a second endpoint, where they are new
    // transactions rather than retransmissions of the UDP ones.
    let (tcp_endpoint, _tcp_phone) = start_endpoint(trusted).await;
    let tcp = tcp_endpoint.local_addr(Transport::Tcp).unwrap();

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let bytes = messages
            .get(case.name)
            .unwrap_or_else(|| panic!("{} missing from rfc4475.txt", case.name));
        let before: StatsSnapshot = endpoint.stats();
        let wait = if case.udp == Dropped { SILENCE } else { ANSWER };
        if std::env::var_os("TORTURE_DEBUG").is_some() {
            println!(
                "{}: {:?}",
                case.name,
                sip::message::Message::parse(bytes).err()
            );
        }
        let got = outcome(over_udp(udp, ips[index], bytes, wait).await);
        let after = endpoint.stats();
        let mut ok = got == case.udp;
        // A valid response is understood (no parse error), then dropped as unasked for.
        if case.valid && case.udp == Dropped {
            ok &= after.parse_errors == before.parse_errors;
        }
        report.push(format!(
            "{:<10} {:<9} {:<7} UDP expected {:?}, got {:?}",
            case.name,
            case.section,
            if case.valid { "valid" } else { "invalid" },
            case.udp,
            got
        ));
        if !ok {
            failures.push(report.last().unwrap().clone());
        }
        if let Some(expect) = case.tcp {
            let wait = if expect == Waits { SILENCE } else { ANSWER };
            let got = match over_tcp(tcp, bytes, wait).await {
                Some(code) => Final(code),
                None if expect == Waits => Waits,
                None => Dropped,
            };
            report.push(format!(
                "{:<10} {:<9} {:<7} TCP expected {:?}, got {:?}",
                case.name,
                case.section,
                if case.valid { "valid" } else { "invalid" },
                expect,
                got
            ));
            if got != expect {
                failures.push(report.last().unwrap().clone());
            }
        }
        // The endpoint still answers, on both transports.
        let ip = ips[60 + index];
        assert_eq!(
            over_udp(udp, ip, &probe(index), ANSWER).await,
            Some(200),
            "no answer to an OPTIONS after {}",
            case.name
        );
    }
    assert_eq!(
        over_tcp(tcp, &probe(1000), ANSWER).await,
        Some(200),
        "no answer over TCP at the end"
    );
    println!("{}", report.join("\n"));
    let handled = CASES.len() - failures.iter().filter(|f| f.contains(" UDP ")).count();
    println!(
        "RFC 4475: {handled} of {} messages handled as the RFC says over UDP",
        CASES.len()
    );
    assert!(
        failures.is_empty(),
        "not handled as RFC 4475 says:\n{}",
        failures.join("\n")
    );
}
