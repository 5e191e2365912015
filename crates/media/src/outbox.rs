//! Datagrams an io_uring receive loop sends for the legs it handles (the bridge's relayed
//! audio): queued on the loop's thread while it handles a batch, and submitted together at the
//! batch's end instead of a `sendto` each. The queue is the thread's own, so that the relay,
//! which runs inside a leg's receive path, finds it without knowing which loop called it.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::sys::{MAX_DATAGRAM, write_sockaddr};

/// Sends in flight per loop; past this, a relay sends by itself.
const OUTBOX: usize = 1024;

/// What sent a queued datagram: kept alive (its socket open) until the kernel is done, and
/// told if the send failed.
pub(crate) trait SendOwner: Send + Sync {
    /// Counts a datagram the kernel refused to send.
    fn count_send_error(&self);
}

/// A datagram queued for the ring to send, with its destination.
pub(crate) struct Outgoing {
    owner: Option<Arc<dyn SendOwner>>,
    /// The sending socket.
    pub(crate) fd: RawFd,
    /// The destination, as a `sockaddr_in` or `sockaddr_in6`.
    pub(crate) name: libc::sockaddr_in6,
    /// The destination's length.
    pub(crate) name_len: libc::socklen_t,
    /// Bytes of `data` to send.
    pub(crate) len: u32,
    /// The datagram.
    pub(crate) data: [u8; MAX_DATAGRAM],
}

/// The sends a loop's thread has queued, and the slots they use.
#[derive(Default)]
struct Outbox {
    // Boxed: the kernel reads each slot's data and address, which must not move as the Vec
    // grows.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Outgoing>>,
    free: Vec<u32>,
    queued: Vec<u32>,
}

thread_local! {
    /// The outbox of the io_uring loop running on this thread (none on other threads).
    static OUTBOX_OF_THREAD: RefCell<Option<Outbox>> = const { RefCell::new(None) };
}

/// Gives the calling thread (an io_uring loop's) an outbox.
pub(crate) fn install() {
    OUTBOX_OF_THREAD.with(|outbox| *outbox.borrow_mut() = Some(Outbox::default()));
}

/// Takes the calling thread's outbox away as its loop ends: the legs it held are let go, the
/// slots' memory is leaked, since the kernel may still read a send's data while it tears the
/// ring down after its descriptor is closed.
pub(crate) fn remove() {
    let Some(outbox) = OUTBOX_OF_THREAD.with(|outbox| outbox.borrow_mut().take()) else {
        return;
    };
    for mut slot in outbox.slots {
        slot.owner = None;
        Box::leak(slot);
    }
}

/// Queues `datagram` to be sent from `owner`'s socket `fd` to `to` by this thread's loop, at
/// the end of the batch being handled. False if this thread runs no io_uring loop or its outbox
/// is full: the caller sends the datagram itself.
pub(crate) fn queue_send<O: SendOwner + 'static>(
    owner: &Arc<O>,
    fd: RawFd,
    datagram: &[u8],
    to: SocketAddr,
) -> bool {
    if datagram.len() > MAX_DATAGRAM {
        return false;
    }
    OUTBOX_OF_THREAD.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        let Some(outbox) = outbox.as_mut() else {
            return false;
        };
        let index = match outbox.free.pop() {
            Some(i) => i,
            None if outbox.slots.len() < OUTBOX => {
                outbox.slots.push(Box::new(Outgoing {
                    owner: None,
                    fd: -1,
                    // SAFETY: an all-zero socket address is valid.
                    name: unsafe { std::mem::zeroed() },
                    name_len: 0,
                    len: 0,
                    data: [0; MAX_DATAGRAM],
                }));
                (outbox.slots.len() - 1) as u32
            }
            None => return false,
        };
        let slot = &mut *outbox.slots[index as usize];
        slot.data[..datagram.len()].copy_from_slice(datagram);
        slot.owner = Some(owner.clone());
        slot.fd = fd;
        slot.name_len = write_sockaddr(&mut slot.name, to);
        slot.len = datagram.len() as u32;
        outbox.queued.push(index);
        true
    })
}

/// Takes the datagrams queued since the last call, each made into what submits it by `make`
/// (given the slot's index, to hand back to [`sent_done`]). The slots stay put until then.
pub(crate) fn take_queued<T>(mut make: impl FnMut(u32, &Outgoing) -> T) -> Vec<T> {
    OUTBOX_OF_THREAD.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        let Some(outbox) = outbox.as_mut() else {
            return Vec::new();
        };
        let Outbox { slots, queued, .. } = outbox;
        queued
            .drain(..)
            .map(|index| make(index, &slots[index as usize]))
            .collect()
    })
}

/// Frees the slot of a finished send, counting a failure against its owner.
pub(crate) fn sent_done(index: u32, result: i32) {
    let owner = OUTBOX_OF_THREAD.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        let outbox = outbox.as_mut()?;
        let owner = outbox.slots.get_mut(index as usize)?.owner.take();
        outbox.free.push(index);
        owner
    });
    // Dropped outside the outbox's borrow: the last handle of a leg may be this one.
    if let Some(owner) = owner
        && result < 0
    {
        owner.count_send_error();
    }
}
