//! Transports (RFC 3261 section 18): UDP datagrams, and TCP and TLS streams framed by
//! Content-Length.
//!
//! The socket tasks here only move bytes: each received datagram or stream frame goes to the
//! endpoint's driver as a [`NetEvent`], and the driver hands the core's transmits back to the
//! sockets. Framing and its limits are sans-IO ([`Framer`]); a TLS connection is framed exactly
//! as a TCP one once its handshake is done.

use crate::Transport;
use crate::core::SendFailure;
use crate::message::{Limits, ParseError, leading_crlf, scan_head};
use bytes::{Buf, Bytes, BytesMut};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// A connected byte stream: a TCP socket, or a TLS session over one.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

impl std::fmt::Debug for dyn Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

/// A stream of either kind, as the connection tasks take it.
pub(crate) type BoxStream = Box<dyn Stream>;

/// How long a TLS handshake may take, either way, before the connection is dropped: a peer that
/// opens connections and never finishes handshakes must not hold descriptors.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Cuts SIP messages out of a TCP byte stream by their Content-Length (RFC 3261 18.3), within
/// [`Limits`]: a header section that never ends or a Content-Length past the limit is an error,
/// after which the connection must be closed (the stream cannot be resynchronised).
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    limits: Limits,
}

impl Framer {
    /// An empty framer.
    pub fn new(limits: Limits) -> Self {
        Framer {
            buf: BytesMut::with_capacity(4096),
            limits,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// After [`next_frame`](Self::next_frame) failed on a bad Content-Length: the whole header
    /// section, so the request can still be answered (400) before the connection closes.
    pub fn unframeable_head(&self) -> Option<Bytes> {
        let start = leading_crlf(&self.buf);
        let scan = scan_head(&self.buf[start..], &self.limits).ok()??;
        scan.length_error?;
        Some(Bytes::copy_from_slice(
            &self.buf[start..start + scan.head_len],
        ))
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ParseError> {
        // CRLF keepalives (RFC 5626 section 3.5.1) and stray line ends between messages.
        let skip = leading_crlf(&self.buf);
        self.buf.advance(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(scan) = scan_head(&self.buf, &self.limits)? else {
            return Ok(None);
        };
        if let Some(error) = scan.length_error {
            return Err(error);
        }
        let total = scan.head_len + scan.content_length.unwrap_or(0);
        if total > self.limits.max_message {
            return Err(ParseError::TooLarge {
                len: total,
                max: self.limits.max_message,
            });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }
}

/// What the socket tasks tell the driver.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// A UDP datagram.
    Datagram {
        local: SocketAddr,
        remote: SocketAddr,
        data: Bytes,
    },
    /// A complete message from a TCP or TLS connection.
    Frame { conn: u64, data: Bytes },
    /// A TCP or TLS connection broke its framing (it is closing). `head` is the header section when
    /// only the Content-Length was wrong, to answer before the connection goes.
    FrameError {
        conn: u64,
        error: ParseError,
        head: Option<Bytes>,
    },
    /// A connection was accepted on a listener (for TLS, its handshake is done).
    Accepted {
        local: SocketAddr,
        remote: SocketAddr,
        transport: Transport,
        stream: BoxStream,
    },
    /// An outbound connection is up (for TLS, the peer's certificate checked).
    Connected {
        remote: SocketAddr,
        transport: Transport,
        stream: BoxStream,
    },
    /// An outbound connection could not be made, and why (refused, timed out, certificate).
    ConnectFailed {
        remote: SocketAddr,
        transport: Transport,
        why: String,
        kind: SendFailure,
    },
    /// A connection closed.
    Closed { conn: u64 },
}

/// Reads datagrams from `socket` until the driver goes away.
pub(crate) async fn udp_reader(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, remote)) => {
                let data = Bytes::copy_from_slice(&buf[..len]);
                if events
                    .send(NetEvent::Datagram {
                        local,
                        remote,
                        data,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable shows up as an error on the next recv on Linux; it says
            // nothing about which send failed, so it is only logged.
            Err(err) => tracing::debug!(%local, error = %err, "UDP receive error"),
        }
    }
}

/// Accepts TCP connections until the driver goes away; with `tls`, each one's handshake runs in
/// a task of its own, so a slow or silent client holds up nobody else.
pub(crate) async fn tcp_acceptor(
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    events: mpsc::Sender<NetEvent>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                if let Some(acceptor) = &tls {
                    let acceptor = acceptor.clone();
                    let events = events.clone();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                        match handshake {
                            Ok(Ok(stream)) => {
                                let _ = events
                                    .send(NetEvent::Accepted {
                                        local,
                                        remote,
                                        transport: Transport::Tls,
                                        stream: Box::new(stream),
                                    })
                                    .await;
                            }
                            Ok(Err(err)) => tracing::info!(
                                %remote,
                                error = %crate::tls::describe(&err),
                                "TLS handshake with a client failed"
                            ),
                            Err(_) => {
                                tracing::info!(%remote, "TLS handshake with a client timed out")
                            }
                        }
                    });
                    continue;
                }
                if events
                    .send(NetEvent::Accepted {
                        local,
                        remote,
                        transport: Transport::Tcp,
                        stream: Box::new(stream),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(err) => {
                tracing::warn!(%local, error = %err, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Opens an outbound TCP connection, and with `tls` a TLS session on it whose certificate must
/// hold the server name and chain to one of the client's CAs.
pub(crate) async fn connect(
    remote: SocketAddr,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    events: mpsc::Sender<NetEvent>,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let event = match open(remote, tls).await {
        Ok(stream) => NetEvent::Connected {
            remote,
            transport,
            stream,
        },
        Err((why, kind)) => {
            // A refused certificate is a setting to fix, not a passing network fault.
            if kind == SendFailure::TlsRefused {
                tracing::warn!(%remote, error = %why, "TLS connection refused: no request sent");
            } else {
                tracing::info!(%remote, %transport, error = %why, "connect failed");
            }
            NetEvent::ConnectFailed {
                remote,
                transport,
                why,
                kind,
            }
        }
    };
    let _ = events.send(event).await;
}

async fn open(
    remote: SocketAddr,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
) -> Result<BoxStream, (String, SendFailure)> {
    let stream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(remote)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err((format!("connect: {err}"), SendFailure::Transport)),
            Err(_) => return Err(("connect: timed out".to_owned(), SendFailure::Transport)),
        };
    let _ = stream.set_nodelay(true);
    let Some((connector, name)) = tls else {
        return Ok(Box::new(stream));
    };
    let shown = name.to_str().into_owned();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream)).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(err)) => Err((
            format!("TLS with {shown}: {}", crate::tls::describe(&err)),
            SendFailure::TlsRefused,
        )),
        // A peer that never finishes the handshake is unreachable rather than refused.
        Err(_) => Err((
            format!("TLS with {shown}: handshake timed out"),
            SendFailure::Transport,
        )),
    }
}

/// Runs one TCP or TLS connection: frames what it reads, writes what the driver queues.
pub(crate) fn spawn_connection(
    conn: u64,
    stream: BoxStream,
    limits: Limits,
    events: mpsc::Sender<NetEvent>,
) -> (mpsc::UnboundedSender<Bytes>, tokio::task::JoinHandle<()>) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let write_events = events.clone();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let mut written = writer.write_all(&bytes).await;
            // Whatever else is queued goes out in the same flush (one TLS record run, one
            // segment burst), then the flush pushes TLS's buffered records to the socket.
            while written.is_ok()
                && let Ok(more) = rx.try_recv()
            {
                written = writer.write_all(&more).await;
            }
            if let Err(err) = written.and(writer.flush().await) {
                tracing::debug!(conn, error = %err, "stream write failed");
                let _ = write_events.send(NetEvent::Closed { conn }).await;
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    let task = tokio::spawn(async move {
        let mut framer = Framer::new(limits);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let read = reader.read(&mut buf).await;
            let len = match read {
                Ok(0) | Err(_) => break,
                Ok(len) => len,
            };
            framer.push(&buf[..len]);
            loop {
                match framer.next_frame() {
                    Ok(Some(data)) => {
                        if events.send(NetEvent::Frame { conn, data }).await.is_err() {
                            writer_task.abort();
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let head = framer.unframeable_head();
                        let answer = head.is_some();
                        let _ = events
                            .send(NetEvent::FrameError { conn, error, head })
                            .await;
                        // With an answer queued, the writer ends once it is written and the
                        // driver drops the connection's sender on `Closed`.
                        if !answer {
                            writer_task.abort();
                        }
                        let _ = events.send(NetEvent::Closed { conn }).await;
                        return;
                    }
                }
            }
        }
        writer_task.abort();
        let _ = events.send(NetEvent::Closed { conn }).await;
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\nabc";

    #[test]
    fn frames_are_cut_by_content_length_across_reads() {
        let mut framer = Framer::new(Limits::default());
        let stream = format!("\r\n\r\n{OPTIONS}{OPTIONS}");
        let (first, rest) = stream.as_bytes().split_at(30);
        framer.push(first);
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(rest);
        assert_eq!(framer.next_frame().unwrap().unwrap(), OPTIONS.as_bytes());
        assert_eq!(framer.next_frame().unwrap().unwrap(), OPTIONS.as_bytes());
        assert_eq!(framer.next_frame(), Ok(None));
    }

    #[test]
    fn endless_headers_and_absurd_lengths_are_errors() {
        let mut framer = Framer::new(Limits::default());
        framer.push(b"OPTIONS sip:a@b SIP/2.0\r\n");
        for _ in 0..1000 {
            framer.push(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert!(matches!(
            framer.next_frame(),
            Err(ParseError::HeadersTooLarge { .. })
        ));
        let mut framer = Framer::new(Limits::default());
        framer.push(
            OPTIONS
                .replace("Content-Length: 3", "Content-Length: 999999")
                .as_bytes(),
        );
        assert!(framer.next_frame().is_err());
    }
}
