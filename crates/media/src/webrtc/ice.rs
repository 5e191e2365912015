//! ICE-lite (RFC 8445 section 2.5) for the WebRTC leg: we never send checks, we answer the
//! browser's STUN binding requests with our short-term credentials (MESSAGE-INTEGRITY and
//! FINGERPRINT), take the pair it nominates (USE-CANDIDATE), and note when it last asked, which
//! is its consent (RFC 7675) to keep receiving.

use std::net::SocketAddr;
use std::time::Instant;

use rtc_stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use super::sdp::LocalIce;

/// Why a STUN packet got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunRefusal {
    /// Not a STUN message, or malformed.
    Malformed,
    /// A STUN message other than a binding request (a response, an indication).
    NotARequest,
    /// USERNAME is not ours:theirs.
    WrongUser,
    /// MESSAGE-INTEGRITY or FINGERPRINT does not check out.
    BadIntegrity,
}

/// The ICE-lite side of one browser session.
#[derive(Debug)]
pub struct IceLite {
    local: LocalIce,
    remote_ufrag: String,
    nominated: Option<SocketAddr>,
    last_check: Option<Instant>,
}

impl IceLite {
    /// Answers checks for `local` credentials from the browser with `remote_ufrag`.
    pub fn new(local: LocalIce, remote_ufrag: String) -> IceLite {
        IceLite {
            local,
            remote_ufrag,
            nominated: None,
            last_check: None,
        }
    }

    /// The browser's address it nominated (USE-CANDIDATE), where media goes.
    pub fn nominated(&self) -> Option<SocketAddr> {
        self.nominated
    }

    /// When the browser last sent a valid check (its consent to receive).
    pub fn last_check(&self) -> Option<Instant> {
        self.last_check
    }

    /// The binding response to send back to `from` for a request, or why none is sent.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<Vec<u8>, StunRefusal> {
        let mut request = Message::new();
        request
            .unmarshal_binary(datagram)
            .map_err(|_| StunRefusal::Malformed)?;
        if request.typ != BINDING_REQUEST {
            return Err(StunRefusal::NotARequest);
        }
        let user = TextAttribute::get_from_as(&request, ATTR_USERNAME)
            .map_err(|_| StunRefusal::WrongUser)?;
        let expected = format!("{}:{}", self.local.ufrag, self.remote_ufrag);
        if user.text != expected {
            return Err(StunRefusal::WrongUser);
        }
        let crypto = crate::srtp::provider().crypto();
        MessageIntegrity::check(&mut request, self.local.pwd.as_bytes(), crypto)
            .map_err(|_| StunRefusal::BadIntegrity)?;
        if request.contains(rtc_stun::attributes::ATTR_FINGERPRINT) {
            FINGERPRINT
                .check(&request)
                .map_err(|_| StunRefusal::BadIntegrity)?;
        }
        self.last_check = Some(now);
        if request.contains(ATTR_USE_CANDIDATE) {
            self.nominated = Some(from);
        }
        let integrity = MessageIntegrity::new_short_term_integrity_with_provider(
            self.local.pwd.clone(),
            crypto,
        );
        let mut response = Message::new();
        let setters: [Box<dyn Setter + '_>; 5] = [
            Box::new(BINDING_SUCCESS),
            Box::new(request.transaction_id),
            Box::new(XorMappedAddress {
                ip: from.ip(),
                port: from.port(),
            }),
            Box::new(integrity),
            Box::new(FINGERPRINT),
        ];
        response
            .build(&setters)
            .map_err(|_| StunRefusal::Malformed)?;
        Ok(response.raw)
    }
}

/// The check a browser sends to `local_ufrag` (with `remote_ufrag` its own, signed with
/// `pwd`, nominating the pair with `nominate`): for tests and benches that play the browser.
pub fn binding_request(
    local_ufrag: &str,
    remote_ufrag: &str,
    pwd: &str,
    nominate: bool,
) -> Vec<u8> {
    let crypto = crate::srtp::provider().crypto();
    let mut m = Message::new();
    let mut setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(rtc_stun::message::TransactionId::new()),
        Box::new(TextAttribute::new(
            ATTR_USERNAME,
            format!("{local_ufrag}:{remote_ufrag}"),
        )),
    ];
    if nominate {
        setters.push(Box::new(UseCandidate));
    }
    setters.push(Box::new(
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), crypto),
    ));
    setters.push(Box::new(FINGERPRINT));
    // Every setter here writes a well-formed attribute: building cannot fail.
    let _ = m.build(&setters);
    m.raw
}

struct UseCandidate;

impl Setter for UseCandidate {
    fn add_to(&self, m: &mut Message) -> rtc_shared::error::Result<()> {
        m.add(ATTR_USE_CANDIDATE, &[]);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rtc_stun::attributes::ATTR_XORMAPPED_ADDRESS;

    /// A browser's check: USERNAME ours:theirs, signed with `pwd`.
    pub(crate) fn check(
        local: &LocalIce,
        remote_ufrag: &str,
        nominate: bool,
        pwd: &str,
    ) -> Vec<u8> {
        binding_request(&local.ufrag, remote_ufrag, pwd, nominate)
    }

    #[test]
    fn a_signed_check_is_answered_and_nomination_is_taken() {
        let local = LocalIce::random();
        let mut ice = IceLite::new(local.clone(), "brow".into());
        let from: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let now = Instant::now();
        let reply = ice
            .handle(now, from, &check(&local, "brow", false, &local.pwd))
            .unwrap();
        assert_eq!(ice.nominated(), None);
        assert_eq!(ice.last_check(), Some(now));
        let mut m = Message::new();
        m.unmarshal_binary(&reply).unwrap();
        assert_eq!(m.typ, BINDING_SUCCESS);
        let crypto = crate::srtp::provider().crypto();
        MessageIntegrity::check(&mut m, local.pwd.as_bytes(), crypto).unwrap();
        FINGERPRINT.check(&m).unwrap();
        let mut mapped = XorMappedAddress::default();
        mapped.get_from_as(&m, ATTR_XORMAPPED_ADDRESS).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
        ice.handle(now, from, &check(&local, "brow", true, &local.pwd))
            .unwrap();
        assert_eq!(ice.nominated(), Some(from));
    }

    #[test]
    fn strangers_and_garbage_get_no_answer() {
        let local = LocalIce::random();
        let mut ice = IceLite::new(local.clone(), "brow".into());
        let from: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let now = Instant::now();
        assert_eq!(
            ice.handle(
                now,
                from,
                &check(&local, "brow", true, "not-the-password-at-all")
            ),
            Err(StunRefusal::BadIntegrity)
        );
        assert_eq!(
            ice.handle(now, from, &check(&local, "else", true, &local.pwd)),
            Err(StunRefusal::WrongUser)
        );
        for garbage in [&[][..], &[0, 1, 0, 0][..], &[1; 40][..]] {
            assert!(ice.handle(now, from, garbage).is_err());
        }
        assert_eq!(ice.nominated(), None);
        assert_eq!(ice.last_check(), None);
    }
}
