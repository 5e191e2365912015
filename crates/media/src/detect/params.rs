//! Parameters of the answering-machine detector, as a campaign sets them (`[amd]` in its TOML).

use serde::{Deserialize, Serialize};

/// Which decision procedure [`crate::detect::AmdDetector`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AmdAlgorithm {
    /// Ours: adaptive noise floor, utterance lengths and pauses instead of a word count, beeps.
    #[default]
    Adaptive,
    /// Asterisk `app_amd` as written: fixed mean-absolute threshold, 20 ms frames, word count.
    Asterisk,
}

/// Every tunable of the detector. The Asterisk names are kept (with their unit) so a campaign
/// manager coming from `amd.conf` finds them; the rest belong to the adaptive algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmdParams {
    /// Decision procedure: `adaptive` (default) or `asterisk`.
    pub algorithm: AmdAlgorithm,
    /// Silence before any speech that makes the call a MACHINE (Asterisk `initial_silence`).
    pub initial_silence_ms: u32,
    /// Longest greeting a person gives; longer is a MACHINE (Asterisk `greeting`). The adaptive
    /// algorithm counts it from the start of the first word to now, pauses included.
    pub greeting_ms: u32,
    /// Silence after the greeting that makes the call HUMAN (Asterisk `after_greeting_silence`).
    pub after_greeting_silence_ms: u32,
    /// Time after which the detector gives up with NOTSURE (Asterisk `total_analysis_time`).
    pub total_analysis_time_ms: u32,
    /// Shortest run of voice that counts as a word (Asterisk `min_word_length`).
    pub min_word_length_ms: u32,
    /// Silence that separates two words (Asterisk `between_words_silence`).
    pub between_words_silence_ms: u32,
    /// Words in a greeting that make the call a MACHINE (Asterisk `maximum_number_of_words`).
    /// The adaptive algorithm counts only words separated by a pause of at least
    /// `phrase_pause_ms`, i.e. phrases, since a person's "hello, who's this?" is three words.
    pub maximum_number_of_words: u32,
    /// Longest single word; longer is a MACHINE (Asterisk `maximum_word_length`).
    pub maximum_word_length_ms: u32,
    /// Mean absolute sample (0..32767) below which a frame is silence (Asterisk
    /// `silence_threshold`). The adaptive algorithm uses it only as the ceiling of its noise floor.
    pub silence_threshold: u16,
    /// Adaptive: a frame is voice when its level is this far above the tracked noise floor.
    pub speech_margin_db: f32,
    /// Adaptive: quietest level (mean absolute sample) that can ever be voice, whatever the floor.
    pub min_speech_level: u16,
    /// Adaptive: how fast the noise floor may rise while sound goes on (dB per second). Slow, so
    /// a machine's continuous speech or music is not absorbed into the floor.
    pub noise_floor_rise_db_per_s: f32,
    /// Adaptive: a pause at least this long ends a phrase (see `maximum_number_of_words`).
    pub phrase_pause_ms: u32,
    /// Adaptive: once the callee has spoken, sound (smoothed over 30 ms) this far below their
    /// syllables' level is background (a television, other people, music), not them (dB).
    pub background_voice_db: f32,
    /// Adaptive: a word this much louder than anything before it in the greeting restarts the
    /// greeting there (dB): what came before was the room (a television, other people, music)
    /// taken for the callee, not the callee.
    pub greeting_restart_db: f32,
    /// Adaptive: syllables in a greeting that make the call a MACHINE. A person says a few
    /// syllables and waits; a greeting says a sentence or two.
    pub maximum_syllables: u32,
    /// Adaptive: how far the level must fall between two syllables for both to count (dB).
    pub syllable_dip_db: f32,
    /// Adaptive: a steady tone (a voicemail beep, fax CNG, SIT) heard during the analysis decides
    /// MACHINE at once.
    pub tones_are_machine: bool,
}

impl Default for AmdParams {
    /// The adaptive algorithm with the values tuned on the corpus's training half. They are the
    /// Asterisk defaults except `greeting_ms` (2500: a person's "Good afternoon, Mike speaking."
    /// at a slow pace runs to 2.4 s, counted from the first word with pauses).
    fn default() -> Self {
        AmdParams {
            algorithm: AmdAlgorithm::Adaptive,
            initial_silence_ms: 2500,
            greeting_ms: 3000,
            after_greeting_silence_ms: 900,
            total_analysis_time_ms: 5000,
            min_word_length_ms: 100,
            between_words_silence_ms: 50,
            maximum_number_of_words: 8,
            maximum_word_length_ms: 5000,
            silence_threshold: 256,
            speech_margin_db: 6.0,
            min_speech_level: 12,
            noise_floor_rise_db_per_s: 3.0,
            phrase_pause_ms: 250,
            background_voice_db: 7.0,
            greeting_restart_db: 10.0,
            maximum_syllables: 12,
            syllable_dip_db: 7.0,
            tones_are_machine: true,
        }
    }
}

/// A parameter outside the range the detector can work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// A duration is outside its allowed range.
    #[error("amd parameter `{name}` = {value} ms is out of range ({min}..={max} ms)")]
    Duration {
        /// The parameter's name as written in the campaign's `[amd]` table.
        name: &'static str,
        /// The value given.
        value: u32,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// A count or level is outside its allowed range.
    #[error("amd parameter `{name}` = {value} is out of range ({min}..={max})")]
    Number {
        /// The parameter's name as written in the campaign's `[amd]` table.
        name: &'static str,
        /// The value given.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// The TOML text or a value given on the command line could not be read.
    #[error("amd parameters: {0}")]
    Toml(String),
    /// Two parameters contradict each other.
    #[error("amd parameter `{name}` must be {relation} `{other}`")]
    Relation {
        /// The parameter at fault.
        name: &'static str,
        /// How it must relate to the other one.
        relation: &'static str,
        /// The other parameter.
        other: &'static str,
    },
}

/// Longest analysis the detector accepts: a minute, far past any greeting.
const MAX_MS: u32 = 60_000;

impl AmdParams {
    /// The Asterisk `app_amd` algorithm with its default `amd.conf`, for side-by-side comparison.
    pub fn asterisk() -> Self {
        AmdParams {
            algorithm: AmdAlgorithm::Asterisk,
            greeting_ms: 1500,
            after_greeting_silence_ms: 800,
            maximum_number_of_words: 3,
            ..AmdParams::default()
        }
    }

    /// Checks every parameter, naming the first one out of range.
    pub fn validate(&self) -> Result<(), ParamError> {
        let durations: [(&'static str, u32, u32); 8] = [
            ("initial_silence_ms", self.initial_silence_ms, 100),
            ("greeting_ms", self.greeting_ms, 100),
            (
                "after_greeting_silence_ms",
                self.after_greeting_silence_ms,
                100,
            ),
            ("total_analysis_time_ms", self.total_analysis_time_ms, 500),
            ("min_word_length_ms", self.min_word_length_ms, 10),
            (
                "between_words_silence_ms",
                self.between_words_silence_ms,
                10,
            ),
            ("maximum_word_length_ms", self.maximum_word_length_ms, 100),
            ("phrase_pause_ms", self.phrase_pause_ms, 10),
        ];
        for (name, value, min) in durations {
            if !(min..=MAX_MS).contains(&value) {
                return Err(ParamError::Duration {
                    name,
                    value,
                    min,
                    max: MAX_MS,
                });
            }
        }
        let numbers: [(&'static str, f64, f64, f64); 9] = [
            (
                "greeting_restart_db",
                f64::from(self.greeting_restart_db),
                3.0,
                100.0,
            ),
            (
                "background_voice_db",
                f64::from(self.background_voice_db),
                6.0,
                100.0,
            ),
            (
                "maximum_syllables",
                f64::from(self.maximum_syllables),
                1.0,
                1000.0,
            ),
            (
                "syllable_dip_db",
                f64::from(self.syllable_dip_db),
                0.5,
                40.0,
            ),
            (
                "maximum_number_of_words",
                f64::from(self.maximum_number_of_words),
                1.0,
                100.0,
            ),
            (
                "silence_threshold",
                f64::from(self.silence_threshold),
                1.0,
                32767.0,
            ),
            (
                "speech_margin_db",
                f64::from(self.speech_margin_db),
                1.0,
                40.0,
            ),
            (
                "min_speech_level",
                f64::from(self.min_speech_level),
                1.0,
                32767.0,
            ),
            (
                "noise_floor_rise_db_per_s",
                f64::from(self.noise_floor_rise_db_per_s),
                0.0,
                60.0,
            ),
        ];
        for (name, value, min, max) in numbers {
            // `contains` is false for NaN, which serde can produce from TOML `nan`.
            if !(min..=max).contains(&value) {
                return Err(ParamError::Number {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        if self.phrase_pause_ms >= self.after_greeting_silence_ms {
            return Err(ParamError::Relation {
                name: "phrase_pause_ms",
                relation: "shorter than",
                other: "after_greeting_silence_ms",
            });
        }
        if self.between_words_silence_ms > self.phrase_pause_ms {
            return Err(ParamError::Relation {
                name: "between_words_silence_ms",
                relation: "no longer than",
                other: "phrase_pause_ms",
            });
        }
        Ok(())
    }
}

/// Campaign-file names (`[amd]` of a campaign, durations as `"2500ms"`/`"2.5s"`) and the
/// parameter each stands for.
const CAMPAIGN_NAMES: [(&str, &str); 8] = [
    ("initial_silence", "initial_silence_ms"),
    ("greeting", "greeting_ms"),
    ("after_greeting_silence", "after_greeting_silence_ms"),
    ("total_analysis_time", "total_analysis_time_ms"),
    ("min_word_length", "min_word_length_ms"),
    ("between_words_silence", "between_words_silence_ms"),
    ("maximum_word_length", "maximum_word_length_ms"),
    ("maximum_words", "maximum_number_of_words"),
];
/// Keys of a campaign's `[amd]` table that are not detector parameters.
const CAMPAIGN_ONLY: [&str; 4] = ["enabled", "machine_action", "not_sure_action", "message"];

impl AmdParams {
    /// Reads parameters from TOML: a campaign file (its `[amd]` table is used, the rest ignored)
    /// or a bare table. Keys may use this type's names (`greeting_ms = 2500`) or the campaign's
    /// (`greeting = "2500ms"`); missing keys keep their defaults; unknown keys are an error
    /// naming them. The result is validated.
    pub fn from_toml(text: &str) -> Result<AmdParams, ParamError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ParamError::Toml(e.to_string()))?;
        let table = match table.remove("amd") {
            Some(toml::Value::Table(amd)) => amd,
            Some(_) => return Err(ParamError::Toml("`amd` must be a table".into())),
            None => table,
        };
        let mut params = AmdParams::default();
        for (key, value) in table {
            params.set_value(&key, value)?;
        }
        params.validate()?;
        Ok(params)
    }

    /// Sets one parameter from text, as given on a command line (`greeting_ms=2500`,
    /// `greeting=2.5s`, `algorithm=asterisk`). Not validated: call [`AmdParams::validate`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        // A TOML literal if it is one (numbers, booleans), otherwise a bare string.
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        self.set_value(key.trim(), value)
    }

    fn set_value(&mut self, key: &str, value: toml::Value) -> Result<(), ParamError> {
        if CAMPAIGN_ONLY.contains(&key) {
            return Ok(());
        }
        let (key, value) = match CAMPAIGN_NAMES.iter().find(|(campaign, _)| *campaign == key) {
            Some((_, ours)) if ours.ends_with("_ms") => {
                let ms = match &value {
                    toml::Value::String(text) => parse_duration_ms(text).ok_or_else(|| {
                        ParamError::Toml(format!(
                            "`{key}` = {text:?} is not a duration (like 2500ms or 2.5s)"
                        ))
                    })?,
                    // A bare number in a campaign file is seconds.
                    toml::Value::Integer(secs) => secs.saturating_mul(1000),
                    toml::Value::Float(secs) => (secs * 1000.0).round() as i64,
                    other => {
                        return Err(ParamError::Toml(format!(
                            "`{key}` = {other} is not a duration"
                        )));
                    }
                };
                (*ours, toml::Value::Integer(ms))
            }
            Some((_, ours)) => (*ours, value),
            None => (key, value),
        };
        let mut table =
            toml::Table::try_from(&*self).map_err(|e| ParamError::Toml(e.to_string()))?;
        table.insert(key.to_string(), value);
        *self = table
            .try_into()
            .map_err(|e: toml::de::Error| ParamError::Toml(format!("`{key}`: {}", e.message())))?;
        Ok(())
    }
}

/// `2500ms`, `2.5s`, `3s`, `1m`: milliseconds.
fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: f64 = number.trim().parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    let ms = number * scale;
    (ms.is_finite() && ms >= 0.0).then(|| ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_asterisk_defaults_and_valid() {
        let p = AmdParams::asterisk();
        assert_eq!(
            (
                p.initial_silence_ms,
                p.greeting_ms,
                p.after_greeting_silence_ms,
                p.total_analysis_time_ms,
                p.min_word_length_ms,
                p.between_words_silence_ms,
                p.maximum_number_of_words,
                p.silence_threshold
            ),
            (2500, 1500, 800, 5000, 100, 50, 3, 256)
        );
        p.validate().unwrap();
        AmdParams::default().validate().unwrap();
    }

    #[test]
    fn toml_table_with_defaults_and_errors_naming_the_parameter() {
        let p: AmdParams = toml::from_str("greeting_ms = 2000\nalgorithm = \"asterisk\"").unwrap();
        assert_eq!(p.greeting_ms, 2000);
        assert_eq!(p.algorithm, AmdAlgorithm::Asterisk);
        assert_eq!(p.initial_silence_ms, 2500);

        let err = toml::from_str::<AmdParams>("greting_ms = 2000").unwrap_err();
        assert!(err.to_string().contains("greting_ms"), "{err}");

        let p = AmdParams {
            total_analysis_time_ms: 10,
            ..AmdParams::default()
        };
        let err = p.validate().unwrap_err();
        assert!(err.to_string().contains("total_analysis_time_ms"), "{err}");

        let p = AmdParams::from_toml(
            "name = \"x\"\n[amd]\nenabled = true\ngreeting = \"2.2s\"\ninitial_silence = 3\n\
             maximum_words = 4\nspeech_margin_db = 8.0\n",
        )
        .unwrap();
        assert_eq!(
            (
                p.greeting_ms,
                p.initial_silence_ms,
                p.maximum_number_of_words
            ),
            (2200, 3000, 4)
        );
        assert_eq!(p.speech_margin_db, 8.0);
        let err = AmdParams::from_toml("[amd]\ngreeting = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("greeting"), "{err}");
        let err = AmdParams::from_toml("[amd]\nbogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = AmdParams::from_toml("greeting_ms = 5").unwrap_err();
        assert!(err.to_string().contains("greeting_ms"), "{err}");

        let mut p = AmdParams::default();
        p.set("algorithm", "asterisk").unwrap();
        p.set("greeting", "1800ms").unwrap();
        p.set("after_greeting_silence_ms", "700").unwrap();
        assert_eq!(p.algorithm, AmdAlgorithm::Asterisk);
        assert_eq!((p.greeting_ms, p.after_greeting_silence_ms), (1800, 700));
        assert!(
            p.set("greeting_ms", "long")
                .unwrap_err()
                .to_string()
                .contains("greeting_ms")
        );

        let p = AmdParams {
            speech_margin_db: f32::NAN,
            ..AmdParams::default()
        };
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("speech_margin_db")
        );
    }
}
