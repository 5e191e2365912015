//! The driver of a leg's WebRTC front: a tokio task that feeds the sans-IO
//! [`crate::webrtc::Front`] the STUN and DTLS datagrams the receive path diverts to it, sends
//! what it answers from the leg's socket, installs the DTLS-SRTP keys and the browser's address
//! with [`LegInner::set_remote`], and reports the browser's coming and going.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Leg, LegInner, RemoteMedia};
use crate::g711::Codec;
use crate::sys::lock;
use crate::webrtc::{Front, FrontEvent, WebrtcEvent};

/// How often the driver looks at consent and at the leg's closing, when nothing arrives.
const TICK: Duration = Duration::from_millis(500);

/// A STUN or DTLS datagram for the front.
pub(crate) struct Inbound {
    pub(crate) at: Instant,
    pub(crate) from: SocketAddr,
    pub(crate) datagram: Vec<u8>,
}

/// The receiving end of a WebRTC front's reports; `None` once the front was replaced by a
/// newer one or the leg closed.
#[derive(Debug)]
pub struct WebrtcEvents(mpsc::UnboundedReceiver<WebrtcEvent>);

impl WebrtcEvents {
    /// The next report.
    pub async fn recv(&mut self) -> Option<WebrtcEvent> {
        self.0.recv().await
    }
}

impl Leg {
    /// Puts a WebRTC front on this leg (replacing any earlier one, whose reports then end):
    /// STUN and DTLS on the leg's port go to it, and once DTLS is up, audio flows as `codec`
    /// on payload type `pt` (G.711, relayed as it is) with `dtmf` as telephone-event. A
    /// browser that sends no valid STUN check for `consent_timeout` is reported down.
    pub fn attach_webrtc(
        &self,
        front: Front,
        (pt, codec): (u8, Codec),
        dtmf: Option<u8>,
        consent_timeout: Duration,
    ) -> WebrtcEvents {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        lock(&self.inner.rx).webrtc = Some(inbox_tx);
        let driver = Driver {
            inner: self.inner.clone(),
            front,
            media: Media { pt, codec, dtmf },
            consent_timeout,
            started: Instant::now(),
            events: events_tx,
        };
        tokio::spawn(driver.run(inbox));
        WebrtcEvents(events)
    }
}

struct Media {
    pt: u8,
    codec: Codec,
    dtmf: Option<u8>,
}

struct Driver {
    inner: Arc<LegInner>,
    front: Front,
    media: Media,
    consent_timeout: Duration,
    started: Instant,
    events: mpsc::UnboundedSender<WebrtcEvent>,
}

impl Driver {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Inbound>) {
        let label = self.inner.options.label.clone();
        let mut srtp = None;
        loop {
            let wake = self.front.poll_timeout().map_or(TICK, |at| {
                at.saturating_duration_since(Instant::now()).min(TICK)
            });
            tokio::select! {
                got = inbox.recv() => match got {
                    Some(inbound) => self.front.handle(inbound.at, inbound.from, &inbound.datagram),
                    // A newer front replaced this one.
                    None => return,
                },
                () = tokio::time::sleep(wake) => {}
            }
            let now = Instant::now();
            if self.inner.closed.load(Ordering::Acquire) {
                self.front.close(now);
                self.flush();
                return;
            }
            if self.front.poll_timeout().is_some_and(|at| at <= now) {
                self.front.handle_timeout(now);
            }
            self.flush();
            while let Some(event) = self.front.poll_event() {
                match event {
                    FrontEvent::Connected { remote, srtp: keys } => {
                        srtp = Some(keys);
                        if let Err(err) = self.inner.set_remote(&self.remote(remote, &srtp)) {
                            tracing::warn!(%err, %label, "WebRTC keys refused by the leg");
                            self.down(format!("SRTP keys refused: {err}"));
                            return;
                        }
                        tracing::info!(%label, %remote, "WebRTC leg connected");
                        let _ = self.events.send(WebrtcEvent::Connected { remote });
                    }
                    FrontEvent::Moved { remote } => {
                        // Same keys: the leg keeps its SRTP state and only sends elsewhere.
                        let _ = self.inner.set_remote(&self.remote(remote, &srtp));
                        tracing::info!(%label, %remote, "WebRTC leg moved");
                    }
                    FrontEvent::Closed { reason } => {
                        self.down(reason);
                        return;
                    }
                }
            }
            let last = self.front.last_check().unwrap_or(self.started);
            if now.saturating_duration_since(last) >= self.consent_timeout {
                self.down(format!(
                    "no STUN consent check for {} s",
                    self.consent_timeout.as_secs()
                ));
                return;
            }
        }
    }

    fn remote(&self, at: SocketAddr, srtp: &Option<crate::srtp::SrtpConfig>) -> RemoteMedia {
        let mut remote = RemoteMedia::new(at, self.media.codec).with_rtcp_mux();
        remote.codecs = vec![(self.media.pt, self.media.codec)];
        remote.dtmf = self.media.dtmf;
        remote.srtp = srtp.clone();
        remote
    }

    fn flush(&mut self) {
        while let Some((to, datagram)) = self.front.poll_transmit() {
            if let Err(err) = self.inner.rtp.send_to(&datagram, to) {
                tracing::debug!(%err, %to, "WebRTC front: send failed");
            }
        }
    }

    fn down(&mut self, reason: String) {
        tracing::info!(label = %self.inner.options.label, %reason, "WebRTC leg down");
        let _ = self.events.send(WebrtcEvent::Down { reason });
    }
}
