//! Tone detection: special information tones (SIT), the voicemail beep, fax CNG and CED.
//!
//! One tracker serves them all. Each 10 ms frame is fitted with a two-tap linear predictor; a
//! steady pure tone is predicted almost exactly, whatever its frequency, and the predictor's poles
//! give that frequency. Consecutive tonal frames at one frequency form a segment; segments are
//! then read as a SIT sequence, a beep or a fax tone. That costs three multiply-adds per sample,
//! not a Goertzel filter per candidate frequency, so the beep may be anywhere in 440-2000 Hz.

use super::frame::{FRAME_MS, Frame, FrameCutter, StreamClock, purity_floor};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;

/// What the network says with a special information tone (Telcordia SR-2275 encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SitCode {
    /// Intercept (IC): number changed or disconnected. Never redial.
    Intercept,
    /// Vacant code (VC): the number does not exist. Never redial.
    VacantCode,
    /// No circuit (NC): the network is congested. Retry later.
    NoCircuit,
    /// Reorder (RO): equipment or routing failure. Retry later.
    Reorder,
    /// Ineffective other (IO): other failure. Retry later.
    IneffectiveOther,
    /// A SIT whose segments match no assigned code.
    Unknown,
}

impl SitCode {
    /// Whether the number itself is bad (so it must never be dialled again).
    pub fn number_is_invalid(self) -> bool {
        matches!(self, SitCode::Intercept | SitCode::VacantCode)
    }
}

/// Which fax tone was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaxTone {
    /// CNG, 1100 Hz in 0.5 s bursts: a calling fax machine.
    Cng,
    /// CED, 2100 Hz for about 3 s: an answering fax machine or modem.
    Ced,
}

/// A tone heard in the stream. Times are milliseconds since the stream's first sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ToneEvent {
    /// A special information tone: the three rising tones before a network announcement.
    Sit {
        /// What it encodes.
        code: SitCode,
        /// Start of the first segment.
        start_ms: u32,
        /// End of the third segment.
        end_ms: u32,
    },
    /// A single steady tone in the beep band that stopped: a recorded message can start now.
    Beep {
        /// Its frequency.
        freq_hz: f32,
        /// Where it started.
        start_ms: u32,
        /// Where it stopped.
        end_ms: u32,
    },
    /// A fax or modem tone.
    Fax {
        /// Which one.
        tone: FaxTone,
        /// Where it started.
        start_ms: u32,
        /// When it was recognised.
        at_ms: u32,
    },
}

impl ToneEvent {
    /// When the event could be told: the end of the tone, or when a fax tone was recognised.
    pub fn at_ms(&self) -> u32 {
        match *self {
            ToneEvent::Sit { end_ms, .. } | ToneEvent::Beep { end_ms, .. } => end_ms,
            ToneEvent::Fax { at_ms, .. } => at_ms,
        }
    }
}

/// Tunables of the tone tracker. The defaults follow the standards with room for real lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToneParams {
    /// A frame is tonal when a two-tap predictor removes at least this much of its power.
    pub min_purity_db: f32,
    /// Quietest tone considered, in dBFS RMS.
    pub min_level_dbfs: f32,
    /// Lowest beep frequency.
    pub beep_min_hz: f32,
    /// Highest beep frequency.
    pub beep_max_hz: f32,
    /// Shortest beep.
    pub beep_min_ms: u32,
    /// Longest beep: a longer steady tone is something else (a test tone, a stuck line).
    pub beep_max_ms: u32,
    /// Whether to report SIT at all.
    pub sit: bool,
    /// Whether to report fax tones at all (otherwise a CNG burst may be reported as a beep).
    pub fax: bool,
}

impl Default for ToneParams {
    fn default() -> Self {
        ToneParams {
            min_purity_db: 18.0,
            min_level_dbfs: -50.0,
            beep_min_hz: 440.0,
            beep_max_hz: 2000.0,
            beep_min_ms: 180,
            beep_max_ms: 3000,
            sit: true,
            fax: true,
        }
    }
}

/// Nominal SIT frequencies: first segment low/high, second low/high, third.
const SIT1: [f32; 2] = [913.8, 985.2];
const SIT2: [f32; 2] = [1370.6, 1428.5];
const SIT3: f32 = 1776.7;
/// SIT segments are 274 ms (short) or 380 ms (long); allow for frame rounding and line drift.
const SIT_MIN_MS: u32 = 200;
const SIT_MAX_MS: u32 = 480;
const SIT_LONG_MS: u32 = 327;
/// Standard says at most 4 ms between segments; one mixed frame each side makes it 30 ms here.
const SIT_MAX_GAP_MS: u32 = 40;
/// A beep must be followed by this much non-tone before it is reported, so the first segment of
/// a SIT is not taken for a beep.
const BEEP_CONFIRM_MS: u32 = 50;
/// A steady tone keeps its 10 ms level within this of its start; two tones beating (ringback,
/// 440 + 480 Hz) swing far wider.
const LEVEL_STEADY_DB: f32 = 3.0;

/// A run of tonal frames at one frequency.
#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    start_ms: u32,
    end_ms: u32,
    hz_sum: f32,
    frames: u32,
    /// Level of its first frames, in dBFS: a beep holds its level, beating tones do not.
    level_db: f32,
}

impl Segment {
    fn hz(&self) -> f32 {
        self.hz_sum / self.frames.max(1) as f32
    }
    fn ms(&self) -> u32 {
        self.end_ms - self.start_ms
    }
    fn beep_event(&self) -> ToneEvent {
        ToneEvent::Beep {
            freq_hz: self.hz(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
        }
    }
}

fn near(hz: f32, nominal: f32, tolerance: f32) -> bool {
    (hz - nominal).abs() <= nominal * tolerance
}

/// Which of two nominal frequencies `hz` is, within 1.5 %.
fn low_or_high(hz: f32, pair: [f32; 2]) -> Option<bool> {
    if near(hz, pair[0], 0.015) {
        Some(false)
    } else if near(hz, pair[1], 0.015) {
        Some(true)
    } else {
        None
    }
}

/// The frame-level tone tracker, shared by [`Tones`] and the answering-machine detector.
#[derive(Debug, Clone)]
pub(crate) struct ToneTracker {
    params: ToneParams,
    /// The segment being built.
    current: Option<Segment>,
    /// Non-tonal frames since the current segment's last tonal frame.
    misses: u32,
    /// The last three finished segments, oldest first.
    history: [Option<Segment>; 3],
    /// A finished segment that looks like a beep, waiting for confirmation.
    pending_beep: Option<Segment>,
    /// Whether the current segment has already been reported as CED.
    ced_reported: bool,
    /// End of the frame last seen.
    now_ms: u32,
    /// `params.min_purity_db` as a power ratio a little under it.
    purity_floor: f64,
}

impl ToneTracker {
    pub fn new(params: ToneParams) -> Self {
        ToneTracker {
            purity_floor: purity_floor(params.min_purity_db),
            params,
            current: None,
            misses: 0,
            history: [None; 3],
            pending_beep: None,
            ced_reported: false,
            now_ms: 0,
        }
    }

    /// Takes one frame ending at `end_ms`; returns an event it completes.
    pub fn frame(&mut self, frame: &Frame, end_ms: u32) -> Option<ToneEvent> {
        self.now_ms = end_ms;
        let start_ms = end_ms - FRAME_MS;
        let mut hz = 0.0;
        let tonal = frame.tone_gain_at_least(self.params.min_purity_db, self.purity_floor)
            && frame.level_db() >= self.params.min_level_dbfs
            && {
                hz = frame.tone_hz();
                hz > 300.0
            };
        let mut event = None;
        if tonal {
            let level = frame.level_db();
            match &mut self.current {
                Some(seg)
                    if (hz - seg.hz()).abs() <= (seg.hz() * 0.015).max(12.0)
                        && (level - seg.level_db).abs() <= LEVEL_STEADY_DB =>
                {
                    seg.end_ms = end_ms;
                    seg.hz_sum += hz;
                    seg.frames += 1;
                    // The first frames may be the tone's onset ramp: follow it up.
                    if seg.frames <= 3 {
                        seg.level_db = seg.level_db.max(level);
                    }
                    self.misses = 0;
                }
                _ => {
                    event = self.close_segment();
                    self.current = Some(Segment {
                        start_ms,
                        end_ms,
                        hz_sum: hz,
                        frames: 1,
                        level_db: level,
                    });
                    self.misses = 0;
                    self.ced_reported = false;
                    if let Some(beep) = self.pending_beep.take() {
                        // A tone right after a candidate beep: if the two could be the start of
                        // a SIT, wait for the rest; otherwise the beep stands.
                        let sit_start = start_ms.saturating_sub(beep.end_ms) <= SIT_MAX_GAP_MS
                            && (low_or_high(beep.hz(), SIT1).is_some()
                                || low_or_high(beep.hz(), SIT2).is_some());
                        if !sit_start && event.is_none() {
                            event = Some(beep.beep_event());
                        }
                    }
                }
            }
            if let Some(seg) = self.current
                && self.params.fax
                && !self.ced_reported
                && near(seg.hz(), 2100.0, 0.01)
                && seg.ms() >= 1500
            {
                self.ced_reported = true;
                event = event.or(Some(ToneEvent::Fax {
                    tone: FaxTone::Ced,
                    start_ms: seg.start_ms,
                    at_ms: end_ms,
                }));
            }
        } else if self.current.is_some() {
            self.misses += 1;
            // One odd frame is tolerated: a boundary frame, a click, a phase reversal.
            if self.misses > 1 {
                event = self.close_segment();
            }
        }
        if let Some(beep) = self.pending_beep
            && self.current.is_none()
            && end_ms >= beep.end_ms + BEEP_CONFIRM_MS
        {
            self.pending_beep = None;
            if event.is_none() {
                event = Some(beep.beep_event());
            }
        }
        event
    }

    /// Whether a tone may be under way: a steady segment of at least 50 ms is going on, or a
    /// beep waits for its confirmation. A verdict taken now could come before the beep.
    pub fn in_tone(&self) -> bool {
        self.pending_beep.is_some() || self.current.is_some_and(|s| s.ms() >= 50)
    }

    /// Ends the current segment and reads the segments for a SIT or a fax CNG; beeps are held
    /// back until confirmed.
    fn close_segment(&mut self) -> Option<ToneEvent> {
        let seg = self.current.take()?;
        self.history = [self.history[1], self.history[2], Some(seg)];
        if self.params.sit
            && let Some(code) = self.sit_code()
        {
            let start_ms = self.history[0].map_or(seg.start_ms, |s| s.start_ms);
            self.history = [None; 3];
            self.pending_beep = None;
            return Some(ToneEvent::Sit {
                code,
                start_ms,
                end_ms: seg.end_ms,
            });
        }
        let ms = seg.ms();
        if self.params.fax && near(seg.hz(), 1100.0, 0.025) && (400..=700).contains(&ms) {
            return Some(ToneEvent::Fax {
                tone: FaxTone::Cng,
                start_ms: seg.start_ms,
                at_ms: seg.end_ms,
            });
        }
        // The band edges get 1 % of slack for the frequency estimate.
        let band = self.params.beep_min_hz * 0.99..=self.params.beep_max_hz * 1.01;
        if band.contains(&seg.hz())
            && (self.params.beep_min_ms..=self.params.beep_max_ms).contains(&ms)
        {
            self.pending_beep = Some(seg);
        }
        None
    }

    fn sit_code(&self) -> Option<SitCode> {
        let [Some(a), Some(b), Some(c)] = self.history else {
            return None;
        };
        let in_range = |s: &Segment| (SIT_MIN_MS..=SIT_MAX_MS).contains(&s.ms());
        if !(in_range(&a) && in_range(&b) && in_range(&c)) {
            return None;
        }
        if b.start_ms.saturating_sub(a.end_ms) > SIT_MAX_GAP_MS
            || c.start_ms.saturating_sub(b.end_ms) > SIT_MAX_GAP_MS
        {
            return None;
        }
        let first_high = low_or_high(a.hz(), SIT1)?;
        let second_high = low_or_high(b.hz(), SIT2)?;
        if !near(c.hz(), SIT3, 0.015) {
            return None;
        }
        let first_long = a.ms() >= SIT_LONG_MS;
        let second_long = b.ms() >= SIT_LONG_MS;
        Some(match (first_high, second_high, first_long, second_long) {
            (false, false, false, false) => SitCode::Intercept,
            (true, true, true, true) | (false, false, true, true) => SitCode::NoCircuit,
            (true, false, true, false) => SitCode::VacantCode,
            (true, false, false, true) | (false, true, false, true) => SitCode::Reorder,
            (false, true, true, false) => SitCode::IneffectiveOther,
            _ => SitCode::Unknown,
        })
    }
}

/// A tone detector for one stream, fed like [`crate::detect::AmdDetector`]: 8 kHz linear PCM with RTP
/// timestamps. Run it on early media (for SIT) and after answer (SIT, beep, fax).
#[derive(Debug, Clone)]
pub struct Tones {
    clock: StreamClock,
    cutter: FrameCutter,
    tracker: ToneTracker,
    frames: u32,
    /// Events found in one push beyond the first, returned by the next pushes (rarely used:
    /// events are at least tens of milliseconds apart).
    queued: [Option<ToneEvent>; 4],
}

impl Default for Tones {
    fn default() -> Self {
        Tones::new(ToneParams::default())
    }
}

impl Tones {
    /// A detector with the given parameters.
    pub fn new(params: ToneParams) -> Self {
        Tones {
            clock: StreamClock::default(),
            cutter: FrameCutter::default(),
            tracker: ToneTracker::new(params),
            frames: 0,
            queued: [None; 4],
        }
    }

    /// Feeds one packet of samples stamped with its RTP timestamp (8 kHz clock). Returns a tone
    /// event if one completed; lost packets count as silence, duplicates are ignored.
    pub fn push(&mut self, samples: &[i16], rtp_timestamp: u32) -> Option<ToneEvent> {
        let place = self.clock.place(rtp_timestamp, samples.len());
        let Tones {
            cutter,
            tracker,
            frames,
            queued,
            ..
        } = self;
        let _ = cutter.feed::<()>(place.gap, &samples[place.skip..], |frame| {
            *frames += 1;
            if let Some(event) = tracker.frame(frame, *frames * FRAME_MS)
                && let Some(slot) = queued.iter_mut().find(|q| q.is_none())
            {
                *slot = Some(event);
            }
            ControlFlow::Continue(())
        });
        self.next_event()
    }

    /// The next event found but not yet returned.
    pub fn next_event(&mut self) -> Option<ToneEvent> {
        let event = self.queued[0].take();
        self.queued.rotate_left(1);
        event
    }

    /// Milliseconds of audio analysed so far.
    pub fn elapsed_ms(&self) -> u32 {
        self.frames * FRAME_MS
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tone(freq: f64, ms: u32, amplitude: f64, phase: &mut f64) -> Vec<i16> {
        let n = ms * 8;
        (0..n)
            .map(|_| {
                let s = amplitude * phase.sin();
                *phase += std::f64::consts::TAU * freq / 8000.0;
                s.round() as i16
            })
            .collect()
    }

    pub(crate) fn run(samples: &[i16]) -> Vec<ToneEvent> {
        let mut tones = Tones::default();
        let mut events = Vec::new();
        for (i, chunk) in samples.chunks(160).enumerate() {
            if let Some(e) = tones.push(chunk, 1000 + 160 * i as u32) {
                events.push(e);
            }
        }
        let tail = vec![0i16; 1600];
        for (i, chunk) in tail.chunks(160).enumerate() {
            let ts = 1000 + 160 * (samples.len().div_ceil(160) + i) as u32;
            if let Some(e) = tones.push(chunk, ts) {
                events.push(e);
            }
        }
        while let Some(e) = tones.next_event() {
            events.push(e);
        }
        events
    }

    fn sit(f1: f64, d1: u32, f2: f64, d2: u32) -> Vec<i16> {
        let mut phase = 0.0;
        let mut s = vec![0i16; 800];
        s.extend(tone(f1, d1, 6000.0, &mut phase));
        s.extend(tone(f2, d2, 6000.0, &mut phase));
        s.extend(tone(1776.7, 380, 6000.0, &mut phase));
        s.extend(vec![0i16; 2400]);
        s
    }

    #[test]
    fn every_sit_code_is_read() {
        let cases = [
            (913.8, 274, 1370.6, 274, SitCode::Intercept),
            (985.2, 380, 1370.6, 274, SitCode::VacantCode),
            (985.2, 380, 1428.5, 380, SitCode::NoCircuit),
            (913.8, 380, 1370.6, 380, SitCode::NoCircuit),
            (985.2, 274, 1370.6, 380, SitCode::Reorder),
            (913.8, 274, 1428.5, 380, SitCode::Reorder),
            (913.8, 380, 1428.5, 274, SitCode::IneffectiveOther),
        ];
        for (f1, d1, f2, d2, code) in cases {
            let events = run(&sit(f1, d1, f2, d2));
            assert_eq!(events.len(), 1, "{code:?}: {events:?}");
            match events[0] {
                ToneEvent::Sit {
                    code: got,
                    start_ms,
                    end_ms,
                } => {
                    assert_eq!(got, code);
                    assert!(start_ms.abs_diff(100) <= 20, "{start_ms}");
                    assert!(end_ms.abs_diff(100 + d1 + d2 + 380) <= 20, "{end_ms}");
                }
                other => panic!("{code:?}: {other:?}"),
            }
        }
        assert!(SitCode::Intercept.number_is_invalid());
        assert!(!SitCode::NoCircuit.number_is_invalid());
    }

    #[test]
    fn beeps_across_the_band_with_noise() {
        let mut noise_state = 12345u32;
        for freq in [440.0, 600.0, 850.0, 1000.0, 1400.0, 1800.0, 2000.0] {
            for ms in [200, 400, 1000] {
                let mut phase = 0.0;
                let mut s = vec![0i16; 1200];
                s.extend(tone(freq, ms, 5000.0, &mut phase));
                s.extend(vec![0i16; 800]);
                // Add white noise 30 dB below the tone.
                for x in s.iter_mut() {
                    noise_state = noise_state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let n = ((noise_state >> 16) as i32 % 200) - 100;
                    *x = x.saturating_add(n as i16);
                }
                let events = run(&s);
                assert_eq!(events.len(), 1, "{freq} Hz {ms} ms: {events:?}");
                match events[0] {
                    ToneEvent::Beep {
                        freq_hz,
                        start_ms,
                        end_ms,
                    } => {
                        assert!((f64::from(freq_hz) - freq).abs() < 5.0, "{freq_hz}");
                        assert!(start_ms.abs_diff(150) <= 20, "{start_ms}");
                        assert!(end_ms.abs_diff(150 + ms) <= 20, "{end_ms}");
                    }
                    other => panic!("{freq}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn fax_tones() {
        let mut phase = 0.0;
        let mut s = vec![0i16; 400];
        for _ in 0..2 {
            s.extend(tone(1100.0, 500, 5000.0, &mut phase));
            s.extend(vec![0i16; 24000]);
        }
        let events = run(&s);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events.iter().all(|e| matches!(
            e,
            ToneEvent::Fax {
                tone: FaxTone::Cng,
                ..
            }
        )));

        let mut s = vec![0i16; 400];
        s.extend(tone(2100.0, 3000, 5000.0, &mut phase));
        let events = run(&s);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(
            events[0],
            ToneEvent::Fax {
                tone: FaxTone::Ced,
                at_ms: 1550..=1600,
                ..
            }
        ));
    }

    #[test]
    fn ringback_dial_tone_and_too_long_tones_are_not_beeps() {
        let mut pa = 0.0;
        let mut pb = 0.0;
        // North American ringback: 440 + 480 Hz, 2 s on.
        let a = tone(440.0, 2000, 5000.0, &mut pa);
        let b = tone(480.0, 2000, 5000.0, &mut pb);
        let ringback: Vec<i16> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| x.saturating_add(*y))
            .collect();
        assert_eq!(run(&ringback), vec![]);
        // A 5 s steady tone is longer than any beep.
        let long = tone(1000.0, 5000, 5000.0, &mut pa);
        assert_eq!(run(&long), vec![]);
        // A beep below the band (European dial tone, 425 Hz).
        let low = tone(425.0, 500, 5000.0, &mut pa);
        assert_eq!(run(&low), vec![]);
    }
}
