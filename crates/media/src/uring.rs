//! The io_uring receive loop: one multishot `recvmsg` per bridged leg's RTP socket, into a ring
//! of buffers the kernel picks from, so a whole batch of datagrams from thousands of sockets costs
//! one system call; the other legs' sockets read in turn with one `recvmmsg` each.
//!
//! With epoll, every datagram cost its own `recvfrom`, and every batch an `epoll_wait` that
//! polled each ready socket again. Here a bridged leg's request stays armed while it is bridged;
//! the kernel receives each datagram into a buffer from the ring's group and posts a completion.
//! The ring is set up for a single issuer with deferred task work, so that work runs on this
//! loop's thread when it reaps, and not on whichever core the packet arrived. Most of a
//! packet's kernel time is the receive itself, over cold socket state, so the gain is smaller
//! than the system calls saved suggest (docs/media.md has the figures).
//!
//! Most legs' audio only feeds detection, recording and DTMF, which a few tens of milliseconds
//! do not hurt. The loop visits these bulk legs every [`BULK`] (40 ms; longer with thousands of
//! them) and takes what waits in each socket with one `recvmmsg` ([`crate::bulk`]), while the
//! leg's state is in cache; then it feeds silence to those whose peer went quiet. A visit costs
//! one system call a socket, where a multishot request would cost a poll and a task-work item a
//! visit and a completion and a provided buffer per datagram. A bridged leg's packets are
//! relayed to the other side as they come: `Bridge::connect` promotes both legs to the ring,
//! which the loop waits on and reaps every round (at most [`COALESCE`] apart).
//!
//! Datagrams the loop sends while it handles a batch (the bridge's relayed audio) are queued in
//! the thread's [`crate::outbox`] and go out together on the ring, in one more `io_uring_enter`
//! at the end of the batch, instead of a `sendto` each.
//!
//! The ring belongs to its thread. Other threads (a leg opening or closing) queue commands and
//! wake the loop through an eventfd that the ring itself reads. A closing leg's socket stays open
//! (the loop holds a duplicate of it) until its request is cancelled, so a descriptor number
//! reused by a new socket is never read by a stale request.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use crate::bulk::{BATCH, BatchReader};
use crate::leg::LegInner;
use crate::outbox;
use crate::slots::{COALESCE, SWEEP, Table, Token};
use crate::sys::{lock, source};

/// Bytes per receive buffer: the `recvmsg` header (16), the source address (28), the arrival
/// stamp (32), and a payload longer than [`crate::sys::RECEIVE_BUFFER`], so an oversized
/// datagram is seen as such.
const BUFFER_SIZE: usize = 2048;
/// Buffers in the ring. Each round returns its buffers before the next enter, and the kernel
/// only fills them while the loop is in an enter, so this has to hold what one enter brings,
/// several times over (docs/media.md). When it
/// runs dry, the sockets' requests stop and are re-armed a few at a time, and their datagrams
/// wait in the socket queues.
const BUFFERS: u16 = 1024;
/// Buffers counted per re-armed request: a socket with datagrams waiting fills several at once.
const REARM_BUFFERS: usize = 4;
/// The buffer group of the ring's buffers.
const GROUP: u16 = 0;
/// Submission queue entries; the completion queue is larger, as one request posts many.
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 8192;
/// Completions taken per round at most, so that relayed packets are sent (at the round's end)
/// without waiting for a long batch to be handled.
const DRAIN: usize = 128;
/// How many datagrams ahead of the one handled the loop prefetches the leg's listener (the
/// detector); its receive state is prefetched twice as far ahead, to be in cache by then.
const PREFETCH_AHEAD: usize = 2;
/// `IORING_ENTER_GETEVENTS`: run deferred work and reap (not exported by the io-uring crate).
const ENTER_GETEVENTS: u32 = 1;
/// How often legs that are not bridged are read. Their audio only feeds detection, recording
/// and DTMF, which a few tens of milliseconds do not hurt; reading each socket every packet
/// instead costs a wake-up, a poll and cold caches per packet, where a visit every 40 ms takes
/// two packets at once with the leg's state still warm.
const BULK: Duration = Duration::from_millis(40);
/// How often they are read when a loop has [`MANY_BULK`] of them or more: four packets a visit,
/// for less CPU per packet (docs/media.md); a verdict may come up to 40 ms later, so small
/// loads keep [`BULK`].
const BULK_BUSY: Duration = Duration::from_millis(80);
/// Bulk legs on a loop from which they are read every [`BULK_BUSY`].
const MANY_BULK: usize = 2000;
/// How often they are read when a loop has [`CROWDED_BULK`] of them or more: eight packets a
/// visit, and a verdict up to 160 ms after the audio (80 ms later on average than at
/// [`BULK_BUSY`]), where the loop's core is filling up.
const BULK_CROWDED: Duration = Duration::from_millis(160);
/// Bulk legs on a loop from which they are read every [`BULK_CROWDED`].
const CROWDED_BULK: usize = 4000;
/// Slots whose bulk legs are read between two prompt rounds when their sockets are visited in
/// turn: about half a millisecond's work at eight packets a leg.
const VISIT: usize = 32;
/// `recvmmsg` calls per socket and visit at most.
const VISIT_CALLS: usize = 4;
/// User data of a send: this bit and the outbox slot (tokens never have bit 63 set).
const SEND: u64 = 1 << 63;
/// User data of the eventfd read that wakes the loop for commands.
const WAKE: u64 = u64::MAX;
/// User data of cancellations (their completions need nothing done).
const CANCEL: u64 = u64::MAX - 1;
/// User data of the start-up self-test's request.
const PROBE: u64 = u64::MAX - 2;
/// Size of the source address field: a `sockaddr_in6` holds either family.
const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_in6>();
/// `SO_TIMESTAMPNS` (and its control message type), 35 on every Linux architecture we build for
/// (not exported by libc for all targets): the kernel stamps each datagram as it arrives.
const SO_TIMESTAMPNS: libc::c_int = 35;
/// Size of the control field: one `cmsghdr` and a `timespec` (`CMSG_SPACE(16)` on 64 bits).
const CONTROL_LEN: usize = 32;

/// What other threads ask of a loop.
enum Command {
    /// Start receiving on a leg's socket (a duplicate the loop keeps until `Cancel`).
    Arm(Token, OwnedFd),
    /// Stop receiving for a leg, and close the loop's duplicate of its socket.
    Cancel(Token),
    /// Read a leg promptly from now on (it has been bridged).
    Promote(Token),
}

/// How other threads reach an io_uring loop.
pub(crate) struct Handle {
    commands: Mutex<Vec<Command>>,
    wake: OwnedFd,
    /// Set when the loop is to end.
    stop: AtomicBool,
}

impl Handle {
    pub(crate) fn new() -> std::io::Result<Handle> {
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        Ok(Handle {
            commands: Mutex::new(Vec::new()),
            wake,
            stop: AtomicBool::new(false),
        })
    }

    /// Asks the loop to receive on `socket` for the leg at `token`.
    pub(crate) fn arm(&self, token: Token, socket: impl AsFd) -> std::io::Result<()> {
        let socket = socket.as_fd().try_clone_to_owned()?;
        // Arrival times from the kernel: a leg reaped every 40 ms must still see when each
        // packet came (jitter, silence timers), not when the loop got to it.
        let on: libc::c_int = 1;
        // SAFETY: a plain setsockopt with a c_int that outlives the call.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.send(Command::Arm(token, socket));
        Ok(())
    }

    /// Asks the loop to read the leg at `token` promptly from now on.
    pub(crate) fn promote(&self, token: Token) {
        self.send(Command::Promote(token));
    }

    /// Asks the loop to stop receiving for the leg at `token`.
    pub(crate) fn cancel(&self, token: Token) {
        self.send(Command::Cancel(token));
    }

    /// Asks the loop to end.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake();
    }

    fn send(&self, command: Command) {
        lock(&self.commands).push(command);
        self.wake();
    }

    fn wake(&self) {
        // A full counter (never, at 2^64 - 1) or a closed eventfd only delays the command to
        // the loop's next round.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

/// The ring of provided buffers: entries the kernel takes buffers from, and the memory they
/// point into. Never freed: the kernel may write into the buffers until it has torn the ring
/// down, which it finishes after the ring's descriptor is closed, so a stopped loop leaves
/// them behind (2 MiB a loop; runtimes are made once per service).
struct Buffers {
    entries: *mut BufRingEntry,
    data: *mut u8,
    tail: u16,
}

impl Buffers {
    fn new() -> std::io::Result<Buffers> {
        let entries_layout = std::alloc::Layout::from_size_align(
            BUFFERS as usize * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .map_err(std::io::Error::other)?;
        let data_layout = std::alloc::Layout::from_size_align(BUFFERS as usize * BUFFER_SIZE, 4096)
            .map_err(std::io::Error::other)?;
        // SAFETY: both layouts have a non-zero size.
        let (entries, data) = unsafe {
            (
                std::alloc::alloc_zeroed(entries_layout).cast::<BufRingEntry>(),
                std::alloc::alloc_zeroed(data_layout),
            )
        };
        if entries.is_null() || data.is_null() {
            return Err(std::io::Error::other("cannot allocate the receive buffers"));
        }
        let mut buffers = Buffers {
            entries,
            data,
            tail: 0,
        };
        for id in 0..BUFFERS {
            buffers.give(id);
        }
        buffers.publish();
        Ok(buffers)
    }

    /// Puts buffer `id` back in the ring (seen by the kernel after [`Buffers::publish`]).
    fn give(&mut self, id: u16) {
        let index = (self.tail & (BUFFERS - 1)) as usize;
        // SAFETY: `index < BUFFERS`, the ring's length; `id < BUFFERS`, so the buffer lies in
        // `data`.
        unsafe {
            let entry = &mut *self.entries.add(index);
            entry.set_addr(self.data.add(id as usize * BUFFER_SIZE) as u64);
            entry.set_len(BUFFER_SIZE as u32);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail is a u16 inside the first entry, shared with the kernel, which reads
        // it; the release store orders the entries written before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries) as *mut u16;
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `id`, as the kernel filled them.
    fn get(&self, id: u16, len: usize) -> &[u8] {
        let len = len.min(BUFFER_SIZE);
        let id = id.min(BUFFERS - 1) as usize;
        // SAFETY: the buffer lies in `data`; the kernel handed it to us with this completion
        // and does not touch it until it is given back.
        unsafe { std::slice::from_raw_parts(self.data.add(id * BUFFER_SIZE), len) }
    }
}

/// A ring with its provided buffers and the requests to arm on it again.
struct Ring {
    ring: IoUring,
    buffers: Buffers,
    rearm: Vec<Token>,
}

impl Ring {
    fn new() -> std::io::Result<Ring> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)?;
        let buffers = Buffers::new()?;
        // SAFETY: the ring's entries are never freed.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                buffers.entries as u64,
                BUFFERS,
                GROUP,
                0,
            )?;
        }
        Ok(Ring {
            ring,
            buffers,
            rearm: Vec::new(),
        })
    }

    /// Queues an entry, submitting what is queued first if the queue is full.
    fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points to (msghdr, wake buffer, provided buffers,
            // outbox slots) lives until its completion.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::error!(error = %e, "media receive loop: io_uring submit failed");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Waits up to a second for a completion of the start-up probe's request that `accept`
    /// takes (by its flags) and returns it, its buffer still out; every other completion's
    /// buffer goes back to the ring.
    fn await_probe(&mut self, mut accept: impl FnMut(u32) -> bool) -> Option<(i32, u32)> {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let ts = Timespec::from(Duration::from_millis(50));
            let _ = self
                .ring
                .submitter()
                .submit_with_args(1, &SubmitArgs::new().timespec(&ts));
            let mut accepted = None;
            for cqe in self.ring.completion() {
                let (result, flags) = (cqe.result(), cqe.flags());
                if accepted.is_none() && cqe.user_data() == PROBE && accept(flags) {
                    accepted = Some((result, flags));
                } else if let Some(id) = cqueue::buffer_select(flags) {
                    self.buffers.give(id);
                }
            }
            self.buffers.publish();
            if accepted.is_some() {
                return accepted;
            }
        }
        None
    }

    /// Takes completions into `out`, up to `limit`; true if it stopped at the limit. One enter
    /// runs at most 20 sockets' deferred receives (the kernel's `IO_LOCAL_TW_DEFAULT_MAX`, 6.13
    /// on), and a wait that a single completion ended may have run just one, so it enters
    /// again, without waiting, until an enter brings nothing: stopping once an enter brought
    /// fewer than 20 would leave sockets queued behind the limit, their bridged packets waiting
    /// for later rounds.
    fn reap(&mut self, out: &mut Vec<(u64, i32, u32)>, limit: usize, mut enter: bool) -> bool {
        loop {
            // Completions left from the last call are taken before the kernel runs more
            // receives: each enter's datagrams hold buffers until reaped, and entering on top
            // of a backlog would grow it by what one enter brings beyond `limit`, every round,
            // until the buffers ran out.
            if enter && self.ring.completion().is_empty() {
                // SAFETY: no submission and no argument: runs pending work and returns.
                let entered = unsafe {
                    self.ring
                        .submitter()
                        .enter::<libc::sigset_t>(0, 0, ENTER_GETEVENTS, None)
                };
                if let Err(e) = entered
                    && e.raw_os_error() != Some(libc::EINTR)
                {
                    tracing::error!(error = %e, "media receive loop: io_uring_enter failed");
                    return false;
                }
            }
            let before = out.len();
            out.extend(
                self.ring
                    .completion()
                    .take(limit - before)
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            if out.len() >= limit {
                return true;
            }
            if out.len() == before {
                return false;
            }
            enter = true;
        }
    }
}

/// A leg's socket as the loop holds it.
struct Armed {
    generation: u32,
    /// The loop's duplicate of the socket, closed once the request is cancelled.
    fd: OwnedFd,
    /// How the leg is read.
    lane: Lane,
    /// When its request was last armed; `None` while the request waits to be re-armed (its
    /// datagrams wait in the socket) and for bulk legs, which have none.
    since: Option<Instant>,
}

/// How a leg's socket is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    /// A multishot request on the ring, reaped every round (at most [`COALESCE`] apart):
    /// bridged legs, whose packets are relayed to the other side as they come.
    Prompt,
    /// Visited every [`BULK`] or so with `recvmmsg`: legs whose audio only feeds detection,
    /// recording and DTMF.
    Bulk,
}

/// What a round works with, kept between rounds to reuse the allocations.
#[derive(Default)]
struct Scratch {
    completions: Vec<(u64, i32, u32)>,
    batch: Vec<(Arc<LegInner>, u16, usize)>,
    /// The bulk legs of one part of a visit, with their sockets.
    visit: Vec<(Arc<LegInner>, RawFd)>,
    unused: Vec<Arc<LegInner>>,
    sends: Vec<(u32, i32)>,
}

/// What the io_uring loops of a runtime count, for monitoring.
#[derive(Default)]
pub(crate) struct RingCounters {
    /// Receive requests that ended because the buffers had run out (`ENOBUFS`).
    pub(crate) buffer_exhaustions: AtomicU64,
    /// Re-arms of such requests put off to a later round, counted each round they wait.
    pub(crate) rearms_deferred: AtomicU64,
}

/// One receive loop's ring and what it needs to keep its requests armed.
pub(crate) struct Loop {
    ring: Ring,
    /// Read by the kernel on every arm: no name pointer, a name field of [`NAME_LEN`] bytes.
    msghdr: Box<libc::msghdr>,
    /// The armed sockets, by slot.
    armed: Vec<Option<Armed>>,
    /// Duplicates to close once the requests referring to them have been submitted.
    closing: Vec<OwnedFd>,
    /// How many armed legs are bulk legs.
    bulk_legs: usize,
    /// When the last round that left nothing to reap began: every datagram that reached a
    /// socket armed on the ring before then has been handed to its leg.
    drained: Instant,
    wake_buffer: Box<[u8; 8]>,
    reader: BatchReader,
    counters: Arc<RingCounters>,
}

// SAFETY: the raw pointers point into buffers owned by the loop alone; the loop is created on
// the caller's thread and moved once into its own.
unsafe impl Send for Loop {}

impl Loop {
    /// The ring with its buffers, checked by receiving one datagram (the kernel may lack
    /// multishot `recvmsg`, or a sandbox may forbid io_uring).
    pub(crate) fn new(handle: &Handle, counters: Arc<RingCounters>) -> std::io::Result<Loop> {
        let mut this = Loop {
            ring: Ring::new()?,
            msghdr: recv_msghdr(),
            armed: Vec::new(),
            closing: Vec::new(),
            bulk_legs: 0,
            drained: Instant::now(),
            wake_buffer: Box::new([0; 8]),
            reader: BatchReader::new(),
            counters,
        };
        this.probe()?;
        this.read_wake(handle);
        Ok(this)
    }

    /// Receives one datagram on a socket of its own through a multishot request.
    fn probe(&mut self) -> std::io::Result<()> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let entry = recv_entry(&self.msghdr, socket.as_raw_fd(), PROBE);
        let (ring, msghdr) = (&mut self.ring, &self.msghdr);
        ring.push(&entry);
        ring.ring.submit()?;
        socket.send_to(b"probe", socket.local_addr()?)?;
        let outcome = match ring.await_probe(|_| true) {
            None => Err(std::io::Error::other("no completion within a second")),
            Some((res, _)) if res < 0 => Err(std::io::Error::from_raw_os_error(-res)),
            Some((res, flags)) => {
                let checked = match cqueue::buffer_select(flags) {
                    Some(id) => {
                        let ok = RecvMsgOut::parse(ring.buffers.get(id, res as usize), msghdr)
                            .is_ok_and(|out| out.payload_data() == b"probe");
                        ring.buffers.give(id);
                        ring.buffers.publish();
                        ok
                    }
                    None => false,
                };
                if !checked {
                    Err(std::io::Error::other(
                        "the datagram did not come back intact",
                    ))
                } else if !cqueue::more(flags) {
                    Err(std::io::Error::other("the request did not stay armed"))
                } else {
                    Ok(())
                }
            }
        };
        // Cancel and wait for the request to end, so the socket can close.
        ring.push(&opcode::AsyncCancel::new(PROBE).build().user_data(CANCEL));
        if let Some((_, flags)) = ring.await_probe(|flags| !cqueue::more(flags))
            && let Some(id) = cqueue::buffer_select(flags)
        {
            ring.buffers.give(id);
            ring.buffers.publish();
        }
        outcome
    }

    fn read_wake(&mut self, handle: &Handle) {
        let entry = opcode::Read::new(
            Fd(handle.wake.as_raw_fd()),
            self.wake_buffer.as_mut_ptr(),
            8,
        )
        .build()
        .user_data(WAKE);
        self.ring.push(&entry);
    }

    /// Arms the request of the prompt leg at `token`, if it is still armed as one.
    fn arm(&mut self, token: Token) {
        let fd = match self.armed.get_mut(token.slot()) {
            Some(Some(a)) if a.generation == token.generation() && a.lane == Lane::Prompt => {
                a.since = Some(Instant::now());
                a.fd.as_raw_fd()
            }
            _ => return,
        };
        let entry = recv_entry(&self.msghdr, fd, token.raw());
        self.ring.push(&entry);
    }

    /// How long until the bulk legs are read again.
    fn bulk_interval(&self) -> Duration {
        if self.bulk_legs >= CROWDED_BULK {
            BULK_CROWDED
        } else if self.bulk_legs >= MANY_BULK {
            BULK_BUSY
        } else {
            BULK
        }
    }

    fn armed_at(&mut self, token: Token) -> Option<&mut Armed> {
        self.armed
            .get_mut(token.slot())?
            .as_mut()
            .filter(|a| a.generation == token.generation())
    }

    fn take_commands(&mut self, handle: &Handle) {
        let commands = std::mem::take(&mut *lock(&handle.commands));
        for command in commands {
            match command {
                Command::Arm(token, fd) => {
                    if self.armed.len() <= token.slot() {
                        self.armed.resize_with(token.slot() + 1, || None);
                    }
                    let armed = Armed {
                        generation: token.generation(),
                        fd,
                        lane: Lane::Bulk,
                        since: None,
                    };
                    self.bulk_legs += 1;
                    if let Some(old) = self.armed[token.slot()].replace(armed) {
                        if old.lane == Lane::Bulk {
                            self.bulk_legs = self.bulk_legs.saturating_sub(1);
                        }
                        self.closing.push(old.fd);
                    }
                }
                Command::Promote(token) => {
                    let Some(armed) = self.armed_at(token) else {
                        continue;
                    };
                    if armed.lane == Lane::Prompt {
                        continue;
                    }
                    armed.lane = Lane::Prompt;
                    self.bulk_legs = self.bulk_legs.saturating_sub(1);
                    self.arm(token);
                }
                Command::Cancel(token) => {
                    if self.armed_at(token).is_none() {
                        continue;
                    }
                    if let Some(armed) = self.armed[token.slot()].take() {
                        if armed.lane == Lane::Bulk {
                            self.bulk_legs = self.bulk_legs.saturating_sub(1);
                        }
                        self.closing.push(armed.fd);
                        if armed.lane == Lane::Prompt {
                            let cancel = opcode::AsyncCancel::new(token.raw())
                                .build()
                                .user_data(CANCEL);
                            self.ring.push(&cancel);
                        }
                    }
                }
            }
        }
        // A request ends when the buffers ran out (ENOBUFS). Re-armed all at once, each would
        // take buffers inline from a socket with datagrams waiting and the rest would fail
        // again at once: under a burst, thousands of failing submissions a round would keep
        // the buffers exhausted. So only as many as the free buffers can serve are re-armed per
        // round; the others' datagrams wait in their sockets for the next rounds.
        let now = rearm_now(&mut self.ring.rearm, self.ring.ring.completion().len());
        if !self.ring.rearm.is_empty() {
            self.counters
                .rearms_deferred
                .fetch_add(self.ring.rearm.len() as u64, Ordering::Relaxed);
        }
        for token in now {
            self.arm(token);
        }
    }

    /// Submits the sends queued while handling a batch (on the ring, which is entered every
    /// round, so their completions come back soon).
    fn flush_sends(&mut self) {
        let entries: Vec<squeue::Entry> = outbox::take_queued(|index, slot| {
            // A send with its address (Linux 6.0; the probe's deferred task work needs 6.1):
            // no msghdr and iovec for the kernel to copy in per packet, as `SendMsg` has.
            opcode::Send::new(Fd(slot.fd), slot.data.as_ptr(), slot.len)
                .dest_addr((&raw const slot.name).cast())
                .dest_addr_len(slot.name_len)
                .build()
                .user_data(SEND | u64::from(index))
        });
        if entries.is_empty() {
            return;
        }
        for entry in &entries {
            self.ring.push(entry);
        }
        if let Err(e) = self.ring.ring.submit() {
            tracing::warn!(error = %e, "media receive loop: io_uring submit of sends failed");
        }
    }

    /// Takes up to [`DRAIN`] completions from the ring and handles them: datagrams to their
    /// legs, buffers back to the ring, ended requests to re-arm. True if it stopped at the
    /// limit (more may be waiting).
    fn round(
        &mut self,
        enter: bool,
        table: &Table,
        handle: &Handle,
        scratch: &mut Scratch,
    ) -> bool {
        let started = Instant::now();
        let full = self.ring.reap(&mut scratch.completions, DRAIN, enter);
        let mut woken = false;
        {
            let (ring, armed) = (&mut self.ring, &mut self.armed);
            let slots = table.lock();
            for &(user_data, result, flags) in &scratch.completions {
                match user_data {
                    WAKE => woken = true,
                    CANCEL | PROBE => {}
                    sent if sent & SEND != 0 => scratch.sends.push(((sent & !SEND) as u32, result)),
                    raw => {
                        let token = Token::from_raw(raw);
                        let leg = slots.leg_at(token);
                        if let Some(id) = cqueue::buffer_select(flags) {
                            match leg {
                                Some(leg) if result > 0 => {
                                    scratch.batch.push((leg, id, result as usize))
                                }
                                other => {
                                    ring.buffers.give(id);
                                    // Dropped after the slots lock (it may be the last).
                                    scratch.unused.extend(other);
                                }
                            }
                        }
                        if result == -libc::ENOBUFS {
                            self.counters
                                .buffer_exhaustions
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        if !cqueue::more(flags) && result != -libc::ECANCELED {
                            if result < 0 && result != -libc::ENOBUFS {
                                tracing::debug!(
                                    error = %std::io::Error::from_raw_os_error(-result),
                                    "media receive loop: a socket's receive request ended"
                                );
                            }
                            if let Some(Some(a)) = armed.get_mut(token.slot())
                                && a.generation == token.generation()
                                && a.lane == Lane::Prompt
                            {
                                a.since = None;
                            }
                            ring.rearm.push(token);
                        }
                    }
                }
            }
        }
        scratch.completions.clear();
        scratch.unused.clear();
        for (index, result) in scratch.sends.drain(..) {
            outbox::sent_done(index, result);
        }
        if woken {
            self.read_wake(handle);
        }
        let (ring, msghdr) = (&mut self.ring, &self.msghdr);
        let (now, wall) = clocks();
        for i in 0..scratch.batch.len() {
            // Legs' state is cold (thousands of legs, visited every few tens of ms): start
            // loading a later one's while this one is handled, instead of one miss after
            // another.
            if let Some((ahead, ..)) = scratch.batch.get(i + 2 * PREFETCH_AHEAD) {
                ahead.prefetch_rx();
            }
            if let Some((ahead, ..)) = scratch.batch.get(i + PREFETCH_AHEAD) {
                ahead.prefetch_listener();
            }
            let (leg, id, len) = &scratch.batch[i];
            let (id, len) = (*id, *len);
            if let Ok(out) = RecvMsgOut::parse(ring.buffers.get(id, len), msghdr)
                && let Some(from) = source(out.name_data())
            {
                let arrived = arrival(out.control_data(), now, wall);
                leg.receive_datagram(arrived, from, out.payload_data());
            }
            ring.buffers.give(id);
        }
        scratch.batch.clear();
        ring.buffers.publish();
        self.flush_sends();
        if !full {
            self.drained = started;
        }
        full
    }

    /// Reads every bulk leg's socket in turn, [`VISIT`] slots at a time with a prompt round
    /// between, so that bridged packets are not held behind thousands of sockets, and feeds
    /// each leg silence if its peer went quiet.
    fn visit_bulk(&mut self, table: &Table, handle: &Handle, scratch: &mut Scratch) {
        let mut from = 0;
        while from < self.armed.len() {
            let to = (from + VISIT).min(self.armed.len());
            {
                let slots = table.lock();
                for (slot, armed) in self.armed[from..to].iter().enumerate() {
                    if let Some(a) = armed
                        && a.lane == Lane::Bulk
                        && let Some(leg) =
                            slots.leg_at(Token::new((from + slot) as u32, a.generation))
                    {
                        scratch.visit.push((leg, a.fd.as_raw_fd()));
                    }
                }
            }
            let (now, wall) = clocks();
            for i in 0..scratch.visit.len() {
                if let Some((ahead, _)) = scratch.visit.get(i + 2) {
                    ahead.prefetch_rx();
                }
                if let Some((ahead, _)) = scratch.visit.get(i + 1) {
                    ahead.prefetch_listener();
                }
                let (leg, fd) = &scratch.visit[i];
                // A socket with more than a few batches waiting is left for the next visit,
                // rather than letting one flooded leg hold up the rest.
                for _ in 0..VISIT_CALLS {
                    match self.reader.read(*fd) {
                        Ok(n) => {
                            for j in 0..n {
                                if let Some(d) = self.reader.get(j)
                                    && let Some(source) = d.from
                                {
                                    let arrived = arrival(d.control, now, wall);
                                    leg.receive_datagram(arrived, source, d.payload);
                                }
                            }
                            if n < BATCH {
                                break;
                            }
                        }
                        // An ICMP error reported on the socket: reported once, then the
                        // datagrams behind it are read on.
                        Err(e) => {
                            tracing::debug!(leg = leg.id, error = %e, "media receive loop: a bulk socket's read failed");
                        }
                    }
                }
                // The silence sweep leaves these legs to their visits: between two, it would
                // find nothing read to judge by, at the price of loading every leg's state.
                leg.tick_playout(now);
            }
            scratch.visit.clear();
            from = to;
            self.round(true, table, handle, scratch);
        }
    }

    /// Up to when the leg armed in `slot` has been handed every datagram that reached its
    /// socket, for the silence sweep (see [`Table::sweep_part`]): a prompt leg up to the
    /// ring's last drained round. Bulk legs are left out (`None`): their visits feed their
    /// silence.
    fn read_until(&self, slot: usize, generation: u32) -> Option<Instant> {
        let armed = self.armed.get(slot)?.as_ref()?;
        if armed.lane == Lane::Bulk {
            return None;
        }
        (armed.generation == generation && armed.since? <= self.drained).then_some(self.drained)
    }

    /// Runs the loop for the legs in `table` until `handle` is told to stop.
    pub(crate) fn run(mut self, table: &Table, handle: &Handle) {
        outbox::install();
        let mut scratch = Scratch::default();
        let mut legs: Vec<(Arc<LegInner>, Instant)> = Vec::new();
        let mut next_sweep = Instant::now() + SWEEP;
        let mut next_bulk = Instant::now() + BULK;
        while !handle.stop.load(Ordering::Relaxed) {
            self.take_commands(handle);
            let mut wait = next_sweep
                .min(next_bulk)
                .saturating_duration_since(Instant::now());
            if !self.ring.rearm.is_empty() {
                // Requests wait for buffers: come back for them soon, whatever arrives.
                wait = wait.min(COALESCE);
            }
            let ts = Timespec::from(wait);
            match self
                .ring
                .ring
                .submitter()
                .submit_with_args(1, &SubmitArgs::new().timespec(&ts))
            {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => {
                    tracing::error!(error = %e, "media receive loop: io_uring_enter failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            // The requests that named these duplicates are in the kernel now.
            self.closing.clear();
            let now = Instant::now();
            let full = self.round(false, table, handle, &mut scratch);
            if now >= next_bulk {
                next_bulk = now + self.bulk_interval();
                // Thousands of detection legs make a long pass: bridged packets are taken
                // between its parts, not held behind all of it.
                self.visit_bulk(table, handle, &mut scratch);
            }
            if now >= next_sweep {
                next_sweep = now + SWEEP;
                let mut from = 0;
                while let Some(next) = table.sweep_part(&mut legs, from, |slot, generation| {
                    self.read_until(slot, generation)
                }) {
                    from = next;
                    self.round(true, table, handle, &mut scratch);
                }
            }
            let rest = COALESCE.saturating_sub(now.elapsed());
            if !full && !rest.is_zero() {
                std::thread::sleep(rest);
            }
        }
        outbox::remove();
    }
}

/// Takes from `pending` the requests to re-arm this round: as many as the buffers not held by
/// the `unreaped` completions can serve, [`REARM_BUFFERS`] each; the rest stay for later rounds.
fn rearm_now(pending: &mut Vec<Token>, unreaped: usize) -> Vec<Token> {
    let free = BUFFERS as usize - unreaped.min(BUFFERS as usize);
    let later = pending.split_off(pending.len().min(free / REARM_BUFFERS));
    std::mem::replace(pending, later)
}

/// The `msghdr` multishot receives are armed with: no name pointer, room for a name of
/// [`NAME_LEN`] bytes and [`CONTROL_LEN`] bytes of control messages in each buffer.
fn recv_msghdr() -> Box<libc::msghdr> {
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    msghdr.msg_namelen = NAME_LEN as libc::socklen_t;
    msghdr.msg_controllen = CONTROL_LEN as _;
    msghdr
}

fn recv_entry(msghdr: &libc::msghdr, fd: i32, user_data: u64) -> squeue::Entry {
    opcode::RecvMsgMulti::new(Fd(fd), msghdr, GROUP)
        .build()
        .user_data(user_data)
}

/// The monotonic and wall-clock time read together, to turn the kernel's wall-clock stamps
/// into monotonic instants; the wall clock in integer nanoseconds, so that each datagram's
/// stamp is converted with integer arithmetic rather than through `SystemTime` and `Duration`.
fn clocks() -> (Instant, u64) {
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let wall = wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    (now, wall)
}

/// When a datagram arrived, from its `SCM_TIMESTAMPNS` control message (wall-clock time), the
/// monotonic time of now and the wall-clock time of now in nanoseconds since the epoch. `now` if
/// there is no stamp, or it is in the future or over a second old (the wall clock was stepped).
fn arrival(control: &[u8], now: Instant, wall_ns: u64) -> Instant {
    let stamp = (|| {
        let level = i32::from_ne_bytes(control.get(8..12)?.try_into().ok()?);
        let kind = i32::from_ne_bytes(control.get(12..16)?.try_into().ok()?);
        if level != libc::SOL_SOCKET || kind != SO_TIMESTAMPNS {
            return None;
        }
        let secs = u64::from_ne_bytes(control.get(16..24)?.try_into().ok()?);
        let nanos = u64::from_ne_bytes(control.get(24..32)?.try_into().ok()?);
        let at = secs
            .checked_mul(1_000_000_000)?
            .checked_add(nanos.min(999_999_999))?;
        let age = wall_ns.checked_sub(at)?;
        (age <= 1_000_000_000)
            .then(|| now.checked_sub(Duration::from_nanos(age)))
            .flatten()
    })();
    stamp.unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::write_sockaddr;
    use std::net::{Ipv6Addr, SocketAddr};

    #[test]
    fn the_ring_receives_through_a_multishot_request_here() {
        // Loop::new receives one datagram through the ring before it is used.
        match Handle::new().and_then(|handle| Loop::new(&handle, Arc::default())) {
            Ok(_) => {}
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("io_uring cannot receive here ({e}); legs use the epoll loop");
            }
            Err(e) => panic!("the CI machine's kernel runs the io_uring loop, but: {e}"),
        }
    }

    #[test]
    fn requests_out_of_buffers_are_rearmed_as_the_free_buffers_allow() {
        let tokens = |n: u32| {
            (0..n)
                .map(|i| Token::from_raw(u64::from(i)))
                .collect::<Vec<_>>()
        };
        // Every buffer free: a quarter of them in requests, the first ones first.
        let mut pending = tokens(5000);
        let now = rearm_now(&mut pending, 0);
        assert_eq!(now.len(), BUFFERS as usize / REARM_BUFFERS);
        assert_eq!(now[0], Token::from_raw(0));
        assert_eq!(pending.len(), 5000 - now.len());
        assert_eq!(pending[0], Token::from_raw(now.len() as u64));
        // Completions not yet reaped hold buffers: fewer now; none when they hold them all.
        let mut pending = tokens(100);
        assert_eq!(rearm_now(&mut pending, BUFFERS as usize - 24).len(), 6);
        assert_eq!(pending.len(), 94);
        assert!(rearm_now(&mut pending, BUFFERS as usize + 7).is_empty());
        assert_eq!(pending.len(), 94);
        // A few pending ones all go at once.
        let mut pending = tokens(3);
        assert_eq!(rearm_now(&mut pending, 0).len(), 3);
        assert!(pending.is_empty());
    }

    /// A ring with a multishot receive armed on each of `n` new sockets (user data: the
    /// socket's index), or `None` where io_uring is unavailable outside CI.
    fn armed_ring(n: usize) -> Option<(Ring, Vec<std::net::UdpSocket>, Box<libc::msghdr>)> {
        let mut ring = match Ring::new() {
            Ok(ring) => ring,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("no io_uring here ({e})");
                return None;
            }
            Err(e) => panic!("the CI machine's kernel runs the io_uring loop, but: {e}"),
        };
        let msghdr = recv_msghdr();
        let sockets: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        for (i, socket) in sockets.iter().enumerate() {
            ring.push(&recv_entry(&msghdr, socket.as_raw_fd(), i as u64));
        }
        ring.ring.submit().unwrap();
        Some((ring, sockets, msghdr))
    }

    #[test]
    fn one_reap_takes_every_socket_with_a_datagram_waiting() {
        let Some((mut ring, sockets, _msghdr)) = armed_ring(100) else {
            return;
        };
        let sender = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        // As in the loop: a wait ends with the first socket's datagram, and by the time it is
        // reaped the others have theirs waiting, far more than one enter runs.
        sender
            .send_to(b"first", sockets[0].local_addr().unwrap())
            .unwrap();
        let ts = Timespec::from(Duration::from_secs(1));
        ring.ring
            .submitter()
            .submit_with_args(1, &SubmitArgs::new().timespec(&ts))
            .unwrap();
        for socket in &sockets[1..] {
            sender
                .send_to(b"later", socket.local_addr().unwrap())
                .unwrap();
        }
        let mut out = Vec::new();
        let full = ring.reap(&mut out, 1000, false);
        assert!(!full);
        let mut seen: Vec<u64> = out.iter().map(|&(user_data, _, _)| user_data).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u64>>());
        // The limit holds, and says more may be waiting.
        for socket in &sockets {
            sender
                .send_to(b"again", socket.local_addr().unwrap())
                .unwrap();
        }
        let mut out = Vec::new();
        assert!(ring.reap(&mut out, 30, true));
        assert_eq!(out.len(), 30);
    }

    #[test]
    fn a_reap_takes_the_completions_waiting_before_the_kernel_runs_more() {
        let Some((mut ring, sockets, _msghdr)) = armed_ring(100) else {
            return;
        };
        // A bulk visit: every socket holds several datagrams (8 = 160 ms of 20 ms packets), so
        // one enter brings more than one reap takes.
        let sender = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        for _ in 0..8 {
            for socket in &sockets {
                sender
                    .send_to(b"audio", socket.local_addr().unwrap())
                    .unwrap();
            }
        }
        let mut out = Vec::new();
        assert!(ring.reap(&mut out, 30, true));
        let waiting = ring.ring.completion().len();
        assert!(waiting > 0, "one enter brought more than the limit");
        // The next reap takes those first: the backlog shrinks by what it took (entering on
        // top of it would grow it by one enter's worth every round, until the buffers ran out).
        let mut out = Vec::new();
        assert!(ring.reap(&mut out, 30, true));
        assert_eq!(ring.ring.completion().len(), waiting.saturating_sub(30));
        // And once they are taken, it enters again for the rest: every datagram is received.
        let mut total = 60;
        loop {
            let mut out = Vec::new();
            let full = ring.reap(&mut out, 30, true);
            for &(_, result, flags) in &out {
                assert!(result > 0, "a receive failed: {result}");
                if let Some(id) = cqueue::buffer_select(flags) {
                    ring.buffers.give(id);
                }
            }
            ring.buffers.publish();
            total += out.len();
            if !full {
                break;
            }
        }
        assert_eq!(total, 800);
    }

    #[test]
    fn source_addresses_of_both_families_are_read() {
        // SAFETY: all-zero socket addresses are valid.
        let mut v4: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        v4.sin_family = libc::AF_INET as libc::sa_family_t;
        v4.sin_port = 4000u16.to_be();
        v4.sin_addr.s_addr = u32::from_ne_bytes([10, 1, 2, 3]);
        // SAFETY: reading a plain struct's bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts((&v4 as *const libc::sockaddr_in).cast::<u8>(), 16)
        };
        assert_eq!(source(bytes), Some("10.1.2.3:4000".parse().unwrap()));

        let mut v6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        v6.sin6_port = 5004u16.to_be();
        v6.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        // SAFETY: as above.
        let bytes = unsafe {
            std::slice::from_raw_parts((&v6 as *const libc::sockaddr_in6).cast::<u8>(), NAME_LEN)
        };
        assert_eq!(source(bytes), Some("[::1]:5004".parse().unwrap()));

        // What a send writes is what a receive reads.
        for to in ["192.0.2.7:40000", "[2001:db8::1]:6000"] {
            let to: SocketAddr = to.parse().unwrap();
            // SAFETY: an all-zero sockaddr_in6 is valid.
            let mut name: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            let len = write_sockaddr(&mut name, to) as usize;
            // SAFETY: reading `len` bytes of the struct just written.
            let bytes = unsafe {
                std::slice::from_raw_parts((&name as *const libc::sockaddr_in6).cast::<u8>(), len)
            };
            assert_eq!(source(bytes), Some(to));
        }

        assert_eq!(source(&[]), None);

        // Arrival times from the kernel's stamp; now without one, or with a wild one.
        let now = Instant::now();
        let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let wall_ns = 1_800_000_000 * 1_000_000_000;
        let stamp = |level: i32, kind: i32, back: Duration| {
            let at = wall - back;
            let since = at.duration_since(std::time::UNIX_EPOCH).unwrap();
            let mut c = Vec::new();
            c.extend_from_slice(&32u64.to_ne_bytes());
            c.extend_from_slice(&level.to_ne_bytes());
            c.extend_from_slice(&kind.to_ne_bytes());
            c.extend_from_slice(&since.as_secs().to_ne_bytes());
            c.extend_from_slice(&u64::from(since.subsec_nanos()).to_ne_bytes());
            c
        };
        let ms30 = Duration::from_millis(30);
        let c = stamp(libc::SOL_SOCKET, SO_TIMESTAMPNS, ms30);
        assert_eq!(arrival(&c, now, wall_ns), now - ms30);
        assert_eq!(arrival(&[], now, wall_ns), now);
        assert_eq!(arrival(&c[..20], now, wall_ns), now);
        let other = stamp(libc::IPPROTO_IP, SO_TIMESTAMPNS, ms30);
        assert_eq!(arrival(&other, now, wall_ns), now);
        let stepped = stamp(libc::SOL_SOCKET, SO_TIMESTAMPNS, Duration::from_secs(5));
        assert_eq!(arrival(&stepped, now, wall_ns), now);
        let future = arrival(&c, now, wall_ns - 1_000_000_000);
        assert_eq!(future, now);
        assert_eq!(source(&[0, 0, 0, 0]), None);
        assert_eq!(source(&bytes[..10]), None);
    }
}
