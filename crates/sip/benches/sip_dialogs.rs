//! Memory per established dialog: `DIALER_BENCH_DIALOGS` (10,000) calls to sipp, answered with a
//! 90 s session timer that the dialer refreshes (UPDATE at 45 s), held until every dialog has
//! been refreshed at least once. A counting allocator measures the heap of the whole process
//! (endpoint, core, channels, and one task and `Call` handle per call, as the engine holds them)
//! against the same process before the first call.
//!
//!     cargo bench -p sip --bench sip_dialogs

use sip::sdp::LocalMedia;
use sip::{CallEvent, CallerId, Endpoint, EndpointConfig, OutboundCall, TrunkConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testkit::sipp::Sipp;

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let dialogs = env("DIALER_BENCH_DIALOGS", 10_000);
    let cps = env("DIALER_BENCH_CPS", 500) as u32;
    let Some(sipp) = Sipp::carrier_with(
        "carrier_session_timer.xml",
        "u1",
        dialogs as u32,
        &[
            "-watchdog_minor_threshold",
            "5000",
            "-watchdog_major_threshold",
            "20000",
            "-max_recv_loops",
            "10000",
        ],
        false,
        600,
    ) else {
        return;
    };
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.session_expires = Some(Duration::from_secs(90));
    let (endpoint, _incoming) = Endpoint::bind(config).await.expect("bind");
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), cps))
        .await
        .expect("trunk");
    let hang_up = Arc::new(tokio::sync::Notify::new());
    let (answered_tx, mut answered_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = live();
    let started = Instant::now();
    for n in 0..dialogs {
        let call = OutboundCall {
            number: format!("+1555{:07}", n),
            caller_id: CallerId {
                number: "+15550001111".into(),
                name: None,
            },
            media: LocalMedia::new("127.0.0.1:40000".parse().unwrap()),
            ring_timeout: Duration::from_secs(30),
            headers: Vec::new(),
        };
        let mut call = endpoint.dial(&trunk, call).await.expect("dial");
        let (answered, ended, hang_up) = (answered_tx.clone(), ended_tx.clone(), hang_up.clone());
        tokio::spawn(async move {
            let hang_up = hang_up.notified();
            tokio::pin!(hang_up);
            // A finished `Notified` is ready again at every poll: hang up once, then only wait
            // for the end (hanging up in a loop floods the endpoint's command queue).
            let mut hung_up = false;
            loop {
                tokio::select! {
                    event = call.next_event() => match event {
                        Some(CallEvent::Answered { .. }) => {
                            let _ = answered.send(true);
                        }
                        Some(CallEvent::Ended(end)) => {
                            // Ended before we hung up: a failure (refresh lost, ...).
                            let _ = ended.send(end.cause == sip::EndCause::LocalHangup);
                            return;
                        }
                        Some(_) => {}
                        None => return,
                    },
                    _ = &mut hang_up, if !hung_up => {
                        hung_up = true;
                        call.hangup();
                    }
                }
            }
        });
    }
    let mut answered = 0;
    while answered < dialogs {
        match tokio::time::timeout(Duration::from_secs(60), answered_rx.recv()).await {
            Ok(Some(_)) => answered += 1,
            _ => break,
        }
    }
    let set_up = started.elapsed();
    // Timer M (32 s) retires the INVITE transactions; from then on only dialogs are left.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let held = live();
    // Every dialog refreshes 45 s after its answer: wait until all have.
    let refresh_deadline = Instant::now() + Duration::from_secs(90);
    while endpoint.stats().session_refreshes < dialogs && Instant::now() < refresh_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refreshed = live();
    let stats = endpoint.stats();
    let mut early_ends = 0;
    while ended_rx.try_recv().is_ok() {
        early_ends += 1;
    }
    hang_up.notify_waiters();
    let mut ended_clean = 0;
    let mut ended_other = early_ends;
    while ended_clean + ended_other < answered {
        match tokio::time::timeout(Duration::from_secs(60), ended_rx.recv()).await {
            Ok(Some(true)) => ended_clean += 1,
            Ok(Some(false)) => ended_other += 1,
            _ => break,
        }
    }
    let sipp = sipp.finish_within(Duration::from_secs(120)).await;
    let per = |bytes: usize| bytes.saturating_sub(baseline) as f64 / answered.max(1) as f64;
    println!(
        "sip_dialogs: {dialogs} calls answered with a 90 s session timer (sipp UAS on loopback)"
    );
    println!(
        "  answered                 {answered} in {:.1} s",
        set_up.as_secs_f64()
    );
    println!("  heap before the calls    {:.1} MB", baseline as f64 / 1e6);
    println!(
        "  heap, all held           {:.1} MB: {:.0} bytes per dialog",
        held as f64 / 1e6,
        per(held)
    );
    println!(
        "  heap, after refreshes    {:.1} MB: {:.0} bytes per dialog",
        refreshed as f64 / 1e6,
        per(refreshed)
    );
    println!(
        "  session refreshes sent   {} (UPDATE)",
        stats.session_refreshes
    );
    println!("  retransmissions sent     {}", stats.retransmissions);
    println!("  transaction timeouts     {}", stats.transaction_timeouts);
    println!("  hung up cleanly          {ended_clean}, other ends {ended_other}");
    println!(
        "  sipp exit code           {:?} (0: every call as scripted)",
        sipp.code
    );
    if sipp.code != Some(0) {
        println!("{}", sipp.diagnostics);
    }
}
