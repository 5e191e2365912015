//! Decision cost at 200 agents mid-campaign, timed without criterion (the figure in
//! `docs/pacing.md`; `cargo bench -p pacing --bench pacing_decide` measures the same with criterion).
use pacing::sim::{Scenario, run_dialer};
use pacing::{CallId, Config, Event, Pacer};
use std::time::{Duration, Instant};

fn main() {
    let mut s = Scenario::benchmark(200, 1);
    s.duration = 1800.0;
    s.history = Some((41600, 1040));
    let mut pacer = Pacer::new(Config::default()).unwrap();
    run_dialer(&s, &mut pacer, "warm").unwrap();
    let end = Duration::from_secs_f64(s.duration);
    let f = pacer.figures(end);
    println!(
        "{} agents, {} talking, {} dialing",
        f.agents.logged_in, f.agents.talking, f.calls.dialing
    );
    let mut full = Vec::new();
    let mut inside = Vec::new();
    for i in 0..2000u64 {
        let mut p = pacer.clone();
        let t = end + Duration::from_millis(600 + (i % 7) * 500);
        let a = Instant::now();
        std::hint::black_box(p.decide(t));
        full.push(a.elapsed().as_nanos());
        let t2 = t + Duration::from_millis(50);
        let a = Instant::now();
        p.handle(t2, Event::CallPlaced(CallId(u64::MAX - i)));
        std::hint::black_box(p.decide(t2));
        inside.push(a.elapsed().as_nanos());
    }
    full.sort();
    inside.sort();
    println!(
        "full decide: median {} ns, p90 {} ns",
        full[1000], full[1800]
    );
    println!(
        "event + decide inside a quantum: median {} ns, p90 {} ns",
        inside[1000], inside[1800]
    );
}
