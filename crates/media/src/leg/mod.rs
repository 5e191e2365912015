//! An RTP leg: its handle ([`Leg`]) and the state its parts share ([`LegInner`]).
//!
//! The leg's jobs are split by where they run:
//! * [`receive`]: the RTP socket's datagrams, handed over by the receive loop that reads the
//!   socket (on the loop's thread), and the RTCP ones, read by the timer;
//! * [`relay`]: a bridged packet rewritten and sent straight out of the other leg's socket (on
//!   the receiving leg's loop thread), so the bridge adds one lock and one `sendto`;
//! * [`timer`]: the leg's tokio task, which sends prompts, DTMF, comfort silence and RTCP
//!   reports, watches the media timeout and reads the RTCP socket;
//! * [`drops`]: the kernel's count of datagrams dropped on the socket.
//!
//! The receive loop is not named here: a leg is handed its place in a loop as a
//! [`Registration`] when it is opened (by the media runtime, which owns the loops).

mod drops;
mod receive;
mod relay;
mod timer;
mod webrtc;

pub use webrtc::WebrtcEvents;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::dtmf::DtmfTone;
use crate::error::MediaError;
use crate::g711::Codec;
use crate::outbox::SendOwner;
use crate::playout::Playout;
use crate::ports::PortAllocator;
use crate::prompt::Prompt;
use crate::rtcp::ReceptionStats;
use crate::session::{PayloadKind, RxSession, TxStream};
use crate::srtp::{Protector, SrtpConfig, Unprotector};
use crate::stats::{DropCounts, LegStats, RemoteReport};
use crate::sys::lock;
use crate::tap::Tap;

/// Silence between digits when sending a DTMF string.
const INTER_DIGIT: Duration = Duration::from_millis(80);
/// Length of each digit sent.
const DIGIT_LENGTH: Duration = Duration::from_millis(100);

/// Leg ids, unique in the process (a bridge tells its two sources apart by them).
static NEXT_LEG_ID: AtomicU64 = AtomicU64::new(1);

/// Packetisation time: how much audio each packet we send carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ptime(u8);

impl Ptime {
    /// 20 ms, the default of nearly every phone and carrier.
    pub const MS20: Ptime = Ptime(20);
    /// 30 ms, common on some carriers.
    pub const MS30: Ptime = Ptime(30);

    /// A packetisation time of 10-60 ms in steps of 10 ms (SDP `a=ptime`).
    pub fn from_millis(ms: u32) -> Result<Ptime, MediaError> {
        if (10..=60).contains(&ms) && ms.is_multiple_of(10) {
            Ok(Ptime(ms as u8))
        } else {
            Err(MediaError::BadPtime(ms))
        }
    }

    /// Milliseconds.
    pub fn millis(self) -> u32 {
        self.0 as u32
    }

    /// Samples per packet at 8 kHz.
    pub fn samples(self) -> usize {
        self.0 as usize * 8
    }

    pub(crate) fn duration(self) -> Duration {
        Duration::from_millis(self.0 as u64)
    }
}

impl Default for Ptime {
    fn default() -> Self {
        Ptime::MS20
    }
}

/// How a leg behaves, fixed when it is opened.
#[derive(Debug, Clone)]
pub struct LegOptions {
    /// Packetisation of what we send (the peer's `a=ptime` may override it per remote).
    pub ptime: Ptime,
    /// Symmetric RTP: send to where the peer's packets come from (NAT traversal), and accept
    /// the first source that sends valid media. Off: only the signalled IP is accepted.
    pub symmetric: bool,
    /// Send silence whenever nothing else is sent (an agent's leg between calls, so the phone
    /// neither times out nor hears a click when the next call is bridged in).
    pub comfort_silence: bool,
    /// Mean interval between RTCP reports (randomised +-50% as RFC 3550 asks).
    pub rtcp_interval: Duration,
    /// Report [`LegEvent::MediaTimeout`] after this long without RTP from a peer that had sent.
    pub media_timeout: Option<Duration>,
    /// The RTCP CNAME.
    pub cname: String,
    /// A label for logs (call or agent id).
    pub label: String,
}

impl Default for LegOptions {
    fn default() -> Self {
        LegOptions {
            ptime: Ptime::MS20,
            symmetric: true,
            comfort_silence: false,
            rtcp_interval: Duration::from_secs(5),
            media_timeout: Some(Duration::from_secs(30)),
            cname: "dialer".to_owned(),
            label: String::new(),
        }
    }
}

/// The peer's side of the session, from its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where the peer receives RTP (`c=` and `m=audio` port).
    pub rtp: SocketAddr,
    /// Where it receives RTCP (`a=rtcp`), if not the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// RTCP on the RTP port (`a=rtcp-mux`).
    pub rtcp_mux: bool,
    /// Negotiated audio payload types; the first is the one we send.
    pub codecs: Vec<(u8, Codec)>,
    /// The telephone-event payload type, if negotiated.
    pub dtmf: Option<u8>,
    /// The peer's `a=ptime`, if given.
    pub ptime: Option<Ptime>,
    /// SRTP keys (SDES), or `None` for plain RTP.
    pub srtp: Option<SrtpConfig>,
}

impl RemoteMedia {
    /// A peer at `rtp` speaking `codec` on its static payload type.
    pub fn new(rtp: SocketAddr, codec: Codec) -> Self {
        RemoteMedia {
            rtp,
            rtcp: None,
            rtcp_mux: false,
            codecs: vec![(codec.static_payload_type(), codec)],
            dtmf: None,
            ptime: None,
            srtp: None,
        }
    }

    /// With SRTP both ways under these keys.
    pub fn with_srtp(mut self, srtp: SrtpConfig) -> Self {
        self.srtp = Some(srtp);
        self
    }

    /// With telephone-event on payload type `pt`.
    pub fn with_dtmf(mut self, pt: u8) -> Self {
        self.dtmf = Some(pt);
        self
    }

    /// With a packetisation time.
    pub fn with_ptime(mut self, ptime: Ptime) -> Self {
        self.ptime = Some(ptime);
        self
    }

    /// With an explicit RTCP address.
    pub fn with_rtcp(mut self, rtcp: SocketAddr) -> Self {
        self.rtcp = Some(rtcp);
        self
    }

    /// With RTCP multiplexed on the RTP port.
    pub fn with_rtcp_mux(mut self) -> Self {
        self.rtcp_mux = true;
        self
    }

    /// Also accept `codec` on payload type `pt` (answers may list several).
    pub fn also_receive(mut self, pt: u8, codec: Codec) -> Self {
        self.codecs.push((pt, codec));
        self
    }
}

/// Identifies one playback, reported back in [`LegEvent::PlaybackFinished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaybackId(pub u64);

/// Something that happened on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// The peer pressed a DTMF key (RFC 4733), reported once per key press.
    Dtmf {
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// A prompt finished playing (`completed`) or was stopped or replaced.
    PlaybackFinished {
        /// The playback.
        id: PlaybackId,
        /// Played to the end.
        completed: bool,
    },
    /// The peer's media source was latched (first packet) or moved (NAT rebinding).
    Latched {
        /// Where we now send.
        addr: SocketAddr,
    },
    /// No RTP for [`LegOptions::media_timeout`] from a peer that had been sending.
    MediaTimeout,
    /// The peer sent an RTCP BYE.
    RemoteBye,
}

/// The receiving end of a leg's events.
#[derive(Debug)]
pub struct LegEvents(mpsc::UnboundedReceiver<LegEvent>);

impl LegEvents {
    /// The next event; `None` once the leg is closed and all events were read.
    pub async fn recv(&mut self) -> Option<LegEvent> {
        self.0.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<LegEvent> {
        self.0.try_recv().ok()
    }
}

/// Receives a leg's decoded incoming audio: 8 kHz samples in timestamp order, lost packets and
/// silent stretches filled with silence, each chunk with its RTP timestamp.
///
/// It runs on the leg's task, inside the leg's lock: it must be quick and must not call back
/// into the leg (send verdicts out through a channel).
pub trait AudioListener: Send + 'static {
    /// Takes one chunk of audio.
    fn on_audio(&mut self, samples: &[i16], rtp_timestamp: u32);
}

impl<F: FnMut(&[i16], u32) + Send + 'static> AudioListener for F {
    fn on_audio(&mut self, samples: &[i16], rtp_timestamp: u32) {
        self(samples, rtp_timestamp)
    }
}

pub(crate) enum Job {
    Prompt {
        id: PlaybackId,
        prompt: Prompt,
        pos: usize,
    },
    Digit {
        tone: DtmfTone,
        ts: Option<u32>,
    },
    Pause {
        samples: usize,
    },
}

pub(crate) struct RxPart {
    pub(crate) session: RxSession,
    listener: Option<Box<dyn AudioListener>>,
    pub(crate) tap: Option<Tap>,
    playout: Playout,
    pub(crate) peer: Option<Arc<LegInner>>,
    rtcp_signalled: Option<SocketAddr>,
    rtcp_latched: Option<SocketAddr>,
    rtcp_mux: bool,
    remote_report: Option<RemoteReport>,
    rtcp_received: u64,
    dtmf_received: u64,
    timed_out: bool,
    latched_reported: Option<SocketAddr>,
    /// The peer's SRTP, and the keys it was made from (kept while they stay the same, so a
    /// re-INVITE with the same keys keeps the rollover counter and replay window).
    pub(crate) srtp: Option<Unprotector>,
    srtp_config: Option<SrtpConfig>,
    /// The WebRTC front's inbox: STUN and DTLS datagrams go there (a browser's leg only).
    webrtc: Option<mpsc::UnboundedSender<webrtc::Inbound>>,
}

pub(crate) struct TxPart {
    stream: TxStream,
    remote: Option<SocketAddr>,
    codec: Codec,
    payload_type: u8,
    dtmf_pt: Option<u8>,
    ptime: Ptime,
    jobs: VecDeque<Job>,
    next_due: Option<Instant>,
    comfort_silence: bool,
    relay_attached: bool,
    send_errors: u64,
    rtcp_sent: u64,
    sent_since_report: bool,
    /// Our SRTP, when the leg has keys.
    srtp: Option<Protector>,
}

/// A leg's place in the receive loop that reads its RTP socket, until it closes.
pub(crate) trait Registration: Send + Sync {
    /// Stops reading `socket`; datagrams already taken for it are ignored.
    fn deregister(&self, socket: BorrowedFd<'_>);
    /// Has the loop read the socket as promptly as it can (the leg is being bridged).
    fn promote(&self);
    /// Frees the place when the socket is closing without [`Registration::deregister`].
    fn forget(&self);
}

/// State shared by a leg's handle, its task and a bridged leg's task.
pub(crate) struct LegInner {
    pub(crate) id: u64,
    /// Read by the receive loop, written from any thread (non-blocking).
    pub(crate) rtp: std::net::UdpSocket,
    /// The leg's place in the receive loop, until it closes.
    registration: Mutex<Option<Box<dyn Registration>>>,
    rtcp: UdpSocket,
    local_rtp: SocketAddr,
    local_rtcp: SocketAddr,
    pub(crate) rx: Mutex<RxPart>,
    pub(crate) tx: Mutex<TxPart>,
    waker: AtomicWaker,
    closed: AtomicBool,
    events: mpsc::UnboundedSender<LegEvent>,
    options: LegOptions,
    next_playback: AtomicU64,
    /// When the leg was opened: [`LegInner::playout_due`] counts from here.
    opened: std::time::Instant,
    /// Before this time (nanoseconds after `opened`) the sweep has nothing to feed this leg's
    /// playout.
    playout_due: AtomicU64,
}

impl Drop for LegInner {
    fn drop(&mut self) {
        // A leg whose task never shut it down (its runtime ended first): its socket closes now,
        // which takes it out of the epoll set; free its slot too.
        if let Some(registration) = lock(&self.registration).take() {
            registration.forget();
        }
    }
}

impl LegInner {
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Has the receive loop read this leg promptly from now on (it is being bridged).
    pub(crate) fn promote(&self) {
        if let Some(registration) = &*lock(&self.registration) {
            registration.promote();
        }
    }

    fn emit(&self, event: LegEvent) {
        // The receiver may be gone (nobody listens); events are then dropped.
        let _ = self.events.send(event);
    }

    /// See [`Leg::set_remote`].
    pub(crate) fn set_remote(&self, remote: &RemoteMedia) -> Result<(), MediaError> {
        let Some(&(pt, codec)) = remote.codecs.first() else {
            return Err(MediaError::NoCodec);
        };
        let mut kinds: Vec<(u8, PayloadKind)> = remote
            .codecs
            .iter()
            .map(|&(pt, codec)| (pt, PayloadKind::Audio(codec)))
            .collect();
        if let Some(dtmf) = remote.dtmf {
            kinds.push((dtmf, PayloadKind::Event));
        }
        kinds.push((13, PayloadKind::ComfortNoise));
        let keys = match &remote.srtp {
            Some(config) => Some(crate::srtp::pair(config)?),
            None => None,
        };
        let mut rx = lock(&self.rx);
        let rekeyed = rx.srtp_config != remote.srtp;
        let (protector, unprotector) = match keys {
            Some((p, u)) if rekeyed => (Some(p), Some(u)),
            _ => (None, None),
        };
        if rekeyed {
            rx.srtp = unprotector;
            rx.srtp_config = remote.srtp.clone();
            if let Some(config) = &remote.srtp {
                tracing::debug!(leg = self.id, label = %self.options.label, suite = ?config.suite, "SRTP keys set");
            }
        }
        rx.session.configure(remote.rtp, &kinds, remote.rtcp_mux);
        rx.rtcp_mux = remote.rtcp_mux;
        rx.rtcp_signalled = Some(if remote.rtcp_mux {
            remote.rtp
        } else {
            remote.rtcp.unwrap_or_else(|| {
                SocketAddr::new(remote.rtp.ip(), remote.rtp.port().wrapping_add(1))
            })
        });
        rx.rtcp_latched = None;
        rx.playout.reset();
        let send_to = rx.session.send_to();
        let mut tx = lock(&self.tx);
        if rekeyed {
            tx.srtp = protector;
        }
        tx.remote = send_to;
        tx.codec = codec;
        tx.payload_type = pt;
        tx.dtmf_pt = remote.dtmf;
        if let Some(ptime) = remote.ptime {
            tx.ptime = ptime;
        }
        if tx.comfort_silence && tx.next_due.is_none() {
            tx.next_due = Some(Instant::now());
        }
        drop(tx);
        drop(rx);
        self.wake();
        Ok(())
    }

    /// Nanoseconds from the leg's opening to `at` (0 for earlier times).
    fn since_opened(&self, at: std::time::Instant) -> u64 {
        at.saturating_duration_since(self.opened).as_nanos() as u64
    }
}

impl SendOwner for LegInner {
    fn count_send_error(&self) {
        lock(&self.tx).send_errors += 1;
    }
}

/// One RTP leg: a socket pair, the peer's stream in, our stream out.
///
/// Cloning gives another handle to the same leg; the leg closes (RTCP BYE sent, sockets
/// released, any bridge undone) when the last handle is dropped or [`Leg::close`] is called.
#[derive(Clone)]
pub struct Leg {
    inner: Arc<LegInner>,
    _guard: Arc<CloseGuard>,
}

struct CloseGuard(Arc<LegInner>);

impl Drop for CloseGuard {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.wake();
    }
}

impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg")
            .field("id", &self.inner.id)
            .field("local_rtp", &self.inner.local_rtp)
            .field("label", &self.inner.options.label)
            .finish()
    }
}

impl Leg {
    /// Opens a leg on the next free port pair, hands it to a receive loop with `register`,
    /// and starts its task on the current tokio runtime.
    pub(crate) fn open_with(
        ports: &PortAllocator,
        options: LegOptions,
        register: impl FnOnce(&Arc<LegInner>) -> std::io::Result<Box<dyn Registration>>,
    ) -> Result<(Leg, LegEvents), MediaError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        let (rtp_std, rtcp_std) = ports.bind_pair()?;
        rtp_std.set_nonblocking(true)?;
        rtcp_std.set_nonblocking(true)?;
        let _enter = handle.enter();
        let id = NEXT_LEG_ID.fetch_add(1, Ordering::Relaxed);
        let rtp = rtp_std;
        let rtcp = UdpSocket::from_std(rtcp_std)?;
        let local_rtp = rtp.local_addr()?;
        let local_rtcp = rtcp.local_addr()?;
        let now = Instant::now();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(LegInner {
            id,
            rtp,
            registration: Mutex::new(None),
            rtcp,
            local_rtp,
            local_rtcp,
            rx: Mutex::new(RxPart {
                session: RxSession::new(now.into_std(), options.symmetric),
                listener: None,
                tap: None,
                playout: Playout::default(),
                peer: None,
                rtcp_signalled: None,
                rtcp_latched: None,
                rtcp_mux: false,
                remote_report: None,
                rtcp_received: 0,
                dtmf_received: 0,
                timed_out: false,
                latched_reported: None,
                srtp: None,
                srtp_config: None,
                webrtc: None,
            }),
            tx: Mutex::new(TxPart {
                stream: TxStream::new(rand::random(), rand::random(), rand::random()),
                remote: None,
                codec: Codec::Pcmu,
                payload_type: 0,
                dtmf_pt: None,
                ptime: options.ptime,
                jobs: VecDeque::new(),
                next_due: None,
                comfort_silence: options.comfort_silence,
                relay_attached: false,
                send_errors: 0,
                rtcp_sent: 0,
                sent_since_report: false,
                srtp: None,
            }),
            waker: AtomicWaker::new(),
            closed: AtomicBool::new(false),
            events: events_tx,
            options,
            next_playback: AtomicU64::new(1),
            opened: now.into_std(),
            playout_due: AtomicU64::new(0),
        });
        *lock(&inner.registration) = Some(register(&inner)?);
        timer::spawn(&handle, inner.clone(), now);
        tracing::debug!(leg = inner.id, label = %inner.options.label, %local_rtp, "leg opened");
        let guard = Arc::new(CloseGuard(inner.clone()));
        Ok((
            Leg {
                inner,
                _guard: guard,
            },
            LegEvents(events_rx),
        ))
    }

    /// The leg's id (unique in the process).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Our RTP address, for the SDP offer or answer.
    pub fn local_rtp_addr(&self) -> SocketAddr {
        self.inner.local_rtp
    }

    /// Our RTCP address (RTP port + 1).
    pub fn local_rtcp_addr(&self) -> SocketAddr {
        self.inner.local_rtcp
    }

    /// Sets (or changes: early media, then the answer, then a re-INVITE) the peer's address,
    /// codecs and telephone-event type. Packets are accepted only once this is set.
    pub fn set_remote(&self, remote: &RemoteMedia) -> Result<(), MediaError> {
        self.inner.set_remote(remote)
    }

    /// Feeds the peer's decoded audio to `listener` (answering-machine or tone detection, the
    /// lab's capture), replacing any previous one; `None` stops.
    pub fn set_listener(&self, listener: Option<Box<dyn AudioListener>>) {
        let mut rx = lock(&self.inner.rx);
        if rx.tap.is_none() {
            rx.playout.reset();
        }
        rx.listener = listener;
        drop(rx);
        self.inner.wake();
    }

    /// Plays a prompt to the peer, after anything already queued. While it plays, audio
    /// bridged into this leg is held back. The end is reported as
    /// [`LegEvent::PlaybackFinished`].
    pub fn play(&self, prompt: &Prompt) -> PlaybackId {
        let id = PlaybackId(self.inner.next_playback.fetch_add(1, Ordering::Relaxed));
        self.enqueue(Job::Prompt {
            id,
            prompt: prompt.clone(),
            pos: 0,
        });
        id
    }

    /// Stops any prompt or DTMF being sent and empties the queue.
    pub fn stop_playback(&self) {
        let mut tx = lock(&self.inner.tx);
        for job in tx.jobs.drain(..) {
            if let Job::Prompt { id, .. } = job {
                self.inner.emit(LegEvent::PlaybackFinished {
                    id,
                    completed: false,
                });
            }
        }
    }

    /// Whether a prompt or DTMF is being sent.
    pub fn is_playing(&self) -> bool {
        !lock(&self.inner.tx).jobs.is_empty()
    }

    /// Sends DTMF digits as RFC 4733 events (100 ms each, 80 ms apart).
    pub fn send_dtmf(&self, digits: &str) -> Result<(), MediaError> {
        let ptime = {
            let tx = lock(&self.inner.tx);
            if tx.dtmf_pt.is_none() {
                return Err(MediaError::Dtmf(
                    "the peer negotiated no telephone-event".into(),
                ));
            }
            tx.ptime
        };
        let mut jobs = vec![];
        for digit in digits.chars() {
            let tone = DtmfTone::new(
                digit,
                crate::session::samples_in(DIGIT_LENGTH) as u16,
                ptime.samples() as u16,
            )
            .map_err(|e| MediaError::Dtmf(e.to_string()))?;
            jobs.push(Job::Digit { tone, ts: None });
            jobs.push(Job::Pause {
                samples: crate::session::samples_in(INTER_DIGIT) as usize,
            });
        }
        for job in jobs {
            self.enqueue(job);
        }
        Ok(())
    }

    fn enqueue(&self, job: Job) {
        let mut tx = lock(&self.inner.tx);
        tx.jobs.push_back(job);
        if tx.next_due.is_none() {
            tx.next_due = Some(Instant::now());
        }
        drop(tx);
        self.inner.wake();
    }

    /// Turns comfort silence on or off (see [`LegOptions::comfort_silence`]).
    pub fn set_comfort_silence(&self, on: bool) {
        let mut tx = lock(&self.inner.tx);
        tx.comfort_silence = on;
        if on && tx.next_due.is_none() {
            tx.next_due = Some(Instant::now());
        }
        drop(tx);
        self.inner.wake();
    }

    /// A snapshot of the leg's counters.
    pub fn stats(&self) -> LegStats {
        let rx = lock(&self.inner.rx);
        let tx = lock(&self.inner.tx);
        let s = &rx.session;
        let (ssrc_changes, relatches, reordered, _duplicates, bytes) = s.counters();
        let rs: &ReceptionStats = s.stats();
        let expected = rs.expected();
        let (packets_sent, bytes_sent) = tx.stream.sent();
        let (late, filled) = rx.playout.counters();
        LegStats {
            remote: s.send_to(),
            remote_ssrc: s.ssrc(),
            local_ssrc: tx.stream.ssrc(),
            packets_received: rs.received(),
            bytes_received: bytes,
            packets_expected: expected,
            packets_lost: rs.lost(),
            loss_fraction: if expected == 0 {
                0.0
            } else {
                (rs.lost().max(0) as f64 / expected as f64) as f32
            },
            jitter: Duration::from_micros(rs.jitter() as u64 * 125),
            packets_reordered: reordered,
            ssrc_changes,
            relatches,
            dtmf_received: rx.dtmf_received,
            packets_sent,
            bytes_sent,
            send_errors: tx.send_errors,
            rtcp_sent: tx.rtcp_sent,
            rtcp_received: rx.rtcp_received,
            dropped: DropCounts {
                overflow: drops::kernel_drops(&self.inner.rtp),
                ..*s.drops()
            },
            remote_report: rx.remote_report,
            packets_late: late,
            silence_filled: Duration::from_micros(filled * 125),
            srtp: rx.srtp_config.as_ref().map(|c| c.suite),
        }
    }

    /// Closes the leg now (also done when the last handle is dropped).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake();
    }

    pub(crate) fn inner(&self) -> &Arc<LegInner> {
        &self.inner
    }
}
