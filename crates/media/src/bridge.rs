//! The bridge: relays RTP between two legs (the callee's and the agent's), both ways.
//!
//! Each direction is handled on the receiving leg's task: the packet is rewritten onto the other
//! leg's outgoing stream (its SSRC, its sequence numbers and timestamps continuing from whatever
//! it sent before: comfort silence, a prompt, the previous call), transcoded PCMU <-> PCMA if
//! the two peers speak different laws, and sent from the other leg's socket. DTMF is relayed on
//! the other side's telephone-event payload type. Nothing is buffered, so the bridge adds the
//! cost of one rewrite and one `sendto`.

use std::sync::Arc;

use tokio::time::Instant;

use crate::error::MediaError;
use crate::leg::{Leg, LegInner};
use crate::sys::lock;

/// Two legs bridged together; dropping it (or [`Bridge::disconnect`]) separates them again.
/// An agent's leg then goes back to comfort silence if it has it on.
pub struct Bridge {
    a: Arc<LegInner>,
    b: Arc<LegInner>,
    connected: bool,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("a", &self.a.id)
            .field("b", &self.b.id)
            .finish()
    }
}

impl Bridge {
    /// Bridges `a` and `b` (in either order: the relay is symmetric).
    pub fn connect(a: &Leg, b: &Leg) -> Result<Bridge, MediaError> {
        let (a, b) = (a.inner().clone(), b.inner().clone());
        if a.id == b.id {
            return Err(MediaError::SameLeg);
        }
        {
            // Lock both receive halves in id order, so two bridges set up at once cannot
            // deadlock, and check-then-set is atomic.
            let (first, second) = if a.id < b.id { (&a, &b) } else { (&b, &a) };
            let mut rx1 = lock(&first.rx);
            let mut rx2 = lock(&second.rx);
            if rx1.peer.is_some() {
                return Err(MediaError::AlreadyBridged(first.id));
            }
            if rx2.peer.is_some() {
                return Err(MediaError::AlreadyBridged(second.id));
            }
            rx1.peer = Some(second.clone());
            rx2.peer = Some(first.clone());
        }
        let now = Instant::now();
        for leg in [&a, &b] {
            lock(&leg.tx).set_relay_attached(true, now);
            leg.promote();
        }
        tracing::debug!(a = a.id, b = b.id, "bridged");
        Ok(Bridge {
            a,
            b,
            connected: true,
        })
    }

    /// Separates the two legs.
    pub fn disconnect(mut self) {
        self.undo();
    }

    fn undo(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        let now = Instant::now();
        for (leg, other) in [(&self.a, &self.b), (&self.b, &self.a)] {
            let mut rx = lock(&leg.rx);
            if rx.peer.as_ref().is_some_and(|p| p.id == other.id) {
                rx.peer = None;
            }
            drop(rx);
            lock(&leg.tx).set_relay_attached(false, now);
            leg.wake();
        }
        tracing::debug!(a = self.a.id, b = self.b.id, "unbridged");
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.undo();
    }
}
