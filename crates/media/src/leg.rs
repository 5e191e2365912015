//! The tokio driver of an RTP leg: one task per leg runs its timers (prompts, DTMF, comfort
//! silence, RTCP reports, the media timeout) and reads its RTCP socket, through the sans-IO
//! [`RxSession`] and [`TxStream`].
//!
//! RTP is not read here: every leg's RTP socket is waited on by the process's one receive loop
//! ([`crate::reactor`]), which reads one datagram per ready socket and runs [`LegInner::on_rtp`]
//! on its own thread. The task is a hand-written future rather than a `select!` loop: on each
//! wake-up it drains the RTCP socket (up to a budget), runs whatever timer work is due, and
//! sleeps on a single deadline. Bridged audio never crosses a channel: the receiving side
//! rewrites the packet and sends it straight out of the other leg's socket, so the bridge adds
//! one lock and one `sendto`.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::dtmf::DtmfTone;
use crate::error::MediaError;
use crate::g711::Codec;
use crate::playout::{MAX_FRAME, Playout};
use crate::ports::PortAllocator;
use crate::prompt::Prompt;
use crate::reactor::{self, Token};
use crate::record::Tap;
use crate::rtcp::{self, ReceptionStats, SenderInfo};
use crate::rtp::{self, OutHeader};
use crate::session::{Inbound, PayloadKind, RxSession, Source, TxStream};
use crate::stats::{DropCounts, DropReason, LegStats, RemoteReport};

/// Datagrams handled per wake-up before the task yields to the other legs on its thread.
const BUDGET: usize = 64;
/// The largest datagram read; anything longer is not G.711 and is dropped.
pub(crate) const MAX_DATAGRAM: usize = 1500;
/// The receive loop's buffer: one byte more than [`MAX_DATAGRAM`], to see that one was longer.
pub(crate) const RECEIVE_BUFFER: usize = MAX_DATAGRAM + 1;
/// A sending schedule that fell this far behind (a stalled thread) restarts from now instead
/// of bursting the backlog at the peer.
const MAX_LAG: Duration = Duration::from_millis(200);
/// Silence between digits when sending a DTMF string.
const INTER_DIGIT: Duration = Duration::from_millis(80);
/// Length of each digit sent.
const DIGIT_LENGTH: Duration = Duration::from_millis(100);

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

    fn duration(self) -> Duration {
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
        }
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

enum Job {
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
}

/// State shared by a leg's handle, its task and a bridged leg's task.
pub(crate) struct LegInner {
    pub(crate) id: u64,
    /// Read by the receive loop, written from any thread (non-blocking).
    rtp: std::net::UdpSocket,
    /// The leg's place in the receive loop, until it closes.
    registration: Mutex<Option<Token>>,
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
    /// Before this time ([`since_start`]) the sweep has nothing to feed this leg's playout.
    playout_due: AtomicU64,
}

/// Nanoseconds from the first call in the process to `at` (0 for earlier times).
fn since_start(at: std::time::Instant) -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    at.saturating_duration_since(start).as_nanos() as u64
}

impl Drop for LegInner {
    fn drop(&mut self) {
        // A leg whose task never shut it down (its runtime ended first): its socket closes now,
        // which takes it out of the epoll set; free its slot too.
        if let Some(token) = lock(&self.registration).take()
            && let Ok(reactor) = reactor::for_leg(self.id)
        {
            reactor.forget(token);
        }
    }
}

/// Asks the CPU to start loading the cache line of `at` (any address: a prefetch never
/// faults and reads nothing the program sees).
pub(crate) fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: see above; the address need not be valid.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Locks a mutex, ignoring poisoning: a listener that panicked must not take the call down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LegInner {
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Has the receive loop read this leg promptly from now on (it is being bridged).
    pub(crate) fn promote(&self) {
        if let Some(token) = *lock(&self.registration)
            && let Ok(reactor) = reactor::for_leg(self.id)
        {
            reactor.promote(token);
        }
    }

    /// Counts a datagram the kernel refused to send.
    pub(crate) fn count_send_error(&self) {
        lock(&self.tx).send_errors += 1;
    }

    fn emit(&self, event: LegEvent) {
        // The receiver may be gone (nobody listens); events are then dropped.
        let _ = self.events.send(event);
    }

    /// Reads one datagram from the RTP socket, which the receive loop saw readable.
    pub(crate) fn receive_one(&self, now: std::time::Instant, storage: &mut [u8; RECEIVE_BUFFER]) {
        // An error is "would block" (another reader was first) or an ICMP error queued on the
        // socket, which the read consumed; the next datagram is read normally.
        if let Ok((n, from)) = self.rtp.recv_from(storage) {
            self.receive_datagram(now, from, &storage[..n]);
        }
    }

    /// Handles a datagram the receive loop read from the RTP socket.
    pub(crate) fn receive_datagram(
        &self,
        now: std::time::Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) {
        // A closing leg's datagrams are read and dropped, or the loop would see the socket
        // readable again on every round until the leg's task takes it out.
        if !self.closed.load(Ordering::Acquire) {
            self.on_rtp(Instant::from_std(now), from, datagram);
        }
    }

    /// Asks the CPU to start loading the state a datagram's handling reads first (the
    /// receive half and the closed flag), so that the receive loop's misses overlap.
    pub(crate) fn prefetch_rx(&self) {
        let start = (&raw const self.rx).cast::<u8>();
        for off in (0..std::mem::size_of::<Mutex<RxPart>>()).step_by(64) {
            prefetch(start.wrapping_add(off));
        }
        prefetch((&raw const self.closed).cast());
    }

    /// Asks the CPU to start loading the listener's state (the detector, on a call in AMD),
    /// once [`LegInner::prefetch_rx`] has brought the receive half in.
    pub(crate) fn prefetch_listener(&self) {
        let Ok(rx) = self.rx.try_lock() else {
            return;
        };
        if let Some(listener) = rx.listener.as_deref() {
            let start = (listener as *const dyn AudioListener).cast::<u8>();
            for off in (0..std::mem::size_of_val(listener).min(4096)).step_by(64) {
                prefetch(start.wrapping_add(off));
            }
        }
    }

    /// Feeds silence to the detector or recorder if the peer went quiet (called by the
    /// receive loop's sweep).
    pub(crate) fn tick_playout(&self, now: std::time::Instant) {
        // A peer that is talking pushes its timeline on with every packet: the playout's last
        // answer says when it could next have silence to feed, so until then the leg is not
        // locked at all (the sweep visits every leg 50 times a second).
        let now_ns = since_start(now);
        if self.playout_due.load(Ordering::Relaxed) > now_ns {
            return;
        }
        let mut rx_guard = lock(&self.rx);
        let rx = &mut *rx_guard;
        if rx.listener.is_none() && rx.tap.is_none() {
            return;
        }
        let RxPart {
            playout,
            listener,
            tap,
            ..
        } = rx;
        // Packets only move the due time later, so the value kept is never past the real one.
        let due = playout.tick(now, &mut |s, ts| deliver(listener, tap, s, ts));
        self.playout_due
            .store(due.map_or(0, since_start), Ordering::Relaxed);
    }

    /// Handles one datagram from the RTP socket (called by the receive loop).
    fn on_rtp(&self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let inner = self;
        let mut rx_guard = lock(&inner.rx);
        let rx = &mut *rx_guard;
        if datagram.len() > MAX_DATAGRAM {
            rx.session.count_drop(DropReason::TooLarge);
            return;
        }
        let inbound = rx.session.receive(now.into_std(), from, datagram);
        match inbound {
            Inbound::Audio { codec, packet, .. } => {
                if packet.payload.len() > MAX_FRAME {
                    rx.session.count_drop(DropReason::TooLarge);
                    return;
                }
                if let Some(peer) = &rx.peer {
                    peer.relay_in(now, inner.id, &inbound);
                }
                if rx.listener.is_some() || rx.tap.is_some() {
                    let mut pcm = [0i16; MAX_FRAME];
                    let n = codec.decode(packet.payload, &mut pcm);
                    let RxPart {
                        playout,
                        listener,
                        tap,
                        ..
                    } = rx;
                    playout.push(now.into_std(), packet.timestamp, &pcm[..n], &mut |s, ts| {
                        deliver(listener, tap, s, ts)
                    });
                }
            }
            Inbound::Event { digit, .. } => {
                if let Some(peer) = &rx.peer {
                    peer.relay_in(now, inner.id, &inbound);
                }
                if let Some(digit) = digit {
                    rx.dtmf_received += 1;
                    tracing::debug!(leg = inner.id, label = %inner.options.label, %digit, "dtmf");
                    inner.emit(LegEvent::Dtmf { digit });
                }
            }
            Inbound::Rtcp(data) => {
                let data = data.to_vec();
                drop(rx_guard);
                self.handle_rtcp(now, from, &data);
                return;
            }
            Inbound::ComfortNoise | Inbound::Dropped(_) => {}
        }
        if rx.timed_out && matches!(inbound, Inbound::Audio { .. } | Inbound::Event { .. }) {
            rx.timed_out = false;
        }
        let send_to = rx.session.send_to();
        if send_to != rx.latched_reported {
            rx.latched_reported = send_to;
            if let Some(addr) = send_to {
                if rx.session.last_accept().is_some() {
                    inner.emit(LegEvent::Latched { addr });
                }
                if !rx.rtcp_mux && rx.rtcp_latched.is_none() {
                    // Symmetric RTCP follows the RTP source: same IP, next port.
                    rx.rtcp_signalled =
                        Some(SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)));
                } else if rx.rtcp_mux {
                    rx.rtcp_signalled = Some(addr);
                }
            }
            lock(&inner.tx).remote = send_to;
        }
    }

    /// Handles one RTCP datagram (from the RTCP socket, or muxed on the RTP one).
    fn handle_rtcp(&self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let inner = self;
        let our_ssrc = lock(&inner.tx).stream.ssrc();
        let mut rx = lock(&inner.rx);
        let expected_ip = rx.session.send_to().map(|a| a.ip());
        if expected_ip.is_some_and(|ip| ip != from.ip()) || expected_ip.is_none() {
            rx.session.count_drop(DropReason::Stranger);
            return;
        }
        match rtcp::parse(datagram, our_ssrc) {
            Ok(info) => {
                rx.rtcp_received += 1;
                if !rx.rtcp_mux {
                    rx.rtcp_latched = Some(from);
                }
                if let Some((ssrc, ntp)) = info.sender_report
                    && rx.session.ssrc() == Some(ssrc)
                {
                    rx.session
                        .stats_mut()
                        .note_sender_report(ntp, now.into_std());
                }
                if let Some(report) = info.report_about_us {
                    rx.remote_report = Some(RemoteReport {
                        fraction_lost: report.fraction_lost as f32 / 256.0,
                        cumulative_lost: report.total_lost,
                        jitter: Duration::from_micros(report.jitter as u64 * 125),
                        round_trip: rtcp::round_trip(&report, rtcp::ntp_now()),
                    });
                }
                if info.bye {
                    inner.emit(LegEvent::RemoteBye);
                }
            }
            Err(_) => rx.session.count_drop(DropReason::BadRtcp),
        }
    }

    /// Sends a packet relayed from leg `from` out of this leg (called on the other leg's task,
    /// holding that leg's receive lock: lock order is always rx before tx).
    fn relay_in(self: &Arc<Self>, now: Instant, from: u64, inbound: &Inbound<'_>) {
        let mut tx = lock(&self.tx);
        if !tx.jobs.is_empty() {
            // A prompt or DTMF is playing to this side: it has the floor.
            return;
        }
        let Some(remote) = tx.remote else {
            return;
        };
        let (packet, samples, pt, source_codec, stream) = match *inbound {
            Inbound::Audio {
                codec,
                packet,
                stream,
            } => (
                packet,
                packet.payload.len() as u32,
                tx.payload_type,
                Some(codec),
                stream,
            ),
            Inbound::Event { packet, stream, .. } => match tx.dtmf_pt {
                Some(pt) => (packet, 0, pt, None, stream),
                None => return,
            },
            _ => return,
        };
        let source = Source::Relay { leg: from, stream };
        let Some(stamp) = tx.stream.relay(
            now.into_std(),
            source,
            packet.sequence,
            packet.timestamp,
            samples,
            packet.payload.len(),
        ) else {
            return;
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let header = OutHeader {
            marker: stamp.marker || packet.marker,
            payload_type: pt,
            sequence: stamp.sequence,
            timestamp: stamp.timestamp,
            ssrc: tx.stream.ssrc(),
        };
        let Some(n) = rtp::write_packet(&header, packet.payload, &mut buf) else {
            return;
        };
        if let Some(codec) = source_codec {
            codec.transcode_in_place(&mut buf[rtp::HEADER_LEN..n], tx.codec);
        }
        // On an io_uring receive loop the send joins the batch's; elsewhere it goes now.
        if !crate::uring::queue_send(self, self.rtp.as_raw_fd(), &buf[..n], remote)
            && send_now(&self.rtp, &buf[..n], remote).is_err()
        {
            tx.send_errors += 1;
        }
        tx.sent_since_report = true;
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
    /// Opens a leg on the next free port pair and starts its task on the current tokio runtime.
    pub fn open(
        ports: &PortAllocator,
        options: LegOptions,
    ) -> Result<(Leg, LegEvents), MediaError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        let (rtp_std, rtcp_std) = ports.bind_pair()?;
        rtp_std.set_nonblocking(true)?;
        rtcp_std.set_nonblocking(true)?;
        let _enter = handle.enter();
        let id = NEXT_LEG_ID.fetch_add(1, Ordering::Relaxed);
        let reactor = reactor::for_leg(id)?;
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
            }),
            waker: AtomicWaker::new(),
            closed: AtomicBool::new(false),
            events: events_tx,
            options,
            next_playback: AtomicU64::new(1),
            playout_due: AtomicU64::new(0),
        });
        let token = reactor.register(&inner, &inner.rtp)?;
        *lock(&inner.registration) = Some(token);
        let driver = Driver {
            next_rtcp: now + jittered(inner.options.rtcp_interval),
            inner: inner.clone(),
            sleep: Box::pin(tokio::time::sleep_until(now + Duration::from_secs(3600))),
        };
        tracing::debug!(leg = inner.id, label = %inner.options.label, %local_rtp, "leg opened");
        handle.spawn(driver);
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
        let mut rx = lock(&self.inner.rx);
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
        let mut tx = lock(&self.inner.tx);
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
        self.inner.wake();
        Ok(())
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
                overflow: kernel_drops(&self.inner.rtp),
                ..*s.drops()
            },
            remote_report: rx.remote_report,
            packets_late: late,
            silence_filled: Duration::from_micros(filled * 125),
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

fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.5 + rand::random::<f64>())
}

struct Driver {
    inner: Arc<LegInner>,
    sleep: Pin<Box<Sleep>>,
    next_rtcp: Instant,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.inner.waker.register(cx.waker());
        loop {
            if this.inner.closed.load(Ordering::Acquire) {
                this.shut_down();
                return Poll::Ready(());
            }
            let now = Instant::now();
            let mut budget = BUDGET;
            let mut storage = [0u8; MAX_DATAGRAM + 1];
            let inner = this.inner.clone();
            drain(&inner.rtcp, cx, &mut storage, &mut budget, |from, data| {
                inner.handle_rtcp(now, from, data)
            });
            let deadline = this.on_timers(now);
            if budget == 0 {
                // More may be waiting: let the other legs on this thread run first.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.sleep.as_mut().reset(deadline);
            if this.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Driver {
    /// Runs due timer work; returns the next deadline.
    fn on_timers(&mut self, now: Instant) -> Instant {
        let mut deadline = self.next_rtcp;
        if now >= self.next_rtcp {
            self.send_report(now);
            self.check_media_timeout(now);
            self.next_rtcp = now + jittered(self.inner.options.rtcp_interval);
            deadline = self.next_rtcp;
        }
        if let Some(due) = self.send_due(now) {
            deadline = deadline.min(due);
        }
        deadline
    }

    /// Sends every packet of prompts, DTMF and comfort silence that is due.
    fn send_due(&mut self, now: Instant) -> Option<Instant> {
        let inner = &*self.inner;
        let mut tx_guard = lock(&inner.tx);
        let tx = &mut *tx_guard;
        loop {
            let due = tx.next_due?;
            if due > now {
                return Some(due);
            }
            let due = if now.saturating_duration_since(due) > MAX_LAG {
                now
            } else {
                due
            };
            let step = tx.ptime.duration();
            if !self.send_one(tx, now) {
                tx.next_due = None;
                return None;
            }
            tx.next_due = Some(due + step);
        }
    }

    /// Sends the next packet of the current job (or comfort silence); false when there is
    /// nothing to send.
    fn send_one(&self, tx: &mut TxPart, now: Instant) -> bool {
        let inner = &*self.inner;
        let Some(remote) = tx.remote else {
            return !tx.jobs.is_empty();
        };
        let samples = tx.ptime.samples();
        let mut payload = [0u8; MAX_FRAME];
        let mut out = [0u8; MAX_DATAGRAM];
        let std_now = now.into_std();
        let (pt, len, marker, ts, next_ts) = match tx.jobs.front_mut() {
            Some(Job::Prompt { prompt, pos, id }) => {
                let rest = &prompt.samples()[*pos..];
                let n = rest.len().min(samples);
                tx.codec.encode(&rest[..n], &mut payload[..n]);
                // The last packet is padded to a whole packet with silence.
                payload[n..samples].fill(tx.codec.silence());
                *pos += n;
                let finished = *pos >= prompt.samples().len();
                let id = *id;
                let (ts, marker) = tx.stream.local_timestamp(std_now);
                if finished {
                    tx.jobs.pop_front();
                    inner.emit(LegEvent::PlaybackFinished {
                        id,
                        completed: true,
                    });
                }
                (
                    tx.payload_type,
                    samples,
                    marker,
                    ts,
                    ts.wrapping_add(samples as u32),
                )
            }
            Some(Job::Digit { tone, ts: start }) => {
                let Some(dtmf_pt) = tx.dtmf_pt else {
                    tx.jobs.pop_front();
                    return true;
                };
                match tone.next_packet() {
                    Some((first, bytes)) => {
                        let ts = match *start {
                            Some(ts) => ts,
                            None => {
                                let (ts, _) = tx.stream.local_timestamp(std_now);
                                *start = Some(ts);
                                ts
                            }
                        };
                        payload[..4].copy_from_slice(&bytes);
                        let duration = u16::from_be_bytes([bytes[2], bytes[3]]) as u32;
                        (
                            dtmf_pt,
                            4,
                            first,
                            ts,
                            ts.wrapping_add(duration.max(samples as u32)),
                        )
                    }
                    None => {
                        tx.jobs.pop_front();
                        return true;
                    }
                }
            }
            Some(Job::Pause { samples: left }) => {
                let n = (*left).min(samples);
                *left -= n;
                if *left == 0 {
                    tx.jobs.pop_front();
                }
                payload[..samples].fill(tx.codec.silence());
                let (ts, marker) = tx.stream.local_timestamp(std_now);
                (
                    tx.payload_type,
                    samples,
                    marker,
                    ts,
                    ts.wrapping_add(samples as u32),
                )
            }
            None => {
                if !tx.comfort_silence || tx.relay_attached {
                    return false;
                }
                payload[..samples].fill(tx.codec.silence());
                let (ts, marker) = tx.stream.local_timestamp(std_now);
                (
                    tx.payload_type,
                    samples,
                    marker,
                    ts,
                    ts.wrapping_add(samples as u32),
                )
            }
        };
        let seq = tx.stream.commit_local(std_now, ts, next_ts, len);
        let header = OutHeader {
            marker,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: tx.stream.ssrc(),
        };
        if let Some(n) = rtp::write_packet(&header, &payload[..len], &mut out)
            && send_now(&inner.rtp, &out[..n], remote).is_err()
        {
            tx.send_errors += 1;
        }
        tx.sent_since_report = true;
        true
    }

    fn send_report(&mut self, now: Instant) {
        let inner = &*self.inner;
        let mut rx = lock(&inner.rx);
        let Some(dest) = rx.rtcp_latched.or(rx.rtcp_signalled) else {
            return;
        };
        let mux = rx.rtcp_mux;
        let remote_ssrc = rx.session.ssrc();
        let mut tx = lock(&inner.tx);
        let (packets, octets) = tx.stream.sent();
        let sender = SenderInfo {
            ssrc: tx.stream.ssrc(),
            rtp_time: tx.stream.rtp_time_at(now.into_std()),
            packets: packets as u32,
            octets: octets as u32,
            sent_recently: tx.sent_since_report,
        };
        tx.sent_since_report = false;
        let remote = remote_ssrc.map(|ssrc| (ssrc, rx.session.stats_mut()));
        let Some(report) =
            rtcp::build_report(&sender, remote, &inner.options.cname, now.into_std())
        else {
            return;
        };
        let socket = if mux {
            inner.rtp.as_fd()
        } else {
            inner.rtcp.as_fd()
        };
        if send_now(&socket, &report, dest).is_ok() {
            tx.rtcp_sent += 1;
        }
    }

    fn check_media_timeout(&mut self, now: Instant) {
        let Some(limit) = self.inner.options.media_timeout else {
            return;
        };
        let mut rx = lock(&self.inner.rx);
        let Some(last) = rx.session.last_accept() else {
            return;
        };
        if !rx.timed_out && now.into_std().saturating_duration_since(last) >= limit {
            rx.timed_out = true;
            tracing::info!(leg = self.inner.id, label = %self.inner.options.label, "media timeout");
            self.inner.emit(LegEvent::MediaTimeout);
        }
    }

    fn shut_down(&mut self) {
        let inner = &*self.inner;
        if let Some(token) = lock(&inner.registration).take()
            && let Ok(reactor) = reactor::for_leg(inner.id)
        {
            reactor.deregister(token, &inner.rtp);
        }
        let (dest, mux, peer) = {
            let mut rx = lock(&inner.rx);
            rx.listener = None;
            rx.tap = None;
            (
                rx.rtcp_latched.or(rx.rtcp_signalled),
                rx.rtcp_mux,
                rx.peer.take(),
            )
        };
        if let Some(peer) = peer {
            let mut peer_rx = lock(&peer.rx);
            if peer_rx.peer.as_ref().is_some_and(|p| p.id == inner.id) {
                peer_rx.peer = None;
            }
            drop(peer_rx);
            lock(&peer.tx).set_relay_attached(false, Instant::now());
            peer.wake();
        }
        let ssrc = {
            let mut tx = lock(&inner.tx);
            for job in tx.jobs.drain(..) {
                if let Job::Prompt { id, .. } = job {
                    inner.emit(LegEvent::PlaybackFinished {
                        id,
                        completed: false,
                    });
                }
            }
            tx.stream.ssrc()
        };
        if let (Some(dest), Some(bye)) = (dest, rtcp::build_bye(ssrc, &inner.options.cname)) {
            let socket = if mux {
                inner.rtp.as_fd()
            } else {
                inner.rtcp.as_fd()
            };
            let _ = send_now(&socket, &bye, dest);
        }
        tracing::debug!(leg = inner.id, label = %inner.options.label, "leg closed");
    }
}

/// Reads datagrams from `socket` into `on` until it would block or the budget is spent.
fn drain(
    socket: &UdpSocket,
    cx: &mut Context<'_>,
    storage: &mut [u8],
    budget: &mut usize,
    mut on: impl FnMut(SocketAddr, &[u8]),
) {
    while *budget > 0 {
        let mut buf = ReadBuf::new(storage);
        match socket.poll_recv_from(cx, &mut buf) {
            Poll::Ready(Ok(from)) => on(from, buf.filled()),
            // ICMP errors (the peer's port closed) surface here; keep reading.
            Poll::Ready(Err(_)) => {}
            Poll::Pending => return,
        }
        *budget -= 1;
    }
}

/// Sends a datagram now, with one syscall on the non-blocking socket. tokio's `try_send_to`
/// would first consult its readiness cache, which reports "not writable" until the reactor has
/// polled a new socket once: the first packet of a fresh leg would be lost.
fn send_now(socket: &impl AsFd, buf: &[u8], to: SocketAddr) -> std::io::Result<usize> {
    socket2::SockRef::from(socket).send_to(buf, &to.into())
}

/// Datagrams the kernel dropped on `socket` because its queue was full (`SO_MEMINFO`'s drop
/// count); 0 where the kernel does not say.
fn kernel_drops(socket: &impl AsFd) -> u64 {
    // Not exported by libc for every target; 55 on every Linux architecture we build for.
    const SO_MEMINFO: libc::c_int = 55;
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which outlives the call, and
    // updates `len` to the number written.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    if rc != 0 || (len as usize) < (drops + 1) * std::mem::size_of::<u32>() {
        return 0;
    }
    u64::from(info[drops])
}

fn deliver(
    listener: &mut Option<Box<dyn AudioListener>>,
    tap: &mut Option<Tap>,
    samples: &[i16],
    ts: u32,
) {
    if let Some(listener) = listener {
        listener.on_audio(samples, ts);
    }
    if let Some(t) = tap
        && !t.send(samples, ts)
    {
        // The recording ended: stop feeding it.
        *tap = None;
    }
}

impl TxPart {
    pub(crate) fn set_relay_attached(&mut self, attached: bool, now: Instant) {
        self.relay_attached = attached;
        if !attached && self.comfort_silence && self.next_due.is_none() {
            self.next_due = Some(now);
        }
    }
}
