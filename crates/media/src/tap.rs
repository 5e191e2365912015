//! A leg's feed into a call recording: the leg's decoded audio, queued chunk by chunk to the
//! recording's writer (which places the chunks on the file's timeline).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

/// One chunk of a leg's audio on its way to a recording.
pub(crate) struct Frame {
    /// 0 for the left channel (the callee), 1 for the right (the agent).
    pub(crate) channel: usize,
    /// The chunk's RTP timestamp.
    pub(crate) ts: u32,
    /// When it was handed over.
    pub(crate) at: Instant,
    /// 8 kHz samples.
    pub(crate) samples: Vec<i16>,
}

/// A leg's feed into a recording (held in the leg's receive state).
pub(crate) struct Tap {
    pub(crate) sender: mpsc::Sender<Frame>,
    pub(crate) channel: usize,
    /// The recording fed, so that ending it removes only its own feed.
    pub(crate) recording: u64,
    /// Chunks dropped because the writer's queue was full.
    pub(crate) dropped: Arc<AtomicU64>,
}

impl Tap {
    /// Queues a chunk; false once the recording has ended.
    pub(crate) fn send(&mut self, samples: &[i16], ts: u32) -> bool {
        let frame = Frame {
            channel: self.channel,
            ts,
            at: Instant::now(),
            samples: samples.to_vec(),
        };
        match self.sender.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
