//! Locating a SIP server (RFC 3263): NAPTR picks the transport, SRV the hosts and ports by
//! priority and weight (RFC 2782), A/AAAA their addresses. The result is an ordered list of
//! destinations: a request that gets no answer (a transaction timeout, a transport error) or a
//! 503 from one goes to the next.
//!
//! The ordering is plain functions ([`order_naptr`], [`order_srv`]) tested without a network;
//! [`Resolver`] asks a DNS server through hickory-resolver (the system's resolv.conf, or one
//! server given by address, as the tests do with dnsmasq).

use crate::{Destination, Error, Transport, Uri};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::{IpAddr, SocketAddr};

/// One NAPTR record as RFC 3263 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Order (lowest first, a MUST).
    pub order: u16,
    /// Preference among equal orders (lowest first).
    pub preference: u16,
    /// Flags (`s`: the replacement is an SRV name).
    pub flags: String,
    /// Service (`SIP+D2U`, `SIP+D2T`, ...).
    pub service: String,
    /// The SRV name to look up next.
    pub replacement: String,
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority (lowest first).
    pub priority: u16,
    /// Weight among equal priorities (higher: chosen first more often).
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Host name.
    pub target: String,
}

/// The transport a NAPTR service names, among those we speak.
fn naptr_transport(service: &str) -> Option<Transport> {
    match service.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

/// The SRV owner name of a transport for `domain` (RFC 3263 4.1).
fn srv_name(transport: Transport, domain: &str) -> String {
    match transport {
        Transport::Udp => format!("_sip._udp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
        Transport::Tls => format!("_sips._tcp.{domain}"),
    }
}

/// The NAPTR records we can follow (flag `s`, a transport we speak), in order and preference.
pub fn order_naptr(mut records: Vec<Naptr>) -> Vec<(Transport, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| naptr_transport(&r.service).map(|t| (t, r.replacement)))
        .collect()
}

/// SRV records in the order to try them: by priority, and within a priority by RFC 2782's
/// weighted draw, where `draw(total)` returns a number in `0..=total` (random in use; fixed in
/// tests). A lone `.` target means "no service here" and yields nothing.
pub fn order_srv(mut records: Vec<Srv>, mut draw: impl FnMut(u32) -> u32) -> Vec<Srv> {
    records.retain(|r| r.target != "." && !r.target.is_empty());
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .position(|r| r.priority != priority)
            .unwrap_or(records.len());
        // RFC 2782: zero-weight records first, so they have a small chance when others exist.
        let mut group: Vec<Srv> = records.drain(..end).collect();
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = draw(total).min(total);
            let mut running = 0;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

/// A DNS resolver for SIP URIs.
#[derive(Clone)]
pub struct Resolver {
    inner: Option<TokioResolver>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("dns", &self.inner.is_some())
            .finish()
    }
}

impl Resolver {
    /// The system's resolver (resolv.conf). Without a usable resolv.conf, names are resolved
    /// by the C library (A/AAAA only, no NAPTR/SRV).
    pub fn system() -> Self {
        let inner = TokioResolver::builder_tokio()
            .and_then(|builder| builder.build())
            .map_err(|err| tracing::warn!(%err, "no DNS configuration: NAPTR/SRV lookups off"))
            .ok();
        Resolver { inner }
    }

    /// A resolver asking only the DNS server at `server` (UDP, then TCP for long answers).
    pub fn with_server(server: SocketAddr) -> Result<Self, Error> {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
            server.ip(),
            true,
            vec![udp, tcp],
        )]);
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .build()
            .map_err(|err| Error::Resolve {
                host: server.to_string(),
                why: format!("cannot use this DNS server: {err}"),
            })?;
        Ok(Resolver { inner: Some(inner) })
    }

    /// Where requests to `uri` go, best first (RFC 3263 4): an IP address or an explicit port
    /// skip NAPTR and SRV; a transport (given, or the URI's parameter) skips NAPTR; else the
    /// NAPTR records choose it, else SRV for UDP then TCP, else UDP to the host's addresses.
    pub async fn targets(
        &self,
        uri: &Uri,
        transport: Option<Transport>,
    ) -> Result<Vec<Destination>, Error> {
        if uri.is_sips() && transport.is_some_and(|t| t != Transport::Tls) {
            return Err(Error::InvalidUri {
                uri: uri.to_string(),
                why: "a sips: URI is reached over TLS only".into(),
            });
        }
        let transport = transport.or(uri.transport());
        let host = uri.host();
        if let Ok(ip) = host.parse::<IpAddr>() {
            let transport = transport.unwrap_or(Transport::Udp);
            let port = uri.port().unwrap_or(transport.default_port());
            return Ok(vec![Destination::new(transport, SocketAddr::new(ip, port))]);
        }
        if let Some(port) = uri.port() {
            let transport = transport.unwrap_or(Transport::Udp);
            return self.addresses(&host, port, transport).await;
        }
        let mut services: Vec<(Transport, String)> = Vec::new();
        match transport {
            Some(transport) => services.push((transport, srv_name(transport, &host))),
            None => {
                services = self.naptr(&host).await;
                if services.is_empty() {
                    services = [Transport::Udp, Transport::Tcp]
                        .into_iter()
                        .map(|t| (t, srv_name(t, &host)))
                        .collect();
                }
            }
        }
        for (transport, name) in &services {
            let records = self.srv(name).await;
            if records.is_empty() {
                continue;
            }
            let mut out = Vec::new();
            for record in order_srv(records, |total| {
                if total == 0 {
                    0
                } else {
                    rand::random::<u32>() % (total + 1)
                }
            }) {
                match self
                    .addresses(&record.target, record.port, *transport)
                    .await
                {
                    Ok(found) => out.extend(found),
                    Err(err) => tracing::info!(%err, srv = %name, "SRV target skipped"),
                }
            }
            if !out.is_empty() {
                tracing::debug!(%uri, srv = %name, targets = out.len(), "resolved by SRV");
                return Ok(out);
            }
        }
        let transport = transport
            .or(services.first().map(|(t, _)| *t))
            .unwrap_or(Transport::Udp);
        self.addresses(&host, transport.default_port(), transport)
            .await
    }

    async fn naptr(&self, host: &str) -> Vec<(Transport, String)> {
        let Some(resolver) = &self.inner else {
            return Vec::new();
        };
        let Ok(lookup) = resolver.lookup(host, RecordType::NAPTR).await else {
            return Vec::new();
        };
        let records = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::NAPTR(naptr) => Some(Naptr {
                    order: naptr.order,
                    preference: naptr.preference,
                    flags: String::from_utf8_lossy(&naptr.flags).into_owned(),
                    service: String::from_utf8_lossy(&naptr.services).into_owned(),
                    replacement: naptr.replacement.to_string(),
                }),
                _ => None,
            })
            .collect();
        order_naptr(records)
    }

    async fn srv(&self, name: &str) -> Vec<Srv> {
        let Some(resolver) = &self.inner else {
            return Vec::new();
        };
        let Ok(lookup) = resolver.lookup(name, RecordType::SRV).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(Srv {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_string(),
                }),
                _ => None,
            })
            .collect()
    }

    /// A host's addresses (IPv4 first: the dialer is IPv4 for now), each a destination.
    async fn addresses(
        &self,
        host: &str,
        port: u16,
        transport: Transport,
    ) -> Result<Vec<Destination>, Error> {
        let host = host.trim_end_matches('.');
        let mut ips: Vec<IpAddr> = match &self.inner {
            Some(resolver) => match resolver.lookup_ip(host).await {
                Ok(found) => found.iter().collect(),
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        if ips.is_empty() {
            // The C library knows /etc/hosts and whatever else nsswitch says.
            ips = tokio::net::lookup_host((host, port))
                .await
                .map_err(|err| Error::Resolve {
                    host: host.to_owned(),
                    why: err.to_string(),
                })?
                .map(|addr| addr.ip())
                .collect();
        }
        ips.sort_by_key(|ip| !ip.is_ipv4());
        ips.dedup();
        if ips.is_empty() {
            return Err(Error::Resolve {
                host: host.to_owned(),
                why: "no address".into(),
            });
        }
        Ok(ips
            .into_iter()
            .map(|ip| Destination::new(transport, SocketAddr::new(ip, port)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn naptr_by_order_then_preference_keeping_what_we_speak() {
        let naptr = |order, preference, service: &str, to: &str| Naptr {
            order,
            preference,
            flags: "s".into(),
            service: service.into(),
            replacement: to.into(),
        };
        let ordered = order_naptr(vec![
            naptr(20, 10, "SIP+D2U", "_sip._udp.x."),
            naptr(10, 20, "SIP+D2T", "_sip._tcp.x."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.x."),
            naptr(5, 10, "SIP+D2S", "_sip._sctp.x."),
        ]);
        assert_eq!(
            ordered,
            vec![
                (Transport::Tls, "_sips._tcp.x.".to_owned()),
                (Transport::Tcp, "_sip._tcp.x.".to_owned()),
                (Transport::Udp, "_sip._udp.x.".to_owned())
            ]
        );
    }

    #[test]
    fn srv_by_priority_then_weighted_draw() {
        let records = vec![srv(20, 0, "c"), srv(10, 10, "a"), srv(10, 90, "b")];
        // A draw of 50 of 100 falls in b's share (a: 1-10, b: 11-100).
        let ordered = order_srv(records.clone(), |total| total / 2);
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, vec!["b", "a", "c"]);
        // A draw of 5 falls in a's share.
        let ordered = order_srv(records, |total| if total == 100 { 5 } else { total });
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
    }

    #[test]
    fn srv_dot_target_means_no_service() {
        assert!(order_srv(vec![srv(0, 0, ".")], |_| 0).is_empty());
    }
}
