//! The receive loops of the legs' RTP sockets: a few threads (one per core by default), each
//! waiting for its share of the legs, on io_uring ([`crate::uring`]) where the kernel allows it
//! and otherwise on one level-triggered epoll.
//!
//! A tokio task per leg paid, for every packet, a task wake-up, the `recvfrom` that reads it and
//! a second `recvfrom` that finds the socket empty (edge-triggered readiness has to be drained
//! before it can fire again). Level-triggered epoll instead tells this loop which sockets hold a
//! datagram, so it reads each one once per wait: one system call per packet, plus one
//! `epoll_wait` per batch of ready sockets. Reading one datagram per socket per wait also makes
//! the loop fair: a flooded leg gets one read per round like every other leg, and the kernel
//! drops its excess.
//!
//! Each leg keeps its own socket pair (its port is what the SDP names); only the waiting is
//! shared. Timers, prompts, RTCP and sending stay on the leg's tokio task. The loop waits at
//! most every [`COALESCE`] so that, under load, each wait returns a batch rather than one
//! packet. It also feeds silence to the detectors of legs whose peer went quiet (discontinuous
//! transmission), by a sweep every [`SWEEP`], since their packets no longer pass through the
//! leg's task.
//!
//! The loops belong to a [`Loops`], made from a [`MediaConfig`]; they stop once it is gone
//! (the runtime that made it and every leg registered on it).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};

use crate::config::{MediaConfig, MediaIo, MediaPriority};
use crate::leg::{LegInner, Registration};
use crate::slots::{COALESCE, SWEEP, Table, Token};
use crate::sys::RECEIVE_BUFFER;
use crate::uring::{self, RingCounters};

/// Ready sockets taken per `epoll_wait`: enough to amortise the call, few enough that the last
/// packet of a batch is not held long behind the others.
const BATCH: usize = 256;

/// A runtime's receive loops, and what they count.
pub(crate) struct Loops {
    reactors: Vec<Arc<Reactor>>,
    /// Whether the loops asked for and got a real-time priority.
    realtime: Arc<AtomicBool>,
    counters: Arc<RingCounters>,
    /// Spreads legs over the loops.
    next: AtomicU64,
}

impl Loops {
    /// Starts the loops `config` asks for.
    pub(crate) fn start(config: &MediaConfig) -> std::io::Result<Loops> {
        let realtime = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(RingCounters::default());
        let reactors = (0..config.thread_count())
            .map(|index| Reactor::start(index, config, &realtime, &counters))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Loops {
            reactors,
            realtime,
            counters,
            next: AtomicU64::new(0),
        })
    }

    /// Starts reading `leg`'s RTP socket on one of the loops.
    pub(crate) fn register(
        self: &Arc<Self>,
        leg: &Arc<LegInner>,
    ) -> std::io::Result<Box<dyn Registration>> {
        let index =
            (self.next.fetch_add(1, Ordering::Relaxed) % self.reactors.len() as u64) as usize;
        let reactor = self.reactors[index].clone();
        let token = reactor.register(leg, &leg.rtp)?;
        Ok(Box::new(Registered {
            _loops: self.clone(),
            reactor,
            token,
        }))
    }

    /// What the loops are built on: `"io_uring"` or `"epoll"`.
    pub(crate) fn backend(&self) -> &'static str {
        match self.reactors.first().map(|r| &r.backend) {
            Some(Backend::Uring(_)) => "io_uring",
            _ => "epoll",
        }
    }

    /// Whether the loops run at real-time priority.
    pub(crate) fn realtime(&self) -> bool {
        self.realtime.load(Ordering::Relaxed)
    }

    /// The io_uring loops' counters.
    pub(crate) fn counters(&self) -> &RingCounters {
        &self.counters
    }
}

impl Drop for Loops {
    fn drop(&mut self) {
        for reactor in &self.reactors {
            reactor.stop();
        }
    }
}

/// A leg's place in a loop; it keeps the loops running while the leg lives.
struct Registered {
    _loops: Arc<Loops>,
    reactor: Arc<Reactor>,
    token: Token,
}

impl Registration for Registered {
    fn deregister(&self, socket: BorrowedFd<'_>) {
        self.reactor.deregister(self.token, socket);
    }

    fn promote(&self) {
        if let Backend::Uring(handle) = &self.reactor.backend {
            handle.promote(self.token);
        }
    }

    fn forget(&self) {
        self.reactor.forget(self.token);
    }
}

/// One receive loop.
pub(crate) struct Reactor {
    backend: Backend,
    table: Arc<Table>,
    stop: AtomicBool,
}

/// How a loop learns which sockets hold datagrams.
enum Backend {
    /// A level-triggered epoll set, read by `recvfrom` per datagram.
    Epoll(OwnedFd),
    /// An io_uring loop, reached through its command queue.
    Uring(Arc<uring::Handle>),
}

/// Gives the calling receive loop a real-time priority if `priority` asks for it, and notes in
/// `realtime` that it has it.
fn apply_priority(index: usize, priority: MediaPriority, realtime: &AtomicBool) {
    if priority != MediaPriority::Realtime {
        return;
    }
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: a plain system call on the calling thread with a valid parameter block.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        realtime.store(true, Ordering::Relaxed);
        tracing::debug!(index, "media receive loop at real-time priority");
    } else if index == 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "media_priority = realtime, but the media receive loops cannot have it (they need CAP_SYS_NICE or an RLIMIT_RTPRIO of 10); running at normal priority"
        );
    }
}

impl Reactor {
    fn start(
        index: usize,
        config: &MediaConfig,
        realtime: &Arc<AtomicBool>,
        counters: &Arc<RingCounters>,
    ) -> std::io::Result<Arc<Reactor>> {
        if config.io != MediaIo::Epoll {
            match Self::start_uring(index, config.priority, realtime, counters) {
                Ok(reactor) => {
                    tracing::debug!(index, "media receive loop on io_uring");
                    return Ok(reactor);
                }
                Err(e) if config.io == MediaIo::Uring => {
                    return Err(std::io::Error::other(format!(
                        "media_io = io_uring, but io_uring cannot receive here: {e}"
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
            table: Arc::default(),
            stop: AtomicBool::new(false),
        });
        let looping = reactor.clone();
        let (priority, realtime) = (config.priority, realtime.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("media-rx-{index}"))
            .spawn(move || {
                apply_priority(index, priority, &realtime);
                let _ = ready_tx.send(());
                looping.run()
            })?;
        // Started means running at the priority it will have.
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the epoll loop's thread died"))?;
        Ok(reactor)
    }

    /// Starts an io_uring loop; the ring is made on the loop's thread (a single-issuer ring
    /// with deferred task work is the creating thread's alone), which says whether it works.
    fn start_uring(
        index: usize,
        priority: MediaPriority,
        realtime: &Arc<AtomicBool>,
        counters: &Arc<RingCounters>,
    ) -> std::io::Result<Arc<Reactor>> {
        let handle = Arc::new(uring::Handle::new()?);
        let table = Arc::new(Table::default());
        let reactor = Arc::new(Reactor {
            backend: Backend::Uring(handle.clone()),
            table: table.clone(),
            stop: AtomicBool::new(false),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (realtime, counters) = (realtime.clone(), counters.clone());
        std::thread::Builder::new()
            .name(format!("media-rx-{index}"))
            .spawn(move || match uring::Loop::new(&handle, counters) {
                Ok(ring) => {
                    apply_priority(index, priority, &realtime);
                    let _ = ready_tx.send(Ok(()));
                    ring.run(&table, &handle);
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
    fn register(&self, leg: &Arc<LegInner>, socket: impl AsFd) -> std::io::Result<Token> {
        self.table.insert(leg, |token| match &self.backend {
            Backend::Epoll(epoll) => epoll::add(
                epoll,
                socket,
                epoll::EventData::new_u64(token.raw()),
                epoll::EventFlags::IN,
            )
            .map_err(std::io::Error::from),
            Backend::Uring(handle) => handle.arm(token, socket),
        })
    }

    /// Stops reading `socket`. Events already taken for it are ignored.
    fn deregister(&self, token: Token, socket: impl AsFd) {
        self.table.free(token, || match &self.backend {
            // The socket may already be closed (then the kernel has dropped it from the set).
            Backend::Epoll(epoll) => {
                let _ = epoll::delete(epoll, socket);
            }
            Backend::Uring(handle) => handle.cancel(token),
        });
    }

    /// Frees a leg's slot when its socket is closing without `deregister` (the kernel removes a
    /// closed socket from the epoll set by itself).
    fn forget(&self, token: Token) {
        self.table.free(token, || {
            // An io_uring request holds the socket open until it is cancelled.
            if let Backend::Uring(handle) = &self.backend {
                handle.cancel(token);
            }
        });
    }

    /// Asks the loop to end (within a wait's timeout).
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Backend::Uring(handle) = &self.backend {
            handle.stop();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
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
        while !self.stopped() {
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
                let slots = self.table.lock();
                ready.extend(
                    events
                        .iter()
                        .filter_map(|event| slots.leg_at(Token::from_raw(event.data.u64()))),
                );
            }
            for leg in &ready {
                leg.receive_one(now, &mut buffer);
            }
            // Dropped outside the slots lock: the last handle of a leg may be one of these.
            ready.clear();
            if now >= next_sweep {
                next_sweep = now + SWEEP;
                self.table.sweep(now, &mut swept);
            }
            if !full {
                let rest = COALESCE.saturating_sub(now.elapsed());
                if !rest.is_zero() {
                    std::thread::sleep(rest);
                }
            }
        }
    }
}
