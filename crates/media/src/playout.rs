//! Puts decoded audio back in timestamp order for the detectors and the recorder: a small
//! reorder buffer, silence for lost packets, and silence for the time a peer using
//! discontinuous transmission sends nothing (so a detector still hears the pause after a
//! greeting).
//!
//! The bridge does not go through here: relayed packets are forwarded as they arrive and the
//! far end's own jitter buffer orders them, which keeps the bridge's added latency near zero.

use std::time::{Duration, Instant};

use crate::session::samples_in;

/// The longest packet kept in the reorder buffer, in samples (60 ms).
pub const MAX_FRAME: usize = 480;
/// Packets held while waiting for a missing one: 3 x 20 ms.
const DEPTH: usize = 3;
/// A timestamp jump beyond this (1 s) is a new timeline, not loss to fill.
const MAX_GAP: u32 = 8000;
/// After this long without packets the peer is taken to be silent (DTX) and silence is fed.
pub const FILL_AFTER: Duration = Duration::from_millis(100);

static SILENCE: [i16; 160] = [0; 160];

struct Slot {
    ts: u32,
    len: usize,
    pcm: [i16; MAX_FRAME],
}

/// The reorder buffer and timeline of one leg's decoded audio.
#[derive(Default)]
pub struct Playout {
    next_ts: Option<u32>,
    slots: Vec<Slot>,
    /// The end timestamp of the last real audio and when it arrived: the anchor for DTX fill.
    anchor: Option<(u32, Instant)>,
    late: u64,
    filled: u64,
}

impl Playout {
    /// Takes one decoded packet that arrived at `now`; emits whatever is now in order.
    pub fn push(&mut self, now: Instant, ts: u32, pcm: &[i16], out: &mut dyn FnMut(&[i16], u32)) {
        let pcm = &pcm[..pcm.len().min(MAX_FRAME)];
        if pcm.is_empty() {
            return;
        }
        let end = ts.wrapping_add(pcm.len() as u32);
        match self.anchor {
            Some((a, _)) if (end.wrapping_sub(a) as i32) <= 0 => {}
            _ => self.anchor = Some((end, now)),
        }
        let Some(next) = self.next_ts else {
            self.emit(pcm, ts, out);
            return;
        };
        let d = ts.wrapping_sub(next) as i32;
        if d.unsigned_abs() > MAX_GAP {
            self.flush(out);
            self.emit(pcm, ts, out);
            self.anchor = Some((end, now));
            return;
        }
        if d <= 0 {
            self.emit_overlapping(pcm, ts, out);
            self.drain(out);
            return;
        }
        if self.slots.iter().any(|s| s.ts == ts) {
            self.late += 1;
            return;
        }
        let mut slot = Slot {
            ts,
            len: pcm.len(),
            pcm: [0; MAX_FRAME],
        };
        slot.pcm[..pcm.len()].copy_from_slice(pcm);
        self.slots.push(slot);
        if self.slots.len() > DEPTH {
            self.release_earliest(out);
            self.drain(out);
        }
    }

    /// Emits everything buffered, filling gaps with silence.
    pub fn flush(&mut self, out: &mut dyn FnMut(&[i16], u32)) {
        while !self.slots.is_empty() {
            self.release_earliest(out);
            self.drain(out);
        }
    }

    /// Called when the peer may have gone quiet: if nothing arrived for [`FILL_AFTER`], flushes
    /// and feeds silence up to the time that has passed. Returns when to call again.
    pub fn tick(&mut self, now: Instant, out: &mut dyn FnMut(&[i16], u32)) -> Option<Instant> {
        let (anchor_ts, anchor_at) = self.anchor?;
        let due = anchor_at + FILL_AFTER;
        if now < due {
            return Some(due);
        }
        self.flush(out);
        let Some(mut next) = self.next_ts else {
            return Some(now + FILL_AFTER);
        };
        // Keep one packet's time in hand so a late real packet still fits after the silence.
        let target = anchor_ts
            .wrapping_add(samples_in(now.saturating_duration_since(anchor_at)))
            .wrapping_sub(SILENCE.len() as u32);
        while (target.wrapping_sub(next) as i32) >= SILENCE.len() as i32 {
            out(&SILENCE, next);
            self.filled += SILENCE.len() as u64;
            next = next.wrapping_add(SILENCE.len() as u32);
        }
        self.next_ts = Some(next);
        Some(now + Duration::from_millis(20))
    }

    /// Forgets the timeline (a new stream, or the listener changed).
    pub fn reset(&mut self) {
        self.next_ts = None;
        self.slots.clear();
        self.anchor = None;
    }

    /// Packets that arrived too late to use, and samples of silence fed in their place or
    /// during discontinuous transmission.
    pub fn counters(&self) -> (u64, u64) {
        (self.late, self.filled)
    }

    fn emit(&mut self, pcm: &[i16], ts: u32, out: &mut dyn FnMut(&[i16], u32)) {
        out(pcm, ts);
        self.next_ts = Some(ts.wrapping_add(pcm.len() as u32));
    }

    /// Emits the part of a packet not yet covered by the timeline.
    fn emit_overlapping(&mut self, pcm: &[i16], ts: u32, out: &mut dyn FnMut(&[i16], u32)) {
        let next = self.next_ts.unwrap_or(ts);
        let skip = next.wrapping_sub(ts) as usize;
        if skip >= pcm.len() {
            self.late += 1;
            return;
        }
        self.emit(&pcm[skip..], next, out);
    }

    fn release_earliest(&mut self, out: &mut dyn FnMut(&[i16], u32)) {
        let Some(next) = self.next_ts else {
            return;
        };
        let Some(i) =
            (0..self.slots.len()).min_by_key(|&i| self.slots[i].ts.wrapping_sub(next) as i32)
        else {
            return;
        };
        let slot = self.slots.swap_remove(i);
        let mut at = next;
        while (slot.ts.wrapping_sub(at) as i32) > 0 {
            let n = (slot.ts.wrapping_sub(at) as usize).min(SILENCE.len());
            out(&SILENCE[..n], at);
            self.filled += n as u64;
            at = at.wrapping_add(n as u32);
        }
        self.next_ts = Some(at);
        self.emit_overlapping(&slot.pcm[..slot.len], slot.ts, out);
    }

    /// Emits buffered packets that have become contiguous.
    fn drain(&mut self, out: &mut dyn FnMut(&[i16], u32)) {
        while let Some(next) = self.next_ts {
            let Some(i) = self
                .slots
                .iter()
                .position(|s| (s.ts.wrapping_sub(next) as i32) <= 0)
            else {
                return;
            };
            let slot = self.slots.swap_remove(i);
            self.emit_overlapping(&slot.pcm[..slot.len], slot.ts, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose samples all carry its own index, so the output order is visible.
    fn frame(i: u32) -> Vec<i16> {
        vec![i as i16 + 1; 160]
    }

    fn run(order: &[u32]) -> (Vec<(u32, i16, usize)>, Playout) {
        let t0 = Instant::now();
        let mut p = Playout::default();
        let mut got = vec![];
        for (k, &i) in order.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * k as u64);
            p.push(now, 1000 + i * 160, &frame(i), &mut |pcm, ts| {
                got.push((ts, pcm[0], pcm.len()))
            });
        }
        p.flush(&mut |pcm, ts| got.push((ts, pcm[0], pcm.len())));
        (got, p)
    }

    fn continuous(got: &[(u32, i16, usize)]) -> bool {
        got.windows(2)
            .all(|w| w[0].0.wrapping_add(w[0].2 as u32) == w[1].0)
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let (got, _) = run(&[0, 2, 1, 3, 5, 4]);
        let values: Vec<i16> = got.iter().map(|g| g.1).collect();
        assert_eq!(values, vec![1, 2, 3, 4, 5, 6]);
        assert!(continuous(&got));
    }

    #[test]
    fn lost_packets_become_silence_and_duplicates_vanish() {
        let (got, p) = run(&[0, 1, 3, 3, 4, 5, 6, 7]);
        let values: Vec<i16> = got.iter().map(|g| g.1).collect();
        assert_eq!(values, vec![1, 2, 0, 4, 5, 6, 7, 8]);
        assert!(continuous(&got));
        assert_eq!(p.counters(), (1, 160));
    }

    #[test]
    fn a_packet_later_than_the_buffer_is_dropped() {
        let (got, p) = run(&[0, 2, 3, 4, 5, 1]);
        let values: Vec<i16> = got.iter().map(|g| g.1).collect();
        assert_eq!(values, vec![1, 0, 3, 4, 5, 6]);
        assert_eq!(p.counters().0, 1);
    }

    #[test]
    fn silence_is_fed_while_the_peer_sends_nothing() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        let got = std::cell::RefCell::new(vec![]);
        let mut out = |pcm: &[i16], ts: u32| got.borrow_mut().push((ts, pcm[0], pcm.len()));
        p.push(t0, 0, &frame(0), &mut out);
        assert_eq!(
            p.tick(t0 + Duration::from_millis(50), &mut out),
            Some(t0 + FILL_AFTER)
        );
        // 500 ms of nothing: about 480 ms of silence is fed, one packet kept in hand.
        p.tick(t0 + Duration::from_millis(500), &mut out);
        let silence: usize = got.borrow().iter().filter(|g| g.1 == 0).map(|g| g.2).sum();
        assert_eq!(silence, 160 * 24);
        // The peer resumes where its clock says: the overlap with fed silence is trimmed.
        p.push(
            t0 + Duration::from_millis(520),
            160 * 25,
            &frame(9),
            &mut out,
        );
        assert!(continuous(&got.borrow()));
    }
}
