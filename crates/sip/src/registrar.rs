//! The registrar's bindings: which contact each agent phone registered, until when. Sans-IO:
//! times come in from the endpoint core, which also does the digest check before calling here.

use crate::types::Destination;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Registrar policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (shorter ones get 423 Interval Too Brief).
    pub min_expires: Duration,
    /// Longest registration granted (longer requests are shortened).
    pub max_expires: Duration,
    /// Granted when the phone does not say.
    pub default_expires: Duration,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            default_expires: Duration::from_secs(3600),
        }
    }
}

/// One registered contact of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The authenticated username (the agent's SIP account).
    pub user: String,
    /// The contact URI the phone registered.
    pub contact: String,
    /// Where the REGISTER came from (the phone's address as we see it, through any NAT).
    pub source: Destination,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// The registration's Call-ID (refreshes keep it).
    pub call_id: String,
    /// The last CSeq seen for this Call-ID (older ones are out of order, RFC 3261 10.3).
    pub cseq: u32,
}

/// What a REGISTER asked for, one contact at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContactRequest {
    /// `Contact: *` with `Expires: 0`: remove every binding of the user.
    RemoveAll,
    /// Bind (or refresh, or with 0 remove) this contact.
    Bind {
        contact: String,
        expires: Option<u32>,
    },
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegisterRefusal {
    /// 423 with this Min-Expires.
    TooBrief(u32),
    /// 500: the CSeq is not newer than the last for this Call-ID.
    OutOfOrder,
    /// 400: `*` mixed with other contacts or with a non-zero expiry.
    BadWildcard,
}

/// A change the engine hears about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationChange {
    /// A contact was bound or refreshed.
    Registered {
        /// The agent's username.
        user: String,
        /// The contact URI.
        contact: String,
        /// Seconds granted.
        expires: u32,
        /// Where the phone is.
        source: Destination,
    },
    /// A contact was removed by the phone or lapsed.
    Unregistered {
        /// The agent's username.
        user: String,
        /// The contact URI.
        contact: String,
        /// True if it lapsed rather than being removed.
        expired: bool,
    },
}

/// The bindings of every agent.
#[derive(Debug, Default)]
pub(crate) struct Registrar {
    pub config: RegistrarConfig,
    bindings: HashMap<String, Vec<Binding>>,
}

impl Registrar {
    pub(crate) fn new(config: RegistrarConfig) -> Self {
        Registrar {
            config,
            bindings: HashMap::new(),
        }
    }

    /// Applies a REGISTER from `user`. Returns the user's bindings after it and the changes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &mut self,
        now: Instant,
        user: &str,
        requests: Vec<ContactRequest>,
        header_expires: Option<u32>,
        call_id: &str,
        cseq: u32,
        source: Destination,
    ) -> Result<(Vec<Binding>, Vec<RegistrationChange>), RegisterRefusal> {
        let mut changes = Vec::new();
        let existing = self.bindings.entry(user.to_owned()).or_default();
        if existing
            .iter()
            .any(|binding| binding.call_id == call_id && binding.cseq >= cseq)
        {
            return Err(RegisterRefusal::OutOfOrder);
        }
        if requests.contains(&ContactRequest::RemoveAll) {
            if requests.len() != 1 || header_expires != Some(0) {
                return Err(RegisterRefusal::BadWildcard);
            }
            for binding in existing.drain(..) {
                changes.push(RegistrationChange::Unregistered {
                    user: binding.user,
                    contact: binding.contact,
                    expired: false,
                });
            }
            return Ok((Vec::new(), changes));
        }
        let min = self.config.min_expires.as_secs() as u32;
        let max = self.config.max_expires.as_secs() as u32;
        let default = self.config.default_expires.as_secs() as u32;
        // Check every contact before changing anything.
        for request in &requests {
            if let ContactRequest::Bind { expires, .. } = request {
                let asked = expires.or(header_expires).unwrap_or(default);
                if asked != 0 && asked < min {
                    return Err(RegisterRefusal::TooBrief(min));
                }
            }
        }
        for request in requests {
            let ContactRequest::Bind { contact, expires } = request else {
                continue;
            };
            let asked = expires.or(header_expires).unwrap_or(default);
            let position = existing
                .iter()
                .position(|binding| binding.contact == contact);
            if asked == 0 {
                if let Some(position) = position {
                    let binding = existing.remove(position);
                    changes.push(RegistrationChange::Unregistered {
                        user: binding.user,
                        contact: binding.contact,
                        expired: false,
                    });
                }
                continue;
            }
            let granted = asked.min(max);
            let binding = Binding {
                user: user.to_owned(),
                contact: contact.clone(),
                source,
                expires_at: now + Duration::from_secs(granted.into()),
                call_id: call_id.to_owned(),
                cseq,
            };
            match position {
                Some(position) => existing[position] = binding,
                None => existing.push(binding),
            }
            changes.push(RegistrationChange::Registered {
                user: user.to_owned(),
                contact,
                expires: granted,
                source,
            });
        }
        let current = existing.clone();
        if existing.is_empty() {
            self.bindings.remove(user);
        }
        Ok((current, changes))
    }

    /// Removes the bindings that lapsed by `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<RegistrationChange> {
        let mut changes = Vec::new();
        self.bindings.retain(|_, bindings| {
            bindings.retain(|binding| {
                let alive = binding.expires_at > now;
                if !alive {
                    changes.push(RegistrationChange::Unregistered {
                        user: binding.user.clone(),
                        contact: binding.contact.clone(),
                        expired: true,
                    });
                }
                alive
            });
            !bindings.is_empty()
        });
        changes
    }

    /// The earliest lapse, for the core's timer.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.bindings
            .values()
            .flat_map(|bindings| bindings.iter().map(|binding| binding.expires_at))
            .min()
    }

    /// The live bindings of a user.
    pub(crate) fn bindings(&self, user: &str) -> Vec<Binding> {
        self.bindings.get(user).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Transport;

    fn source() -> Destination {
        Destination::new(Transport::Udp, "127.0.0.1:5062".parse().unwrap())
    }

    fn bind(contact: &str, expires: Option<u32>) -> ContactRequest {
        ContactRequest::Bind {
            contact: contact.into(),
            expires,
        }
    }

    #[test]
    fn bind_refresh_expire() {
        let start = Instant::now();
        let mut registrar = Registrar::new(RegistrarConfig::default());
        let (bindings, changes) = registrar
            .register(
                start,
                "agent1",
                vec![bind("sip:a@1.2.3.4", None)],
                Some(120),
                "c1",
                1,
                source(),
            )
            .unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].expires_at, start + Duration::from_secs(120));
        assert!(matches!(
            &changes[0],
            RegistrationChange::Registered { expires: 120, .. }
        ));
        assert_eq!(
            registrar.register(
                start,
                "agent1",
                vec![bind("sip:a@1.2.3.4", None)],
                None,
                "c1",
                1,
                source()
            ),
            Err(RegisterRefusal::OutOfOrder)
        );
        assert_eq!(
            registrar.register(
                start,
                "agent1",
                vec![bind("sip:a@1.2.3.4", Some(10))],
                None,
                "c1",
                2,
                source()
            ),
            Err(RegisterRefusal::TooBrief(60))
        );
        registrar
            .register(
                start,
                "agent1",
                vec![bind("sip:a@1.2.3.4", Some(99_999))],
                None,
                "c1",
                3,
                source(),
            )
            .unwrap();
        assert_eq!(
            registrar.next_expiry(),
            Some(start + Duration::from_secs(3600))
        );
        assert!(
            registrar
                .expire(start + Duration::from_secs(3599))
                .is_empty()
        );
        let lapsed = registrar.expire(start + Duration::from_secs(3600));
        assert!(matches!(
            &lapsed[0],
            RegistrationChange::Unregistered { expired: true, .. }
        ));
        assert!(registrar.bindings("agent1").is_empty());
    }

    #[test]
    fn wildcard_removes_everything_only_with_expires_zero() {
        let start = Instant::now();
        let mut registrar = Registrar::new(RegistrarConfig::default());
        registrar
            .register(
                start,
                "a",
                vec![bind("sip:x@h", None), bind("sip:y@h", None)],
                None,
                "c",
                1,
                source(),
            )
            .unwrap();
        assert_eq!(
            registrar.register(
                start,
                "a",
                vec![ContactRequest::RemoveAll],
                None,
                "c",
                2,
                source()
            ),
            Err(RegisterRefusal::BadWildcard)
        );
        let (left, changes) = registrar
            .register(
                start,
                "a",
                vec![ContactRequest::RemoveAll],
                Some(0),
                "c",
                3,
                source(),
            )
            .unwrap();
        assert!(left.is_empty());
        assert_eq!(changes.len(), 2);
    }
}
