//! The detector on a world corpus it was never tuned on: `corpus/world.py` generates a small
//! hold-out part (voices and scripts never in the tuning part, every noise kind at 40-10 dB
//! SNR, both G.711 laws, loss, jitter, clipping), and the defaults must hold there.
//!
//! Needs python3 with numpy, espeak-ng, flite and sox: a missing one skips the test with a
//! notice, or fails it under CI (`CI=1`). The full-size figures are in `docs/amd.md`.

use media::detect::{AmdParams, AmdResult, Corpus, CorpusReport, Truth};
use std::path::Path;
use std::process::Command;

/// Clips per part: small enough for a test (about 20 s of generation on one core).
const CLIPS: &str = "80";

#[test]
fn holdout_of_the_world_corpus_keeps_the_bounds() {
    for tool in ["python3", "espeak-ng", "flite", "sox"] {
        if testkit::program(tool).is_none() {
            return;
        }
    }
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status();
    if !numpy.is_ok_and(|s| s.success()) {
        testkit::missing("python3-numpy", "python3 cannot import numpy");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/world.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([
            "--part", "holdout", "--clips", CLIPS, "--seed", "7", "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "world.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("manifest sha256"), "{stdout}");

    let corpus = Corpus::load(dir.path()).unwrap();
    assert_eq!(corpus.clips.len(), 80);
    assert!(corpus.clips.iter().all(|c| c.split == "holdout"));
    let samples = corpus.read_all().unwrap();
    let ours = CorpusReport::run(&AmdParams::default(), &corpus, &samples).unwrap();
    let asterisk = CorpusReport::run(&AmdParams::asterisk(), &corpus, &samples).unwrap();
    let table = format!(
        "{}\n{}",
        ours.matrix_beside(&asterisk, "ours", "asterisk"),
        ours.by_condition(&asterisk, &["noise"])
    );
    eprintln!("{table}");

    // A guard against regressions at today's figures (docs/amd.md has the full-size hold-out
    // and the targets, not all met): live answers at 15 dB SNR or better, at most two
    // of about 37 taken for a machine.
    let clean: Vec<_> = ours
        .outcomes
        .iter()
        .filter(|o| o.clip.truth == Truth::Human)
        .filter(|o| o.clip.label("snr_db").parse::<u32>().unwrap_or(99) >= 15)
        .collect();
    let wrong = clean
        .iter()
        .filter(|o| o.verdict.result == AmdResult::Machine)
        .count();
    assert!(
        wrong <= 2,
        "{wrong} of {} live answers called MACHINE\n{table}",
        clean.len()
    );
    assert!(
        // 83.3 % today: short greetings without a beep pass for people.
        ours.percent(Truth::Machine, AmdResult::Machine) >= 70.0,
        "machines found\n{table}"
    );
    let lat = ours.human_latencies();
    assert!(lat[lat.len() / 2] <= 900, "latency\n{table}");
    // And the baseline really is worse on the same clips.
    assert!(
        asterisk.count(Truth::Human, AmdResult::Machine)
            > ours.count(Truth::Human, AmdResult::Machine) + 3,
        "{table}"
    );
}
