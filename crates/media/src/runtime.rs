//! The media runtime: the receive loops of one service (or lab, or test), made from its
//! [`MediaConfig`], and the legs opened on them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::config::MediaConfig;
use crate::error::MediaError;
use crate::leg::{Leg, LegEvents, LegOptions};
use crate::ports::PortAllocator;
use crate::reactor::Loops;

/// The receive loops legs are read by, and their counters. Cloning gives another handle to the
/// same loops. They start with [`MediaRuntime::start`] or the first leg, and stop once every
/// handle and every leg opened through them is gone.
#[derive(Clone, Default)]
pub struct MediaRuntime {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    config: MediaConfig,
    /// The loops once started, or why they could not be.
    loops: OnceLock<Result<Arc<Loops>, String>>,
}

impl std::fmt::Debug for MediaRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRuntime")
            .field("config", &self.inner.config)
            .field("receive_loop", &self.receive_loop())
            .finish()
    }
}

/// Counters of a runtime's receive loops, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveLoopStats {
    /// Receive requests that ended because the io_uring loop's buffers had run out: a burst
    /// larger than the loop takes in one round (their datagrams waited in the sockets).
    pub buffer_exhaustions: u64,
    /// Re-arms of those requests put off to a later round, counted each round they waited.
    pub rearms_deferred: u64,
    /// Whether the loops run at real-time priority (asked for, and allowed by the system).
    pub realtime: bool,
}

impl MediaRuntime {
    /// A runtime whose loops will run as `config` says (they start with the first leg).
    pub fn new(config: MediaConfig) -> MediaRuntime {
        MediaRuntime {
            inner: Arc::new(Inner {
                config,
                loops: OnceLock::new(),
            }),
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// Starts the receive loops now rather than with the first leg, so that a setting the
    /// system cannot honour (`io_uring` where it cannot receive) is reported at once.
    pub fn start(&self) -> Result<(), MediaError> {
        self.loops().map(|_| ())
    }

    /// Opens a leg on the next free port pair of `ports`, read by one of this runtime's
    /// receive loops, and starts its task on the current tokio runtime.
    pub fn open_leg(
        &self,
        ports: &PortAllocator,
        options: LegOptions,
    ) -> Result<(Leg, LegEvents), MediaError> {
        let loops = self.loops()?;
        Leg::open_with(ports, options, |inner| loops.register(inner))
    }

    /// What the receive loops are built on (`"io_uring"` or `"epoll"`), once started.
    pub fn receive_loop(&self) -> Option<&'static str> {
        match self.inner.loops.get()? {
            Ok(loops) => Some(loops.backend()),
            Err(_) => None,
        }
    }

    /// The receive loops' counters since they started (zero before, and on epoll).
    pub fn stats(&self) -> ReceiveLoopStats {
        let Some(Ok(loops)) = self.inner.loops.get() else {
            return ReceiveLoopStats::default();
        };
        let counters = loops.counters();
        ReceiveLoopStats {
            buffer_exhaustions: counters.buffer_exhaustions.load(Ordering::Relaxed),
            rearms_deferred: counters.rearms_deferred.load(Ordering::Relaxed),
            realtime: loops.realtime(),
        }
    }

    fn loops(&self) -> Result<&Arc<Loops>, MediaError> {
        let loops = self.inner.loops.get_or_init(|| {
            self.inner
                .config
                .validate()
                .map_err(|e| e.to_string())
                .and_then(|()| Loops::start(&self.inner.config).map_err(|e| e.to_string()))
                .map(Arc::new)
        });
        loops
            .as_ref()
            .map_err(|e| MediaError::Io(std::io::Error::other(format!("media receive loop: {e}"))))
    }
}
