//! Cost of one pacing decision at 200 agents, mid-campaign (criterion).
//!
//! The pacer is taken from a simulated campaign after 30 minutes (200 agents, about 170 talking
//! and 125 calls dialing, estimators warm). `decide_full` is a decision in a new time quantum
//! (every agent's and call's contribution recomputed), `event_then_decide` an event then a
//! decision inside a quantum (the sums patched), which is what most of the engine's calls are.
//! Each iteration runs on a fresh clone of the pacer, made in criterion's untimed setup.
//!
//! `cargo bench -p pacing --bench pacing_decide`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pacing::sim::{Scenario, run_dialer};
use pacing::{CallId, Config, Event, Pacer};
use std::hint::black_box;
use std::time::Duration;

fn warm_pacer() -> (Pacer, Duration) {
    let mut s = Scenario::benchmark(200, 1);
    s.duration = 1800.0;
    let live = 26 * 200 * 8;
    s.history = Some((live, live / 40));
    let mut pacer = Pacer::new(Config::default()).unwrap();
    run_dialer(&s, &mut pacer, "warm-up").unwrap();
    let end = Duration::from_secs_f64(s.duration);
    pacer.decide(end);
    (pacer, end)
}

fn decide(c: &mut Criterion) {
    let (pacer, end) = warm_pacer();
    let f = pacer.figures(end);
    eprintln!(
        "state: {} agents ({} talking), {} calls dialing, {} answered, threshold {:.4}",
        f.agents.logged_in, f.agents.talking, f.calls.dialing, f.calls.answered, f.threshold
    );
    let mut group = c.benchmark_group("pacer_200_agents");
    let next = end + Duration::from_millis(600);
    group.bench_function("decide_full", |b| {
        b.iter_batched(
            || pacer.clone(),
            |mut p| black_box(p.decide(black_box(next))),
            BatchSize::SmallInput,
        )
    });
    let inside = end + Duration::from_millis(100);
    group.bench_function("event_then_decide", |b| {
        b.iter_batched(
            || pacer.clone(),
            |mut p| {
                p.handle(inside, Event::CallPlaced(CallId(u64::MAX)));
                black_box(p.decide(black_box(inside)))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
