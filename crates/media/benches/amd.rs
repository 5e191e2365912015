//! AMD quality and cost: `cargo bench -p media --bench amd`.
//!
//! Quality: the confusion matrices of our detector and of the Asterisk `app_amd` baseline on the
//! committed corpus (`crates/media/corpus`), for the tuning half (`train`), the held-out voices
//! (`test`) and all clips, with per-kind results and the HUMAN decision latency.
//!
//! Cost: CPU time of the detectors alone per stream-second of audio (AMD, AMD + tones), and the
//! number of concurrent 8 kHz streams one core could analyse at that cost.

use media::detect::{AmdDetector, AmdParams, AmdResult, Corpus, CorpusReport, Tones, Truth};
use std::path::Path;
use std::time::Instant;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let corpus = match Corpus::load(&dir) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("cannot load the corpus: {err}");
            std::process::exit(1);
        }
    };
    let samples = match corpus.read_all() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("cannot read the corpus: {err}");
            std::process::exit(1);
        }
    };
    let ours = CorpusReport::run(&AmdParams::default(), &corpus, &samples).expect("valid defaults");
    let asterisk =
        CorpusReport::run(&AmdParams::asterisk(), &corpus, &samples).expect("valid baseline");

    println!("# AMD quality on {} clips", corpus.clips.len());
    for (split, what) in [
        (Some("train"), "train (voices used for tuning)"),
        (Some("test"), "test (held-out voices, never tuned on)"),
        (None, "all"),
    ] {
        let (o, a) = (ours.split(split), asterisk.split(split));
        println!("\n## {what}\n");
        println!("adaptive (ours):\n{}", o.matrix());
        println!("asterisk app_amd defaults:\n{}", a.matrix());
    }
    println!(
        "## per kind, all clips\n\nadaptive (ours):\n{}",
        ours.by_kind()
    );
    println!("asterisk app_amd defaults:\n{}", asterisk.by_kind());
    println!("## misclassified by ours\n");
    for o in ours.errors() {
        println!(
            "  {:<44} {:<8} -> {} {} at {} ms",
            o.clip.file, o.clip.split, o.verdict.result, o.verdict.cause, o.verdict.decided_at_ms
        );
    }
    println!(
        "\nsummary: ours {:.1}% live -> MACHINE, {:.1}% machines -> MACHINE; \
         asterisk {:.1}% / {:.1}%",
        ours.percent(Truth::Human, AmdResult::Machine),
        ours.percent(Truth::Machine, AmdResult::Machine),
        asterisk.percent(Truth::Human, AmdResult::Machine),
        asterisk.percent(Truth::Machine, AmdResult::Machine),
    );

    cost(&samples);
}

/// Seconds this thread has run on a CPU, if known. `CLOCK_THREAD_CPUTIME_ID` rather than
/// `/proc/thread-self/schedstat`: the latter is brought up to date only at the scheduler's tick
/// (4 ms here), longer than a whole run of the Asterisk baseline, which then read as 0 us.
fn cpu_seconds() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain system call writing into a valid timespec on this stack frame.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// Times the detectors on the corpus audio, fed in 20 ms packets, never stopping at a verdict
/// (the worst case: a detector that is still listening).
fn cost(samples: &[Vec<i16>]) {
    println!("\n# Cost per stream (thread CPU time, median of 7 runs)\n");
    let audio: Vec<i16> = samples.iter().flatten().copied().collect();
    let seconds = audio.len() as f64 / 8000.0;
    let mut rows = Vec::new();
    for (name, mut run) in [
        (
            "AMD adaptive, tones inside",
            Box::new(|a: &[i16]| {
                // Limits far away, so the detector keeps listening (the costly case); a fresh
                // one after each verdict (the corpus beeps still decide).
                let params = AmdParams {
                    total_analysis_time_ms: 60_000,
                    initial_silence_ms: 60_000,
                    greeting_ms: 60_000,
                    maximum_number_of_words: 100,
                    maximum_syllables: 1000,
                    maximum_word_length_ms: 60_000,
                    after_greeting_silence_ms: 60_000,
                    ..AmdParams::default()
                };
                let mut count = 0u32;
                let mut amd = AmdDetector::new(params.clone()).expect("valid");
                let mut ts = 0u32;
                for packet in a.chunks(160) {
                    if amd.push(packet, ts).is_some() {
                        count += 1;
                        amd = AmdDetector::new(params.clone()).expect("valid");
                    }
                    ts = ts.wrapping_add(160);
                }
                count
            }) as Box<dyn FnMut(&[i16]) -> u32>,
        ),
        (
            "AMD (asterisk baseline)",
            Box::new(|a: &[i16]| {
                let mut count = 0u32;
                let mut amd = AmdDetector::baseline();
                let mut ts = 0u32;
                for packet in a.chunks(160) {
                    if let Some(_v) = amd.push(packet, ts) {
                        count += 1;
                        amd = AmdDetector::baseline();
                    }
                    ts = ts.wrapping_add(160);
                }
                count
            }),
        ),
        (
            "tones alone",
            Box::new(|a: &[i16]| {
                let mut tones = Tones::default();
                let mut count = 0u32;
                let mut ts = 0u32;
                for packet in a.chunks(160) {
                    count += u32::from(tones.push(packet, ts).is_some());
                    ts = ts.wrapping_add(160);
                }
                count
            }),
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..7 {
            let (wall, cpu) = (Instant::now(), cpu_seconds());
            std::hint::black_box(run(std::hint::black_box(&audio)));
            // CPU time of this thread when the OS tells it: the machine is shared, and wall
            // time counts the time other builds held the core.
            times.push(match (cpu, cpu_seconds()) {
                (Some(a), Some(b)) => b - a,
                _ => wall.elapsed().as_secs_f64(),
            });
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        // CPU seconds per stream-second; streams per core at 100 % of it.
        let per_stream = median / seconds;
        rows.push((name, per_stream * 1e6, 1.0 / per_stream));
    }
    println!(
        "{:<26} {:>18} {:>22} {:>26}",
        "detector", "us CPU / stream-s", "streams per core", "core share, 5,000 streams"
    );
    for (name, us, streams) in rows {
        println!(
            "{name:<26} {us:>18.2} {streams:>22.0} {:>25.1}%",
            5000.0 * us / 1e6 * 100.0
        );
    }
    println!(
        "\n({seconds:.0} s of corpus audio per run, 7 runs, median; \
         memory per detector: AmdDetector {} bytes, Tones {} bytes, no allocation per push)",
        std::mem::size_of::<AmdDetector>(),
        std::mem::size_of::<Tones>()
    );
}
