//! Call recording: a stereo 16-bit 8 kHz WAV, the callee on the left and the agent on the right,
//! written while the call runs.
//!
//! Each leg hands its decoded, reordered audio (the same stream the detectors hear) to the
//! recording's task over a channel. The task places every chunk on a common timeline by its RTP
//! timestamp (anchored to wall-clock time when a stream starts or jumps), so the two sides stay
//! aligned even when one side is silent or loses packets. Audio is committed 300 ms behind real
//! time (late packets still land) and written and flushed, with the WAV header fixed up, every
//! 500 ms: a crash loses under a second.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::MediaError;
use crate::leg::{Leg, LegInner};
use crate::sys::lock;
use crate::tap::{Frame, Tap};

/// How far behind real time audio is committed to the file.
const COMMIT_DELAY: Duration = Duration::from_millis(300);
/// How often the file is written, flushed and its header fixed up.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// A chunk whose timestamp puts it further than this from where wall-clock time says it
/// belongs starts a new anchor (a new stream, or a timestamp jump).
const REANCHOR: i64 = 8000;
/// Frames queued per recording before new ones are dropped (about 2.5 s of both sides).
const QUEUE: usize = 256;

type WavFile = hound::WavWriter<BufWriter<File>>;

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The WAV file.
    pub path: PathBuf,
    /// Its length.
    pub duration: Duration,
    /// Audio chunks lost because the writer fell behind (a stalled disk).
    pub dropped_chunks: u64,
}

static NEXT_RECORDING: AtomicU64 = AtomicU64::new(1);

/// A recording in progress. Call [`Recording::finish`] at hangup; dropping it instead stops
/// the feed and still closes the file cleanly in the background.
pub struct Recording {
    id: u64,
    legs: Vec<Arc<LegInner>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<RecordingSummary, MediaError>>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording").field("id", &self.id).finish()
    }
}

impl Recording {
    /// Starts recording `left` (the callee) and `right` (the agent; `None` leaves the right
    /// channel silent, as the lab does to capture one leg) into a new WAV file at `path`.
    /// A leg can feed one recording at a time; a newer one replaces the older feed.
    pub fn start(
        path: impl AsRef<Path>,
        left: &Leg,
        right: Option<&Leg>,
    ) -> Result<Recording, MediaError> {
        let path = path.as_ref().to_path_buf();
        let err = |reason: String| MediaError::Recording {
            path: path.display().to_string(),
            reason,
        };
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|e| err(e.to_string()))?;
        let id = NEXT_RECORDING.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut legs = vec![];
        for (channel, leg) in [Some(left), right].into_iter().enumerate() {
            let Some(leg) = leg else { continue };
            let inner = leg.inner().clone();
            lock(&inner.rx).tap = Some(Tap {
                sender: sender.clone(),
                channel,
                recording: id,
                dropped: dropped.clone(),
            });
            inner.wake();
            legs.push(inner);
        }
        drop(sender);
        let (stop, stop_rx) = oneshot::channel();
        let writer_task = Writer {
            path: path.clone(),
            file: Some(writer),
            start: Instant::now(),
            written: 0,
            tracks: [Track::default(), Track::default()],
            pending: Vec::new(),
            error: None,
        };
        let task = tokio::spawn(writer_task.run(receiver, stop_rx, dropped));
        tracing::debug!(recording = id, path = %path.display(), "recording started");
        Ok(Recording {
            id,
            legs,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops feeding, writes what is buffered and closes the file.
    pub async fn finish(mut self) -> Result<RecordingSummary, MediaError> {
        self.detach();
        let task = self.task.take();
        match task {
            Some(task) => task.await.unwrap_or_else(|e| {
                Err(MediaError::Recording {
                    path: String::new(),
                    reason: format!("writer task failed: {e}"),
                })
            }),
            None => Err(MediaError::Closed),
        }
    }

    fn detach(&mut self) {
        for leg in self.legs.drain(..) {
            let mut rx = lock(&leg.rx);
            if rx.tap.as_ref().is_some_and(|t| t.recording == self.id) {
                rx.tap = None;
            }
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // The writer task finishes the file by itself once told to stop.
        self.detach();
    }
}

#[derive(Default)]
struct Track {
    /// (timestamp, absolute sample position) of the stream's anchor.
    anchor: Option<(u32, i64)>,
    /// Samples from the recording's `written` position on.
    buf: VecDeque<i16>,
}

struct Writer {
    path: PathBuf,
    file: Option<WavFile>,
    start: Instant,
    /// Frames (sample pairs) committed so far.
    written: i64,
    tracks: [Track; 2],
    pending: Vec<i16>,
    error: Option<String>,
}

impl Writer {
    async fn run(
        mut self,
        mut frames: mpsc::Receiver<Frame>,
        mut stop: oneshot::Receiver<()>,
        dropped: Arc<AtomicU64>,
    ) -> Result<RecordingSummary, MediaError> {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_flush = Instant::now();
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(frame) => self.place(frame),
                    None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let upto = self.wall_pos(now) - self.samples(COMMIT_DELAY);
                    self.commit(upto);
                    if now.duration_since(last_flush) >= FLUSH_EVERY {
                        self.write_out(true).await;
                        last_flush = now;
                    }
                }
                _ = &mut stop => break,
            }
        }
        while let Ok(frame) = frames.try_recv() {
            self.place(frame);
        }
        let end = self
            .tracks
            .iter()
            .map(|t| self.written + t.buf.len() as i64)
            .max()
            .unwrap_or(self.written);
        self.commit(end);
        self.write_out(false).await;
        let path = self.path.display().to_string();
        if let Some(reason) = self.error {
            return Err(MediaError::Recording { path, reason });
        }
        Ok(RecordingSummary {
            path: self.path,
            duration: Duration::from_micros(self.written.max(0) as u64 * 125),
            dropped_chunks: dropped.load(Ordering::Relaxed),
        })
    }

    fn samples(&self, d: Duration) -> i64 {
        (d.as_micros() / 125) as i64
    }

    fn wall_pos(&self, at: Instant) -> i64 {
        self.samples(at.saturating_duration_since(self.start))
    }

    fn place(&mut self, frame: Frame) {
        let len = frame.samples.len() as i64;
        let by_clock = self.wall_pos(frame.at) - len;
        let track = &mut self.tracks[frame.channel.min(1)];
        let pos = match track.anchor {
            Some((ts, pos)) => {
                let p = pos + (frame.ts.wrapping_sub(ts) as i32) as i64;
                if (p - by_clock).abs() > REANCHOR {
                    None
                } else {
                    Some(p)
                }
            }
            None => None,
        };
        let pos = pos.unwrap_or_else(|| {
            // Never anchor before what is already written on this track.
            let p = by_clock
                .max(self.written + track.buf.len() as i64)
                .max(self.written);
            track.anchor = Some((frame.ts, p));
            p
        });
        let mut skip = 0usize;
        let mut at = pos - self.written;
        if at < 0 {
            skip = (-at) as usize;
            at = 0;
        }
        if skip >= frame.samples.len() {
            return;
        }
        let at = at as usize;
        let samples = &frame.samples[skip..];
        if track.buf.len() < at + samples.len() {
            track.buf.resize(at + samples.len(), 0);
        }
        for (i, &s) in samples.iter().enumerate() {
            track.buf[at + i] = s;
        }
    }

    fn commit(&mut self, upto: i64) {
        while self.written < upto {
            let left = self.tracks[0].buf.pop_front().unwrap_or(0);
            let right = self.tracks[1].buf.pop_front().unwrap_or(0);
            self.pending.push(left);
            self.pending.push(right);
            self.written += 1;
        }
    }

    /// Writes the pending samples on the blocking pool, then flushes (fixing the header) or,
    /// when `keep_open` is false, finalises the file.
    async fn write_out(&mut self, keep_open: bool) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        let pending = std::mem::take(&mut self.pending);
        let result = tokio::task::spawn_blocking(move || {
            let mut result = Ok(());
            for s in &pending {
                if let Err(e) = file.write_sample(*s) {
                    result = Err(e);
                    break;
                }
            }
            if keep_open {
                result = result.and_then(|()| file.flush());
                (Some(file), result)
            } else {
                let finalized = file.finalize();
                (None, result.and(finalized))
            }
        })
        .await;
        match result {
            Ok((file, Ok(()))) => self.file = file,
            Ok((_, Err(e))) => {
                tracing::warn!(path = %self.path.display(), error = %e, "recording write failed");
                self.error = Some(e.to_string());
            }
            Err(e) => self.error = Some(format!("writer panicked: {e}")),
        }
    }
}
