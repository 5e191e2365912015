//! A leg's receive path: the RTP datagrams the receive loop reads from the leg's socket (on
//! the loop's thread), and RTCP from either socket. Audio is checked by the sans-IO
//! [`crate::session::RxSession`], relayed if the leg is bridged ([`super::relay`]), decoded and put in order
//! for the listener and the recording; DTMF becomes events.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{AudioListener, LegEvent, LegInner, RxPart};
use crate::playout::MAX_FRAME;
use crate::rtcp;
use crate::session::Inbound;
use crate::srtp::UnprotectError;
use crate::stats::{DropReason, RemoteReport};
use crate::sys::{MAX_DATAGRAM, RECEIVE_BUFFER, lock, prefetch};
use crate::tap::Tap;

impl LegInner {
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
        let now_ns = self.since_opened(now);
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
        self.playout_due.store(
            due.map_or(0, |due| self.since_opened(due)),
            Ordering::Relaxed,
        );
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
        // A browser's leg: STUN and DTLS (first byte below 64, RFC 7983) go to the WebRTC
        // front's task; RTP and RTCP (128-191) carry on below.
        if let Some(front) = &rx.webrtc
            && datagram.first().is_some_and(|&b| b < 64)
        {
            let _ = front.send(super::webrtc::Inbound {
                at: now.into_std(),
                from,
                datagram: datagram.to_vec(),
            });
            return;
        }
        // SRTP is opened before the session judges the packet (its checks read the payload),
        // but after the flood limit, so a flood costs no decryption. Muxed SRTCP goes to
        // handle_rtcp, which opens it.
        let plain;
        let inbound = match rx.srtp.as_mut() {
            Some(srtp) if !(rx.rtcp_mux && crate::rtp::is_rtcp(datagram)) => {
                if !rx.session.admit(now.into_std()) {
                    return;
                }
                match srtp.unprotect_rtp(datagram) {
                    Ok(opened) => plain = opened,
                    Err(err) => {
                        rx.session.count_drop(unprotect_reason(err));
                        return;
                    }
                }
                rx.session.receive_admitted(now.into_std(), from, &plain)
            }
            _ => rx.session.receive(now.into_std(), from, datagram),
        };
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
    pub(super) fn handle_rtcp(&self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let inner = self;
        let our_ssrc = lock(&inner.tx).stream.ssrc();
        let mut rx = lock(&inner.rx);
        let expected_ip = rx.session.send_to().map(|a| a.ip());
        if expected_ip.is_some_and(|ip| ip != from.ip()) || expected_ip.is_none() {
            rx.session.count_drop(DropReason::Stranger);
            return;
        }
        let plain;
        let datagram = match rx.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtcp(datagram) {
                Ok(opened) => {
                    plain = opened;
                    &plain[..]
                }
                Err(err) => {
                    rx.session.count_drop(unprotect_reason(err));
                    return;
                }
            },
            None => datagram,
        };
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
}

/// The drop reason counted for a packet SRTP refused.
fn unprotect_reason(err: UnprotectError) -> DropReason {
    match err {
        UnprotectError::Auth => DropReason::SrtpAuth,
        UnprotectError::Replay => DropReason::SrtpReplay,
        UnprotectError::Malformed => DropReason::Malformed,
    }
}

/// Hands a chunk of decoded audio to the listener and the recording.
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
