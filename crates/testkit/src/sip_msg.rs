//! Raw SIP text: reading headers and SDP out of a message, and just enough of a caller to set up
//! one call with a peer over UDP (for tests of something other than SIP; the product's SIP stack
//! lives in `crates/sip`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

/// The value of the first header `name` (lower case) of `msg`, empty when absent.
pub fn header(msg: &str, name: &str) -> String {
    msg.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
        .map(|l| l[name.len() + 1..].trim().to_owned())
        .unwrap_or_default()
}

/// The port of the first `m=audio` line of the SDP in `msg`.
pub fn audio_port(msg: &str) -> Option<u16> {
    msg.lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse().ok())
}

/// One call set up with a peer from a UDP socket of its own: an INVITE offering PCMU until the
/// peer answers 200, then ACK, and BYE or any other request in the dialog.
pub struct Caller {
    socket: UdpSocket,
    peer: SocketAddr,
    to_tag: String,
    call_id: String,
}

impl Caller {
    /// Calls `peer`, offering to receive RTP at `rtp`; returns the call and where the peer
    /// receives RTP.
    pub async fn invite(peer: SocketAddr, rtp: SocketAddr) -> (Caller, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP socket");
        let me = socket.local_addr().expect("the socket's address");
        let call_id = format!("media-sipp-{}", rtp.port());
        let sdp = format!(
            "v=0\r\no=dialer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n",
            rtp.port()
        );
        let invite = format!(
            "INVITE sip:callee@{peer} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-media-1\r\n\
             From: <sip:dialer@{me}>;tag=dialer1\r\nTo: <sip:callee@{peer}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:dialer@{me}>\r\n\
             Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            len = sdp.len(),
        );
        // The peer may still be starting: resend the INVITE until it answers.
        let mut buf = vec![0u8; 4096];
        let response = loop {
            socket
                .send_to(invite.as_bytes(), peer)
                .await
                .expect("send the INVITE");
            if let Ok(Ok((n, _))) =
                timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
            {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if text.starts_with("SIP/2.0 200") {
                    break text;
                }
            }
        };
        let to_tag = header(&response, "to")
            .split(";tag=")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let port = audio_port(&response).expect("the peer's SDP answer has an audio port");
        let caller = Caller {
            socket,
            peer,
            to_tag,
            call_id,
        };
        caller.send("ACK", 1).await;
        (caller, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Sends the request `method` with sequence number `cseq` in the call's dialog.
    pub async fn send(&self, method: &str, cseq: u32) {
        let me = self.socket.local_addr().expect("the socket's address");
        let msg = format!(
            "{method} sip:callee@{peer} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-media-{method}\r\n\
             From: <sip:dialer@{me}>;tag=dialer1\r\nTo: <sip:callee@{peer}>;tag={tag}\r\n\
             Call-ID: {call}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            peer = self.peer,
            tag = self.to_tag,
            call = self.call_id,
        );
        self.socket
            .send_to(msg.as_bytes(), self.peer)
            .await
            .expect("send a request");
    }
}
