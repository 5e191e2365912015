//! HTTP digest authentication for SIP (RFC 3261 section 22, RFC 7616): the client side that
//! answers 401/407 challenges, and the server side the registrar uses to challenge agent phones.
//!
//! Written here instead of using rsip's helper, which parses `SHA-256` wrongly, lacks `-sess`
//! and `auth-int`, and wraps its nonce count at 255. MD5 and SHA-256 (and their `-sess`
//! variants), qop `auth` and `auth-int`, and the RFC 2069 form without qop are supported; the
//! nonce count is a 32-bit counter.

use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;

/// A username and password for digest authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a server knows of a user's password: the password, or only its digest hashes (HA1 =
/// H(username:realm:password), as the store keeps agent accounts).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Password(String),
    /// The hex HA1 values for MD5 and SHA-256, computed with the server's realm.
    Ha1 {
        /// HA1 with MD5.
        md5: String,
        /// HA1 with SHA-256.
        sha256: String,
    },
}

impl Secret {
    /// A plain password.
    pub fn password(password: impl Into<String>) -> Secret {
        Secret::Password(password.into())
    }

    fn base_ha1(&self, algorithm: DigestAlgorithm, username: &str, realm: &str) -> String {
        match (self, algorithm) {
            (Secret::Password(password), _) => {
                algorithm.hash(format!("{username}:{realm}:{password}").as_bytes())
            }
            (Secret::Ha1 { md5, .. }, DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess) => {
                md5.to_ascii_lowercase()
            }
            (Secret::Ha1 { sha256, .. }, _) => sha256.to_ascii_lowercase(),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Password(_) => "Password(<redacted>)",
            Secret::Ha1 { .. } => "Ha1(<redacted>)",
        })
    }
}

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// MD5 (the RFC 2617 default, what most phones speak).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 7616).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

/// An algorithm token that names no digest algorithm this library speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown digest algorithm `{0}` (known: MD5, MD5-sess, SHA-256, SHA-256-sess)")]
pub struct UnknownAlgorithm(pub String);

impl std::str::FromStr for DigestAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        DigestAlgorithm::parse(token.trim()).ok_or_else(|| UnknownAlgorithm(token.to_owned()))
    }
}

impl DigestAlgorithm {
    /// The algorithm's token.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn parse(token: &str) -> Option<DigestAlgorithm> {
        [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|algorithm| algorithm.as_str().eq_ignore_ascii_case(token))
    }

    /// Every algorithm, in the order RFC 8760 prefers them (SHA-256 before MD5).
    pub const ALL: [DigestAlgorithm; 4] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha256Sess,
        DigestAlgorithm::Md5,
        DigestAlgorithm::Md5Sess,
    ];

    fn is_sess(self) -> bool {
        matches!(self, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess)
    }

    fn hash(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex::encode(Md5::digest(data)),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
                hex::encode(Sha256::digest(data))
            }
        }
    }
}

/// Why a digest header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not `Digest` followed by parameters.
    #[error("not a Digest header")]
    NotDigest,
    /// A parameter the scheme needs is missing.
    #[error("digest parameter {0} is missing")]
    Missing(&'static str),
    /// The algorithm is not one we know.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The quality of protection offered is not one we know.
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
}

/// The parameters of a `Digest` challenge or credentials header, keys lower-cased.
fn parse_params(value: &str) -> Result<HashMap<String, String>, DigestError> {
    let value = value.trim();
    let rest = value
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("digest"))
        .map(|_| &value[6..])
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .ok_or(DigestError::NotDigest)?;
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(c) = chars.peek().copied() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c.to_ascii_lowercase());
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                val.push(escaped);
                            }
                        }
                        '"' => break,
                        c => val.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek().copied() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
        }
        params.entry(key).or_insert(val);
    }
    Ok(params)
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// Authentication only.
    Auth,
    /// Authentication with integrity protection of the body.
    AuthInt,
}

impl Qop {
    fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// A parsed `WWW-Authenticate` or `Proxy-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Opaque data to echo back.
    pub opaque: Option<String>,
    /// The hash algorithm.
    pub algorithm: DigestAlgorithm,
    /// The qop we will use (`auth` preferred), `None` for the RFC 2069 form.
    pub qop: Option<Qop>,
    /// Whether the previous credentials failed only because the nonce was stale.
    pub stale: bool,
}

impl Challenge {
    /// Parses a challenge header value.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = parse_params(value)?;
        let algorithm = match params.get("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(token) => DigestAlgorithm::parse(token)
                .ok_or_else(|| DigestError::UnsupportedAlgorithm(token.clone()))?,
        };
        let qop = match params.get("qop") {
            None => None,
            Some(list) => {
                let offered: Vec<&str> = list.split(',').map(str::trim).collect();
                if offered.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
                    Some(Qop::Auth)
                } else if offered.iter().any(|q| q.eq_ignore_ascii_case("auth-int")) {
                    Some(Qop::AuthInt)
                } else {
                    return Err(DigestError::UnsupportedQop(list.clone()));
                }
            }
        };
        Ok(Challenge {
            realm: params
                .get("realm")
                .cloned()
                .ok_or(DigestError::Missing("realm"))?,
            nonce: params
                .get("nonce")
                .cloned()
                .ok_or(DigestError::Missing("nonce"))?,
            opaque: params.get("opaque").cloned(),
            algorithm,
            qop,
            stale: params
                .get("stale")
                .is_some_and(|stale| stale.eq_ignore_ascii_case("true")),
        })
    }

    /// The first challenge among `values` that we can answer (servers list their preferred
    /// algorithm first, RFC 7616 section 3.7).
    pub fn pick<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values
            .into_iter()
            .find_map(|value| Challenge::parse(value).ok())
    }
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn response_digest(
    algorithm: DigestAlgorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(Qop, &str, &str)>,
    method: &str,
    uri: &str,
    body: &[u8],
) -> String {
    let ha2 = match qop {
        Some((Qop::AuthInt, _, _)) => {
            algorithm.hash(format!("{method}:{uri}:{}", algorithm.hash(body)).as_bytes())
        }
        _ => algorithm.hash(format!("{method}:{uri}").as_bytes()),
    };
    match qop {
        Some((qop, nc, cnonce)) => {
            algorithm.hash(format!("{ha1}:{nonce}:{nc}:{cnonce}:{}:{ha2}", qop.as_str()).as_bytes())
        }
        None => algorithm.hash(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

fn ha1(
    algorithm: DigestAlgorithm,
    username: &str,
    realm: &str,
    secret: &Secret,
    nonce: &str,
    cnonce: &str,
) -> String {
    let base = secret.base_ha1(algorithm, username, realm);
    if algorithm.is_sess() {
        algorithm.hash(format!("{base}:{nonce}:{cnonce}").as_bytes())
    } else {
        base
    }
}

/// The value of an `Authorization`/`Proxy-Authorization` header answering `challenge`.
/// `nc` is the nonce count (1 for the first use of a nonce).
pub fn authorization(
    challenge: &Challenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    body: &[u8],
    nc: u32,
    cnonce: &str,
) -> String {
    let nc_text = format!("{nc:08x}");
    let ha1 = ha1(
        challenge.algorithm,
        &credentials.username,
        &challenge.realm,
        &Secret::Password(credentials.password.clone()),
        &challenge.nonce,
        cnonce,
    );
    let qop = challenge.qop.map(|qop| (qop, nc_text.as_str(), cnonce));
    let response = response_digest(
        challenge.algorithm,
        &ha1,
        &challenge.nonce,
        qop,
        method,
        uri,
        body,
    );
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(&credentials.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        challenge.algorithm.as_str(),
    );
    if let Some(qop) = challenge.qop {
        let _ = write!(
            out,
            ", qop={}, nc={nc_text}, cnonce={}",
            qop.as_str(),
            quote(cnonce)
        );
    }
    if let Some(opaque) = &challenge.opaque {
        let _ = write!(out, ", opaque={}", quote(opaque));
    }
    out
}

/// What a server made of a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right: the request comes from this user.
    Authenticated(String),
    /// The credentials were right for an expired nonce: challenge again with `stale=true`.
    Stale,
    /// Wrong password, unknown user, replayed nonce count, forged nonce or bad syntax.
    Refused(&'static str),
}

/// The server side: issues nonces and checks credentials. Nonces are self-validating (a
/// timestamp and a keyed hash), so no state is kept per challenge; only the last nonce count seen
/// per nonce is remembered, to refuse replays.
#[derive(Debug)]
pub struct Server {
    realm: String,
    secret: [u8; 32],
    nonce_lifetime: u64,
    algorithms: Vec<DigestAlgorithm>,
    counts: HashMap<String, (u32, u64)>,
    last_prune: u64,
}

impl Server {
    /// A server for `realm` offering `algorithms` in that order of preference; nonces live
    /// `nonce_lifetime` seconds.
    pub fn new(
        realm: impl Into<String>,
        algorithms: Vec<DigestAlgorithm>,
        nonce_lifetime: u64,
    ) -> Self {
        Server {
            realm: realm.into(),
            secret: rand::random(),
            nonce_lifetime,
            algorithms,
            counts: HashMap::new(),
            last_prune: 0,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn nonce_tag(&self, stamp: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(stamp.as_bytes());
        hex::encode(&hasher.finalize()[..12])
    }

    /// Challenge header values (one per algorithm) for a response issued at `unix_now`.
    pub fn challenges(&self, unix_now: u64, stale: bool) -> Vec<String> {
        self.challenges_offering(unix_now, stale, &self.algorithms)
    }

    /// Challenge header values offering `algorithms` (one each, in that order) instead of the
    /// server's own list: a user whose phone needs other algorithms than the rest.
    pub fn challenges_offering(
        &self,
        unix_now: u64,
        stale: bool,
        algorithms: &[DigestAlgorithm],
    ) -> Vec<String> {
        let stamp = format!("{unix_now:x}.{:08x}", rand::random::<u32>());
        let nonce = format!("{stamp}.{}", self.nonce_tag(&stamp));
        algorithms
            .iter()
            .map(|algorithm| {
                let mut value = format!(
                    "Digest realm={}, nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    quote(&self.realm),
                    algorithm.as_str()
                );
                if stale {
                    value.push_str(", stale=TRUE");
                }
                value
            })
            .collect()
    }

    /// Checks the credentials in `header` (an Authorization value) for a request of `method`,
    /// looking the user's secret up with `secret_of`.
    pub fn verify(
        &mut self,
        header: &str,
        method: &str,
        body: &[u8],
        unix_now: u64,
        secret_of: &dyn Fn(&str) -> Option<Secret>,
    ) -> Verdict {
        self.verify_offered(header, method, body, unix_now, secret_of, &|_| None)
    }

    /// Like [`verify`](Self::verify), with the algorithms accepted from a user given by
    /// `offered_to` where it has a list of that user's own (`None`: the server's list).
    pub fn verify_offered(
        &mut self,
        header: &str,
        method: &str,
        body: &[u8],
        unix_now: u64,
        secret_of: &dyn Fn(&str) -> Option<Secret>,
        offered_to: &dyn Fn(&str) -> Option<Vec<DigestAlgorithm>>,
    ) -> Verdict {
        let Ok(params) = parse_params(header) else {
            return Verdict::Refused("not Digest credentials");
        };
        let get = |key: &str| params.get(key).map(String::as_str);
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("response"),
        ) else {
            return Verdict::Refused("incomplete credentials");
        };
        if realm != self.realm {
            return Verdict::Refused("wrong realm");
        }
        let offered = offered_to(username).unwrap_or_else(|| self.algorithms.clone());
        let algorithm = match get("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(token) => match DigestAlgorithm::parse(token) {
                Some(algorithm) if offered.contains(&algorithm) => algorithm,
                _ => return Verdict::Refused("algorithm not offered"),
            },
        };
        // The nonce must be one we issued (its tag checks) and not too old.
        let Some((stamp, tag)) = nonce.rsplit_once('.') else {
            return Verdict::Refused("forged nonce");
        };
        if self.nonce_tag(stamp) != tag {
            return Verdict::Refused("forged nonce");
        }
        let Some(issued) = stamp
            .split('.')
            .next()
            .and_then(|secs| u64::from_str_radix(secs, 16).ok())
        else {
            return Verdict::Refused("forged nonce");
        };
        let Some(secret) = secret_of(username) else {
            return Verdict::Refused("unknown user");
        };
        let qop = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(q) if q.eq_ignore_ascii_case("auth-int") => Some(Qop::AuthInt),
            Some(_) => return Verdict::Refused("unknown qop"),
        };
        // We only offer qop=auth: a client that drops qop could replay a response forever.
        let Some(qop) = qop else {
            return Verdict::Refused("qop missing");
        };
        let (Some(nc_text), Some(cnonce)) = (get("nc"), get("cnonce")) else {
            return Verdict::Refused("nc or cnonce missing");
        };
        let Ok(nc) = u32::from_str_radix(nc_text, 16) else {
            return Verdict::Refused("bad nc");
        };
        let ha1 = ha1(algorithm, username, realm, &secret, nonce, cnonce);
        let expected = response_digest(
            algorithm,
            &ha1,
            nonce,
            Some((qop, nc_text, cnonce)),
            method,
            uri,
            body,
        );
        if !constant_time_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Verdict::Refused("wrong password");
        }
        if unix_now.saturating_sub(issued) > self.nonce_lifetime {
            return Verdict::Stale;
        }
        self.prune(unix_now);
        let last = self.counts.entry(nonce.to_owned()).or_insert((0, issued));
        if nc <= last.0 {
            return Verdict::Refused("replayed nonce count");
        }
        last.0 = nc;
        Verdict::Authenticated(username.to_owned())
    }

    fn prune(&mut self, unix_now: u64) {
        if unix_now.saturating_sub(self.last_prune) < self.nonce_lifetime {
            return;
        }
        self.last_prune = unix_now;
        let lifetime = self.nonce_lifetime;
        self.counts
            .retain(|_, (_, issued)| unix_now.saturating_sub(*issued) <= lifetime);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example_with_md5() {
        // RFC 2617 section 3.5, with the method and URI of its example.
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(challenge.qop, Some(Qop::Auth));
        let header = authorization(
            &challenge,
            &Credentials::new("Mufasa", "Circle Of Life"),
            "GET",
            "/dir/index.html",
            b"",
            1,
            "0a4f113b",
        );
        assert!(
            header.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{header}"
        );
        assert!(header.contains("nc=00000001"));
    }

    #[test]
    fn rfc_7616_example_with_sha256() {
        // RFC 7616 section 3.9.1.
        let challenge = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        assert_eq!(challenge.algorithm, DigestAlgorithm::Sha256);
        let header = authorization(
            &challenge,
            &Credentials::new("Mufasa", "Circle of Life"),
            "GET",
            "/dir/index.html",
            b"",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(
            header.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{header}"
        );
    }

    #[test]
    fn server_accepts_right_password_once_per_count() {
        let mut server = Server::new(
            "dialer",
            vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            300,
        );
        let lookup = |user: &str| (user == "agent1").then(|| Secret::password("secret"));
        for (index, value) in server.challenges(1_000, false).iter().enumerate() {
            let challenge = Challenge::parse(value).unwrap();
            // Both challenges carry the same nonce, whose counts must keep rising.
            let base = index as u32 * 10;
            let good = authorization(
                &challenge,
                &Credentials::new("agent1", "secret"),
                "REGISTER",
                "sip:dialer",
                b"",
                base + 1,
                "abc",
            );
            let expected = Verdict::Authenticated("agent1".into());
            if index == 0 {
                assert_eq!(challenge.algorithm, DigestAlgorithm::Sha256);
            }
            assert_eq!(
                server.verify(&good, "REGISTER", b"", 1_010, &lookup),
                expected
            );
            assert_eq!(
                server.verify(&good, "REGISTER", b"", 1_011, &lookup),
                Verdict::Refused("replayed nonce count")
            );
            let wrong = authorization(
                &challenge,
                &Credentials::new("agent1", "guess"),
                "REGISTER",
                "sip:dialer",
                b"",
                base + 2,
                "abc",
            );
            assert_eq!(
                server.verify(&wrong, "REGISTER", b"", 1_012, &lookup),
                Verdict::Refused("wrong password")
            );
            let later = authorization(
                &challenge,
                &Credentials::new("agent1", "secret"),
                "REGISTER",
                "sip:dialer",
                b"",
                base + 3,
                "abc",
            );
            assert_eq!(
                server.verify(&later, "REGISTER", b"", 5_000, &lookup),
                Verdict::Stale
            );
        }
    }

    #[test]
    fn stored_ha1_values_work_like_the_password() {
        let mut server = Server::new(
            "dialer",
            vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            300,
        );
        let ha1 = |algorithm: DigestAlgorithm| algorithm.hash(b"agent1:dialer:secret");
        let stored = Secret::Ha1 {
            md5: ha1(DigestAlgorithm::Md5),
            sha256: ha1(DigestAlgorithm::Sha256),
        };
        let lookup = move |_: &str| Some(stored.clone());
        for (n, value) in server.challenges(10, false).iter().enumerate() {
            let challenge = Challenge::parse(value).unwrap();
            let header = authorization(
                &challenge,
                &Credentials::new("agent1", "secret"),
                "INVITE",
                "sip:dialer",
                b"",
                n as u32 + 1,
                "c",
            );
            assert_eq!(
                server.verify(&header, "INVITE", b"", 11, &lookup),
                Verdict::Authenticated("agent1".into())
            );
        }
    }

    #[test]
    fn nonce_count_is_32_bits_and_does_not_wrap_at_255() {
        // rsip's helper keeps nc in a u8; ours counts on past 255 and the server accepts it.
        let mut server = Server::new("dialer", vec![DigestAlgorithm::Md5], 300);
        let lookup = |_: &str| Some(Secret::password("secret"));
        let challenge = Challenge::parse(&server.challenges(10, false)[0]).unwrap();
        for nc in [255, 256, 65_536, u32::MAX] {
            let header = authorization(
                &challenge,
                &Credentials::new("agent1", "secret"),
                "INVITE",
                "sip:dialer",
                b"",
                nc,
                "c",
            );
            assert!(header.contains(&format!("nc={nc:08x}")), "{header}");
            assert_eq!(
                server.verify(&header, "INVITE", b"", 11, &lookup),
                Verdict::Authenticated("agent1".into()),
                "nc {nc}"
            );
        }
    }

    #[test]
    fn sess_algorithms_and_auth_int_answer_challenges() {
        // "SHA-256-sess" with auth-int: H(H(user:realm:pass):nonce:cnonce) and the body in HA2.
        let challenge = Challenge::parse(
            "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256-sess, qop=\"auth-int\"",
        )
        .unwrap();
        assert_eq!(challenge.algorithm, DigestAlgorithm::Sha256Sess);
        assert_eq!(challenge.qop, Some(Qop::AuthInt));
        let header = authorization(
            &challenge,
            &Credentials::new("u", "p"),
            "INVITE",
            "sip:x",
            b"body",
            1,
            "c",
        );
        let h = |text: String| DigestAlgorithm::Sha256.hash(text.as_bytes());
        let ha1 = h(format!("{}:n:c", h("u:r:p".into())));
        let ha2 = h(format!("INVITE:sip:x:{}", h("body".into())));
        let expected = h(format!("{ha1}:n:00000001:c:auth-int:{ha2}"));
        assert!(
            header.contains(&format!("response=\"{expected}\"")),
            "{header}"
        );
        assert!(header.contains("algorithm=SHA-256-sess"), "{header}");
    }

    #[test]
    fn forged_nonces_are_refused() {
        let mut server = Server::new("dialer", vec![DigestAlgorithm::Md5], 300);
        let challenge = Challenge {
            realm: "dialer".into(),
            nonce: "5f5e100.00000000.000000000000000000000000".into(),
            opaque: None,
            algorithm: DigestAlgorithm::Md5,
            qop: Some(Qop::Auth),
            stale: false,
        };
        let header = authorization(
            &challenge,
            &Credentials::new("agent1", "secret"),
            "INVITE",
            "sip:dialer",
            b"",
            1,
            "c",
        );
        let lookup = |_: &str| Some(Secret::password("secret"));
        assert_eq!(
            server.verify(&header, "INVITE", b"", 100_000_000, &lookup),
            Verdict::Refused("forged nonce")
        );
    }
}
