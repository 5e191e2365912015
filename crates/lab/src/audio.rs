//! The lab's audio: greetings picked by label from the media crate's labelled corpus (real
//! recorded-style answers of people and machines), the lab's own sentences for conversations
//! (`crates/lab/audio`, made by its `generate.sh`, built into the binary), the two messages a
//! demo campaign plays, and generated tones (special information tones, voicemail beeps).

use crate::LabError;
use crate::dist::Dist;
use crate::plan::stable_hash;
use media::Prompt;
use media::detect::{Channel, SitCode, read_wav};
use rand::RngExt;
use serde::Deserialize;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The abandon message of the demo campaign (WAV, 8 kHz 16-bit): names the caller, promises a
/// call back, gives an opt-out number.
pub const ABANDON_MESSAGE_WAV: &[u8] = include_bytes!("../audio/abandon.wav");
/// The voicemail message of the demo campaign (WAV, 8 kHz 16-bit).
pub const VOICEMAIL_MESSAGE_WAV: &[u8] = include_bytes!("../audio/voicemail.wav");

const CUSTOMER_LINES: [(&str, &[u8]); 6] = [
    ("customer_01", include_bytes!("../audio/customer_01.wav")),
    ("customer_02", include_bytes!("../audio/customer_02.wav")),
    ("customer_03", include_bytes!("../audio/customer_03.wav")),
    ("customer_04", include_bytes!("../audio/customer_04.wav")),
    ("customer_05", include_bytes!("../audio/customer_05.wav")),
    ("customer_06", include_bytes!("../audio/customer_06.wav")),
];

const AGENT_LINES: [(&str, &[u8]); 5] = [
    ("agent_01", include_bytes!("../audio/agent_01.wav")),
    ("agent_02", include_bytes!("../audio/agent_02.wav")),
    ("agent_03", include_bytes!("../audio/agent_03.wav")),
    ("agent_04", include_bytes!("../audio/agent_04.wav")),
    ("agent_05", include_bytes!("../audio/agent_05.wav")),
];

/// The media crate's labelled corpus, where it is in this source tree.
pub fn default_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../media/corpus")
}

/// Which greetings to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankConfig {
    /// The corpus folder (with `labels.csv` and the clips).
    pub corpus: PathBuf,
    /// Kinds of live answers to use (`hello`, `yes`, `whos_this`, ...); empty: every kind.
    pub human_kinds: Vec<String>,
    /// Kinds of machine greetings to use; each is made to end in a beep.
    pub machine_kinds: Vec<String>,
    /// Only clips of this split (`train` or `test`); `None`: both.
    pub split: Option<String>,
}

impl Default for BankConfig {
    /// Every live answer; the machine greetings that speak (beep, short, long, carrier
    /// voicemail), not music or silence, which a campaign cannot leave a message on anyway.
    fn default() -> Self {
        BankConfig {
            corpus: default_corpus(),
            human_kinds: Vec::new(),
            machine_kinds: ["beep", "short_greeting", "long_greeting", "carrier"]
                .map(String::from)
                .to_vec(),
            split: None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Label {
    file: String,
    truth: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    voice: String,
    #[serde(default)]
    split: String,
    #[serde(default)]
    beep_hz: String,
}

/// One greeting a callee plays on answering.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// The clip's file, relative to the corpus.
    pub file: String,
    /// The clip's kind label.
    pub kind: String,
    /// The espeak-ng voice of the clip.
    pub voice: String,
    /// The audio (for a machine, up to the end of its beep).
    pub prompt: Prompt,
    /// For a machine: whether the beep is the clip's own (else the lab added one).
    pub own_beep: bool,
}

/// Every sound the lab plays, loaded once and shared by every call.
#[derive(Debug, Clone)]
pub struct Bank {
    /// Live answers' greetings.
    pub humans: Arc<[Greeting]>,
    /// Machines' greetings, each ending in a beep.
    pub machines: Arc<[Greeting]>,
    /// Sentences a callee says in conversation.
    pub customer_lines: Arc<[Prompt]>,
    /// Sentences an agent says.
    pub agent_lines: Arc<[Prompt]>,
}

fn embedded(lines: &[(&str, &[u8])]) -> Result<Arc<[Prompt]>, LabError> {
    lines
        .iter()
        .map(|(name, bytes)| Ok(Prompt::from_wav_reader(Cursor::new(*bytes), name)?))
        .collect()
}

/// The index one past the last sample louder than `level`.
fn audible_end(samples: &[i16], level: u16) -> usize {
    samples
        .iter()
        .rposition(|s| s.unsigned_abs() > level)
        .map_or(0, |i| i + 1)
}

impl Bank {
    /// Loads the lab's sentences, and the greetings of the corpus matching `config`.
    pub fn load(config: &BankConfig) -> Result<Bank, LabError> {
        let labels_path = config.corpus.join("labels.csv");
        let corpus_error = |why: String| LabError::Corpus {
            path: labels_path.display().to_string(),
            why,
        };
        let mut reader =
            csv::Reader::from_path(&labels_path).map_err(|e| corpus_error(e.to_string()))?;
        let mut humans = Vec::new();
        let mut machines = Vec::new();
        for (line, label) in reader.deserialize::<Label>().enumerate() {
            let label = label.map_err(|e| corpus_error(format!("line {}: {e}", line + 2)))?;
            if config
                .split
                .as_ref()
                .is_some_and(|split| *split != label.split)
            {
                continue;
            }
            let (kinds, list) = match label.truth.as_str() {
                "human" => (&config.human_kinds, &mut humans),
                "machine" => (&config.machine_kinds, &mut machines),
                _ => continue,
            };
            let wanted = if label.truth == "machine" {
                kinds.contains(&label.kind)
            } else {
                kinds.is_empty() || kinds.contains(&label.kind)
            };
            if !wanted {
                continue;
            }
            let path = config.corpus.join(&label.file);
            let samples = read_wav(&path, Channel::Mix).map_err(|e| LabError::Corpus {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
            let (samples, own_beep) = if label.truth == "machine" {
                machine_greeting(samples, &label)
            } else {
                (samples, false)
            };
            list.push(Greeting {
                prompt: Prompt::from_samples(samples, &label.file),
                file: label.file,
                kind: label.kind,
                voice: label.voice,
                own_beep,
            });
        }
        if humans.is_empty() {
            return Err(LabError::NoClips {
                truth: "human",
                kinds: kinds_text(&config.human_kinds),
            });
        }
        if machines.is_empty() {
            return Err(LabError::NoClips {
                truth: "machine",
                kinds: kinds_text(&config.machine_kinds),
            });
        }
        Ok(Bank {
            humans: humans.into(),
            machines: machines.into(),
            customer_lines: embedded(&CUSTOMER_LINES)?,
            agent_lines: embedded(&AGENT_LINES)?,
        })
    }

    /// The number of (human, machine) greetings, for [`crate::Planner::plan`].
    pub fn greeting_counts(&self) -> (usize, usize) {
        (self.humans.len(), self.machines.len())
    }
}

fn kinds_text(kinds: &[String]) -> String {
    if kinds.is_empty() {
        "any".into()
    } else {
        kinds.join("|")
    }
}

/// A machine's greeting, cut after its beep; a greeting without a beep of its own gets one
/// (a frequency chosen from the file name, so it is the same on every run).
fn machine_greeting(mut samples: Vec<i16>, label: &Label) -> (Vec<i16>, bool) {
    let own_beep = !label.beep_hz.trim().is_empty();
    // Keep 50 ms after the last audible sample: the beep's tail, or the greeting's last word.
    let end = (audible_end(&samples, 600) + 400).min(samples.len());
    samples.truncate(end);
    if !own_beep {
        const BEEPS: [f64; 4] = [440.0, 850.0, 1000.0, 1400.0];
        let hz = BEEPS[(stable_hash(label.file.as_bytes()) % BEEPS.len() as u64) as usize];
        samples.extend(silence(Duration::from_millis(400)));
        let mut phase = 0.0;
        samples.extend(tone(hz, Duration::from_millis(450), 9000.0, &mut phase));
    }
    (samples, own_beep)
}

/// Silence of this length at 8 kHz.
pub fn silence(length: Duration) -> Vec<i16> {
    vec![0; (length.as_millis() as usize) * 8]
}

/// A sine tone at 8 kHz, continuing `phase` (so tones in a row have no click between them).
pub fn tone(hz: f64, length: Duration, amplitude: f64, phase: &mut f64) -> Vec<i16> {
    let n = (length.as_millis() as usize) * 8;
    let step = 2.0 * std::f64::consts::PI * hz / 8000.0;
    (0..n)
        .map(|_| {
            let s = (amplitude * phase.sin()) as i16;
            *phase = (*phase + step) % (2.0 * std::f64::consts::PI);
            s
        })
        .collect()
}

/// The three rising tones of a special information tone (Telcordia SR-2275) encoding `code`,
/// then a second of silence: what an intercept plays before its announcement.
pub fn sit_tones(code: SitCode) -> Prompt {
    const SHORT: u64 = 274;
    const LONG: u64 = 380;
    let (f1, d1, f2, d2) = match code {
        SitCode::Intercept => (913.8, SHORT, 1370.6, SHORT),
        SitCode::VacantCode | SitCode::Unknown => (985.2, LONG, 1370.6, SHORT),
        SitCode::NoCircuit => (985.2, LONG, 1428.5, LONG),
        SitCode::Reorder => (913.8, SHORT, 1428.5, LONG),
        SitCode::IneffectiveOther => (913.8, LONG, 1428.5, SHORT),
    };
    let mut phase = 0.0;
    let mut samples = silence(Duration::from_millis(100));
    samples.extend(tone(f1, Duration::from_millis(d1), 7000.0, &mut phase));
    samples.extend(tone(f2, Duration::from_millis(d2), 7000.0, &mut phase));
    samples.extend(tone(
        1776.7,
        Duration::from_millis(LONG),
        7000.0,
        &mut phase,
    ));
    samples.extend(silence(Duration::from_secs(1)));
    Prompt::from_samples(samples, "sit")
}

/// A talker's turn list: sentences in a random order (never the same twice running) with a
/// pause after each, until `length` is filled. Returns the prompts to queue on a leg.
pub fn script(
    lines: &[Prompt],
    length: Duration,
    gap: &Dist,
    rng: &mut impl rand::Rng,
) -> Vec<Prompt> {
    let mut out = Vec::new();
    let mut total = Duration::ZERO;
    let mut last = usize::MAX;
    while total < length && !lines.is_empty() {
        let mut i = rng.random_range(0..lines.len());
        if i == last && lines.len() > 1 {
            i = (i + 1) % lines.len();
        }
        last = i;
        out.push(lines[i].clone());
        total += lines[i].duration();
        let pause = gap.sample(rng);
        out.push(Prompt::from_samples(silence(pause), "pause"));
        total += pause;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::detect::{ToneEvent, ToneParams, Tones};
    use rand::SeedableRng;

    fn detect(samples: &[i16]) -> Vec<ToneEvent> {
        let mut tones = Tones::new(ToneParams::default());
        let mut events = Vec::new();
        let mut ts = 0u32;
        for chunk in samples
            .chunks(160)
            .chain(std::iter::repeat_n(&[0i16; 160][..], 20))
        {
            if let Some(event) = tones.push(chunk, ts) {
                events.push(event);
            }
            ts = ts.wrapping_add(chunk.len() as u32);
        }
        while let Some(event) = tones.next_event() {
            events.push(event);
        }
        events
    }

    #[test]
    fn sit_tones_are_read_back_as_their_code() {
        for code in [
            SitCode::Intercept,
            SitCode::VacantCode,
            SitCode::NoCircuit,
            SitCode::Reorder,
            SitCode::IneffectiveOther,
        ] {
            let events = detect(sit_tones(code).samples());
            assert!(
                matches!(events.as_slice(), [ToneEvent::Sit { code: got, .. }] if *got == code),
                "{code:?}: {events:?}"
            );
        }
    }

    #[test]
    fn the_bank_loads_greetings_by_label_and_every_machine_ends_in_a_beep() {
        let bank = Bank::load(&BankConfig::default()).unwrap();
        assert!(bank.humans.len() >= 50, "{} humans", bank.humans.len());
        assert!(bank.machines.iter().all(|g| g.kind != "music"));
        for greeting in bank.machines.iter() {
            let events = detect(greeting.prompt.samples());
            assert!(
                events.iter().any(|e| matches!(e, ToneEvent::Beep { .. })),
                "{}: no beep heard ({events:?})",
                greeting.file
            );
        }
        assert_eq!(bank.customer_lines.len(), 6);
        assert!(
            bank.agent_lines
                .iter()
                .all(|p| p.duration() > Duration::from_secs(2))
        );
        let only_yes = Bank::load(&BankConfig {
            human_kinds: vec!["yes".into()],
            split: Some("test".into()),
            ..BankConfig::default()
        })
        .unwrap();
        assert!(only_yes.humans.iter().all(|g| g.kind == "yes"));
        let none = Bank::load(&BankConfig {
            machine_kinds: vec!["robot".into()],
            ..BankConfig::default()
        });
        assert!(matches!(
            none,
            Err(LabError::NoClips {
                truth: "machine",
                ..
            })
        ));
        let missing = Bank::load(&BankConfig {
            corpus: "/nonexistent".into(),
            ..BankConfig::default()
        });
        assert!(matches!(missing, Err(LabError::Corpus { .. })));
    }

    #[test]
    fn scripts_fill_the_time_without_repeating_a_line_twice_running() {
        let lines: Vec<Prompt> = (0..3)
            .map(|i| Prompt::from_samples(vec![1000; 8000 * (i + 1)], &format!("l{i}")))
            .collect();
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(3);
        let parts = script(
            &lines,
            Duration::from_secs(30),
            &Dist::secs(1.0, 2.0),
            &mut rng,
        );
        let total: Duration = parts.iter().map(Prompt::duration).sum();
        assert!(total >= Duration::from_secs(30) && total < Duration::from_secs(36));
        let spoken: Vec<&str> = parts
            .iter()
            .map(Prompt::name)
            .filter(|n| *n != "pause")
            .collect();
        assert!(spoken.windows(2).all(|w| w[0] != w[1]));
    }
}
