//! Reading recordings for the detectors: 8 kHz WAV, linear PCM (through `hound`) or G.711
//! mu-law/A-law (format tags 7 and 6, which `hound` does not read; the corpus is stored that way),
//! decoded with the crate's G.711 tables.

use std::io::Read;
use std::path::Path;

use super::frame::SAMPLE_RATE;
use crate::g711::Codec;

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The file is not a WAV file the reader understands.
    #[error("{path} is not a readable WAV file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not at 8 kHz.
    #[error(
        "{path} is sampled at {rate} Hz; the detector needs 8000 Hz \
         (convert with: sox IN.wav -r 8000 -c 1 OUT.wav)"
    )]
    Rate {
        /// The file.
        path: String,
        /// Its sample rate.
        rate: u32,
    },
    /// The requested channel does not exist.
    #[error("{path} has {channels} channel(s); there is no channel {wanted}")]
    Channel {
        /// The file.
        path: String,
        /// Channels in the file.
        channels: u16,
        /// The channel asked for (0-based).
        wanted: u16,
    },
}

/// Which channel of a multi-channel file to analyse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channel {
    /// The average of all channels (a mono file is itself).
    #[default]
    Mix,
    /// One channel, 0-based (our stereo recordings put the callee on 0, the agent on 1).
    Index(u16),
}

const FORMAT_ALAW: u16 = 6;
const FORMAT_MULAW: u16 = 7;

/// Reads an 8 kHz WAV file as linear 16-bit samples.
pub fn read_wav(path: &Path, channel: Channel) -> Result<Vec<i16>, WavError> {
    let name = path.display().to_string();
    let io = |source| WavError::Io {
        path: name.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io)?;
    let format = |reason: String| WavError::Format {
        path: name.clone(),
        reason,
    };
    let chunks = riff_chunks(&bytes).map_err(|r| format(r.to_string()))?;
    let fmt = chunks
        .iter()
        .find(|c| &c.0 == b"fmt ")
        .map(|c| c.1)
        .ok_or_else(|| format("no `fmt ` chunk".into()))?;
    if fmt.len() < 16 {
        return Err(format("`fmt ` chunk shorter than 16 bytes".into()));
    }
    let tag = u16::from_le_bytes([fmt[0], fmt[1]]);
    let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    if channels == 0 {
        return Err(format("zero channels".into()));
    }
    if rate != SAMPLE_RATE {
        return Err(WavError::Rate { path: name, rate });
    }
    if let Channel::Index(wanted) = channel
        && wanted >= channels
    {
        return Err(WavError::Channel {
            path: name,
            channels,
            wanted,
        });
    }
    let interleaved: Vec<i16> = match tag {
        FORMAT_MULAW | FORMAT_ALAW => {
            let data = chunks
                .iter()
                .find(|c| &c.0 == b"data")
                .map(|c| c.1)
                .ok_or_else(|| format("no `data` chunk".into()))?;
            let codec = if tag == FORMAT_MULAW {
                Codec::Pcmu
            } else {
                Codec::Pcma
            };
            data.iter().map(|&b| codec.decode_sample(b)).collect()
        }
        _ => read_pcm(&bytes).map_err(|e| format(e.to_string()))?,
    };
    Ok(select(&interleaved, channels, channel))
}

fn read_pcm(bytes: &[u8]) -> Result<Vec<i16>, hound::Error> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes))?;
    let spec = reader.spec();
    match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32767.0).round() as i16))
            .collect(),
        hound::SampleFormat::Int => {
            let shift = i32::from(spec.bits_per_sample) - 16;
            reader
                .samples::<i32>()
                .map(|s| {
                    s.map(|v| {
                        if shift >= 0 {
                            (v >> shift) as i16
                        } else {
                            (v << -shift) as i16
                        }
                    })
                })
                .collect()
        }
    }
}

fn select(interleaved: &[i16], channels: u16, channel: Channel) -> Vec<i16> {
    let channels = usize::from(channels);
    match channel {
        _ if channels == 1 => interleaved.to_vec(),
        Channel::Index(i) => interleaved
            .chunks_exact(channels)
            .map(|frame| frame[usize::from(i)])
            .collect(),
        Channel::Mix => interleaved
            .chunks_exact(channels)
            .map(|frame| {
                let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
                (sum / channels as i32) as i16
            })
            .collect(),
    }
}

/// One RIFF chunk: its four-letter id and its body.
type Chunk<'a> = ([u8; 4], &'a [u8]);

/// The chunks of a RIFF/WAVE file.
fn riff_chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, &'static str> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("no RIFF/WAVE header");
    }
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body_start = at + 8;
        // A truncated last chunk (a recording cut short) is read as far as it goes.
        let body_end = body_start.saturating_add(len).min(bytes.len());
        chunks.push((id, &bytes[body_start..body_end]));
        at = body_end + (len & 1);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pcm_and_mulaw_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let pcm = dir.path().join("pcm.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&pcm, spec).unwrap();
        for s in [100i16, -100, 200, 400] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(read_wav(&pcm, Channel::Mix).unwrap(), vec![0, 300]);
        assert_eq!(read_wav(&pcm, Channel::Index(1)).unwrap(), vec![-100, 400]);
        assert!(matches!(
            read_wav(&pcm, Channel::Index(2)),
            Err(WavError::Channel { .. })
        ));

        // A hand-made mu-law file: RIFF, fmt (tag 7), data.
        let mut bytes = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        bytes.extend(18u32.to_le_bytes());
        bytes.extend(7u16.to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(8000u32.to_le_bytes());
        bytes.extend(8000u32.to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(8u16.to_le_bytes());
        bytes.extend(0u16.to_le_bytes());
        bytes.extend(b"data");
        bytes.extend(3u32.to_le_bytes());
        bytes.extend([0xff, 0x80, 0x00]);
        let ulaw = dir.path().join("ulaw.wav");
        std::fs::write(&ulaw, &bytes).unwrap();
        assert_eq!(
            read_wav(&ulaw, Channel::Mix).unwrap(),
            vec![0, 32124, -32124]
        );

        let rate = dir.path().join("rate.wav");
        let mut w = hound::WavWriter::create(
            &rate,
            hound::WavSpec {
                channels: 1,
                sample_rate: 16000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
        )
        .unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let err = read_wav(&rate, Channel::Mix).unwrap_err();
        assert!(err.to_string().contains("16000 Hz"), "{err}");

        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"hello").unwrap();
        assert!(matches!(
            read_wav(&junk, Channel::Mix),
            Err(WavError::Format { .. })
        ));
        assert!(matches!(
            read_wav(&dir.path().join("missing.wav"), Channel::Mix),
            Err(WavError::Io { .. })
        ));
    }
}
