//! Prompts: recorded messages (the abandon message, the voicemail message) loaded once from WAV,
//! converted to 8 kHz mono, and shared by every call that plays them.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::g711::CLOCK_RATE;

/// Why a prompt could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file is not a WAV file hound can read.
    #[error("cannot read WAV {path}: {source}")]
    Wav {
        /// The file, or `<reader>`.
        path: String,
        /// hound's reason.
        source: hound::Error,
    },
    /// A sample format we do not convert (only 8/16/24/32-bit integer and 32-bit float PCM).
    #[error("{path}: unsupported WAV sample format ({bits}-bit {format})")]
    Format {
        /// The file.
        path: String,
        /// Bits per sample.
        bits: u16,
        /// `int` or `float`.
        format: &'static str,
    },
    /// The resampler refused the rate.
    #[error("{path}: cannot resample from {rate} Hz: {reason}")]
    Resample {
        /// The file.
        path: String,
        /// The file's sample rate.
        rate: u32,
        /// The resampler's reason.
        reason: String,
    },
    /// The file has no samples.
    #[error("{0}: the WAV file holds no audio")]
    Empty(String),
}

/// An 8 kHz mono prompt, cheap to clone (the samples are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    samples: Arc<[i16]>,
    name: Arc<str>,
}

impl Prompt {
    /// Loads a WAV file: any channel count (mixed down), any rate (resampled to 8 kHz).
    pub fn from_wav_file(path: impl AsRef<Path>) -> Result<Prompt, PromptError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|source| PromptError::Wav {
            path: name.clone(),
            source,
        })?;
        Self::from_hound(reader, name)
    }

    /// Loads a WAV from any reader (an embedded file, an upload).
    pub fn from_wav_reader(reader: impl Read, name: &str) -> Result<Prompt, PromptError> {
        let reader = hound::WavReader::new(reader).map_err(|source| PromptError::Wav {
            path: name.to_owned(),
            source,
        })?;
        Self::from_hound(reader, name.to_owned())
    }

    /// A prompt from 8 kHz mono samples.
    pub fn from_samples(samples: Vec<i16>, name: &str) -> Prompt {
        Prompt {
            samples: samples.into(),
            name: name.into(),
        }
    }

    fn from_hound<R: Read>(
        reader: hound::WavReader<R>,
        name: String,
    ) -> Result<Prompt, PromptError> {
        let spec = reader.spec();
        let channels = spec.channels.max(1) as usize;
        let wav_err = |source| PromptError::Wav {
            path: name.clone(),
            source,
        };
        // Everything becomes f32 in -1..1 first, then mono, then 8 kHz.
        let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, bits @ 1..=32) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(wav_err)?
            }
            (hound::SampleFormat::Float, 32) => reader
                .into_samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(wav_err)?,
            (format, bits) => {
                return Err(PromptError::Format {
                    path: name,
                    bits,
                    format: if format == hound::SampleFormat::Int {
                        "int"
                    } else {
                        "float"
                    },
                });
            }
        };
        let mono: Vec<f32> = interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect();
        if mono.is_empty() {
            return Err(PromptError::Empty(name));
        }
        let mono = if spec.sample_rate == CLOCK_RATE {
            mono
        } else {
            resample(&mono, spec.sample_rate).map_err(|reason| PromptError::Resample {
                path: name.clone(),
                rate: spec.sample_rate,
                reason,
            })?
        };
        let samples: Vec<i16> = mono
            .iter()
            .map(|&v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect();
        Ok(Prompt {
            samples: samples.into(),
            name: name.into(),
        })
    }

    /// The 8 kHz samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// How long it plays.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / CLOCK_RATE as u64)
    }

    /// The file name it was loaded from (for logs).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Band-limited resampling of a whole clip to 8 kHz (rubato's FFT resampler).
fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    let mut resampler =
        Fft::<f32>::new(rate as usize, CLOCK_RATE as usize, 1024, 1, FixedSync::Both)
            .map_err(|e| e.to_string())?;
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|e| e.to_string())?;
    let out = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|e| e.to_string())?;
    Ok(out.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    fn tone(rate: u32, freq: f32, secs: f32) -> Vec<i16> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| {
                ((i as f32 * freq * std::f32::consts::TAU / rate as f32).sin() * 10000.0) as i16
            })
            .collect()
    }

    #[test]
    fn an_8khz_mono_file_is_taken_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wav");
        let samples = tone(8000, 440.0, 0.5);
        write_wav(&path, 8000, 1, &samples);
        let p = Prompt::from_wav_file(&path).unwrap();
        assert_eq!(p.samples(), &samples[..]);
        assert_eq!(p.duration(), Duration::from_millis(500));
    }

    #[test]
    fn stereo_44k_is_mixed_down_and_resampled_keeping_pitch_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wav");
        let mono = tone(44100, 1000.0, 1.0);
        let stereo: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        write_wav(&path, 44100, 2, &stereo);
        let p = Prompt::from_wav_file(&path).unwrap();
        assert!(
            (7990..=8010).contains(&p.samples().len()),
            "{}",
            p.samples().len()
        );
        // 1 kHz at 8 kHz: 8 samples per period, about 2000 zero crossings per second.
        let crossings = p
            .samples()
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((1980..=2020).contains(&crossings), "{crossings}");
        let peak = p.samples()[1000..7000]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((9000..=11000).contains(&peak), "{peak}");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let err = Prompt::from_wav_reader(&b"not a wav"[..], "upload").unwrap_err();
        assert!(err.to_string().contains("upload"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.wav");
        write_wav(&path, 8000, 1, &[]);
        assert!(matches!(
            Prompt::from_wav_file(&path),
            Err(PromptError::Empty(_))
        ));
    }
}
