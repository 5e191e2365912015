//! The receive loops of the legs' RTP sockets: a few threads (one per core by default), each
//! waiting on one level-triggered epoll for its share of the legs.
//!
//! A tokio task per leg paid, for every packet, a task wake-up, the `recvfrom` that reads it and
//! a second `recvfrom` that finds the socket empty (edge-triggered readiness has to be drained
//! before it can fire again). At 50 packets a second on thousands of legs that is most of the
//! cost of a packet. Level-triggered epoll instead tells this loop which sockets hold a datagram,
//! so it reads each one once per wait: one system call per packet, plus one `epoll_wait` per
//! batch of ready sockets. Reading one datagram per socket per wait also makes the loop fair: a
//! flooded leg gets one read per round like every other leg, and the kernel drops its excess.
//!
//! Each leg keeps its own socket pair (its port is what the SDP names); only the waiting is
//! shared. Timers, prompts, RTCP and sending stay on the leg's tokio task. The loop waits at
//! most every [`COALESCE`] so that, under load, each wait returns a batch rather than one
//! packet. It also feeds silence to the detectors of legs whose peer went quiet (discontinuous
//! transmission), by a sweep every [`SWEEP`], since their packets no longer pass through the
//! leg's task.
//!
//! Where the kernel allows it, the loop is built on io_uring instead ([`crate::uring`]): the
//! same slots, sweep and pacing, but no system call per datagram. `DIALER_MEDIA_IO` chooses
//! (`uring`, `epoll`; by default io_uring if a start-up probe receives through it, else epoll).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};

use crate::leg::{LegInner, RECEIVE_BUFFER, lock};
use crate::uring;

/// Ready sockets taken per `epoll_wait`: enough to amortise the call, few enough that the last
/// packet of a batch is not held long behind the others (256 x ~2 us).
const BATCH: usize = 256;
/// How often legs with a detector or recorder are checked for silence to feed.
pub(crate) const SWEEP: Duration = Duration::from_millis(20);
/// Legs swept between two reaps of the bridged legs.
pub(crate) const SWEEP_PART: usize = 256;
/// The shortest time between two waits. Packets from thousands of phones arrive a few
/// microseconds apart; waking for each would cost a context switch and a timer per packet,
/// more than reading it. Waiting at most this often lets them gather into batches, at the price
/// of holding a packet up to this long (a phone's jitter buffer holds 20-60 ms).
pub(crate) const COALESCE: Duration = Duration::from_micros(200);

/// One of the process's media receive loops (started with the first leg).
pub(crate) struct Reactor {
    backend: Backend,
    pub(crate) slots: Mutex<Slots>,
}

/// How a loop learns which sockets hold datagrams.
enum Backend {
    /// A level-triggered epoll set, read by `recvfrom` per datagram.
    Epoll(OwnedFd),
    /// An io_uring loop, reached through its command queue.
    Uring(Arc<uring::Handle>),
}

/// Which backend the loops use (`DIALER_MEDIA_IO`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Io {
    Auto,
    Uring,
    Epoll,
}

#[derive(Default)]
pub(crate) struct Slots {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Entry {
    generation: u32,
    leg: Option<Weak<LegInner>>,
}

/// A leg's place in the loop: slot index in the low half, the slot's generation in the high
/// half, so an event still in flight for a freed slot is recognised as stale.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Token(u64);

impl Token {
    pub(crate) fn new(slot: u32, generation: u32) -> Token {
        Token(((generation as u64) << 32) | slot as u64)
    }
    pub(crate) fn slot(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub(crate) fn raw(self) -> u64 {
        self.0
    }
    pub(crate) fn from_raw(raw: u64) -> Token {
        Token(raw)
    }
}

static REACTORS: OnceLock<Result<Vec<Arc<Reactor>>, String>> = OnceLock::new();

/// How many receive loops run: `DIALER_MEDIA_THREADS` if set, else one per core (at most 8).
fn threads() -> usize {
    let default = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    match std::env::var("DIALER_MEDIA_THREADS") {
        Err(_) => default,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=256).contains(&n) => n,
            _ => {
                tracing::warn!(
                    value = %v,
                    default,
                    "DIALER_MEDIA_THREADS must be a number of threads from 1 to 256; using the default"
                );
                default
            }
        },
    }
}

/// The backend asked for by `DIALER_MEDIA_IO`.
fn io() -> Io {
    env_choice(
        "DIALER_MEDIA_IO",
        &[
            ("auto", Io::Auto),
            ("uring", Io::Uring),
            ("io_uring", Io::Uring),
            ("epoll", Io::Epoll),
        ],
    )
}

/// The value of the environment variable `name` among `choices`, the first one when it is
/// unset or empty; anything else is warned about (naming the choices) and taken as the first.
pub(crate) fn env_choice<T: Copy>(name: &str, choices: &[(&str, T)]) -> T {
    let default = choices[0];
    let Ok(v) = std::env::var(name) else {
        return default.1;
    };
    let v = v.trim();
    if v.is_empty() {
        return default.1;
    }
    if let Some(&(_, choice)) = choices.iter().find(|(word, _)| *word == v) {
        return choice;
    }
    let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
    tracing::warn!(
        value = %v,
        "{name} must be one of {}; using {}",
        words.join(", "),
        default.0
    );
    default.1
}

/// Whether the receive loops asked for and got a real-time priority (`DIALER_MEDIA_PRIORITY`).
static REALTIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The scheduling priority `DIALER_MEDIA_PRIORITY` asks for the receive loops: `normal` (the
/// default) or `realtime` (`SCHED_FIFO` at 10, below the kernel's own threads at 50).
fn realtime_asked() -> bool {
    env_choice(
        "DIALER_MEDIA_PRIORITY",
        &[("normal", false), ("realtime", true)],
    )
}

/// Gives the calling receive loop a real-time priority if `DIALER_MEDIA_PRIORITY=realtime`.
///
/// A bridged packet is relayed as soon as its loop runs, but at normal priority the loop waits
/// behind whatever else the scheduler runs on its core first (the tokio runtime, other
/// processes): measured at 500 and 1,000 bridged calls, that wait was most of the added
/// latency's 99th percentile. The loops never spin (each round ends in a wait on the kernel),
/// and the kernel keeps 5% of each second for other tasks even if one did.
fn apply_priority(index: usize) {
    if !realtime_asked() {
        return;
    }
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: a plain system call on the calling thread with a valid parameter block.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        REALTIME.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(index, "media receive loop at real-time priority");
    } else if index == 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "DIALER_MEDIA_PRIORITY=realtime, but the media receive loops cannot have it (they need CAP_SYS_NICE or an RLIMIT_RTPRIO of 10); running at normal priority"
        );
    }
}

/// Whether the media receive loops run at real-time priority (`DIALER_MEDIA_PRIORITY=realtime`,
/// and the system allowed it), once the first leg has started them.
pub fn receive_loop_realtime() -> bool {
    REALTIME.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counters of the media receive loops, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveLoopStats {
    /// Receive requests that ended because the io_uring loop's buffers had run out: a burst
    /// larger than the loop takes in one round (their datagrams waited in the sockets).
    pub buffer_exhaustions: u64,
    /// Re-arms of those requests put off to a later round, counted each round they waited.
    pub rearms_deferred: u64,
}

/// The receive loops' counters since the process started (zero on the epoll loop).
pub fn receive_loop_stats() -> ReceiveLoopStats {
    use std::sync::atomic::Ordering::Relaxed;
    ReceiveLoopStats {
        buffer_exhaustions: uring::BUFFER_EXHAUSTIONS.load(Relaxed),
        rearms_deferred: uring::REARMS_DEFERRED.load(Relaxed),
    }
}

/// What the media receive loops are built on (`"io_uring"` or `"epoll"`), once the first leg
/// has started them.
pub fn receive_loop() -> Option<&'static str> {
    match REACTORS.get()? {
        Ok(loops) => loops.first().map(|r| match r.backend {
            Backend::Epoll(_) => "epoll",
            Backend::Uring(_) => "io_uring",
        }),
        Err(_) => None,
    }
}

/// The receive loop that reads leg `leg`'s socket (legs are spread over the loops by id; the
/// loops start with the first leg).
pub(crate) fn for_leg(leg: u64) -> std::io::Result<Arc<Reactor>> {
    let loops = REACTORS.get_or_init(|| {
        let io = io();
        (0..threads())
            .map(|index| Reactor::start(index, io))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| e.to_string())
    });
    match loops {
        Ok(loops) if !loops.is_empty() => Ok(loops[(leg % loops.len() as u64) as usize].clone()),
        Ok(_) => Err(std::io::Error::other("media receive loop: none started")),
        Err(e) => Err(std::io::Error::other(format!("media receive loop: {e}"))),
    }
}

impl Reactor {
    fn start(index: usize, io: Io) -> std::io::Result<Arc<Reactor>> {
        if io != Io::Epoll {
            match Self::start_uring(index) {
                Ok(reactor) => {
                    tracing::debug!(index, "media receive loop on io_uring");
                    return Ok(reactor);
                }
                Err(e) if io == Io::Uring => {
                    return Err(std::io::Error::other(format!(
                        "DIALER_MEDIA_IO=uring, but io_uring cannot receive here: {e}"
                    )));
                }
                Err(e) => {
                    if index == 0 {
                        tracing::info!(error = %e, "io_uring unavailable; media receive loops use epoll");
                    }
                }
            }
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let reactor = Arc::new(Reactor {
            backend: Backend::Epoll(epoll),
            slots: Mutex::new(Slots::default()),
        });
        let looping = reactor.clone();
        std::thread::Builder::new()
            .name(format!("media-rx-{index}"))
            .spawn(move || {
                apply_priority(index);
                looping.run()
            })?;
        Ok(reactor)
    }

    /// Starts an io_uring loop; the ring is made on the loop's thread (a single-issuer ring
    /// with deferred task work is the creating thread's alone), which says whether it works.
    fn start_uring(index: usize) -> std::io::Result<Arc<Reactor>> {
        let handle = Arc::new(uring::Handle::new()?);
        let reactor = Arc::new(Reactor {
            backend: Backend::Uring(handle.clone()),
            slots: Mutex::new(Slots::default()),
        });
        let looping = reactor.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("media-rx-{index}"))
            .spawn(move || match uring::Loop::new(&handle) {
                Ok(ring) => {
                    let _ = ready_tx.send(Ok(()));
                    apply_priority(index);
                    ring.run(looping, &handle);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the io_uring loop's thread died"))??;
        Ok(reactor)
    }

    /// Starts reading `socket` for `leg`.
    pub(crate) fn register(
        &self,
        leg: &Arc<LegInner>,
        socket: impl AsFd,
    ) -> std::io::Result<Token> {
        let mut slots = lock(&self.slots);
        let slot = match slots.free.pop() {
            Some(s) => s,
            None => {
                slots.entries.push(Entry::default());
                (slots.entries.len() - 1) as u32
            }
        };
        let entry = &mut slots.entries[slot as usize];
        entry.leg = Some(Arc::downgrade(leg));
        let token = Token::new(slot, entry.generation);
        let armed = match &self.backend {
            Backend::Epoll(epoll) => epoll::add(
                epoll,
                socket,
                epoll::EventData::new_u64(token.0),
                epoll::EventFlags::IN,
            )
            .map_err(std::io::Error::from),
            Backend::Uring(handle) => handle.arm(token, socket),
        };
        if let Err(e) = armed {
            Self::free(&mut slots, token);
            return Err(e);
        }
        Ok(token)
    }

    /// Stops reading `socket`. Events already taken for it are ignored.
    pub(crate) fn deregister(&self, token: Token, socket: impl AsFd) {
        let mut slots = lock(&self.slots);
        match &self.backend {
            // The socket may already be closed (then the kernel has dropped it from the set).
            Backend::Epoll(epoll) => {
                let _ = epoll::delete(epoll, socket);
            }
            Backend::Uring(handle) => handle.cancel(token),
        }
        Self::free(&mut slots, token);
    }

    /// Has the leg at `token` read as promptly as the loop can (it has been bridged: its packets
    /// are relayed). The epoll loop reads every leg so already.
    pub(crate) fn promote(&self, token: Token) {
        if let Backend::Uring(handle) = &self.backend {
            handle.promote(token);
        }
    }

    /// Frees a leg's slot when its socket is closing without `deregister` (the kernel removes a
    /// closed socket from the epoll set by itself).
    pub(crate) fn forget(&self, token: Token) {
        let mut slots = lock(&self.slots);
        // An io_uring request holds the socket open until it is cancelled.
        if let Backend::Uring(handle) = &self.backend {
            handle.cancel(token);
        }
        Self::free(&mut slots, token);
    }

    /// The live leg at `token`, if the slot still holds the leg it was given to.
    pub(crate) fn leg_at(slots: &Slots, token: Token) -> Option<Arc<LegInner>> {
        match slots.entries.get(token.slot()) {
            Some(Entry {
                generation,
                leg: Some(leg),
            }) if *generation == token.generation() => leg.upgrade(),
            _ => None,
        }
    }

    fn free(slots: &mut Slots, token: Token) {
        let Some(entry) = slots.entries.get_mut(token.slot()) else {
            return;
        };
        if entry.generation != token.generation() || entry.leg.is_none() {
            return;
        }
        entry.leg = None;
        // 31 bits, so a token never has bit 63 set (the io_uring loop's own requests do).
        entry.generation = entry.generation.wrapping_add(1) & 0x7FFF_FFFF;
        slots.free.push(token.slot() as u32);
    }

    fn run(self: Arc<Self>) {
        let Backend::Epoll(epoll) = &self.backend else {
            return;
        };
        let mut events: Vec<epoll::Event> = Vec::with_capacity(BATCH);
        let mut ready: Vec<Arc<LegInner>> = Vec::with_capacity(BATCH);
        let mut buffer = Box::new([0u8; RECEIVE_BUFFER]);
        let mut swept = Vec::new();
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            events.clear();
            let wait = next_sweep.saturating_duration_since(Instant::now());
            let timeout = Timespec {
                tv_sec: wait.as_secs() as _,
                tv_nsec: wait.subsec_nanos() as _,
            };
            match epoll::wait(epoll, spare_capacity(&mut events), Some(&timeout)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "media receive loop: epoll_wait failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            let now = Instant::now();
            let full = events.len() == BATCH;
            {
                let slots = lock(&self.slots);
                ready.extend(
                    events
                        .iter()
                        .filter_map(|event| Self::leg_at(&slots, Token(event.data.u64()))),
                );
            }
            for leg in &ready {
                leg.receive_one(now, &mut buffer);
            }
            // Dropped outside the slots lock: the last handle of a leg may be one of these.
            ready.clear();
            if now >= next_sweep {
                next_sweep = now + SWEEP;
                self.sweep(now, &mut swept);
            }
            if !full {
                let rest = COALESCE.saturating_sub(now.elapsed());
                if !rest.is_zero() {
                    std::thread::sleep(rest);
                }
            }
        }
    }

    /// Feeds silence to the detectors and recorders of legs whose peer went quiet. This loop
    /// reads every ready socket each round, so what a leg has received is complete up to `now`.
    pub(crate) fn sweep(&self, now: Instant, legs: &mut Vec<(Arc<LegInner>, Instant)>) {
        let mut from = 0;
        while let Some(next) = self.sweep_part(legs, from, |_, _| Some(now)) {
            from = next;
        }
    }

    /// Sweeps the legs in [`SWEEP_PART`] slots from `from`; the slot to go on from, if any.
    /// A loop with bridged legs reaps them between parts, so that their packets do not wait
    /// behind a sweep of thousands of legs (a cold cache line or two each).
    ///
    /// `read_until(slot, generation)` says up to when every datagram that reached the leg's
    /// socket has been handed to the leg, or `None` if the loop cannot say (its request waits
    /// to be re-armed): a peer is only taken to be quiet over time the loop has read. Judged
    /// by the clock instead, a leg read every 80 ms was filled with silence while its packets
    /// waited in the socket, and those packets then came too late for its detector.
    pub(crate) fn sweep_part(
        &self,
        legs: &mut Vec<(Arc<LegInner>, Instant)>,
        from: usize,
        read_until: impl Fn(usize, u32) -> Option<Instant>,
    ) -> Option<usize> {
        let next = {
            let slots = lock(&self.slots);
            let end = slots.entries.len().min(from.saturating_add(SWEEP_PART));
            legs.extend(
                slots
                    .entries
                    .get(from..end)
                    .unwrap_or_default()
                    .iter()
                    .zip(from..)
                    .filter_map(|(e, slot)| {
                        let until = read_until(slot, e.generation)?;
                        Some((e.leg.as_ref().and_then(Weak::upgrade)?, until))
                    }),
            );
            (end < slots.entries.len()).then_some(end)
        };
        for (leg, until) in legs.iter() {
            leg.tick_playout(*until);
        }
        legs.clear();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_slot_and_generation() {
        let t = Token::new(7, 3);
        assert_eq!((t.slot(), t.generation()), (7, 3));
        let t = Token::new(u32::MAX, u32::MAX);
        assert_eq!((t.slot(), t.generation()), (u32::MAX as usize, u32::MAX));
    }

    #[test]
    fn a_freed_slot_is_reused_with_a_new_generation() {
        let mut slots = Slots::default();
        slots.entries.push(Entry {
            generation: 0,
            leg: Some(Weak::new()),
        });
        let old = Token::new(0, 0);
        Reactor::free(&mut slots, old);
        assert_eq!(slots.free, vec![0]);
        assert_eq!(slots.entries[0].generation, 1);
        // Freeing again (deregister, then the leg's drop) is harmless.
        Reactor::free(&mut slots, old);
        assert_eq!(slots.free, vec![0]);
    }
}
