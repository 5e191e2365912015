//! The leg's tokio task: a hand-written future rather than a `select!` loop. On each wake-up it
//! drains the RTCP socket (up to a budget), runs whatever timer work is due (prompts, DTMF,
//! comfort silence, RTCP reports, the media timeout), and sleeps on a single deadline. RTP is
//! not read here: the receive loop that reads the leg's RTP socket hands its datagrams to
//! [`super::receive`] on its own thread.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::time::{Instant, Sleep};

use super::{Job, LegEvent, LegInner, TxPart};
use crate::playout::MAX_FRAME;
use crate::rtcp::{self, SenderInfo};
use crate::rtp::{self, OutHeader};
use crate::sys::{MAX_DATAGRAM, lock, send_now};

/// Datagrams handled per wake-up before the task yields to the other legs on its thread.
const BUDGET: usize = 64;
/// A sending schedule that fell this far behind (a stalled thread) restarts from now instead
/// of bursting the backlog at the peer.
const MAX_LAG: Duration = Duration::from_millis(200);

/// Starts the task of the leg `inner`, opened at `now`, on `runtime`.
pub(super) fn spawn(runtime: &tokio::runtime::Handle, inner: Arc<LegInner>, now: Instant) {
    let driver = Driver {
        next_rtcp: now + jittered(inner.options.rtcp_interval),
        inner,
        sleep: Box::pin(tokio::time::sleep_until(now + Duration::from_secs(3600))),
    };
    runtime.spawn(driver);
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

/// How long a bridged leg with comfort silence may go without sending before silence fills
/// in: long enough that a relayed stream's own pauses rarely wake it, far shorter than any
/// phone's RTP timeout.
const RELAY_GAP: Duration = Duration::from_millis(500);

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
            if tx.relay_attached && tx.comfort_silence && tx.jobs.is_empty() && tx.stream.relaying()
            {
                // Bridged: the other side's audio is relayed, and silence fills only a gap in
                // it (a callee who sends nothing), so that a phone with an RTP timeout never
                // goes without packets. Until the gap is long enough, look again then.
                let resume = tx
                    .stream
                    .last_send()
                    .map(|last| Instant::from_std(last) + RELAY_GAP);
                if let Some(resume) = resume.filter(|resume| *resume > now) {
                    tx.next_due = Some(resume);
                    return Some(resume);
                }
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
                if !tx.comfort_silence {
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
            && let Some(wire) = tx.seal_rtp(&out[..n])
            && send_now(&inner.rtp, &wire, remote).is_err()
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
        let Some(wire) = tx.seal_rtcp(&report) else {
            return;
        };
        if send_now(&socket, &wire, dest).is_ok() {
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
        if let Some(registration) = lock(&inner.registration).take() {
            registration.deregister(inner.rtp.as_fd());
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
        let bye = {
            let mut tx = lock(&inner.tx);
            for job in tx.jobs.drain(..) {
                if let Job::Prompt { id, .. } = job {
                    inner.emit(LegEvent::PlaybackFinished {
                        id,
                        completed: false,
                    });
                }
            }
            let ssrc = tx.stream.ssrc();
            rtcp::build_bye(ssrc, &inner.options.cname)
                .and_then(|bye| tx.seal_rtcp(&bye).map(|wire| wire.into_owned()))
        };
        if let (Some(dest), Some(bye)) = (dest, bye) {
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
