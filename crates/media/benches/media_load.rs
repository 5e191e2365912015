//! Media load figures: receive + decode + AMD for many streams on one core, the latency the
//! bridge adds under load, and the memory of an idle leg. Prints a table.
//!
//!     cargo bench -p media --bench media_load                  # all three, issue-sized
//!     cargo bench -p media --bench media_load -- receive 5000  # one part, with its size
//!     cargo bench -p media --bench media_load -- srtp 250      # bridged calls plain, then SRTP
//!     cargo bench -p media --bench media_load -- webrtc 250    # callee plain, agent over WebRTC
//!     MEDIA_BENCH_IO=epoll cargo bench -p media --bench media_load  # the epoll loop instead of io_uring
//!
//! The receive loops are configured like the service's `media_*` settings, by this bench's
//! own variables: `MEDIA_BENCH_THREADS` (default 1: the targets are for one core),
//! `MEDIA_BENCH_IO` (`auto`, `io_uring`, `epoll`) and `MEDIA_BENCH_PRIORITY` (`normal`,
//! `realtime`).
//!
//! The system under test is a current-thread tokio runtime (thread `sut`) and the media crate's
//! receive loops (threads `media-rx-N`), all pinned to the last core; the load generators and the
//! latency reader are pinned to the others. The CPU figure is the kernel's count for the system
//! under test's threads together (`/proc/self/task/*/schedstat`), so "share of one core" is
//! exact whatever the generators cost.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use media::detect::{AmdDetector, AmdParams, Channel, read_wav};
use media::rtp::{self, OutHeader};
use media::{
    Bridge, Codec, Leg, LegEvents, LegOptions, MediaConfig, MediaRuntime, PortAllocator,
    RemoteMedia,
};

/// Counts live heap bytes, for the per-leg memory figure.
struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PACKET: Duration = Duration::from_millis(20);

/// CPU time of the system under test: the thread named `sut`, the receive loops
/// (`media-rx-N`) and any io_uring worker threads.
fn sut_cpu() -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        // io_uring's workers (`iou-wrk-N`) would do work the loops handed off; count them too.
        if comm != "sut" && !comm.starts_with("media-rx") && !comm.starts_with("iou-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// Pins the calling thread to the last core (`sut`) or to the others (load), where there are
/// two or more; threads it starts inherit the mask.
fn pin(sut: bool) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || std::env::var("MEDIA_BENCH_PIN").is_ok_and(|v| v == "0") {
        return;
    }
    let mut set = rustix::thread::CpuSet::new();
    if sut {
        set.set(cores - 1);
    } else {
        (0..cores - 1).for_each(|c| set.set(c));
    }
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Gives the calling thread a real-time (FIFO) priority, where allowed (root).
fn realtime() {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: plain system call on the calling thread with a valid parameter block.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc != 0 {
        eprintln!("note: the latency reader runs without real-time priority (not root?)");
    }
}

/// Runs `f` on a thread named `sut`, pinned to the system under test's core.
fn spawn_sut<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name("sut".into())
        .spawn(move || {
            pin(true);
            f()
        })
        .unwrap()
}

/// Runs `f` on a load thread, pinned away from the system under test.
fn spawn_load<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        pin(false);
        f()
    })
}

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The variable `name` parsed, or `default` when it is unset; the bench stops on a bad value.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}")),
    }
}

/// The receive loops every part of the bench opens its legs on, set up from `MEDIA_BENCH_*`.
/// They start with the first leg, on the system under test's thread, whose pinning they take.
fn media() -> &'static MediaRuntime {
    static MEDIA: std::sync::OnceLock<MediaRuntime> = std::sync::OnceLock::new();
    MEDIA.get_or_init(|| {
        MediaRuntime::new(MediaConfig {
            threads: Some(setting("MEDIA_BENCH_THREADS", 1)),
            io: setting("MEDIA_BENCH_IO", Default::default()),
            priority: setting("MEDIA_BENCH_PRIORITY", Default::default()),
        })
    })
}

/// Opens a leg on the bench's receive loops.
fn open(ports: &PortAllocator, options: LegOptions) -> (Leg, LegEvents) {
    media().open_leg(ports, options).unwrap()
}

fn ports() -> PortAllocator {
    PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Real speech for the streams: the corpus clips, mu-law, end to end.
fn speech() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/clips");
    let mut pcm = vec![];
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().step_by(10).take(12) {
            if let Ok(samples) = read_wav(f, Channel::Mix) {
                pcm.extend(samples);
            }
        }
    }
    if pcm.is_empty() {
        pcm = (0..80_000)
            .map(|i| ((i as f32 * 0.07).sin() * 6000.0) as i16)
            .collect();
    }
    let mut ulaw = vec![0u8; pcm.len()];
    Codec::Pcmu.encode(&pcm, &mut ulaw);
    ulaw
}

/// How many send phases a tick has: 20 (one per millisecond), or 1 with `MEDIA_BENCH_BURST=1`.
fn phases() -> usize {
    if std::env::var("MEDIA_BENCH_BURST").is_ok_and(|v| v == "1") {
        1
    } else {
        20
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Sends one 20 ms packet to every destination per tick, until `stop`. Each socket's packets go
/// out in `sendmmsg` batches of 64, so that one load core can offer what the system under test
/// must take.
///
/// Calls that started at different times send at different points of the 20 ms: destination
/// `i` sends in the `i % phases`-th of `phases` equal parts of each tick. `phases = 1` sends
/// every stream in the same instant (`MEDIA_BENCH_BURST=1`), the worst case, which no carrier
/// produces: the last packet of a burst waits behind all the others in the receive loop.
fn generator(
    targets: Vec<(SocketAddr, Arc<UdpSocket>)>,
    payload: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    stamp_from: Option<Instant>,
    phases: usize,
) -> u64 {
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    use std::io::IoSlice;
    const CHUNK: usize = 64;
    // Destinations (stream index, address) grouped by the socket they are sent from.
    type Group = (Arc<UdpSocket>, Vec<(usize, SocketAddrAny)>);
    let phases = phases.max(1);
    let mut slots: Vec<Vec<Group>> = (0..phases).map(|_| vec![]).collect();
    for (i, (to, socket)) in targets.iter().enumerate() {
        let groups = &mut slots[i % phases];
        match groups.iter_mut().find(|(s, _)| Arc::ptr_eq(s, socket)) {
            Some((_, v)) => v.push((i, SocketAddrAny::from(*to))),
            None => groups.push((socket.clone(), vec![(i, SocketAddrAny::from(*to))])),
        }
    }
    let mut sent = 0u64;
    let start = Instant::now();
    let mut tick = 0u64;
    let mut bufs = vec![[0u8; 200]; CHUNK];
    let mut lens = [0usize; CHUNK];
    let part = PACKET / phases as u32;
    while !stop.load(Ordering::Relaxed) {
        for (phase, groups) in slots.iter().enumerate() {
            let due = start + PACKET * tick as u32 + part * phase as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            for (socket, dests) in groups {
                for chunk in dests.chunks(CHUNK) {
                    for (k, &(i, _)) in chunk.iter().enumerate() {
                        let off = (i * 1637 + tick as usize * 160) % (payload.len() - 160);
                        let mut body = [0u8; 160];
                        body.copy_from_slice(&payload[off..off + 160]);
                        if let Some(base) = stamp_from {
                            body[..8]
                                .copy_from_slice(&(base.elapsed().as_nanos() as u64).to_be_bytes());
                        }
                        lens[k] = rtp::write_packet(
                            &OutHeader {
                                marker: false,
                                payload_type: 0,
                                sequence: tick as u16,
                                timestamp: (tick * 160) as u32,
                                ssrc: i as u32 + 1,
                            },
                            &body,
                            &mut bufs[k],
                        )
                        .unwrap();
                    }
                    let iovs: Vec<[IoSlice<'_>; 1]> = (0..chunk.len())
                        .map(|k| [IoSlice::new(&bufs[k][..lens[k]])])
                        .collect();
                    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
                        (0..chunk.len()).map(|_| Default::default()).collect();
                    let mut msgs: Vec<MMsgHdr<'_>> = chunk
                        .iter()
                        .zip(&iovs)
                        .zip(controls.iter_mut())
                        .map(|(((_, to), iov), control)| MMsgHdr::new_with_addr(to, iov, control))
                        .collect();
                    let mut from = 0;
                    while from < msgs.len() {
                        match rustix::net::sendmmsg(
                            &**socket,
                            &mut msgs[from..],
                            SendFlags::empty(),
                        ) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                sent += n as u64;
                                from += n;
                            }
                        }
                    }
                }
            }
        }
        tick += 1;
    }
    sent
}

fn bind_many(n: usize) -> Vec<Arc<UdpSocket>> {
    (0..n)
        .map(|_| Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap()))
        .collect()
}

/// Pairs each destination with the socket that sends to it (round-robin over `sockets`).
fn from_sockets(
    targets: &[SocketAddr],
    sockets: &[Arc<UdpSocket>],
) -> Vec<(SocketAddr, Arc<UdpSocket>)> {
    targets
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, sockets[i % sockets.len()].clone()))
        .collect()
}

struct Row(String, String, String);

fn receive(streams: usize, secs: u64) -> Vec<Row> {
    let senders = bind_many(32);
    let sender_addrs: Vec<SocketAddr> = senders.iter().map(|s| s.local_addr().unwrap()).collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let verdicts = Arc::new(AtomicU64::new(0));
    let v2 = verdicts.clone();
    let window = Duration::from_secs(secs);
    let sut = spawn_sut(move || {
        let rt = runtime();
        rt.block_on(async move {
            let ports = ports();
            let mut legs = vec![];
            for i in 0..streams {
                let (leg, _events) = open(&ports, LegOptions::default());
                leg.set_remote(&RemoteMedia::new(
                    sender_addrs[i % sender_addrs.len()],
                    Codec::Pcmu,
                ))
                .unwrap();
                // AMD on every stream, restarted after each verdict so its cost is always paid.
                let params = AmdParams::default();
                let mut amd = AmdDetector::new(params.clone()).unwrap();
                let verdicts = v2.clone();
                leg.set_listener(Some(Box::new(move |pcm: &[i16], ts: u32| {
                    if amd.push(pcm, ts).is_some() {
                        verdicts.fetch_add(1, Ordering::Relaxed);
                        amd = AmdDetector::new(params.clone()).unwrap();
                    }
                })));
                legs.push(leg);
            }
            ready_tx
                .send(legs.iter().map(|l| l.local_rtp_addr()).collect::<Vec<_>>())
                .unwrap();
            // Warm up, then measure.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before: u64 = legs.iter().map(|l| l.stats().packets_received).sum();
            let (cpu0, t0) = (sut_cpu(), Instant::now());
            tokio::time::sleep(window).await;
            let (cpu, wall) = (sut_cpu() - cpu0, t0.elapsed());
            let after: u64 = legs.iter().map(|l| l.stats().packets_received).sum();
            let stats: Vec<_> = legs.iter().map(|l| l.stats()).collect();
            let dropped: u64 = stats.iter().map(|s| s.dropped.total()).sum();
            let lost: i64 = stats.iter().map(|s| s.packets_lost).sum();
            // What the detectors heard that the peers did not send: silence filled in while
            // packets waited unread, and the packets that then came too late.
            let late: u64 = stats.iter().map(|s| s.packets_late).sum();
            let filled: Duration = stats.iter().map(|s| s.silence_filled).sum();
            result_tx
                .send((after - before, cpu, wall, dropped, lost, late, filled))
                .unwrap();
        });
    });
    let targets = ready_rx.recv().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let payload = Arc::new(speech());
    let targets = from_sockets(&targets, &senders);
    let gen_thread = spawn_load(move || generator(targets, payload, stop2, None, phases()));
    let (packets, cpu, wall, dropped, lost, late, filled) = result_rx.recv().unwrap();
    stop.store(true, Ordering::Relaxed);
    let sent = gen_thread.join().unwrap();
    sut.join().unwrap();
    let pps = packets as f64 / wall.as_secs_f64();
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    let per_packet = cpu.as_secs_f64() / packets.max(1) as f64;
    let at_target = per_packet * streams as f64 * 50.0;
    vec![
        Row(
            format!("receive+decode+AMD, {streams} streams"),
            format!(
                "{pps:.0} packets/s received ({:.0}% of the 50 pps x streams offered)",
                pps / (streams as f64 * 50.0) * 100.0
            ),
            format!("{} sent in total", sent),
        ),
        Row(
            "  CPU of the runtime and receive loop".into(),
            format!("{:.1}% of one core", share * 100.0),
            format!(
                "{:.2} us per packet; {:.1}% at the full {} pps",
                per_packet * 1e6,
                at_target * 100.0,
                streams * 50
            ),
        ),
        Row(
            "  verdicts / drops / loss".into(),
            format!("{} AMD verdicts", verdicts.load(Ordering::Relaxed)),
            format!("{dropped} dropped, {lost} lost (generator lag or socket overflow)"),
        ),
        Row(
            "  heard by the detectors".into(),
            format!("{late} packets too late"),
            format!(
                "{:.1} s of silence filled in, over {streams} streams",
                filled.as_secs_f64()
            ),
        ),
    ]
}

fn bridge(calls: usize, secs: u64) -> Vec<Row> {
    // Phones: the callee side and the agent side, a few sockets each (many calls per socket).
    let callee_phones = bind_many(32);
    let agent_phones = bind_many(32);
    // Sampled receivers: the first `sampled` calls' agents get sockets of their own that we read.
    let sampled = calls.min(64);
    let sample_sockets = bind_many(sampled);
    let direct_rx = bind_many(16);
    let direct_addrs: Vec<SocketAddr> = direct_rx.iter().map(|s| s.local_addr().unwrap()).collect();
    let callee_addrs: Vec<SocketAddr> = callee_phones
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    let agent_addrs: Vec<SocketAddr> = agent_phones
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    let sample_addrs: Vec<SocketAddr> = sample_sockets
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let total = Duration::from_secs(secs + 2);
    let sut = spawn_sut(move || {
        runtime().block_on(async move {
            let ports = ports();
            let mut keep = vec![];
            let mut callee_targets = vec![];
            let mut agent_targets = vec![];
            for i in 0..calls {
                let (callee, _) = open(&ports, LegOptions::default());
                let (agent, _) = open(
                    &ports,
                    LegOptions {
                        comfort_silence: true,
                        ..Default::default()
                    },
                );
                callee
                    .set_remote(&RemoteMedia::new(
                        callee_addrs[i % callee_addrs.len()],
                        Codec::Pcmu,
                    ))
                    .unwrap();
                let agent_phone = if i < sample_addrs.len() {
                    sample_addrs[i]
                } else {
                    agent_addrs[i % agent_addrs.len()]
                };
                agent
                    .set_remote(&RemoteMedia::new(agent_phone, Codec::Pcmu))
                    .unwrap();
                let bridge = Bridge::connect(&callee, &agent).unwrap();
                callee_targets.push(callee.local_rtp_addr());
                agent_targets.push(agent.local_rtp_addr());
                keep.push((callee, agent, bridge));
            }
            ready_tx.send((callee_targets, agent_targets)).unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let cpu0 = sut_cpu();
            let t0 = Instant::now();
            tokio::time::sleep(total - Duration::from_secs(2)).await;
            result_tx.send((sut_cpu() - cpu0, t0.elapsed())).unwrap();
            while !done2.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            drop(keep);
        });
    });
    let (callee_targets, agent_targets) = ready_rx.recv().unwrap();
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let payload = Arc::new(speech());
    // Callees talk into their legs; agents talk too (both directions loaded). The sampled calls'
    // packets and the direct baseline carry a send time.
    let mut gens = vec![];
    {
        let (stop, payload) = (stop.clone(), payload.clone());
        let mut targets = from_sockets(&callee_targets, &callee_phones);
        targets.extend(from_sockets(&direct_addrs, &callee_phones));
        gens.push(spawn_load(move || {
            generator(targets, payload, stop, Some(base), phases())
        }));
    }
    {
        let (stop, payload) = (stop.clone(), payload.clone());
        // The sampled agents talk from the socket they listen on: symmetric RTP sends the
        // bridged audio back to where their packets come from.
        let targets: Vec<(SocketAddr, Arc<UdpSocket>)> = agent_targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let socket = match sample_sockets.get(i) {
                    Some(s) => s.clone(),
                    None => agent_phones[i % agent_phones.len()].clone(),
                };
                (t, socket)
            })
            .collect();
        gens.push(spawn_load(move || {
            generator(targets, payload, stop, Some(base), phases())
        }));
    }
    // Read the sampled agents and the direct baseline sockets.
    let bridged = Arc::new(Mutex::new(Vec::new()));
    let direct = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (bridged, direct, stop) = (bridged.clone(), direct.clone(), stop.clone());
        let sample_sockets = sample_sockets.clone();
        spawn_load(move || {
            // Real-time priority: the reader must not wait behind the generators' bursts on
            // its core, or their scheduling, not the bridge, would be what is measured.
            realtime();
            for s in sample_sockets.iter().chain(&direct_rx) {
                s.set_nonblocking(true).unwrap();
            }
            let mut buf = [0u8; 512];
            let warm = Instant::now() + Duration::from_secs(2);
            while !stop.load(Ordering::Relaxed) {
                let mut idle = true;
                for (k, s) in sample_sockets.iter().chain(&direct_rx).enumerate() {
                    while let Ok(n) = s.recv(&mut buf) {
                        idle = false;
                        let now = base.elapsed().as_nanos() as u64;
                        let Ok(p) = rtp::parse(&buf[..n]) else {
                            continue;
                        };
                        if p.payload.len() < 8 || Instant::now() < warm {
                            continue;
                        }
                        let sent = u64::from_be_bytes(p.payload[..8].try_into().unwrap());
                        if sent == 0 || sent > now || p.payload.iter().all(|&b| b == 0xFF) {
                            continue;
                        }
                        let target = if k < sample_sockets.len() {
                            &bridged
                        } else {
                            &direct
                        };
                        target.lock().unwrap().push(now - sent);
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    let (cpu, wall) = result_rx.recv().unwrap();
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = gens.into_iter().map(|g| g.join().unwrap()).sum();
    reader.join().unwrap();
    done.store(true, Ordering::Relaxed);
    sut.join().unwrap();
    let mut b = bridged.lock().unwrap().clone();
    let mut d = direct.lock().unwrap().clone();
    b.sort_unstable();
    d.sort_unstable();
    let us = |v: u64| format!("{:.0}", v as f64 / 1000.0);
    let added = |p: f64| (percentile(&b, p) as i64 - percentile(&d, p) as i64) as f64 / 1000.0;
    vec![
        Row(
            format!("bridge, {calls} calls ({} streams each way)", calls * 2),
            format!(
                "{:.1}% of one core",
                cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
            ),
            format!(
                "{:.0} packets/s offered in total",
                sent as f64 / (secs as f64 + 4.0)
            ),
        ),
        Row(
            "  latency through the bridge (us)".into(),
            format!(
                "p50 {} / p99 {} / p99.9 {}",
                us(percentile(&b, 0.5)),
                us(percentile(&b, 0.99)),
                us(percentile(&b, 0.999))
            ),
            format!("{} samples", b.len()),
        ),
        Row(
            "  latency direct, same load (us)".into(),
            format!(
                "p50 {} / p99 {} / p99.9 {}",
                us(percentile(&d, 0.5)),
                us(percentile(&d, 0.99)),
                us(percentile(&d, 0.999))
            ),
            format!("{} samples", d.len()),
        ),
        Row(
            "  added by the bridge (us)".into(),
            format!("p50 {:.0} / p99 {:.0}", added(0.5), added(0.99)),
            "bridge minus direct, same percentile".into(),
        ),
    ]
}

fn memory(legs: usize) -> Vec<Row> {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let rt = runtime();
    let (heap, rss, idle) = rt.block_on(async move {
        let ports = ports();
        // One leg first, so one-off allocations (the runtime's timer wheel, tables) are not
        // charged to the measured legs.
        let (_first, _) = open(&ports, LegOptions::default());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (heap0, rss0) = (HEAP.load(Ordering::Relaxed), rss_kib());
        let mut held = vec![];
        for _ in 0..legs {
            let (leg, events) = open(&ports, LegOptions::default());
            leg.set_remote(&RemoteMedia::new(peer_addr, Codec::Pcmu).with_dtmf(101))
                .unwrap();
            held.push((leg, events));
        }
        // Let every task run once (its timer armed, sockets registered).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let heap = HEAP.load(Ordering::Relaxed) - heap0;
        let rss = rss_kib() - rss0;
        // What legs cost while nobody sends: the loop still visits them.
        let (cpu0, t0) = (sut_cpu(), Instant::now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = (sut_cpu() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
        drop(held);
        (heap, rss, idle)
    });
    vec![
        Row(
            format!("idle legs, {legs}"),
            format!("{:.1} KiB heap per leg", heap as f64 / legs as f64 / 1024.0),
            format!(
                "{:.1} KiB RSS per leg (sockets' kernel buffers not included)",
                rss as f64 * 1.0 / legs as f64
            ),
        ),
        Row(
            "  CPU of the runtime and receive loop".into(),
            format!("{:.1}% of one core", idle * 100.0),
            "with every leg idle (nothing received)".into(),
        ),
    ]
}

/// One run of the SRTP comparison: `calls` bridged calls whose phones talk both ways, with
/// SRTP (AES_CM_128_HMAC_SHA1_80, each stream under its own keys) or plain. Returns the system
/// under test's CPU and the packets the legs received (each one relayed by the bridge) over
/// `secs` seconds.
fn srtp_run(calls: usize, secs: u64, secure: bool) -> (Duration, u64, Duration) {
    srtp_run_with(calls, secs, if secure { Mode::Srtp } else { Mode::Plain })
}

/// How the bridged calls of [`srtp_run_with`] are secured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain RTP both legs.
    Plain,
    /// SRTP (SDES-style keys) both legs.
    Srtp,
    /// The callee's leg plain, the agent's a browser's: a WebRTC front on it, SRTP
    /// AEAD_AES_128_GCM (what Chromium picks) under keys as DTLS gives them, and the browser's
    /// ICE consent check once a second through the front.
    Webrtc,
}

impl Mode {
    fn secure(self, stream: usize) -> bool {
        match self {
            Mode::Plain => false,
            Mode::Srtp => true,
            Mode::Webrtc => stream % 2 == 1,
        }
    }
}

/// The ICE password of the bench's browser legs (ours; the checks are signed with it).
const BENCH_ICE_PWD: &str = "benchbenchbenchbenchbench";

fn srtp_run_with(calls: usize, secs: u64, mode: Mode) -> (Duration, u64, Duration) {
    use media::srtp::{Protector, SrtpConfig, SrtpKey, SrtpSuite};
    use media::webrtc::{BrowserOffer, DtlsIdentity, Front, LocalIce};
    let suite = if mode == Mode::Webrtc {
        SrtpSuite::AeadAes128Gcm
    } else {
        SrtpSuite::AesCm128HmacSha1_80
    };
    let secure = mode != Mode::Plain;
    let key = move |stream: usize, side: u8| {
        let bytes: Vec<u8> = (0..suite.key_salt_len())
            .map(|k| (stream as u8).wrapping_mul(7) ^ side ^ (k as u8).wrapping_mul(13))
            .collect();
        SrtpKey::new(&bytes)
    };
    let streams = calls * 2;
    let phones = bind_many(32);
    let phone_addrs: Vec<SocketAddr> = phones.iter().map(|s| s.local_addr().unwrap()).collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let sut = spawn_sut(move || {
        runtime().block_on(async move {
            let ports = ports();
            let mut legs = vec![];
            let mut bridges = vec![];
            let mut targets = vec![];
            let mut fronts = vec![];
            let identity = DtlsIdentity::generate().unwrap();
            for call in 0..calls {
                let mut pair = vec![];
                for side in 0..2 {
                    let stream = call * 2 + side;
                    let (leg, events) = open(&ports, LegOptions::default());
                    let mut remote =
                        RemoteMedia::new(phone_addrs[stream % phone_addrs.len()], Codec::Pcmu);
                    if mode == Mode::Webrtc && side == 1 {
                        remote = remote.with_rtcp_mux();
                        let offer = BrowserOffer {
                            ice_ufrag: format!("b{stream}"),
                            ice_pwd: BENCH_ICE_PWD.into(),
                            fingerprint: "00".into(),
                            mid: Some("0".into()),
                            codec: (0, Codec::Pcmu),
                            dtmf: None,
                        };
                        let ice = LocalIce {
                            ufrag: format!("l{stream}"),
                            pwd: BENCH_ICE_PWD.into(),
                        };
                        let front =
                            Front::new(&identity, &offer, leg.local_rtp_addr(), ice).unwrap();
                        fronts.push(leg.attach_webrtc(
                            front,
                            (0, Codec::Pcmu),
                            None,
                            Duration::from_secs(3600),
                        ));
                    }
                    if mode.secure(stream) {
                        remote = remote.with_srtp(SrtpConfig {
                            suite,
                            local: key(stream, 1),
                            remote: key(stream, 2),
                        });
                    }
                    leg.set_remote(&remote).unwrap();
                    targets.push(leg.local_rtp_addr());
                    pair.push(leg.clone());
                    legs.push((leg, events));
                }
                bridges.push(Bridge::connect(&pair[0], &pair[1]).unwrap());
            }
            ready_tx.send(targets).unwrap();
            let received = |legs: &[(Leg, LegEvents)]| -> u64 {
                legs.iter().map(|(l, _)| l.stats().packets_received).sum()
            };
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (cpu0, pk0, t0) = (sut_cpu(), received(&legs), Instant::now());
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let (cpu1, pk1) = (sut_cpu(), received(&legs));
            let dropped: u64 = legs.iter().map(|(l, _)| l.stats().dropped.total()).sum();
            result_tx
                .send((cpu1 - cpu0, pk1 - pk0, t0.elapsed(), dropped))
                .unwrap();
            while !done2.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            drop(bridges);
            drop(fronts);
        });
    });
    let targets = ready_rx.recv().unwrap();
    // Every packet is made (and protected, under the phone's key) before the clock starts, so
    // the load cores only send.
    let payload = speech();
    let ticks = 50 * (secs as usize + 4);
    let packets: Vec<Vec<Vec<u8>>> = (0..streams)
        .map(|stream| {
            let mut protector = Protector::new(suite, &key(stream, 2)).unwrap();
            (0..ticks)
                .map(|tick| {
                    let off = (stream * 1637 + tick * 160) % (payload.len() - 160);
                    let mut buf = [0u8; 200];
                    let n = rtp::write_packet(
                        &OutHeader {
                            marker: false,
                            payload_type: 0,
                            sequence: tick as u16,
                            timestamp: (tick * 160) as u32,
                            ssrc: stream as u32 + 1,
                        },
                        &payload[off..off + 160],
                        &mut buf,
                    )
                    .unwrap();
                    if mode.secure(stream) {
                        protector.protect_rtp(&buf[..n]).unwrap().to_vec()
                    } else {
                        buf[..n].to_vec()
                    }
                })
                .collect()
        })
        .collect();
    // The browsers' consent checks: one per WebRTC leg, sent once a second.
    let checks: Vec<(usize, Vec<u8>)> = (0..streams)
        .filter(|&stream| mode == Mode::Webrtc && stream % 2 == 1)
        .map(|stream| {
            let check = media::webrtc::ice::binding_request(
                &format!("l{stream}"),
                &format!("b{stream}"),
                BENCH_ICE_PWD,
                true,
            );
            (stream, check)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        spawn_load(move || {
            let start = Instant::now();
            let part = PACKET / 20;
            for tick in 0..ticks {
                if tick % 50 == 0 {
                    for (stream, check) in &checks {
                        let _ = phones[stream % phones.len()].send_to(check, targets[*stream]);
                    }
                }
                for phase in 0..20 {
                    let due = start + PACKET * tick as u32 + part * phase as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    for stream in (phase..streams).step_by(20) {
                        let socket = &phones[stream % phones.len()];
                        if let Some(packet) = packets[stream].get(tick) {
                            let _ = socket.send_to(packet, targets[stream]);
                        }
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };
    let (cpu, received, elapsed, dropped) = result_rx.recv().unwrap();
    stop.store(true, Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    sut.join().unwrap();
    assert_eq!(dropped, 0, "packets dropped by the legs (SRTP {secure})");
    (cpu, received, elapsed)
}

/// What SRTP costs per bridged packet and per stream: the same calls plain and SRTP, back to
/// back.
fn srtp(calls: usize, secs: u64) -> Vec<Row> {
    let mut rows = vec![];
    let mut per_packet = [0.0f64; 2];
    for (i, secure) in [false, true].into_iter().enumerate() {
        let (cpu, received, elapsed) = srtp_run(calls, secs, secure);
        let us = cpu.as_secs_f64() * 1e6 / received.max(1) as f64;
        per_packet[i] = us;
        rows.push(Row(
            format!(
                "bridge, {calls} calls, {}",
                if secure {
                    "SRTP both legs (AES_CM_128_HMAC_SHA1_80)"
                } else {
                    "plain RTP"
                }
            ),
            format!(
                "{us:.2} us per bridged packet, {:.1}% of one core",
                cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0
            ),
            format!(
                "{received} packets in {:.1} s ({:.0}/s)",
                elapsed.as_secs_f64(),
                received as f64 / elapsed.as_secs_f64()
            ),
        ));
    }
    let extra = per_packet[1] - per_packet[0];
    rows.push(Row(
        "  SRTP's cost".into(),
        format!(
            "{extra:.2} us per bridged packet ({:.2}x)",
            per_packet[1] / per_packet[0].max(1e-9)
        ),
        format!(
            "unprotect + protect; {:.0} us of CPU per second per stream at 50 packets/s",
            extra * 50.0
        ),
    ));
    rows
}

/// What a browser agent's leg costs: bridged calls whose agent leg is WebRTC (SRTP GCM, consent
/// checks), beside the same calls plain; the CPU per WebRTC leg and the calls one core carries.
fn webrtc(calls: usize, secs: u64) -> Vec<Row> {
    let mut rows = vec![];
    let mut share = [0.0f64; 2];
    for (i, mode) in [Mode::Plain, Mode::Webrtc].into_iter().enumerate() {
        let (cpu, received, elapsed) = srtp_run_with(calls, secs, mode);
        share[i] = cpu.as_secs_f64() / elapsed.as_secs_f64();
        let us = cpu.as_secs_f64() * 1e6 / received.max(1) as f64;
        rows.push(Row(
            format!(
                "bridge, {calls} calls, {}",
                if mode == Mode::Webrtc {
                    "agent leg WebRTC (GCM, consent 1/s)"
                } else {
                    "plain RTP"
                }
            ),
            format!(
                "{us:.2} us per bridged packet, {:.1}% of one core",
                share[i] * 100.0
            ),
            format!(
                "{received} packets in {:.1} s; {:.0} calls per core",
                elapsed.as_secs_f64(),
                calls as f64 / share[i].max(1e-9)
            ),
        ));
    }
    let per_leg = (share[1] - share[0]) / calls as f64;
    rows.push(Row(
        "  a WebRTC leg's extra cost".into(),
        format!("{:.0} us of CPU per second per leg", per_leg * 1e6),
        format!(
            "SRTP both ways + STUN; {:.0} WebRTC agent calls per core",
            1.0 / (share[1] / calls as f64).max(1e-9)
        ),
    ));
    rows
}

fn main() {
    // A bad MEDIA_BENCH_* value stops the bench before it measures anything.
    let media = media();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    let size = args.get(1).and_then(|s| s.parse().ok());
    let secs = std::env::var("MEDIA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut rows = vec![];
    if matches!(which, "all" | "memory") {
        let legs = size.unwrap_or(5000);
        rows.extend(spawn_sut(move || memory(legs)).join().unwrap());
    }
    if matches!(which, "all" | "receive") {
        rows.extend(receive(size.unwrap_or(5000), secs));
    }
    if matches!(which, "all" | "bridge") {
        rows.extend(bridge(size.unwrap_or(2000), secs));
    }
    if matches!(which, "all" | "srtp") {
        rows.extend(srtp(size.unwrap_or(250), secs));
    }
    if matches!(which, "all" | "webrtc") {
        rows.extend(webrtc(size.unwrap_or(250), secs));
    }
    println!("\n{:<44} | {:<52} | note", "measure", "value");
    println!("{}", "-".repeat(150));
    for Row(a, b, c) in rows {
        println!("{a:<44} | {b:<52} | {c}");
    }
    let loop_stats = media.stats();
    println!(
        "\nreceive loop: {}{} (MEDIA_BENCH_IO, MEDIA_BENCH_PRIORITY, MEDIA_BENCH_THREADS), {} requests out of buffers, {} re-arms deferred; streams sent {}; machine: {} cores, load average {}",
        media.receive_loop().unwrap_or("not started"),
        if loop_stats.realtime {
            " at real-time priority"
        } else {
            ""
        },
        loop_stats.buffer_exhaustions,
        loop_stats.rearms_deferred,
        if phases() == 1 {
            "all in the same instant (MEDIA_BENCH_BURST=1)"
        } else {
            "spread over each 20 ms"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
