//! The shared front end of every detector: placing packets on the stream's timeline by their RTP
//! timestamps, and cutting 10 ms frames with the few sums the detectors need.

use std::ops::ControlFlow;

/// Samples per second of the audio every detector is fed (G.711 narrowband).
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one analysis frame: 10 ms.
pub(crate) const FRAME: u32 = 80;
/// Milliseconds in one analysis frame.
pub(crate) const FRAME_MS: u32 = FRAME * 1000 / SAMPLE_RATE;
/// A timestamp jump forward longer than this (2 s) is taken as a restarted stream, not a gap.
const MAX_GAP: u32 = 2 * SAMPLE_RATE;

/// Where a packet's samples go on the stream's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Samples missing before this packet (lost packets), to be analysed as silence.
    pub gap: u32,
    /// Samples at the front of this packet already analysed (duplicate or overlap), to skip.
    pub skip: usize,
}

/// Follows the RTP timestamp of the stream, never the wall clock: time is what was received.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamClock {
    /// RTP timestamp of the next sample expected; `None` before the first packet.
    next: Option<u32>,
}

impl StreamClock {
    /// Places a packet of `len` samples stamped `timestamp`, and advances past it.
    pub fn place(&mut self, timestamp: u32, len: usize) -> Placement {
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        let Some(next) = self.next else {
            self.next = Some(timestamp.wrapping_add(len32));
            return Placement { gap: 0, skip: 0 };
        };
        // Differences are taken modulo 2^32 and read as signed, so a wrapping timestamp is fine.
        let ahead = timestamp.wrapping_sub(next) as i32;
        let placement = if ahead >= 0 {
            let ahead = ahead as u32;
            if ahead > MAX_GAP {
                // The sender restarted its timestamps: carry on without inventing silence.
                Placement { gap: 0, skip: 0 }
            } else {
                Placement {
                    gap: ahead,
                    skip: 0,
                }
            }
        } else {
            let behind = ahead.unsigned_abs() as usize;
            if behind > MAX_GAP as usize {
                // Far behind is a restart too, not a duplicate.
                Placement { gap: 0, skip: 0 }
            } else {
                Placement {
                    gap: 0,
                    skip: behind.min(len),
                }
            }
        };
        if placement.skip < len {
            self.next = Some(timestamp.wrapping_add(len32));
        }
        placement
    }
}

/// One 10 ms frame's measurements.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Frame {
    /// Sum of absolute sample values (Asterisk's measure, before dividing by the length).
    pub abs_sum: u32,
    /// Mean square of the samples.
    pub power: f64,
    /// Prediction gain of the best two-tap linear predictor, as a power ratio (0 if none).
    gain: f64,
    /// Whether the predictor's poles are not a steady tone (gain then counts at most 6 dB).
    unsteady: bool,
    /// Cosine of the poles' angle, whence the tone's frequency (`None` if not a pole pair).
    cos: Option<f64>,
}

impl Frame {
    /// Prediction gain in dB of the best two-tap linear predictor: a pure tone is predicted
    /// almost exactly (tens of dB), speech and noise are not. Computed on demand: most frames
    /// are not tonal, and a `log10` per frame was a tenth of the detector's instructions.
    pub fn tone_gain_db(&self) -> f32 {
        if self.gain <= 0.0 {
            return 0.0;
        }
        let db = (10.0 * self.gain.log10()) as f32;
        if self.unsteady { db.min(6.0) } else { db }
    }

    /// Whether [`Frame::tone_gain_db`] is at least `db`, given `ratio_below`, a power ratio a
    /// little under `db` (see [`purity_floor`]): most frames are told apart without a `log10`.
    pub fn tone_gain_at_least(&self, db: f32, ratio_below: f64) -> bool {
        self.gain >= ratio_below && self.tone_gain_db() >= db
    }

    /// Frequency of the tone the predictor describes, in Hz (meaningful when the gain is high).
    pub fn tone_hz(&self) -> f32 {
        self.cos.map_or(0.0, |cos| {
            (cos.acos() * f64::from(SAMPLE_RATE) / std::f64::consts::TAU) as f32
        })
    }

    /// Level in dB relative to full scale (RMS), floored at -100 dBFS.
    pub fn level_db(&self) -> f32 {
        let full = 32768.0_f64 * 32768.0;
        (10.0 * ((self.power / full).max(1e-10)).log10()) as f32
    }
}

/// Accumulates samples into frames. The sums are the covariance terms of a two-tap predictor,
/// which give tone frequency and purity at three multiply-adds per sample; a cutter for the
/// Asterisk baseline keeps only the absolute sum.
#[derive(Debug, Clone)]
pub(crate) struct FrameCutter {
    /// Whether to compute power and the predictor (false: absolute sum only).
    full: bool,
    n: u32,
    abs_sum: u32,
    e00: i64,
    e01: i64,
    e02: i64,
    /// The two samples before the next one.
    x1: i32,
    x2: i32,
    /// The two samples before the current frame began.
    b1: i32,
    b2: i32,
}

impl Default for FrameCutter {
    fn default() -> Self {
        FrameCutter::new(true)
    }
}

/// Silence to analyse for lost packets, fed in slices of this.
const ZEROS: [i16; FRAME as usize] = [0; FRAME as usize];

/// Lanes of independent accumulators, so the sums are computed several samples at a time.
const LANES: usize = 8;

impl FrameCutter {
    /// A cutter computing everything (`full`) or only Asterisk's absolute sum.
    pub fn new(full: bool) -> Self {
        FrameCutter {
            full,
            n: 0,
            abs_sum: 0,
            e00: 0,
            e01: 0,
            e02: 0,
            x1: 0,
            x2: 0,
            b1: 0,
            b2: 0,
        }
    }

    /// Feeds `gap` samples of silence then `samples`, calling `on_frame` with each completed
    /// frame until it says stop.
    pub fn feed<B>(
        &mut self,
        mut gap: u32,
        mut samples: &[i16],
        mut on_frame: impl FnMut(&Frame) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        loop {
            let need = (FRAME - self.n) as usize;
            let chunk = if gap > 0 {
                let take = need.min(gap as usize);
                gap -= take as u32;
                &ZEROS[..take]
            } else if !samples.is_empty() {
                let take = need.min(samples.len());
                let (chunk, rest) = samples.split_at(take);
                samples = rest;
                chunk
            } else {
                return ControlFlow::Continue(());
            };
            self.accumulate(chunk);
            if self.n == FRAME {
                let frame = self.finish_frame();
                self.n = 0;
                self.abs_sum = 0;
                self.e00 = 0;
                self.e01 = 0;
                self.e02 = 0;
                self.b1 = self.x1;
                self.b2 = self.x2;
                on_frame(&frame)?;
            }
        }
    }

    /// Adds a chunk that does not cross a frame boundary.
    fn accumulate(&mut self, c: &[i16]) {
        self.n += c.len() as u32;
        // A plain sum of 16-bit magnitudes, which the compiler turns into SSE2 (8 at a time);
        // the former 8-lane form of 32-bit `abs` was not, and cost more than the correlation.
        self.abs_sum += c.iter().map(|&x| u32::from(x.unsigned_abs())).sum::<u32>();
        // x[n], x[n-1], x[n-2] over the chunk, the first two from the carried samples: the chunk
        // goes behind them in one buffer, so that a whole frame is 10 SIMD blocks with no sample
        // left for a plain loop (half the instructions of a frame).
        let mut buf = [0i16; FRAME as usize + 2];
        for piece in c.chunks(FRAME as usize) {
            if self.full {
                // The carried samples came from i16 samples (or are the initial zeros).
                buf[0] = self.x2 as i16;
                buf[1] = self.x1 as i16;
                buf[2..2 + piece.len()].copy_from_slice(piece);
                let mut sums = [0i64; 3];
                correlate(&buf[..piece.len() + 2], &mut sums);
                self.e00 += sums[0];
                self.e01 += sums[1];
                self.e02 += sums[2];
            }
            (self.x1, self.x2) = match piece {
                [.., a, b] => (i32::from(*b), i32::from(*a)),
                [b] => (i32::from(*b), self.x1),
                [] => (self.x1, self.x2),
            };
        }
    }

    fn finish_frame(&self) -> Frame {
        let n = f64::from(FRAME);
        let mut frame = Frame {
            abs_sum: self.abs_sum,
            power: 0.0,
            gain: 0.0,
            unsteady: false,
            cos: None,
        };
        if !self.full {
            return frame;
        }
        let (last1, last2) = (f64::from(self.x1), f64::from(self.x2));
        let (before1, before2) = (f64::from(self.b1), f64::from(self.b2));
        // Covariance method: phi(i, j) = sum over the frame of x[n-i] x[n-j].
        let p00 = self.e00 as f64;
        let p01 = self.e01 as f64;
        let p02 = self.e02 as f64;
        let p11 = p00 - last1 * last1 + before1 * before1;
        let p22 = p11 - last2 * last2 + before2 * before2;
        let p12 = p01 - last1 * last2 + before1 * before2;
        frame.power = p00 / n;
        let det = p11 * p22 - p12 * p12;
        if p00 <= n || det <= 1e-9 * p11 * p22 {
            return frame;
        }
        let a1 = (p01 * p22 - p02 * p12) / det;
        let a2 = (p02 * p11 - p01 * p12) / det;
        let error = (p00 - a1 * p01 - a2 * p02).max(p00 * 1e-6);
        frame.gain = p00 / error;
        // x[n] = a1 x[n-1] + a2 x[n-2] has poles r e^{+-jw} with r^2 = -a2, 2 r cos w = a1.
        if a2 < 0.0 {
            let r = (-a2).sqrt();
            frame.cos = Some((a1 / (2.0 * r)).clamp(-1.0, 1.0));
            // A decaying or growing pole pair is not a steady tone.
            frame.unsteady = !(0.97..=1.03).contains(&r);
        } else {
            frame.unsteady = true;
        }
        frame
    }
}

/// A power ratio a little under `db` decibels, for [`Frame::tone_gain_at_least`]: a gain below
/// it is below `db` whatever the rounding of the exact comparison.
pub(crate) fn purity_floor(db: f32) -> f64 {
    10f64.powf((f64::from(db) - 0.01) / 10.0)
}

/// Adds to `sums` the sums of x[n]^2, x[n] x[n-1] and x[n] x[n-2] for n from 2 to the end of
/// `c`.
fn correlate(c: &[i16], sums: &mut [i64; 3]) {
    #[cfg(target_arch = "x86_64")]
    let done = if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, just checked (the check is a cached load).
        unsafe { correlate_avx2(c, sums) }
    } else {
        correlate_sse2(c, sums)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = None;
    correlate_scalar(c, done.unwrap_or(0), sums);
}

/// [`correlate`] from `now[start]` on (`now` is `c[2..]`), one sample at a time.
fn correlate_scalar(c: &[i16], start: usize, sums: &mut [i64; 3]) {
    if c.len() <= 2 {
        return;
    }
    let now = &c[2..];
    let back1 = &c[1..c.len() - 1];
    let back2 = &c[..c.len() - 2];
    // Products fit in i32 (|x| <= 32768); lanes so the compiler keeps several in registers.
    let (mut e00, mut e01, mut e02) = ([0i64; LANES], [0i64; LANES], [0i64; LANES]);
    let start = start.min(now.len());
    let blocks = now[start..]
        .chunks_exact(LANES)
        .zip(back1[start..].chunks_exact(LANES))
        .zip(back2[start..].chunks_exact(LANES));
    for ((x, y), z) in blocks {
        for lane in 0..LANES {
            let (x, y, z) = (i32::from(x[lane]), i32::from(y[lane]), i32::from(z[lane]));
            e00[lane] += i64::from(x * x);
            e01[lane] += i64::from(x * y);
            e02[lane] += i64::from(x * z);
        }
    }
    let done = start + (now.len() - start) / LANES * LANES;
    for ((&x, &y), &z) in now[done..].iter().zip(&back1[done..]).zip(&back2[done..]) {
        let (x, y, z) = (i32::from(x), i32::from(y), i32::from(z));
        e00[0] += i64::from(x * x);
        e01[0] += i64::from(x * y);
        e02[0] += i64::from(x * z);
    }
    sums[0] += e00.iter().sum::<i64>();
    sums[1] += e01.iter().sum::<i64>();
    sums[2] += e02.iter().sum::<i64>();
}

/// [`correlate_sse2`] over blocks of 16 with AVX2: a frame is 5 blocks instead of 10. The
/// correlation was the largest part of the detector's cost per packet at 5,000 streams.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn correlate_avx2(c: &[i16], sums: &mut [i64; 3]) -> Option<usize> {
    use std::arch::x86_64::{
        __m256i, _mm_add_epi64, _mm_cvtsi128_si64, _mm_unpackhi_epi64, _mm256_add_epi64,
        _mm256_castsi256_si128, _mm256_cmpeq_epi16, _mm256_cvtepi32_epi64,
        _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi16, _mm256_setzero_si256,
    };
    /// Sign-extends the eight 32-bit pair sums and adds them to four 64-bit lanes.
    #[target_feature(enable = "avx2")]
    fn widen(acc: __m256i, v: __m256i) -> __m256i {
        let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
        let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v));
        _mm256_add_epi64(acc, _mm256_add_epi64(lo, hi))
    }
    let blocks = c.len().saturating_sub(2) / 16;
    let (mut a00, mut a01, mut a02) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    let (min, mut seen_min) = (_mm256_set1_epi16(i16::MIN), _mm256_setzero_si256());
    let p = c.as_ptr();
    for b in 0..blocks {
        // SAFETY: block `b` reads c[16b..16b + 18], inside `c` since 16 * blocks <= c.len() - 2;
        // the loads are unaligned ones.
        let (z, y, x) = unsafe {
            (
                _mm256_loadu_si256(p.add(16 * b).cast::<__m256i>()),
                _mm256_loadu_si256(p.add(16 * b + 1).cast::<__m256i>()),
                _mm256_loadu_si256(p.add(16 * b + 2).cast::<__m256i>()),
            )
        };
        seen_min = _mm256_or_si256(seen_min, _mm256_cmpeq_epi16(x, min));
        a00 = widen(a00, _mm256_madd_epi16(x, x));
        a01 = widen(a01, _mm256_madd_epi16(x, y));
        a02 = widen(a02, _mm256_madd_epi16(x, z));
    }
    if _mm256_movemask_epi8(seen_min) != 0 {
        return None;
    }
    for (sum, acc) in sums.iter_mut().zip([a00, a01, a02]) {
        let half = _mm_add_epi64(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        *sum += _mm_cvtsi128_si64(half) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(half, half));
    }
    Some(blocks * 16)
}

/// [`correlate`] over whole blocks of 8 with SSE2's multiply-and-add of 16-bit pairs (part of
/// every x86_64); returns how many samples of `c[2..]` it covered, or `None`, having added
/// nothing, if one of them is -32768. A pair of products only overflows 32 bits if x[n] is
/// -32768 in both (G.711 never decodes to it; a WAV file may hold it).
#[cfg(target_arch = "x86_64")]
fn correlate_sse2(c: &[i16], sums: &mut [i64; 3]) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi64, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_madd_epi16,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi16, _mm_setzero_si128, _mm_srai_epi32,
        _mm_storeu_si128, _mm_unpackhi_epi32, _mm_unpacklo_epi32,
    };
    let blocks = c.len().saturating_sub(2) / 8;
    // SAFETY: SSE2 is in the x86_64 baseline. Block `b` reads c[8b..8b + 10], inside `c` since
    // 8 * blocks <= c.len() - 2; the loads and stores are unaligned ones.
    unsafe {
        // Sign-extends the four 32-bit pair sums and adds them to two 64-bit lanes.
        let widen = |acc: __m128i, v: __m128i| {
            let sign = _mm_srai_epi32::<31>(v);
            _mm_add_epi64(
                _mm_add_epi64(acc, _mm_unpacklo_epi32(v, sign)),
                _mm_unpackhi_epi32(v, sign),
            )
        };
        let (mut a00, mut a01, mut a02) = (
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
        );
        let p = c.as_ptr();
        let (min, mut seen_min) = (_mm_set1_epi16(i16::MIN), _mm_setzero_si128());
        for b in 0..blocks {
            let z = _mm_loadu_si128(p.add(8 * b).cast::<__m128i>());
            let y = _mm_loadu_si128(p.add(8 * b + 1).cast::<__m128i>());
            let x = _mm_loadu_si128(p.add(8 * b + 2).cast::<__m128i>());
            seen_min = _mm_or_si128(seen_min, _mm_cmpeq_epi16(x, min));
            a00 = widen(a00, _mm_madd_epi16(x, x));
            a01 = widen(a01, _mm_madd_epi16(x, y));
            a02 = widen(a02, _mm_madd_epi16(x, z));
        }
        if _mm_movemask_epi8(seen_min) != 0 {
            return None;
        }
        for (sum, acc) in sums.iter_mut().zip([a00, a01, a02]) {
            let mut lanes = [0i64; 2];
            _mm_storeu_si128(lanes.as_mut_ptr().cast::<__m128i>(), acc);
            *sum += lanes[0] + lanes[1];
        }
    }
    Some(blocks * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simd_sums_equal_the_plain_ones_exactly() {
        // A fixed pseudo-random sequence with extremes, including -32768 (the plain path).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..2000 {
            let len = (next() % 200) as usize;
            let c: Vec<i16> = (0..len)
                .map(|_| match next() % 8 {
                    0 => i16::MAX,
                    1 => -i16::MAX,
                    2 if round % 3 == 0 => i16::MIN,
                    _ => next() as i16,
                })
                .collect();
            let (mut fast, mut plain) = ([0i64; 3], [0i64; 3]);
            correlate(&c, &mut fast);
            correlate_scalar(&c, 0, &mut plain);
            assert_eq!(fast, plain, "{c:?}");
            // Both vector paths, whichever `correlate` chose.
            #[cfg(target_arch = "x86_64")]
            {
                let mut sse2 = [0i64; 3];
                let done = correlate_sse2(&c, &mut sse2).unwrap_or(0);
                correlate_scalar(&c, done, &mut sse2);
                assert_eq!(sse2, plain, "SSE2: {c:?}");
                if std::is_x86_feature_detected!("avx2") {
                    let mut avx2 = [0i64; 3];
                    // SAFETY: the CPU has AVX2, just checked.
                    let done = unsafe { correlate_avx2(&c, &mut avx2) }.unwrap_or(0);
                    correlate_scalar(&c, done, &mut avx2);
                    assert_eq!(avx2, plain, "AVX2: {c:?}");
                }
            }
        }
    }

    pub(crate) fn sine(freq: f64, amplitude: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                (amplitude * (std::f64::consts::TAU * freq * n as f64 / 8000.0).sin()).round()
                    as i16
            })
            .collect()
    }

    #[test]
    fn clock_handles_gaps_duplicates_overlap_and_wrap() {
        let mut clock = StreamClock::default();
        let start = u32::MAX - 100;
        assert_eq!(clock.place(start, 160), Placement { gap: 0, skip: 0 });
        // Next packet wraps past zero.
        assert_eq!(
            clock.place(start.wrapping_add(160), 160),
            Placement { gap: 0, skip: 0 }
        );
        // One packet lost.
        assert_eq!(
            clock.place(start.wrapping_add(480), 160),
            Placement { gap: 160, skip: 0 }
        );
        // A duplicate of it is skipped whole.
        assert_eq!(
            clock.place(start.wrapping_add(480), 160),
            Placement { gap: 0, skip: 160 }
        );
        // Overlapping by half.
        assert_eq!(
            clock.place(start.wrapping_add(560), 160),
            Placement { gap: 0, skip: 80 }
        );
        // A restart far away is not a gap.
        assert_eq!(clock.place(1_000_000, 160), Placement { gap: 0, skip: 0 });
        assert_eq!(clock.place(1_000_160, 160), Placement { gap: 0, skip: 0 });
    }

    #[test]
    fn sums_do_not_depend_on_packet_sizes() {
        let audio: Vec<i16> = (0..1000i32)
            .map(|n| ((n * 7919) % 20001 - 10000) as i16)
            .collect();
        let mut reference = Vec::new();
        let mut cutter = FrameCutter::default();
        let _ = cutter.feed::<()>(3, &audio, |f| {
            reference.push((f.abs_sum, f.power, f.tone_gain_db(), f.tone_hz()));
            ControlFlow::Continue(())
        });
        for size in [1, 2, 3, 79, 80, 81, 160] {
            let mut got = Vec::new();
            let mut cutter = FrameCutter::default();
            let _ = cutter.feed::<()>(3, &[], |_| ControlFlow::Continue(()));
            for packet in audio.chunks(size) {
                let _ = cutter.feed::<()>(0, packet, |f| {
                    got.push((f.abs_sum, f.power, f.tone_gain_db(), f.tone_hz()));
                    ControlFlow::Continue(())
                });
            }
            assert_eq!(got, reference, "packets of {size}");
        }
    }

    #[test]
    fn frame_sums_equal_a_direct_computation_across_chunk_edges() {
        // Extremes included (-32768 takes the plain path), chunks of every size up to a frame.
        let audio: Vec<i16> = (0..2000i64)
            .map(|n| match n % 97 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => ((n * 7919 + n * n * 31) % 60001 - 30000) as i16,
            })
            .collect();
        let x = |n: usize| i64::from(audio[n]);
        for size in [1, 2, 7, 8, 9, 10, 40, 79, 80] {
            let mut cutter = FrameCutter::default();
            let (mut start, mut frame) = (0usize, 0usize);
            while start < audio.len() {
                let room = (FRAME - cutter.n) as usize;
                let end = (start + size.min(room)).min(audio.len());
                cutter.accumulate(&audio[start..end]);
                start = end;
                if cutter.n == FRAME {
                    let from = frame * FRAME as usize;
                    let (mut e00, mut e01, mut e02, mut abs) = (0i64, 0i64, 0i64, 0u32);
                    for n in from..from + FRAME as usize {
                        let back = |k: usize| if n >= k { x(n - k) } else { 0 };
                        e00 += x(n) * x(n);
                        e01 += x(n) * back(1);
                        e02 += x(n) * back(2);
                        abs += x(n).unsigned_abs() as u32;
                    }
                    let got = (cutter.e00, cutter.e01, cutter.e02, cutter.abs_sum);
                    assert_eq!(got, (e00, e01, e02, abs), "chunks of {size}, frame {frame}");
                    cutter.n = 0;
                    (cutter.abs_sum, cutter.e00, cutter.e01, cutter.e02) = (0, 0, 0, 0);
                    frame += 1;
                }
            }
        }
    }

    #[test]
    fn tone_frequency_and_purity() {
        for freq in [440.0, 913.8, 1100.0, 1776.7, 2000.0] {
            let mut cutter = FrameCutter::default();
            let mut frames: Vec<Frame> = Vec::new();
            let audio = sine(freq, 8000.0, 800);
            // Odd packet sizes, so chunks cross frame boundaries anywhere.
            for packet in audio.chunks(37) {
                let _ = cutter.feed::<()>(0, packet, |f| {
                    frames.push(*f);
                    ControlFlow::Continue(())
                });
            }
            assert_eq!(frames.len(), 10);
            let last = frames.last().unwrap();
            assert!(
                (f64::from(last.tone_hz()) - freq).abs() < 2.0,
                "{freq}: {last:?}"
            );
            assert!(last.tone_gain_db() > 30.0, "{freq}: {last:?}");
            assert!(last.tone_gain_at_least(30.0, purity_floor(30.0)));
            assert!(!last.tone_gain_at_least(
                last.tone_gain_db() + 0.5,
                purity_floor(last.tone_gain_db() + 0.5)
            ));
        }
    }
}
