//! Parameter sweep of the answering-machine detector over a corpus, as used to choose the
//! defaults on the world corpus's `tune` part:
//!
//!     cargo run -p media --release --example amd_sweep -- DIR tune "greeting_ms=4000" "greeting_ms=4500,maximum_syllables=14"
//!
//! One line per parameter set: live answers taken for MACHINE (all, and the worst noise kind at
//! 15 dB SNR or more), machines found, NOTSURE, and the median and p90 HUMAN latency after the
//! greeting's end.

use media::detect::{AmdParams, AmdResult, Corpus, CorpusReport, Truth};
use std::collections::BTreeMap;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, split, sets @ ..] = args.as_slice() else {
        return Err("usage: amd_sweep DIR SPLIT|all [KEY=VALUE[,KEY=VALUE...]]...".into());
    };
    let corpus = Corpus::load(Path::new(dir))?;
    let samples = corpus.read_all()?;
    let split = (split != "all").then_some(split.as_str());
    let sets: Vec<&str> = if sets.is_empty() {
        vec![""]
    } else {
        sets.iter().map(String::as_str).collect()
    };
    for set in sets {
        let mut params = AmdParams::default();
        for pair in set.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or("expected KEY=VALUE")?;
            params.set(k, v)?;
        }
        params.validate()?;
        let r = CorpusReport::run(&params, &corpus, &samples)?.split(split);
        let mut worst: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for o in &r.outcomes {
            let snr: u32 = o.clip.label("snr_db").parse().unwrap_or(99);
            if o.clip.truth == Truth::Human && snr >= 15 {
                let e = worst.entry(o.clip.label("noise").to_string()).or_default();
                e.1 += 1;
                e.0 += usize::from(o.verdict.result == AmdResult::Machine);
            }
        }
        let (wname, (wn, wt)) = worst
            .iter()
            .max_by(|a, b| {
                let ra = a.1.0 as f64 / a.1.1.max(1) as f64;
                let rb = b.1.0 as f64 / b.1.1.max(1) as f64;
                ra.total_cmp(&rb)
            })
            .map(|(k, v)| (k.clone(), *v))
            .unwrap_or_default();
        if std::env::var_os("DUMP").is_some() {
            for o in r.errors() {
                println!(
                    "  {:<44} {:<7} {:>3} {:<6} {:>4} -> {} {} at {} (start {:?} end {:?} label end {:?}, syl {}, words {}) {}",
                    o.clip.file,
                    o.clip.label("noise"),
                    o.clip.label("snr_db"),
                    o.clip.label("codec"),
                    o.clip.label("level_dbfs"),
                    o.verdict.result,
                    o.verdict.cause,
                    o.verdict.decided_at_ms,
                    o.verdict.greeting_start_ms,
                    o.verdict.greeting_end_ms,
                    o.clip.greeting_end_ms,
                    o.verdict.syllables,
                    o.verdict.words,
                    o.clip.label("script"),
                );
            }
        }
        let lat = r.human_latencies();
        let q = |x: f64| {
            lat.get(((lat.len() as f64 - 1.0) * x).round() as usize)
                .copied()
                .unwrap_or(-1)
        };
        println!(
            "{set:<60} live->M {:>5.1}% (worst >=15dB {wname} {wn}/{wt})  machines {:>5.1}%  notsure h/m {}/{}  lat {} / {}",
            r.percent(Truth::Human, AmdResult::Machine),
            r.percent(Truth::Machine, AmdResult::Machine),
            r.count(Truth::Human, AmdResult::NotSure),
            r.count(Truth::Machine, AmdResult::NotSure),
            q(0.5),
            q(0.9),
        );
    }
    Ok(())
}
