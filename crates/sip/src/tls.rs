//! SIP over TLS (RFC 3261 section 26.2, RFC 5630): the certificate settings of both sides, on
//! rustls with the ring provider.
//!
//! A client ([`TlsClient`]) checks the peer's certificate chain against a set of CAs (the
//! system's by default, or a PEM file for a carrier with a private CA) and the name in it against
//! the host of the URI it dials (a domain name, or an IP address in the certificate's IP SANs).
//! There is no setting that accepts any certificate. A server ([`TlsServer`]) presents a
//! certificate chain and key from PEM files and asks nothing of its clients (phones are
//! authenticated by digest, as over UDP and TCP).

use crate::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// rustls on ring: it builds with a C compiler alone (aws-lc-rs wants cmake and more). rustls
/// marks ring's provider deprecated only because it lacks the post-quantum key exchange, which
/// SIP peers (OpenSSL in phones and SBCs) rarely offer yet; TLS 1.3 and 1.2 work in full.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn bad(what: impl Into<String>, why: impl std::fmt::Display) -> Error {
    Error::TlsSettings {
        what: what.into(),
        why: why.to_string(),
    }
}

/// The certificates found in PEM text, none being an error.
fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad(what, format!("unreadable PEM: {err}")))?;
    if certs.is_empty() {
        return Err(bad(what, "no CERTIFICATE block in it"));
    }
    Ok(certs)
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|err| bad(what, err))
}

/// How we check the certificates of TLS peers we connect to (carriers' trunks, registrars).
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    /// Where the CAs came from, for logs and errors.
    roots: Arc<str>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    fn with_roots(roots: rustls::RootCertStore, source: String) -> Result<Self, Error> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| bad(&source, err))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient {
            config: Arc::new(config),
            roots: source.into(),
        })
    }

    /// The operating system's CA store (`/etc/ssl/certs` on Debian): public carriers.
    pub fn system() -> Result<Self, Error> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = match found.errors.first() {
                Some(err) => format!("no usable CA certificate found ({err})"),
                None => "no CA certificate found (is ca-certificates installed?)".to_owned(),
            };
            return Err(bad("the system's CA store", why));
        }
        Self::with_roots(roots, "the system's CA store".to_owned())
    }

    /// The CAs in a PEM file, and only those: a carrier with a private CA.
    pub fn from_ca_file(path: &Path) -> Result<Self, Error> {
        let what = format!("CA file {}", path.display());
        let pem = read(&what, path)?;
        Self::from_ca_pem_named(&what, &pem)
    }

    /// The CAs in PEM text, and only those.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, Error> {
        Self::from_ca_pem_named("CA PEM", pem)
    }

    fn from_ca_pem_named(what: &str, pem: &[u8]) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(what, pem)? {
            roots
                .add(cert)
                .map_err(|err| bad(what, format!("not a usable CA certificate: {err}")))?;
        }
        Self::with_roots(roots, what.to_owned())
    }

    /// Where the CAs came from (`the system's CA store`, `CA file /etc/dialer/carrier-ca.pem`).
    pub fn roots(&self) -> &str {
        &self.roots
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }
}

/// The certificate we present to phones connecting to our TLS listeners.
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

impl TlsServer {
    /// A certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), from PEM
    /// files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        let cert_what = format!("certificate file {}", cert.display());
        let key_what = format!("key file {}", key.display());
        let cert_pem = read(&cert_what, cert)?;
        let key_pem = read(&key_what, key)?;
        Self::build(&cert_what, &cert_pem, &key_what, &key_pem)
    }

    /// A certificate chain and key from PEM text.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, Error> {
        Self::build("certificate PEM", cert, "key PEM", key)
    }

    fn build(cert_what: &str, cert: &[u8], key_what: &str, key: &[u8]) -> Result<Self, Error> {
        let chain = certificates(cert_what, cert)?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|err| bad(key_what, format!("no private key in it ({err})")))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| bad(cert_what, err))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| bad(key_what, format!("does not go with the certificate: {err}")))?;
        Ok(TlsServer {
            config: Arc::new(config),
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// The name a peer's certificate must hold: the URI's host, a domain name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|err| Error::InvalidUri {
        uri: host.to_owned(),
        why: format!("not a host name a certificate can name: {err}"),
    })
}

/// Where one TLS peer's certificate is checked against: its name and the CAs.
#[derive(Debug, Clone)]
pub(crate) struct TlsPeer {
    pub(crate) name: ServerName<'static>,
    pub(crate) client: Option<TlsClient>,
}

/// A TLS failure in words for a log line and a 503's reason: rustls's certificate errors
/// (`invalid peer certificate: UnknownIssuer`) are already plain; the rest gets its kind.
pub(crate) fn describe(err: &std::io::Error) -> String {
    match err.get_ref() {
        Some(inner) => inner.to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_a_clear_error() {
        let err = TlsClient::from_ca_pem(b"not a certificate").unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE block"), "{err}");
        let err = TlsClient::from_ca_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = TlsServer::from_pem(b"", b"").unwrap_err();
        assert!(err.to_string().contains("certificate PEM"), "{err}");
    }

    #[test]
    fn server_names_are_hosts_or_addresses() {
        assert!(matches!(
            server_name("carrier.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("192.0.2.7"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad host").is_err());
    }
}
