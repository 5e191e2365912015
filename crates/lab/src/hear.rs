//! Listening: a small voice-activity detector over received audio, and the [`Ear`] a call's
//! leg feeds so the carrier can tell what it was sent (a message, an agent's voice, nothing)
//! and an agent phone can tell when a caller is bridged in and when the caller went quiet.

use media::AudioListener;
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;
const FRAME_MS: u64 = 20;

/// A stretch of voice, in milliseconds of received audio since listening started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Where the voice started.
    pub start_ms: u64,
    /// Where it stopped (the end of the stream if it never did).
    pub end_ms: u64,
}

impl Segment {
    /// Its length in milliseconds.
    pub fn ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// A change of the detector's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceChange {
    /// Voice started at this stream time (ms).
    Started(u64),
    /// Voice stopped at this stream time (ms).
    Stopped(u64),
}

/// Voice activity detection on 8 kHz audio: 20 ms frames whose mean absolute level is over a
/// threshold are voiced; voice starts after `onset` of voiced frames (short gaps allowed) and
/// stops after `hangover` without. Sans-IO: time is the amount of audio pushed.
#[derive(Debug, Clone)]
pub struct Vad {
    threshold: u32,
    onset_ms: u64,
    hangover_ms: u64,
    frame_sum: u64,
    frame_len: usize,
    now_ms: u64,
    pending_ms: u64,
    pending_start: u64,
    gap_ms: u64,
    speaking: bool,
    voiced_ms: u64,
    segments: Vec<Segment>,
    current: Option<u64>,
}

/// Most segments kept per stream (a long call's list is cut; totals stay right).
const MAX_SEGMENTS: usize = 2000;

impl Default for Vad {
    /// Threshold 250 (about -42 dBFS), onset 160 ms, hangover 400 ms.
    fn default() -> Self {
        Vad::new(250, Duration::from_millis(160), Duration::from_millis(400))
    }
}

impl Vad {
    /// A detector with its level threshold (mean absolute sample), onset and hangover.
    pub fn new(threshold: u32, onset: Duration, hangover: Duration) -> Vad {
        Vad {
            threshold,
            onset_ms: onset.as_millis() as u64,
            hangover_ms: hangover.as_millis() as u64,
            frame_sum: 0,
            frame_len: 0,
            now_ms: 0,
            pending_ms: 0,
            pending_start: 0,
            gap_ms: 0,
            speaking: false,
            voiced_ms: 0,
            segments: Vec::new(),
            current: None,
        }
    }

    /// Takes audio; returns the last change it caused, if any.
    pub fn push(&mut self, samples: &[i16]) -> Option<VoiceChange> {
        let mut change = None;
        for &s in samples {
            self.frame_sum += u64::from(s.unsigned_abs());
            self.frame_len += 1;
            if self.frame_len == FRAME {
                let voiced = self.frame_sum / FRAME as u64 >= u64::from(self.threshold);
                self.frame_sum = 0;
                self.frame_len = 0;
                change = self.frame(voiced).or(change);
            }
        }
        change
    }

    fn frame(&mut self, voiced: bool) -> Option<VoiceChange> {
        let start = self.now_ms;
        self.now_ms += FRAME_MS;
        if voiced {
            self.voiced_ms += FRAME_MS;
        }
        if self.speaking {
            if voiced {
                self.gap_ms = 0;
                return None;
            }
            self.gap_ms += FRAME_MS;
            if self.gap_ms >= self.hangover_ms {
                self.speaking = false;
                let end = self.now_ms - self.gap_ms;
                if let Some(begin) = self.current.take()
                    && self.segments.len() < MAX_SEGMENTS
                {
                    self.segments.push(Segment {
                        start_ms: begin,
                        end_ms: end,
                    });
                }
                self.pending_ms = 0;
                self.gap_ms = 0;
                return Some(VoiceChange::Stopped(end));
            }
            return None;
        }
        if voiced {
            if self.pending_ms == 0 {
                self.pending_start = start;
            }
            self.pending_ms += FRAME_MS;
            self.gap_ms = 0;
            if self.pending_ms >= self.onset_ms {
                self.speaking = true;
                self.current = Some(self.pending_start);
                return Some(VoiceChange::Started(self.pending_start));
            }
        } else if self.pending_ms > 0 {
            self.gap_ms += FRAME_MS;
            // Syllables have short gaps; a longer one means the sound was a click or a blip.
            if self.gap_ms > 100 {
                self.pending_ms = 0;
                self.gap_ms = 0;
            }
        }
        None
    }

    /// Whether voice is on now.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Audio pushed so far, in ms.
    pub fn elapsed_ms(&self) -> u64 {
        self.now_ms
    }

    /// Voiced frames so far, in ms.
    pub fn voiced_ms(&self) -> u64 {
        self.voiced_ms
    }

    /// The voice segments so far (the open one ends now).
    pub fn segments(&self) -> Vec<Segment> {
        let mut segments = self.segments.clone();
        if let Some(start_ms) = self.current {
            segments.push(Segment {
                start_ms,
                end_ms: self.now_ms,
            });
        }
        segments
    }
}

/// What a leg received, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Heard {
    /// Audio received, in ms (lost packets and silent stretches count as audio).
    pub audio_ms: u64,
    /// Voiced audio, in ms.
    pub voiced_ms: u64,
    /// The stretches of voice, since listening started.
    pub segments: Vec<Segment>,
    /// DTMF digits received (RFC 4733), in order.
    pub dtmf: String,
}

impl Heard {
    /// The longest stretch of voice, in ms.
    pub fn longest_ms(&self) -> u64 {
        self.segments.iter().map(Segment::ms).max().unwrap_or(0)
    }

    /// Voice heard from `from_ms` on (stream time), in ms of segments.
    pub fn voice_after(&self, from_ms: u64) -> u64 {
        self.segments
            .iter()
            .map(|s| s.end_ms.saturating_sub(s.start_ms.max(from_ms)))
            .sum()
    }
}

#[derive(Debug)]
struct EarState {
    vad: Vad,
    origin: Instant,
    last_audio: Option<Instant>,
    last_voice: Option<Instant>,
    keep: Option<(Vec<i16>, usize)>,
    dtmf: String,
}

/// The shared listening state of one leg: fed on the leg's task, read by the call's task.
#[derive(Debug, Clone)]
pub struct Ear(Arc<Mutex<EarState>>);

impl Ear {
    /// A new ear; with `keep`, the first `keep` of received audio is kept for inspection.
    pub fn new(keep: Option<Duration>) -> Ear {
        Ear(Arc::new(Mutex::new(EarState {
            vad: Vad::default(),
            origin: Instant::now(),
            last_audio: None,
            last_voice: None,
            keep: keep.map(|d| (Vec::new(), (d.as_millis() as usize) * 8)),
            dtmf: String::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, EarState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The listener to hand to [`media::Leg::set_listener`].
    pub fn listener(&self) -> Box<dyn AudioListener> {
        let ear = self.clone();
        Box::new(move |samples: &[i16], _ts: u32| ear.hear(Instant::now(), samples))
    }

    /// Takes received audio (the listener calls this).
    pub fn hear(&self, now: Instant, samples: &[i16]) {
        let mut state = self.lock();
        state.vad.push(samples);
        state.last_audio = Some(now);
        if state.vad.speaking() {
            state.last_voice = Some(now);
        }
        if let Some((kept, max)) = &mut state.keep {
            let room = max.saturating_sub(kept.len());
            kept.extend_from_slice(&samples[..samples.len().min(room)]);
        }
    }

    /// Notes a DTMF digit received.
    pub fn digit(&self, digit: char) {
        self.lock().dtmf.push(digit);
    }

    /// Whether a voice is being heard now (no audio for half a second counts as silence).
    pub fn speaking(&self, now: Instant) -> bool {
        let state = self.lock();
        state.vad.speaking()
            && state
                .last_audio
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_millis(500))
    }

    /// When a voice was last heard.
    pub fn last_voice(&self) -> Option<Instant> {
        self.lock().last_voice
    }

    /// When listening started.
    pub fn origin(&self) -> Instant {
        self.lock().origin
    }

    /// Received audio so far, in ms.
    pub fn elapsed_ms(&self) -> u64 {
        self.lock().vad.elapsed_ms()
    }

    /// Everything heard, summed up.
    pub fn heard(&self) -> Heard {
        let state = self.lock();
        Heard {
            audio_ms: state.vad.elapsed_ms(),
            voiced_ms: state.vad.voiced_ms(),
            segments: state.vad.segments(),
            dtmf: state.dtmf.clone(),
        }
    }

    /// The kept audio (empty unless asked for at creation).
    pub fn audio(&self) -> Vec<i16> {
        self.lock()
            .keep
            .as_ref()
            .map(|(kept, _)| kept.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amplitude: f64) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                (amplitude * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn voice_starts_after_onset_and_stops_after_hangover() {
        let mut vad = Vad::default();
        assert_eq!(vad.push(&vec![0; 8000]), None);
        // A 60 ms click is not a voice.
        assert_eq!(vad.push(&tone(60, 8000.0)), None);
        assert_eq!(vad.push(&vec![0; 1600]), None);
        assert!(!vad.speaking());
        assert_eq!(
            vad.push(&tone(1000, 8000.0)),
            Some(VoiceChange::Started(1260))
        );
        // Short pauses between words keep the voice on.
        assert_eq!(vad.push(&vec![0; 1600]), None);
        assert_eq!(vad.push(&tone(500, 8000.0)), None);
        assert_eq!(vad.push(&vec![0; 8000]), Some(VoiceChange::Stopped(2960)));
        assert_eq!(
            vad.segments(),
            vec![Segment {
                start_ms: 1260,
                end_ms: 2960
            }]
        );
        assert_eq!(vad.voiced_ms(), 60 + 1500);
        // Line noise at -50 dBFS is silence.
        assert_eq!(vad.push(&tone(2000, 100.0)), None);
    }

    #[test]
    fn the_ear_sums_up_and_keeps_what_it_was_asked_to() {
        let ear = Ear::new(Some(Duration::from_millis(500)));
        let now = Instant::now();
        ear.hear(now, &tone(1000, 8000.0));
        assert!(ear.speaking(now));
        assert!(!ear.speaking(now + Duration::from_secs(1)));
        ear.digit('#');
        let heard = ear.heard();
        assert_eq!(heard.audio_ms, 1000);
        assert_eq!(heard.dtmf, "#");
        assert_eq!(heard.longest_ms(), 1000);
        assert_eq!(heard.voice_after(400), 600);
        assert_eq!(ear.audio().len(), 4000);
    }
}
