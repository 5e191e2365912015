//! Audio for tests: tones as samples and as WAV files (recorded messages, a phone's microphone).

use std::path::Path;

/// Appends `ms` milliseconds of a `freq` Hz sine at 8 kHz, peaking at `amplitude`, to `out`
/// (continuing the phase from `out`'s length).
pub fn tone(freq: f64, ms: u32, amplitude: f64, out: &mut Vec<i16>) {
    let n = ms as usize * 8;
    let start = out.len();
    out.extend((0..n).map(|i| {
        ((start + i) as f64 * freq * 2.0 * std::f64::consts::PI / 8000.0).sin() * amplitude
    } as i16));
}

/// Writes `secs` seconds of a `freq` Hz tone peaking at `amplitude` as an 8 kHz mono WAV file.
pub fn write_tone(path: &Path, freq: f64, secs: f32, amplitude: f64) {
    let mut samples = Vec::new();
    tone(freq, (secs * 1000.0) as u32, amplitude, &mut samples);
    write_samples(path, &samples);
}

/// Writes 8 kHz mono samples as a WAV file (creating its directory).
pub fn write_samples(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut w = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|err| panic!("create {}: {err}", path.display()));
    for &s in samples {
        w.write_sample(s).expect("write a sample");
    }
    w.finalize().expect("finish the WAV file");
}

/// A recorded message for the engine's prompts: `secs` seconds of a 600 Hz tone.
pub fn write_message(path: &Path, secs: f32) {
    write_tone(path, 600.0, secs, 8000.0);
}
