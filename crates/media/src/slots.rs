//! The legs a receive loop reads, by slot: what both loops (epoll and io_uring) look a
//! datagram's leg up in, and the silence sweep over them.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::leg::LegInner;
use crate::sys::lock;

/// How often legs with a detector or recorder are checked for silence to feed.
pub(crate) const SWEEP: Duration = Duration::from_millis(20);
/// Legs swept between two reaps of the bridged legs.
pub(crate) const SWEEP_PART: usize = 256;
/// The shortest time between two waits. Packets from thousands of phones arrive a few
/// microseconds apart; waking for each would cost a context switch and a timer per packet,
/// more than reading it. Waiting at most this often lets them gather into batches, at the price
/// of holding a packet up to this long (a phone's jitter buffer holds 20-60 ms).
pub(crate) const COALESCE: Duration = Duration::from_micros(200);

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

/// The slots of one loop's legs.
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

impl Slots {
    /// The live leg at `token`, if the slot still holds the leg it was given to.
    pub(crate) fn leg_at(&self, token: Token) -> Option<Arc<LegInner>> {
        match self.entries.get(token.slot()) {
            Some(Entry {
                generation,
                leg: Some(leg),
            }) if *generation == token.generation() => leg.upgrade(),
            _ => None,
        }
    }

    /// Gives `leg` a slot.
    fn insert(&mut self, leg: &Arc<LegInner>) -> Token {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.entries.push(Entry::default());
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[slot as usize];
        entry.leg = Some(Arc::downgrade(leg));
        Token::new(slot, entry.generation)
    }

    /// Frees the slot at `token`, if it is still the one given out.
    fn free(&mut self, token: Token) {
        let Some(entry) = self.entries.get_mut(token.slot()) else {
            return;
        };
        if entry.generation != token.generation() || entry.leg.is_none() {
            return;
        }
        entry.leg = None;
        // 31 bits, so a token never has bit 63 set (the io_uring loop's own requests do).
        entry.generation = entry.generation.wrapping_add(1) & 0x7FFF_FFFF;
        self.free.push(token.slot() as u32);
    }
}

/// One loop's slots, shared by the loop and the threads that open and close legs.
#[derive(Default)]
pub(crate) struct Table {
    slots: Mutex<Slots>,
}

impl Table {
    /// The slots, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Slots> {
        lock(&self.slots)
    }

    /// Gives `leg` a slot, and runs `arm` with its token under the lock (so the loop cannot
    /// see the socket before the slot); the slot is freed again if `arm` fails.
    pub(crate) fn insert(
        &self,
        leg: &Arc<LegInner>,
        arm: impl FnOnce(Token) -> std::io::Result<()>,
    ) -> std::io::Result<Token> {
        let mut slots = self.lock();
        let token = slots.insert(leg);
        if let Err(e) = arm(token) {
            slots.free(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Frees the slot at `token`, after running `disarm` under the lock.
    pub(crate) fn free(&self, token: Token, disarm: impl FnOnce()) {
        let mut slots = self.lock();
        disarm();
        slots.free(token);
    }

    /// Feeds silence to the detectors and recorders of legs whose peer went quiet, for a loop
    /// that reads every ready socket each round, so that what a leg has received is complete
    /// up to `now`.
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
    /// by the clock instead, a leg read rarely would be filled with silence while its packets
    /// waited in the socket, and those packets would then come too late for its detector.
    pub(crate) fn sweep_part(
        &self,
        legs: &mut Vec<(Arc<LegInner>, Instant)>,
        from: usize,
        read_until: impl Fn(usize, u32) -> Option<Instant>,
    ) -> Option<usize> {
        let next = {
            let slots = self.lock();
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
        slots.free(old);
        assert_eq!(slots.free, vec![0]);
        assert_eq!(slots.entries[0].generation, 1);
        // Freeing again (deregister, then the leg's drop) is harmless.
        slots.free(old);
        assert_eq!(slots.free, vec![0]);
    }
}
