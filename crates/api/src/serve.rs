//! How the API is served: its limits (list uploads' size and idle time) and HTTPS.
//!
//! HTTPS is rustls on the ring provider, as SIP's TLS: a listener that accepts TCP connections
//! and runs each handshake on a task of its own (a client that stalls its handshake holds up
//! no other), handing finished connections to axum's server, which keeps its graceful
//! shutdown.

use crate::ApiError;
use axum::serve::Listener;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Largest list upload by default: 1 GiB, about 20 million rows of a typical list.
pub const DEFAULT_MAX_UPLOAD: usize = 1024 * 1024 * 1024;
/// How long an upload may send nothing before it is refused (408), by default.
pub const DEFAULT_UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the API is served.
#[derive(Clone)]
pub struct ApiConfig {
    /// Largest list upload in bytes: past it the upload is refused with 413 (rows of chunks
    /// committed before are kept, in an incomplete list).
    pub max_upload: usize,
    /// An upload that sends no byte for this long is refused with 408, keeping the chunks
    /// committed before.
    pub upload_idle_timeout: Duration,
    /// HTTPS: the server's certificate and key ([`tls_config`]); plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Sessions' and logins' settings (the session cookie is `Secure` under HTTPS whatever
    /// they say).
    pub auth: crate::AuthOptions,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_upload: DEFAULT_MAX_UPLOAD,
            upload_idle_timeout: DEFAULT_UPLOAD_IDLE_TIMEOUT,
            tls: None,
            auth: crate::AuthOptions::default(),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("max_upload", &self.max_upload)
            .field("upload_idle_timeout", &self.upload_idle_timeout)
            .field("https", &self.tls.is_some())
            .field("auth", &self.auth)
            .finish()
    }
}

/// The HTTPS settings for a PEM certificate chain (leaf first) and its private key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ApiError> {
    let bad = |what: &str, path: &Path, why: String| {
        ApiError::Tls(format!("HTTPS {what} {}: {why}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|err| bad("certificate", cert, err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad("certificate", cert, err.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "certificate",
            cert,
            "no CERTIFICATE block in the file".into(),
        ));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|err| bad("key", key, err.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| ApiError::Tls(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|err| bad("certificate and key", cert, err.to_string()))?;
    // axum serves HTTP/1.1 here.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// rustls on ring, as SIP's TLS (a C compiler alone builds it). rustls marks ring's provider
/// deprecated only for its lack of a post-quantum key exchange; TLS 1.3 and 1.2 work in full.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS connections whose handshake finished, for axum's server.
pub(crate) struct TlsListener {
    connections: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> TlsListener {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, connections) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, addr) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: as axum's own listener does.
                        tracing::warn!(%err, "accepting an HTTPS connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%addr, %err, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener {
            connections,
            local,
            accepting,
        }
    }
}

/// The client's address of an HTTPS connection, for the per-address login limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accepting task holds the sender until this listener drops it.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
