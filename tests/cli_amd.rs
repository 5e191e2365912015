//! `dialer amd` end to end: the real binary on real corpus recordings.

use std::path::PathBuf;
use std::process::{Command, Output};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/media/corpus")
}

fn dialer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .output()
        .expect("run dialer")
}

fn clip(name: &str) -> String {
    corpus().join("clips").join(name).display().to_string()
}

/// The first clip of a kind in the committed labels.
fn first_of(kind: &str) -> String {
    let labels = std::fs::read_to_string(corpus().join("labels.csv")).unwrap();
    let line = labels
        .lines()
        .find(|l| l.split(',').nth(2) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} clip"));
    let file = line.split(',').next().unwrap();
    corpus().join(file).display().to_string()
}

#[test]
fn classifies_files_as_json() {
    let hello = first_of("hello");
    let carrier = first_of("carrier");
    let out = dialer(&["amd", "--json", &hello, &carrier]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["result"], "HUMAN");
    assert_eq!(lines[0]["cause"], "HUMAN");
    assert!(lines[0]["decided_at_ms"].as_u64().unwrap() > 800);
    assert!(lines[0]["greeting_end_ms"].as_u64().is_some());
    assert_eq!(lines[0]["file"], hello.as_str());
    assert_eq!(lines[1]["result"], "MACHINE");
}

#[test]
fn text_output_baseline_and_flags() {
    let quiet = first_of("quiet");
    let out = dialer(&["amd", &quiet]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("HUMAN"), "{text}");
    // The Asterisk baseline does not hear a quiet line: initial silence, machine.
    let out = dialer(&["amd", "--baseline", &quiet]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("MACHINE (INITIALSILENCE)"), "{text}");
    // Flags change the parameters: a 100 ms initial silence decides before anyone speaks.
    let out = dialer(&["amd", "--json", "--initial-silence", "100ms", &quiet]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cause"], "INITIALSILENCE");
    assert_eq!(v["decided_at_ms"], 100);
}

#[test]
fn campaign_toml_sets_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("campaign.toml");
    std::fs::write(
        &config,
        "name = \"spring\"\n[amd]\nenabled = true\ninitial_silence = \"200ms\"\n",
    )
    .unwrap();
    let out = dialer(&[
        "amd",
        "--json",
        "--config",
        config.to_str().unwrap(),
        &first_of("pause_hello"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cause"], "INITIALSILENCE");
    assert_eq!(v["decided_at_ms"], 200);
}

#[test]
fn bad_input_is_reported_clearly() {
    let out = dialer(&["amd", "--set", "greting=2s", &clip("none.wav")]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("greting"), "{err}");

    // A missing file is reported; the good one is still classified; the exit code says failure.
    let out = dialer(&["amd", "/nonexistent/x.wav", &first_of("hello")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.wav"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("HUMAN"));

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"not a wav").unwrap();
    let out = dialer(&["amd", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable WAV"));
}

#[test]
fn corpus_prints_both_confusion_matrices() {
    let out = dialer(&[
        "amd",
        "--corpus",
        corpus().to_str().unwrap(),
        "--split",
        "test",
        "--compare",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("adaptive detector"), "{text}");
    assert!(text.contains("asterisk app_amd baseline"), "{text}");
    assert!(text.contains("live answers taken for MACHINE"), "{text}");
}

#[test]
fn corpus_takes_a_plain_folder_of_human_and_machine_recordings() {
    let dir = tempfile::tempdir().unwrap();
    for (sub, kind) in [("human", "hello"), ("machine", "carrier")] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::copy(first_of(kind), dir.path().join(sub).join("call.wav")).unwrap();
    }
    let out = dialer(&["amd", "--corpus", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2 clips"), "{text}");
    assert!(text.contains("asterisk app_amd baseline"), "{text}");
    assert!(
        text.contains("live answers taken for MACHINE: 0.0%"),
        "{text}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = dialer(&["amd", "--corpus", empty.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("human/"),
        "{out:?}"
    );
}
