//! Call set-up rate against sipp as the carrier on loopback: the dialer places calls on one trunk
//! capped at `DIALER_BENCH_CPS` (500) for `DIALER_BENCH_SECS` (60 s); sipp answers each at once
//! and the dialer hangs up after `DIALER_BENCH_HOLD_MS` (1000 ms). Prints the achieved rate, the
//! busiest one-second window (the CPS cap), failures, retransmissions and timeouts, and the CPU
//! time used by this process (endpoint and one task per call) and by sipp.
//!
//!     cargo bench -p sip --bench sip_load
//!
//! With `DIALER_BENCH_PEER=udp,tls` (or one of them) the far side is instead our own endpoint
//! in the same process, answering every call at once, reached over UDP or over TLS (a `sips:`
//! trunk, a test CA, one connection reused for every call): a table of the call set-up rate,
//! the set-up time (INVITE to 200) and the CPU per call of both ends together, per transport.
//!
//!     DIALER_BENCH_PEER=udp,tls DIALER_BENCH_CPS=300 DIALER_BENCH_SECS=20 cargo bench -p sip --bench sip_load

use sip::sdp::LocalMedia;
use sip::{
    CallEvent, CallerId, Endpoint, EndpointConfig, InviteResult, OutboundCall, TlsClient,
    TlsServer, Transport, TrunkConfig,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testkit::sipp::Sipp;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The most INVITEs sent within any `window`.
fn busiest(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// CPU seconds (user + system) of this process and of its waited-for children (sipp), from
/// `/proc/self/stat` (fields 14-17, in clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let ticks = |from: usize| {
        fields.get(from).copied().unwrap_or(0) + fields.get(from + 1).copied().unwrap_or(0)
    };
    // utime is field 14 of the line, 12th after the name (state is the first).
    (ticks(11) as f64 / 100.0, ticks(13) as f64 / 100.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

/// What one transport's run of the peer mode measured.
struct PeerRow {
    transport: &'static str,
    calls: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_call: f64,
    failed: u64,
    retransmissions: u64,
}

/// Places `total` calls at `cps` on our own endpoint as the UAS, over `transport`.
async fn peer_run(transport: Transport, total: u64, cps: u32, hold: Duration) -> PeerRow {
    let ca = testkit::tls::TestCa::new("sip_load CA");
    let mut uas_config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    if transport == Transport::Tls {
        let leaf = ca.leaf(&["localhost"]);
        uas_config.tls = vec!["127.0.0.1:0".parse().unwrap()];
        uas_config.tls_server =
            Some(TlsServer::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes()).expect("cert"));
    }
    let (uas, mut incoming) = Endpoint::bind(uas_config).await.expect("bind the UAS");
    let answerer = tokio::spawn(async move {
        while let Some(offered) = incoming.next_call().await {
            tokio::spawn(async move {
                if let Ok(mut call) = offered
                    .answer(LocalMedia::new("127.0.0.1:41000".parse().unwrap()))
                    .await
                {
                    let _ = call.wait_end().await;
                }
            });
        }
    });
    let target = match transport {
        Transport::Tls => format!(
            "sips:localhost:{}",
            uas.local_addr(Transport::Tls).expect("TLS listener").port()
        ),
        _ => format!(
            "sip:{}",
            uas.local_addr(Transport::Udp).expect("UDP listener")
        ),
    };
    let mut uac_config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    uac_config.tls_client = Some(TlsClient::from_ca_pem(ca.pem.as_bytes()).expect("CA"));
    let (uac, _incoming) = Endpoint::bind(uac_config).await.expect("bind the UAC");
    let trunk = uac
        .trunk(TrunkConfig::new(target.parse().unwrap(), cps))
        .await
        .expect("trunk");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let (cpu_before, _) = cpu_seconds();
    let mut sent = Vec::with_capacity(total as usize);
    for n in 0..total {
        let call = OutboundCall {
            number: format!("+1555{:07}", n % 10_000_000),
            caller_id: CallerId {
                number: "+15550001111".into(),
                name: None,
            },
            media: LocalMedia::new("127.0.0.1:40000".parse().unwrap()),
            ring_timeout: Duration::from_secs(30),
            headers: Vec::new(),
        };
        let Ok(mut call) = uac.dial(&trunk, call).await else {
            let _ = done_tx.send(None);
            continue;
        };
        let at = Instant::now();
        sent.push(at);
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut setup = None;
            while let Some(event) = call.next_event().await {
                match event {
                    CallEvent::Answered { .. } => {
                        setup = Some(at.elapsed());
                        tokio::time::sleep(hold).await;
                        call.hangup();
                    }
                    CallEvent::Ended(_) => break,
                    _ => {}
                }
            }
            let _ = done.send(setup);
        });
    }
    drop(done_tx);
    let mut setups = Vec::new();
    let mut failed = 0;
    while let Some(result) = done_rx.recv().await {
        match result {
            Some(setup) => setups.push(setup),
            None => failed += 1,
        }
    }
    let (cpu_after, _) = cpu_seconds();
    let span = sent.last().zip(sent.first()).map(|(l, f)| *l - *f);
    let rate = span
        .map(|span| (sent.len() - 1) as f64 / span.as_secs_f64())
        .unwrap_or(0.0);
    setups.sort();
    let pick = |p: f64| {
        setups
            .get(((setups.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let retransmissions = uac.stats().retransmissions + uas.stats().retransmissions;
    uac.shutdown();
    uas.shutdown();
    answerer.abort();
    PeerRow {
        transport: match transport {
            Transport::Tls => "TLS (one connection)",
            _ => "UDP",
        },
        calls: sent.len(),
        rate,
        p50: pick(0.5),
        p99: pick(0.99),
        cpu_per_call: (cpu_after - cpu_before) / sent.len().max(1) as f64 * 1e6,
        failed,
        retransmissions,
    }
}

/// The peer mode: the same load over each transport named in `peers`, then the table.
async fn peers(peers: &str) {
    let cps = env("DIALER_BENCH_CPS", 300) as u32;
    let secs = env("DIALER_BENCH_SECS", 20);
    let hold = Duration::from_millis(env("DIALER_BENCH_HOLD_MS", 1000));
    let mut rows = Vec::new();
    for name in peers.split(',').map(str::trim) {
        let transport = match name {
            "udp" => Transport::Udp,
            "tls" => Transport::Tls,
            other => panic!("DIALER_BENCH_PEER: `{other}` is not udp or tls"),
        };
        rows.push(peer_run(transport, cps as u64 * secs, cps, hold).await);
    }
    println!(
        "\nsip_load, our own endpoint as the UAS in the same process: cap {cps}/s for {secs} s, each \
         call held {hold:?}"
    );
    println!(
        "{:<22} | {:>6} | {:>12} | {:>16} | {:>18} | {:>6} | {:>7}",
        "transport", "calls", "calls/s", "set-up p50/p99", "CPU per call", "failed", "retrans"
    );
    println!("{}", "-".repeat(106));
    for row in &rows {
        println!(
            "{:<22} | {:>6} | {:>12.1} | {:>7.2}/{:>5.2} ms | {:>9.0} us both | {:>6} | {:>7}",
            row.transport,
            row.calls,
            row.rate,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.cpu_per_call,
            row.failed,
            row.retransmissions
        );
    }
}

async fn run() {
    if let Ok(list) = std::env::var("DIALER_BENCH_PEER") {
        peers(&list).await;
        return;
    }
    let cps = env("DIALER_BENCH_CPS", 500) as u32;
    let secs = env("DIALER_BENCH_SECS", 60);
    let hold = Duration::from_millis(env("DIALER_BENCH_HOLD_MS", 1000));
    let total = cps as u64 * secs;
    let Some(sipp) = Sipp::carrier_with(
        "carrier_load.xml",
        "u1",
        total as u32,
        &[
            "-watchdog_minor_threshold",
            "5000",
            "-watchdog_major_threshold",
            "20000",
            "-max_recv_loops",
            "10000",
        ],
        false,
        secs + 120,
    ) else {
        return;
    };
    let (endpoint, _incoming) = Endpoint::bind(EndpointConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("bind");
    let trunk = endpoint
        .trunk(TrunkConfig::new(sipp.uri("u1").parse().unwrap(), cps))
        .await
        .expect("trunk");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut sent = Vec::with_capacity(total as usize);
    let started = Instant::now();
    let (cpu_before, _) = cpu_seconds();
    for n in 0..total {
        let call = OutboundCall {
            number: format!("+1555{:07}", n % 10_000_000),
            caller_id: CallerId {
                number: "+15550001111".into(),
                name: None,
            },
            media: LocalMedia::new("127.0.0.1:40000".parse().unwrap()),
            ring_timeout: Duration::from_secs(30),
            headers: Vec::new(),
        };
        let mut call = match endpoint.dial(&trunk, call).await {
            Ok(call) => call,
            Err(err) => {
                let _ = done_tx.send(Err(err.to_string()));
                continue;
            }
        };
        sent.push(Instant::now());
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut answered = false;
            while let Some(event) = call.next_event().await {
                match event {
                    CallEvent::Answered { .. } => {
                        answered = true;
                        tokio::time::sleep(hold).await;
                        call.hangup();
                    }
                    CallEvent::Ended(end) => {
                        let _ = done.send(Ok((answered, end)));
                        return;
                    }
                    _ => {}
                }
            }
            let _ = done.send(Err("endpoint stopped".into()));
        });
    }
    let dialing = started.elapsed();
    drop(done_tx);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = 0;
    while let Some(result) = done_rx.recv().await {
        let key = match result {
            Ok((true, end)) if end.outcome == InviteResult::Answered => {
                "answered, hung up by us".to_owned()
            }
            Ok((_, end)) => {
                failed += 1;
                format!("{:?} {:?} {:?}", end.outcome, end.cause, end.code)
            }
            Err(err) => {
                failed += 1;
                format!("error: {err}")
            }
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let elapsed = started.elapsed();
    let (cpu_after, _) = cpu_seconds();
    let stats = endpoint.stats();
    let sipp = sipp.finish_within(Duration::from_secs(60)).await;
    let (_, sipp_cpu) = cpu_seconds();
    let span = sent
        .last()
        .copied()
        .zip(sent.first().copied())
        .map(|(last, first)| last - first);
    let rate = span
        .map(|span| (sent.len() - 1) as f64 / span.as_secs_f64())
        .unwrap_or(0.0);
    let window = busiest(&sent, Duration::from_secs(1));
    // INVITEs in each whole second after the first one (the last, partial second left out).
    let mut seconds = vec![0usize; span.map(|span| span.as_secs() as usize).unwrap_or(0)];
    for time in &sent {
        let second = (*time - sent[0]).as_secs() as usize;
        if let Some(count) = seconds.get_mut(second) {
            *count += 1;
        }
    }
    let quietest = seconds.iter().min().copied().unwrap_or(0);
    let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
    let min_gap = gaps.iter().min().copied().unwrap_or_default();
    println!(
        "sip_load: {total} calls at a cap of {cps}/s, each held {hold:?} (sipp UAS on loopback)"
    );
    println!(
        "  INVITEs sent            {} in {:.2} s",
        sent.len(),
        dialing.as_secs_f64()
    );
    println!(
        "  achieved rate           {rate:.1} calls/s ({:+.2}% of the cap)",
        (rate / cps as f64 - 1.0) * 100.0
    );
    println!(
        "  busiest 1 s window      {window} INVITEs ({:+.2}% of the cap)",
        (window as f64 / cps as f64 - 1.0) * 100.0
    );
    println!(
        "  quietest whole second   {quietest} INVITEs ({:+.2}% of the cap; {} whole seconds)",
        (quietest as f64 / cps as f64 - 1.0) * 100.0,
        seconds.len()
    );
    println!(
        "  smallest INVITE gap     {:.3} ms (period {:.3} ms)",
        min_gap.as_secs_f64() * 1e3,
        1e3 / cps as f64
    );
    for (outcome, count) in &outcomes {
        println!("  outcome                 {count:>6}  {outcome}");
    }
    println!("  failed calls            {failed}");
    let dialer_cpu = cpu_after - cpu_before;
    println!(
        "  dialer CPU              {dialer_cpu:.1} s over {:.1} s wall ({:.0}% of one core; {:.1} us per call)",
        elapsed.as_secs_f64(),
        dialer_cpu / elapsed.as_secs_f64() * 100.0,
        dialer_cpu / sent.len().max(1) as f64 * 1e6
    );
    println!(
        "  sipp CPU                {sipp_cpu:.1} s ({:.0}% of one core over the dialer's wall time)",
        sipp_cpu / elapsed.as_secs_f64() * 100.0
    );
    println!("  retransmissions sent    {}", stats.retransmissions);
    println!(
        "  retransmissions heard   {}",
        stats.retransmissions_absorbed
    );
    println!("  transaction timeouts    {}", stats.transaction_timeouts);
    println!(
        "  messages sent/received  {} / {}",
        stats.messages_sent, stats.messages_received
    );
    println!(
        "  parse errors / dropped  {} / {}",
        stats.parse_errors, stats.dropped
    );
    println!(
        "  sipp exit code          {:?} (0: every call as scripted)",
        sipp.code
    );
    if sipp.code != Some(0) {
        println!("{}", sipp.diagnostics);
    }
}
