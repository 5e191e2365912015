//! SIP messages: framing and validation in front of rsip's parser, the few fields every layer
//! needs pulled out once, and builders for the messages we send.
//!
//! rsip parses whatever it is given and trusts it; everything that faces the network goes through
//! [`Message::parse`] first, which bounds sizes, checks UTF-8 and Content-Length, expands compact
//! header names and unfolds continuation lines (rsip knows neither), contains any panic of rsip's
//! parser, and insists on the headers RFC 3261 section 8.1.1 makes mandatory.

use crate::types::{Method, Transport, contain_panic};
use rsip::headers::UntypedHeader;
use std::fmt;

/// Size limits applied to every incoming message before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line, headers and body) in bytes.
    pub max_message: usize,
    /// Largest header section (start line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Most header lines.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A real INVITE with a long Record-Route set is a few kilobytes; 16 KiB of headers is
        // generous, and 64 KiB is the most a UDP datagram carries anyway.
        Limits {
            max_message: 65_535,
            max_header_bytes: 16 * 1024,
            max_headers: 128,
        }
    }
}

/// Why an incoming message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace (a keepalive), not a message.
    #[error("empty message (keepalive)")]
    Empty,
    /// The message is longer than [`Limits::max_message`].
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The header section is longer than [`Limits::max_header_bytes`].
    #[error("header section exceeds {max} bytes")]
    HeadersTooLarge {
        /// The limit.
        max: usize,
    },
    /// More header lines than [`Limits::max_headers`].
    #[error("more than {max} header lines")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// No blank line ends the header section.
    #[error("no blank line ends the header section")]
    NoEndOfHeaders,
    /// The start line or headers are not UTF-8.
    #[error("header section is not valid UTF-8 (at byte {at})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// A header line holds a bare CR, LF or NUL.
    #[error("line {line} of the header section holds a bare CR, LF or NUL")]
    BadLineEnding {
        /// 1-based line number.
        line: usize,
    },
    /// Content-Length is not a number, is repeated with other values, or is absurd.
    #[error("bad Content-Length: {0}")]
    BadContentLength(String),
    /// Content-Length promises more bytes than arrived.
    #[error("Content-Length is {declared} but only {received} bytes of body arrived")]
    BodyTruncated {
        /// The declared length.
        declared: usize,
        /// What arrived.
        received: usize,
    },
    /// rsip's parser refused the message.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// rsip's parser panicked on this input (contained; the message is dropped).
    #[error("the SIP parser panicked on this input")]
    ParserPanic,
    /// A header RFC 3261 requires in every message is missing.
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    /// A mandatory header is present but unusable.
    #[error("bad {name} header: {why}")]
    BadHeader {
        /// The header's name.
        name: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The protocol version is not SIP/2.0 (answered 505).
    #[error("unsupported SIP version")]
    BadVersion,
    /// The request line is malformed: extra or trailing whitespace, a Request-URI in angle
    /// brackets or with headers, a method that is not a token.
    #[error("bad request line: {0}")]
    BadRequestLine(&'static str),
    /// The status line of a response is malformed (a status code that is not three digits).
    #[error("bad status line: {0}")]
    BadStatusLine(&'static str),
    /// The Request-URI's scheme is neither sip nor sips (answered 416).
    #[error("unsupported URI scheme {0:?}")]
    UnsupportedScheme(String),
    /// A header that may appear once appears more often.
    #[error("more than one {0} header")]
    RepeatedHeader(&'static str),
}

impl ParseError {
    /// The status code a request refused for this reason is answered with (RFC 3261 8.2.2.1,
    /// 8.2.2 and 21.5.6): 505 for a SIP version other than 2.0, 416 for a Request-URI scheme
    /// other than sip or sips, 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadVersion => 505,
            ParseError::UnsupportedScheme(_) => 416,
            _ => 400,
        }
    }
}

/// Compact header forms (RFC 3261 section 7.3.3 and later RFCs), which rsip does not know.
fn expand_compact(name: &str) -> Option<&'static str> {
    if name.len() != 1 {
        return None;
    }
    Some(match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'x' => "Session-Expires",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'u' => "Allow-Events",
        _ => return None,
    })
}

/// What a scan of the header section found: where it ends, the declared body length, and
/// whether the header section must be rewritten before rsip can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadScan {
    /// Length of the start line and headers including the blank line.
    pub head_len: usize,
    /// The Content-Length value, if present.
    pub content_length: Option<usize>,
    /// Content-Length is not a number, negative, absurd, or repeated with different values:
    /// the header section is whole, so a request can still be answered (400), but the body's
    /// end is unknown (a stream must be closed).
    pub length_error: Option<ParseError>,
    /// Compact names, folded lines or whitespace before a header's colon are present.
    pub rewrite: bool,
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 3 < buf.len() {
        match buf[i + 3] {
            b'\n' if &buf[i..i + 4] == b"\r\n\r\n" => return Some(i),
            // Skip ahead: no CRLFCRLF can end before the next `\n`.
            b'\n' | b'\r' => i += 1,
            _ => i += 4,
        }
    }
    None
}

/// Number of leading CR/LF bytes (keepalives and stray line ends between messages on TCP).
pub(crate) fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// Whether a header line holds a bare CR or LF, or a NUL or other control character outside a
/// quoted string. Inside one, RFC 3261's quoted-pair lets a backslash escape any byte but CR and
/// LF, so `"NUL:\<00>"` is a valid display name (RFC 4475 3.1.1.2); nowhere else can a control
/// character reach a log line or a reason phrase.
fn bad_line_byte(line: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for &b in line.as_bytes() {
        match b {
            b'\r' | b'\n' => return true,
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'\t' => {}
            0..=0x1f | 0x7f => return true,
            _ => {}
        }
    }
    false
}

/// Scans the header section at the start of `buf` (which starts at the start line). Returns
/// `Ok(None)` when the blank line has not arrived yet and `buf` is still within the limits, for
/// stream framing.
pub(crate) fn scan_head(buf: &[u8], limits: &Limits) -> Result<Option<HeadScan>, ParseError> {
    let window = &buf[..buf.len().min(limits.max_header_bytes + 4)];
    let Some(end) = find_blank_line(window) else {
        if buf.len() > limits.max_header_bytes {
            return Err(ParseError::HeadersTooLarge {
                max: limits.max_header_bytes,
            });
        }
        return Ok(None);
    };
    let head = &buf[..end];
    let head = std::str::from_utf8(head).map_err(|err| ParseError::InvalidUtf8 {
        at: err.valid_up_to(),
    })?;
    let mut content_length = None;
    let mut length_error = None;
    let mut rewrite = false;
    for (index, line) in head.split("\r\n").enumerate() {
        if index > limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                max: limits.max_headers,
            });
        }
        if bad_line_byte(line) {
            return Err(ParseError::BadLineEnding { line: index + 1 });
        }
        if index == 0 {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            rewrite = true;
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue; // reported with context by the header checks
        };
        let trimmed = name.trim_end();
        if trimmed.len() != name.len() || expand_compact(trimmed).is_some() {
            rewrite = true;
        }
        if trimmed.eq_ignore_ascii_case("content-length") || trimmed.eq_ignore_ascii_case("l") {
            let value = value.trim();
            let parsed = if value.is_empty()
                || value.len() > 9
                || !value.bytes().all(|b| b.is_ascii_digit())
            {
                None
            } else {
                value.parse::<usize>().ok()
            };
            match parsed.filter(|len| *len <= limits.max_message) {
                None => {
                    length_error.get_or_insert(ParseError::BadContentLength(truncate(value, 32)));
                }
                Some(parsed) if content_length.is_some_and(|previous| previous != parsed) => {
                    length_error.get_or_insert(ParseError::BadContentLength(
                        "repeated with different values".into(),
                    ));
                }
                Some(parsed) => content_length = Some(parsed),
            }
        }
    }
    Ok(Some(HeadScan {
        head_len: end + 4,
        content_length,
        length_error,
        rewrite,
    }))
}

/// Rewrites a header section so rsip can read it: continuation lines joined to the line they
/// continue, whitespace before a header's colon dropped, compact names spelled out, and the
/// start line replaced when `start` is given (an extension method rsip does not know).
fn rewrite_head(head: &str, start: Option<&str>) -> String {
    let mut out = String::with_capacity(head.len() + 64);
    for (index, line) in head.split("\r\n").enumerate() {
        if index == 0 {
            out.push_str(start.unwrap_or(line));
            continue;
        }
        if line.starts_with([' ', '\t']) {
            out.push(' ');
            out.push_str(line.trim_start());
            continue;
        }
        out.push_str("\r\n");
        match line.split_once(':') {
            Some((name, value)) => {
                let name = name.trim_end();
                out.push_str(expand_compact(name).unwrap_or(name));
                out.push(':');
                out.push_str(value);
            }
            None => out.push_str(line),
        }
    }
    out.push_str("\r\n\r\n");
    out
}

/// The methods rsip knows, spelled as RFC 3261 and its extensions spell them. Method names are
/// case-sensitive (RFC 3261 7.1), so `invite` is an extension method, not INVITE.
const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "UPDATE",
    "INFO",
    "PRACK",
    "MESSAGE",
    "NOTIFY",
    "REFER",
    "SUBSCRIBE",
    "PUBLISH",
];

/// The start line of a message, checked by hand: rsip accepts some malformed request lines and
/// refuses some valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartLine<'a> {
    Request {
        method: &'a str,
        known: bool,
        uri: &'a str,
    },
    Response,
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Whether a request line looks like one (`METHOD SP ...`), so that a malformed one can still be
/// answered. The method, when it is a token.
fn request_method(line: &str) -> Option<&str> {
    if line.starts_with("SIP/") {
        return None;
    }
    line.split(' ').next().filter(|method| is_token(method))
}

/// Checks the start line (RFC 3261 7.1 and 7.2): `Method SP Request-URI SP SIP-Version` with
/// single spaces and nothing after the version, or `SIP-Version SP Status-Code SP Reason-Phrase`.
fn check_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest
            .split_once(' ')
            .ok_or(ParseError::BadStatusLine("no status code"))?;
        if version != "2.0" {
            return Err(ParseError::BadVersion);
        }
        let code = rest.split(' ').next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code < "100" {
            return Err(ParseError::BadStatusLine("status code is not three digits"));
        }
        return Ok(StartLine::Response);
    }
    if line.ends_with([' ', '\t']) {
        return Err(ParseError::BadRequestLine(
            "whitespace after the SIP version",
        ));
    }
    let (method, rest) = line
        .split_once(' ')
        .ok_or(ParseError::BadRequestLine("no Request-URI"))?;
    if !is_token(method) {
        return Err(ParseError::BadRequestLine("the method is not a token"));
    }
    let (uri, version) = rest
        .rsplit_once(' ')
        .ok_or(ParseError::BadRequestLine("no SIP version"))?;
    let version_ok = version
        .get(..4)
        .is_some_and(|sip| sip.eq_ignore_ascii_case("SIP/"))
        && version[4..].split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && (major.bytes().chain(minor.bytes())).all(|b| b.is_ascii_digit())
        });
    if !version_ok {
        return Err(ParseError::BadRequestLine("bad SIP version"));
    }
    if &version[4..] != "2.0" {
        return Err(ParseError::BadVersion);
    }
    if uri.starts_with(' ') || uri.ends_with(' ') {
        return Err(ParseError::BadRequestLine(
            "more than one space between the request line's elements",
        ));
    }
    if uri
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ParseError::BadRequestLine(
            "the Request-URI holds whitespace",
        ));
    }
    if uri.starts_with('<') {
        return Err(ParseError::BadRequestLine(
            "the Request-URI is enclosed in <>",
        ));
    }
    let scheme = uri
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|scheme| {
            scheme
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        })
        .ok_or(ParseError::BadRequestLine("the Request-URI has no scheme"))?;
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return Err(ParseError::UnsupportedScheme(truncate(scheme, 32)));
    }
    // The user part may hold `?` (RFC 3261 25.1, user-unreserved); after the host it starts the
    // headers, which a Request-URI must not carry (RFC 3261 19.1.1, table 1).
    let host_part = uri.rsplit_once('@').map_or(uri, |(_, host)| host);
    if host_part.contains('?') {
        return Err(ParseError::BadRequestLine(
            "the Request-URI carries headers",
        ));
    }
    Ok(StartLine::Request {
        method,
        known: KNOWN_METHODS.contains(&method),
        uri,
    })
}

/// The Request-URI with every byte of its user part but letters, digits and `%+-_.` escaped, or
/// `None` when it has no user part or nothing to escape.
fn escape_user_part(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let (user, host) = rest.rsplit_once('@')?;
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'+' | b'-' | b'_' | b'.');
    if user.bytes().all(keep) {
        return None;
    }
    let mut out = String::with_capacity(uri.len() + 16);
    out.push_str(scheme);
    out.push(':');
    for b in user.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('@');
    out.push_str(host);
    Some(out)
}

/// The header lines of a header section with no folded lines left: (name, value) pairs, values
/// trimmed.
fn header_lines(head: &str) -> Result<Vec<(&str, &str)>, ParseError> {
    let mut lines = Vec::with_capacity(24);
    for line in head.split("\r\n").skip(1) {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            ParseError::Syntax(format!(
                "header line without a colon: {}",
                truncate(line, 40)
            ))
        })?;
        if !is_token(name) {
            return Err(ParseError::Syntax(format!(
                "header name is not a token: {}",
                truncate(name, 40)
            )));
        }
        lines.push((name, value.trim()));
    }
    Ok(lines)
}

fn lines_named<'a>(
    lines: &'a [(&'a str, &'a str)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    lines
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// Headers a message carries at most once (RFC 3261 7.3.1: only list headers may repeat).
const SINGLE_HEADERS: [&str; 6] = [
    "Call-ID",
    "From",
    "To",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
];

/// Checks a From, To or Contact value (RFC 3261 20.10 and 25.1): a display name is a quoted
/// string or tokens, the URI inside `<>` has no spaces around it, and a bare URI (addr-spec)
/// carries no `?` headers, since those need the brackets.
fn check_name_addr(value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    let after_display = if value.starts_with('"') {
        let mut escaped = false;
        let close = value
            .char_indices()
            .skip(1)
            .find(|&(_, c)| {
                if escaped {
                    escaped = false;
                    false
                } else if c == '\\' {
                    escaped = true;
                    false
                } else {
                    c == '"'
                }
            })
            .map(|(at, _)| at)
            .ok_or("unterminated quoted string in the display name")?;
        let rest = value[close + 1..].trim_start();
        if !rest.starts_with('<') {
            return Err("a quoted display name is not followed by <URI>");
        }
        rest
    } else {
        match value.find('<') {
            Some(at) => {
                let display = &value[..at];
                // UTF-8 beyond ASCII is let through: phones send unquoted names such as
                // `Zoë <sip:...>`, and nothing in them can be taken for a separator.
                if !display
                    .split([' ', '\t'])
                    .all(|word| word.bytes().all(|b| !b.is_ascii() || is_token_char(b)))
                {
                    return Err("the display name is neither tokens nor a quoted string");
                }
                &value[at..]
            }
            None => {
                let uri = value.split(';').next().unwrap_or("");
                if uri.contains('?') {
                    return Err("a URI with headers is not enclosed in <>");
                }
                if uri.trim().is_empty() || uri.trim().contains([' ', '\t']) {
                    return Err("the URI holds whitespace");
                }
                return Ok(());
            }
        }
    };
    let inner = after_display
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map(|(inner, _)| inner)
        .ok_or("unterminated <URI>")?;
    if inner.is_empty() || inner.contains([' ', '\t']) {
        return Err("the URI in <> holds whitespace");
    }
    Ok(())
}

/// The checks of a request's or response's headers that rsip does not make, in one pass.
fn check_headers(lines: &[(&str, &str)]) -> Result<(), ParseError> {
    let mut seen = [false; SINGLE_HEADERS.len()];
    for (name, value) in lines {
        if let Some(index) = SINGLE_HEADERS
            .iter()
            .position(|single| name.eq_ignore_ascii_case(single))
        {
            if std::mem::replace(&mut seen[index], true) {
                return Err(ParseError::RepeatedHeader(SINGLE_HEADERS[index]));
            }
            let field = match index {
                1 => "From",
                2 => "To",
                _ => continue,
            };
            check_name_addr(value).map_err(|why| ParseError::BadHeader {
                name: field,
                why: why.to_owned(),
            })?;
        } else if name.eq_ignore_ascii_case("Contact") {
            for contact in split_list(value) {
                if contact != "*" {
                    check_name_addr(contact).map_err(|why| ParseError::BadHeader {
                        name: "Contact",
                        why: why.to_owned(),
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// What to answer a request that cannot be processed, built from its header lines without rsip:
/// its Via headers, From, To, Call-ID and CSeq copied (RFC 3261 8.2.6.2), and where the top Via
/// sends the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorAnswer {
    /// 400, 416 or 505.
    pub code: u16,
    /// The reason phrase, naming the problem.
    pub reason: String,
    headers: Vec<(&'static str, String)>,
    to_has_tag: bool,
    /// The top Via's sent-by port.
    pub via_port: Option<u16>,
    /// The top Via asks for rport (RFC 3581): answer to the source port.
    pub rport: bool,
}

impl ErrorAnswer {
    /// Builds the answer for a request whose header lines are `lines`, or `None` when there is no
    /// Via to answer along.
    fn new(error: &ParseError, lines: &[(&str, &str)]) -> Option<ErrorAnswer> {
        let code = error.status();
        let mut headers = Vec::with_capacity(8);
        for value in lines_named(lines, "Via") {
            headers.push(("Via", sanitize_line(value)));
        }
        let top = headers.first()?.1.clone();
        let top = split_list(&top).first().map(|top| top.to_string())?;
        let (via_port, rport) = lenient_via_route(&top);
        let mut to_has_tag = true;
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(value) = lines_named(lines, name).next() {
                if name == "To" {
                    to_has_tag = tag_of(value).is_some();
                }
                headers.push((name, sanitize_line(value)));
            }
        }
        let reason = match error {
            ParseError::BadVersion => reason_phrase(505).to_owned(),
            ParseError::UnsupportedScheme(_) => reason_phrase(416).to_owned(),
            other => sanitize_line(&format!("Bad Request ({other})")),
        };
        Some(ErrorAnswer {
            code,
            reason,
            headers,
            to_has_tag,
            via_port,
            rport,
        })
    }

    /// The response on the wire, with `tag` added to To when it has none and `server` as the
    /// Server header.
    pub(crate) fn to_bytes(&self, tag: &str, server: &str) -> bytes::Bytes {
        let mut out = format!("SIP/2.0 {} {}\r\n", self.code, self.reason);
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            if *name == "To" && !self.to_has_tag {
                out.push_str(";tag=");
                out.push_str(tag);
            }
            out.push_str("\r\n");
        }
        out.push_str("Server: ");
        out.push_str(&sanitize_line(server));
        out.push_str("\r\nContent-Length: 0\r\n\r\n");
        bytes::Bytes::from(out)
    }
}

/// The sent-by port and rport flag of a Via value that may be otherwise malformed.
fn lenient_via_route(top: &str) -> (Option<u16>, bool) {
    let (before, params) = top.split_once(';').unwrap_or((top, ""));
    let sent_by = normalize_sent_protocol(before)
        .map(|(_, sent_by)| sent_by)
        .unwrap_or_default();
    let port = split_host_port(sent_by.trim()).and_then(|(_, port)| port);
    let rport = params.split(';').any(|param| {
        param
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("rport")
    });
    (port, rport)
}

/// Splits `SIP / 2.0 / UDP host:port` (LWS allowed around the slashes, RFC 3261 25.1) into
/// (name, version, transport) and the sent-by that follows.
fn normalize_sent_protocol(value: &str) -> Option<((&str, &str, &str), &str)> {
    let mut rest = value.trim_start();
    let mut parts = [""; 3];
    for (index, part) in parts.iter_mut().enumerate() {
        let end = rest
            .find(|c: char| c == '/' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        *part = &rest[..end];
        rest = rest[end..].trim_start();
        if index < 2 {
            rest = rest.strip_prefix('/')?.trim_start();
        }
    }
    if parts.iter().any(|part| part.is_empty()) {
        return None;
    }
    Some(((parts[0], parts[1], parts[2]), rest))
}

/// The top Via of a message, which routes responses and names the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopVia {
    pub transport: Option<Transport>,
    pub host: String,
    pub port: Option<u16>,
    /// The branch; empty when the Via has none (RFC 2543 clients).
    pub branch: String,
    /// `Some(None)` for a bare `rport` (RFC 3581 asks us to fill it in).
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
    /// The whole value without whitespace, for RFC 2543 transaction matching.
    pub raw: String,
}

impl TopVia {
    /// Whether the branch carries RFC 3261's magic cookie and something after it, so that it
    /// alone (with sent-by and method) names the transaction (RFC 3261 17.2.3).
    pub(crate) fn has_rfc3261_branch(&self) -> bool {
        self.branch.len() > MAGIC_COOKIE.len() && self.branch.starts_with(MAGIC_COOKIE)
    }

    /// `host:port` as sent, the host lowercased and the port defaulted, for matching.
    pub(crate) fn sent_by(&self) -> String {
        format!(
            "{}:{}",
            self.host.to_ascii_lowercase(),
            self.port.unwrap_or(5060)
        )
    }
}

/// RFC 3261's branch prefix (section 8.1.1.7).
pub(crate) const MAGIC_COOKIE: &str = "z9hG4bK";

/// Fields every layer needs, pulled out of the headers once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub via: TopVia,
    /// An extension method's name (the request reaches rsip as OPTIONS, and the core answers
    /// 501 Not Implemented).
    pub extension: Option<String>,
}

/// A parsed and validated SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) inner: rsip::SipMessage,
    pub(crate) head: Head,
}

/// Why a message was refused and, for a request whose header section could be read and that has
/// a Via, the answer it gets (400, 416 or 505).
#[derive(Debug)]
pub(crate) struct Invalid {
    pub error: ParseError,
    pub answer: Option<ErrorAnswer>,
}

impl From<ParseError> for Invalid {
    fn from(error: ParseError) -> Self {
        Invalid {
            error,
            answer: None,
        }
    }
}

/// Placeholder start line for requests with an extension method, which rsip cannot represent.
const EXTENSION_PLACEHOLDER: &str = "OPTIONS";

impl Message {
    /// Parses one message (a UDP datagram, or a frame cut from a TCP stream).
    pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
        Self::parse_with(buf, &Limits::default()).map_err(|invalid| invalid.error)
    }

    pub(crate) fn parse_with(buf: &[u8], limits: &Limits) -> Result<Message, Invalid> {
        let buf = &buf[leading_crlf(buf)..];
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ParseError::Empty.into());
        }
        if buf.len() > limits.max_message {
            return Err(ParseError::TooLarge {
                len: buf.len(),
                max: limits.max_message,
            }
            .into());
        }
        let scan = scan_head(buf, limits)?.ok_or(ParseError::NoEndOfHeaders)?;
        // scan_head checked the header section is UTF-8.
        let head = std::str::from_utf8(&buf[..scan.head_len - 4]).map_err(|err| {
            ParseError::InvalidUtf8 {
                at: err.valid_up_to(),
            }
        })?;
        let first_line = head.split("\r\n").next().unwrap_or("");
        let method = request_method(first_line);
        let start = check_start_line(first_line);
        let extension = match start {
            Ok(StartLine::Request {
                method,
                known: false,
                uri,
            }) => Some((method, uri)),
            _ => None,
        };
        let rewritten;
        let head: &str = if scan.rewrite || extension.is_some() {
            let start_line =
                extension.map(|(_, uri)| format!("{EXTENSION_PLACEHOLDER} {uri} SIP/2.0"));
            rewritten = rewrite_head(head, start_line.as_deref());
            &rewritten[..rewritten.len() - 4]
        } else {
            head
        };
        let lines = header_lines(head).map_err(|error| Invalid {
            error,
            answer: None,
        })?;
        let refuse = |error: ParseError| {
            let answer = match method {
                Some(method) if method != "ACK" => ErrorAnswer::new(&error, &lines),
                _ => None,
            };
            Invalid { error, answer }
        };
        let start = start.map_err(&refuse)?;
        if let Some(error) = scan.length_error.clone() {
            return Err(refuse(error));
        }
        let available = buf.len() - scan.head_len;
        let body_len = match scan.content_length {
            Some(declared) if declared > available => {
                return Err(refuse(ParseError::BodyTruncated {
                    declared,
                    received: available,
                }));
            }
            Some(declared) => declared,
            None => available,
        };
        check_headers(&lines).map_err(&refuse)?;
        let body = &buf[scan.head_len..scan.head_len + body_len];
        let joined;
        let input: &[u8] =
            if head.len() + 4 == scan.head_len && extension.is_none() && !scan.rewrite {
                &buf[..scan.head_len + body_len]
            } else {
                let mut bytes = Vec::with_capacity(head.len() + 4 + body.len());
                bytes.extend_from_slice(head.as_bytes());
                bytes.extend_from_slice(b"\r\n\r\n");
                bytes.extend_from_slice(body);
                joined = bytes;
                &joined
            };
        let mut parsed = contain_panic(|| rsip::SipMessage::try_from(input))
            .ok_or_else(|| refuse(ParseError::ParserPanic))?;
        if parsed.is_err()
            && let StartLine::Request { method, known, uri } = start
            && let Some(escaped) = escape_user_part(uri)
        {
            // rsip's URI tokenizer refuses some valid user parts (`user;par=x`, RFC 4475
            // 3.1.1.9): retry with the user part percent-escaped, which names the same user.
            let method = if known { method } else { EXTENSION_PLACEHOLDER };
            let rest = &input[input.iter().position(|b| *b == b'\r').unwrap_or(0)..];
            let mut retry = format!("{method} {escaped} SIP/2.0").into_bytes();
            retry.extend_from_slice(rest);
            if let Some(Ok(message)) = contain_panic(|| rsip::SipMessage::try_from(&retry[..])) {
                parsed = Ok(message);
            }
        }
        let parsed =
            parsed.map_err(|err| refuse(ParseError::Syntax(truncate(&err.to_string(), 200))))?;
        if parsed.version() != &rsip::Version::V2 {
            return Err(refuse(ParseError::BadVersion));
        }
        let start_method = match start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response => None,
        };
        let mut head = extract_head(&lines, start_method).map_err(&refuse)?;
        head.extension = extension.map(|(method, _)| method.to_owned());
        Ok(Message {
            inner: parsed,
            head,
        })
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        self.inner.is_request()
    }

    /// The request method (`None` for a response).
    pub fn method(&self) -> Option<Method> {
        match &self.inner {
            rsip::SipMessage::Request(request) => Some(Method::from_rsip(request.method)),
            rsip::SipMessage::Response(_) => None,
        }
    }

    /// The status code (`None` for a request).
    pub fn status(&self) -> Option<u16> {
        match &self.inner {
            rsip::SipMessage::Request(_) => None,
            rsip::SipMessage::Response(response) => Some(response.status_code.code()),
        }
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<String> {
        match &self.inner {
            rsip::SipMessage::Request(_) => None,
            rsip::SipMessage::Response(response) => Some(reason_of(&response.status_code)),
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<crate::Uri> {
        match &self.inner {
            rsip::SipMessage::Request(request) => Some(crate::Uri(request.uri.clone())),
            rsip::SipMessage::Response(_) => None,
        }
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.head.call_id
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> (u32, Method) {
        (self.head.cseq, self.head.cseq_method)
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&str> {
        self.head.from_tag.as_deref()
    }

    /// The To tag.
    pub fn to_tag(&self) -> Option<&str> {
        self.head.to_tag.as_deref()
    }

    /// The method's name when it is an extension method this crate has no [`Method`] for (then
    /// [`method`](Self::method) says OPTIONS, which the request is parsed as).
    pub fn extension_method(&self) -> Option<&str> {
        self.head.extension.as_deref()
    }

    /// The top Via's branch (empty for an RFC 2543 request without one).
    pub fn branch(&self) -> &str {
        &self.head.via.branch
    }

    /// The first value of a header, by name (case-insensitive; compact forms are expanded).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = expand_compact(name).unwrap_or(name);
        first_header(headers_of(&self.inner), name)
    }

    /// Every value of a header, by name, in order.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let name = expand_compact(name).unwrap_or(name);
        headers_of(&self.inner)
            .iter()
            .map(header_parts)
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.inner.body()
    }

    /// The message as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_string().into_bytes()
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// At most `max` characters of `s`, control characters escaped: text from the wire goes into
/// error messages and so into log lines, where a CR LF would forge a line of its own.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn reason_of(status: &rsip::StatusCode) -> String {
    match status {
        rsip::StatusCode::Other(_, reason) => reason.clone(),
        // rsip prints its variant names ("BusyHere"); use the RFC's phrases.
        known => reason_phrase(known.code()).to_owned(),
    }
}

/// The reason phrase RFC 3261 (and friends) give a status code.
#[allow(clippy::match_overlapping_arm)] // specific codes first, then a phrase per class
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        100..=199 => "Session Progress",
        200..=299 => "OK",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Global Failure",
    }
}

pub(crate) fn headers_of(message: &rsip::SipMessage) -> &rsip::Headers {
    match message {
        rsip::SipMessage::Request(request) => &request.headers,
        rsip::SipMessage::Response(response) => &response.headers,
    }
}

macro_rules! header_table {
    ($($variant:ident => $name:literal,)*) => {
        /// A header's canonical name and its raw value.
        pub(crate) fn header_parts(header: &rsip::Header) -> (&str, &str) {
            match header {
                $(rsip::Header::$variant(value) => ($name, value.value()),)*
                rsip::Header::Other(name, value) => (name.as_str(), value.as_str()),
            }
        }

        /// A header from a name and a value, typed where rsip has a type for it.
        pub(crate) fn make_header(name: &str, value: impl Into<String>) -> rsip::Header {
            $(if name.eq_ignore_ascii_case($name) {
                return rsip::Header::$variant(rsip::headers::$variant::new(value));
            })*
            rsip::Header::Other(name.to_owned(), value.into())
        }
    };
}

header_table! {
    Accept => "Accept",
    AcceptEncoding => "Accept-Encoding",
    AcceptLanguage => "Accept-Language",
    AlertInfo => "Alert-Info",
    Allow => "Allow",
    AuthenticationInfo => "Authentication-Info",
    Authorization => "Authorization",
    CSeq => "CSeq",
    CallId => "Call-ID",
    CallInfo => "Call-Info",
    Contact => "Contact",
    ContentDisposition => "Content-Disposition",
    ContentEncoding => "Content-Encoding",
    ContentLanguage => "Content-Language",
    ContentLength => "Content-Length",
    ContentType => "Content-Type",
    Date => "Date",
    ErrorInfo => "Error-Info",
    Event => "Event",
    Expires => "Expires",
    From => "From",
    InReplyTo => "In-Reply-To",
    MaxForwards => "Max-Forwards",
    MimeVersion => "MIME-Version",
    MinExpires => "Min-Expires",
    Organization => "Organization",
    Priority => "Priority",
    ProxyAuthenticate => "Proxy-Authenticate",
    ProxyAuthorization => "Proxy-Authorization",
    ProxyRequire => "Proxy-Require",
    RecordRoute => "Record-Route",
    ReplyTo => "Reply-To",
    Require => "Require",
    RetryAfter => "Retry-After",
    Route => "Route",
    Server => "Server",
    Subject => "Subject",
    SubscriptionState => "Subscription-State",
    Supported => "Supported",
    Timestamp => "Timestamp",
    To => "To",
    Unsupported => "Unsupported",
    UserAgent => "User-Agent",
    Via => "Via",
    Warning => "Warning",
    WwwAuthenticate => "WWW-Authenticate",
}

fn first_header<'a>(headers: &'a rsip::Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .map(header_parts)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// Splits a header value at its top-level commas (outside quotes and angle brackets), for
/// headers that may carry several values on one line (Via, Route, Record-Route, Contact).
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|part| !part.is_empty());
    parts
}

/// The value of a `;name=value` parameter in a header value's parameters (after the URI).
pub(crate) fn param_value<'a>(params: &'a str, name: &str) -> Option<Option<&'a str>> {
    params.split(';').skip(1).find_map(|param| {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (param.trim(), None),
        };
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

/// The part of a name-addr header value after the URI (its header parameters).
pub(crate) fn header_params(value: &str) -> &str {
    match angle_span(value) {
        Some((_, end)) => &value[end + 1..],
        None => match value.find(';') {
            Some(start) => &value[start..],
            None => "",
        },
    }
}

/// The tag parameter of a From or To value.
pub(crate) fn tag_of(value: &str) -> Option<String> {
    param_value(header_params(value), "tag")
        .flatten()
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
}

/// The URI inside a name-addr (`"Bob" <sip:bob@x>;tag=1` gives `sip:bob@x`).
pub(crate) fn uri_of(value: &str) -> &str {
    match angle_span(value) {
        Some((start, end)) => value[start + 1..end].trim(),
        None => value.split(';').next().unwrap_or("").trim(),
    }
}

/// Where a name-addr's `<URI>` is: the first `<` outside the quoted display name and the first
/// `>` after it. Header parameters after it may hold `<` and `>` in quoted values, as phones'
/// `+sip.instance="<urn:uuid:...>"` (RFC 5626) does, so the last `>` is not the URI's.
fn angle_span(value: &str) -> Option<(usize, usize)> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                let end = value[i..].find('>')?;
                return Some((i, i + end));
            }
            _ => {}
        }
    }
    None
}

fn parse_top_via(value: &str) -> Result<TopVia, ParseError> {
    let bad = |why: &str| ParseError::BadHeader {
        name: "Via",
        why: why.to_owned(),
    };
    let first = split_list(value)
        .into_iter()
        .next()
        .ok_or_else(|| bad("empty"))?;
    let (before, params) = match first.find(';') {
        Some(at) => (&first[..at], &first[at..]),
        None => (first, ""),
    };
    let ((name, version, transport), sent_by) =
        normalize_sent_protocol(before).ok_or_else(|| bad("bad sent-protocol"))?;
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return Err(bad("not SIP/2.0"));
    }
    if !is_token(transport) {
        return Err(bad("the transport is not a token"));
    }
    let transport = transport.parse::<Transport>().ok();
    let (host, port) = split_host_port(sent_by.trim()).ok_or_else(|| bad("bad sent-by"))?;
    if params
        .split(';')
        .skip(1)
        .any(|param| param.trim().is_empty())
    {
        return Err(bad("empty parameter"));
    }
    // No branch at all is an RFC 2543 client, matched the old way (RFC 3261 17.2.3).
    let branch = match param_value(params, "branch") {
        None => "",
        Some(Some(branch)) if !branch.is_empty() => branch,
        Some(_) => return Err(bad("empty branch")),
    };
    let rport = match param_value(params, "rport") {
        None => None,
        Some(None) | Some(Some("")) => Some(None),
        Some(Some(port)) => Some(Some(port.parse().map_err(|_| bad("bad rport"))?)),
    };
    Ok(TopVia {
        transport,
        host: host.to_owned(),
        port,
        branch: branch.to_owned(),
        rport,
        received: param_value(params, "received").flatten().map(str::to_owned),
        raw: first.split_whitespace().collect(),
    })
}

/// Splits `host[:port]` (IPv6 in brackets).
pub(crate) fn split_host_port(sent_by: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = sent_by.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match sent_by.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (sent_by, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
    {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.trim().parse().ok()?),
        None => None,
    };
    Some((host, port))
}

fn extract_head(lines: &[(&str, &str)], start_method: Option<&str>) -> Result<Head, ParseError> {
    let first = |name: &'static str| {
        lines_named(lines, name)
            .next()
            .ok_or(ParseError::MissingHeader(name))
    };
    let via = parse_top_via(first("Via")?)?;
    let from = first("From")?;
    let to = first("To")?;
    let call_id = first("Call-ID")?;
    // RFC 3261 25.1: word characters only, so a Call-ID is safe in log lines as it is.
    if call_id.is_empty() || !call_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::BadHeader {
            name: "Call-ID",
            why: "empty, or has spaces or control characters".into(),
        });
    }
    let cseq = first("CSeq")?;
    let bad_cseq = |why: &str| ParseError::BadHeader {
        name: "CSeq",
        why: why.to_owned(),
    };
    let (number, method) = cseq
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or_else(|| bad_cseq("no method"))?;
    let method = method.trim();
    // RFC 3261 8.1.1.5: the sequence number is below 2**31.
    let number: u32 = number
        .parse()
        .ok()
        .filter(|number| *number < 1 << 31)
        .ok_or_else(|| bad_cseq("sequence number is not a number below 2**31"))?;
    let known = KNOWN_METHODS.contains(&method);
    if let Some(start_method) = start_method
        && start_method != method
    {
        return Err(bad_cseq("method differs from the request's"));
    }
    let method = if known {
        method
            .parse::<rsip::Method>()
            .map(Method::from_rsip)
            .map_err(|_| bad_cseq("unknown method"))?
    } else if start_method.is_some() {
        // An extension method, which the request line names too; see EXTENSION_PLACEHOLDER.
        Method::Options
    } else {
        return Err(bad_cseq("unknown method"));
    };
    Ok(Head {
        call_id: call_id.to_owned(),
        cseq: number,
        cseq_method: method,
        from_tag: tag_of(from),
        to_tag: tag_of(to),
        via,
        extension: None,
    })
}

/// Serialises a request, setting Content-Length from the body.
pub(crate) fn request_bytes(request: &mut rsip::Request) -> bytes::Bytes {
    let length = request.body.len() as u32;
    request
        .headers
        .unique_push(rsip::Header::ContentLength(length.into()));
    bytes::Bytes::from(request.to_string())
}

/// Serialises a response, setting Content-Length from the body.
pub(crate) fn response_bytes(response: &mut rsip::Response) -> bytes::Bytes {
    let length = response.body.len() as u32;
    response
        .headers
        .unique_push(rsip::Header::ContentLength(length.into()));
    bytes::Bytes::from(response.to_string())
}

/// A status code with the given reason phrase, or the standard one. Always the `Other` form,
/// since rsip prints its known codes with its variant names instead of reason phrases.
pub(crate) fn status_code(code: u16, reason: Option<&str>) -> rsip::StatusCode {
    let reason = match reason {
        Some(reason) if !reason.trim().is_empty() => sanitize_line(reason),
        _ => reason_phrase(code).to_owned(),
    };
    rsip::StatusCode::Other(code, reason)
}

/// Drops CR, LF and other control characters from text that goes into a header line.
pub(crate) fn sanitize_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A response to `request` (RFC 3261 section 8.2.6.2): Via, From, To, Call-ID and CSeq copied,
/// our tag added to To when `to_tag` is given and To has none.
pub(crate) fn response_to(
    request: &rsip::Request,
    code: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for header in request.headers.iter() {
        match header {
            rsip::Header::Via(_)
            | rsip::Header::From(_)
            | rsip::Header::CallId(_)
            | rsip::Header::CSeq(_) => headers.push(header.clone()),
            rsip::Header::To(to) => {
                let value = to.value();
                match to_tag {
                    Some(tag) if tag_of(value).is_none() && code > 100 => {
                        headers.push(make_header("To", format!("{};tag={tag}", value.trim())))
                    }
                    _ => headers.push(header.clone()),
                }
            }
            // RFC 3261 16.6 / 12.1.1: a UAS copies Record-Route into 2xx and 18x to INVITE.
            rsip::Header::RecordRoute(_)
                if request.method == rsip::Method::Invite && (101..300).contains(&code) =>
            {
                headers.push(header.clone())
            }
            _ => {}
        }
    }
    rsip::Response {
        status_code: status_code(code, reason),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// Appends `;received=` and fills `rport` in the top Via of a request we received (RFC 3261
/// 18.2.1 and RFC 3581), so the response finds its way back through NAT.
pub(crate) fn stamp_received(request: &mut rsip::Request, source: std::net::SocketAddr) {
    let Some(via) = request.headers.iter_mut().find_map(|header| match header {
        rsip::Header::Via(via) => Some(via),
        _ => None,
    }) else {
        return;
    };
    let value = via.value().to_owned();
    let parts = split_list(&value);
    let Some(first) = parts.first() else { return };
    let mut top = String::with_capacity(first.len() + 40);
    let sent_by_host = first
        .split_once(|c: char| c.is_ascii_whitespace())
        .map(|(_, rest)| rest.trim())
        .and_then(|rest| split_host_port(rest.split(';').next().unwrap_or("").trim()))
        .map(|(host, _)| host.to_owned());
    let mut saw_rport = false;
    for (index, piece) in first.split(';').enumerate() {
        if index > 0 {
            top.push(';');
        }
        let key = piece.split('=').next().unwrap_or("").trim();
        if index > 0 && key.eq_ignore_ascii_case("rport") {
            saw_rport = true;
            top.push_str(&format!("rport={}", source.port()));
        } else if index > 0 && key.eq_ignore_ascii_case("received") {
            top.pop();
        } else {
            top.push_str(piece);
        }
    }
    let source_ip = source.ip().to_string();
    if saw_rport || sent_by_host.as_deref() != Some(source_ip.as_str()) {
        top.push_str(";received=");
        top.push_str(&source_ip);
    }
    let mut rebuilt = top;
    for rest in parts.iter().skip(1) {
        rebuilt.push_str(", ");
        rebuilt.push_str(rest);
    }
    *via = rsip::headers::Via::new(rebuilt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_text_in_errors_cannot_forge_log_lines() {
        assert_eq!(
            truncate("a\r\nINFO forged\u{1b}[31m", 100),
            "a\\r\\nINFO forged\\u{1b}[31m"
        );
        let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                    Content-Length: 1\x1b\r\n\r\n";
        if let Err(invalid) = Message::parse_with(raw, &Limits::default()) {
            let text = invalid.error.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }

    #[test]
    fn control_characters_pass_only_escaped_inside_quotes() {
        assert!(!bad_line_byte("To: \"NUL:\\\u{0} BEL:\\\u{7}\" <sip:a@b>"));
        assert!(bad_line_byte("To: <sip:a@b>;x=\\\u{1b}[31m"));
        assert!(bad_line_byte("SIP/2.0 486 Busy\\\u{1b}[31m"));
        assert!(bad_line_byte("To: \"a\r\" <sip:a@b>"));
        assert!(!bad_line_byte("Subject:\tfine"));
    }

    #[test]
    fn unquoted_display_names_may_be_utf8_but_not_separators() {
        assert_eq!(check_name_addr("Zoë Müller <sip:zoe@example.com>"), Ok(()));
        assert_eq!(
            check_name_addr("Alice <sip:alice@example.com>;tag=1"),
            Ok(())
        );
        assert!(check_name_addr("Bell, Alexander <sip:a.g.bell@example.com>").is_err());
    }

    #[test]
    fn a_contacts_uri_ends_at_its_own_angle_bracket() {
        let contact = "<sip:pyagent@127.0.0.1:15392;transport=UDP>;+sip.instance=\"<urn:uuid:5E0F>\";expires=120";
        assert_eq!(uri_of(contact), "sip:pyagent@127.0.0.1:15392;transport=UDP");
        assert_eq!(
            param_value(header_params(contact), "expires"),
            Some(Some("120"))
        );
        assert_eq!(uri_of("\"a <b>\" <sip:x@y>;tag=1"), "sip:x@y");
        assert_eq!(tag_of("\"a <b>\" <sip:x@y>;tag=1").as_deref(), Some("1"));
        assert_eq!(uri_of("sip:x@y;tag=2"), "sip:x@y");
    }

    pub(crate) const INVITE: &str = "INVITE sip:+15551234567@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+15551234567@127.0.0.1>\r\n\
From: \"ACME\" <sip:+15550001111@127.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:dialer@127.0.0.1:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_a_typical_invite() {
        let message = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(message.method(), Some(Method::Invite));
        assert_eq!(message.call_id(), "a84b4c76e66710@pc33.example.com");
        assert_eq!(message.cseq(), (314159, Method::Invite));
        assert_eq!(message.from_tag(), Some("1928301774"));
        assert_eq!(message.to_tag(), None);
        assert_eq!(message.branch(), "z9hG4bK776asdhds");
        assert_eq!(message.head.via.rport, Some(None));
        assert_eq!(message.body(), b"v=0\n");
        assert_eq!(message.header("content-type"), Some("application/sdp"));
    }

    #[test]
    fn compact_forms_and_folding_are_understood() {
        let text = "SIP/2.0 180 Ringing\r\n\
v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\n\
f: <sip:a@b>;tag=1\r\n\
t: <sip:c@d>\r\n\x20;tag=2\r\n\
i: abc\r\n\
CSeq: 1 INVITE\r\n\
l: 0\r\n\r\n";
        let message = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(message.status(), Some(180));
        assert_eq!(message.to_tag(), Some("2"));
        assert_eq!(message.call_id(), "abc");
    }

    #[test]
    fn body_is_cut_at_content_length_and_short_bodies_refused() {
        let long = INVITE.replace("v=0\n", "v=0\nextra");
        assert_eq!(Message::parse(long.as_bytes()).unwrap().body(), b"v=0\n");
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        assert!(matches!(
            Message::parse(short.as_bytes()),
            Err(ParseError::BodyTruncated { declared: 400, .. })
        ));
        let absurd = INVITE.replace("Content-Length: 4", "Content-Length: 99999999999999999999");
        assert!(matches!(
            Message::parse(absurd.as_bytes()),
            Err(ParseError::BadContentLength(_))
        ));
    }

    #[test]
    fn hostile_inputs_are_refused_not_panicked_on() {
        let huge_headers = format!(
            "OPTIONS sip:a@b SIP/2.0\r\n{}\r\n",
            "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(800)
        );
        assert!(matches!(
            Message::parse(huge_headers.as_bytes()),
            Err(ParseError::HeadersTooLarge { .. }) | Err(ParseError::TooLarge { .. })
        ));
        let mut bad_utf8 = INVITE.as_bytes().to_vec();
        bad_utf8[60] = 0xff;
        assert!(matches!(
            Message::parse(&bad_utf8),
            Err(ParseError::InvalidUtf8 { .. })
        ));
        assert!(Message::parse(b"GARBAGE\r\n\r\n").is_err());
        assert_eq!(Message::parse(b"\r\n\r\n"), Err(ParseError::Empty));
        let no_call_id = INVITE.replace("Call-ID: a84b4c76e66710@pc33.example.com\r\n", "");
        assert_eq!(
            Message::parse(no_call_id.as_bytes()),
            Err(ParseError::MissingHeader("Call-ID"))
        );
        let bare_lf = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 70\nVia: x");
        assert!(Message::parse(bare_lf.as_bytes()).is_err());
    }

    #[test]
    fn received_and_rport_are_stamped() {
        let message = Message::parse(INVITE.as_bytes()).unwrap();
        let rsip::SipMessage::Request(mut request) = message.inner else {
            unreachable!()
        };
        stamp_received(&mut request, "192.0.2.7:40000".parse().unwrap());
        let via = first_header(&request.headers, "Via").unwrap();
        assert_eq!(
            via,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport=40000;received=192.0.2.7"
        );
    }

    #[test]
    fn responses_copy_the_dialog_headers() {
        let message = Message::parse(INVITE.as_bytes()).unwrap();
        let rsip::SipMessage::Request(request) = &message.inner else {
            unreachable!()
        };
        let mut response = response_to(request, 486, None, Some("xyz"));
        let bytes = response_bytes(&mut response);
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(back.status(), Some(486));
        assert_eq!(back.reason().as_deref(), Some("Busy Here"));
        assert_eq!(back.to_tag(), Some("xyz"));
        assert_eq!(back.call_id(), message.call_id());
        assert_eq!(back.header("Content-Length"), Some("0"));
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("<sip:a@b;lr>, \"x, y\" <sip:c@d>,<sip:e@f>"),
            vec!["<sip:a@b;lr>", "\"x, y\" <sip:c@d>", "<sip:e@f>"]
        );
    }
}
