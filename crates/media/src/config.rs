//! How the media receive loops run: how many, on what the kernel offers, at which priority.
//! The service reads it from its configuration file and flags (`media_threads`, `media_io`,
//! `media_priority`); everything else takes [`MediaConfig::default`].

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The most receive loops a runtime may have.
pub const MAX_THREADS: usize = 256;

/// The settings of a media runtime's receive loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Receive loops (threads), 1 to [`MAX_THREADS`]; `None`: one per core, at most 8. Legs are
    /// spread over them by id.
    pub threads: Option<usize>,
    /// What the loops wait on.
    pub io: MediaIo,
    /// The loops' scheduling priority.
    pub priority: MediaPriority,
}

impl MediaConfig {
    /// Checks the settings; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.threads {
            Some(n) if !(1..=MAX_THREADS).contains(&n) => Err(ConfigError::Threads(n)),
            _ => Ok(()),
        }
    }

    /// How many loops run: [`MediaConfig::threads`], or one per core (at most 8).
    pub fn thread_count(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
    }
}

/// What the receive loops learn from which sockets hold datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MediaIo {
    /// io_uring if a start-up probe receives through it, else epoll (`auto`).
    #[default]
    Auto,
    /// io_uring, or no legs at all if it cannot receive here (`io_uring`).
    Uring,
    /// Level-triggered epoll, one `recvfrom` per datagram (`epoll`).
    Epoll,
}

impl MediaIo {
    /// Every choice, as written in the configuration.
    pub const ALL: [MediaIo; 3] = [MediaIo::Auto, MediaIo::Uring, MediaIo::Epoll];

    /// The word the configuration uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaIo::Auto => "auto",
            MediaIo::Uring => "io_uring",
            MediaIo::Epoll => "epoll",
        }
    }
}

impl fmt::Display for MediaIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MediaIo {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "auto" => Ok(MediaIo::Auto),
            "io_uring" | "uring" => Ok(MediaIo::Uring),
            "epoll" => Ok(MediaIo::Epoll),
            other => Err(ConfigError::Io(other.to_owned())),
        }
    }
}

impl TryFrom<String> for MediaIo {
    type Error = ConfigError;

    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

/// The receive loops' scheduling priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MediaPriority {
    /// The system's normal priority (`normal`).
    #[default]
    Normal,
    /// `SCHED_FIFO` at 10, below the kernel's own threads at 50 (`realtime`). A bridged packet
    /// is relayed as soon as its loop runs; at normal priority the loop waits behind whatever
    /// else the scheduler runs on its core first, which is most of the bridge's added latency
    /// at its 99th percentile under load. Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of 10;
    /// without them the loops warn and run at normal priority.
    Realtime,
}

impl MediaPriority {
    /// The word the configuration uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaPriority::Normal => "normal",
            MediaPriority::Realtime => "realtime",
        }
    }
}

impl fmt::Display for MediaPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MediaPriority {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "normal" => Ok(MediaPriority::Normal),
            "realtime" => Ok(MediaPriority::Realtime),
            other => Err(ConfigError::Priority(other.to_owned())),
        }
    }
}

impl TryFrom<String> for MediaPriority {
    type Error = ConfigError;

    fn try_from(s: String) -> Result<Self, ConfigError> {
        s.parse()
    }
}

/// A media setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A thread count out of range.
    #[error("media threads must be 1 to {MAX_THREADS}, not {0}")]
    Threads(usize),
    /// An unknown I/O backend.
    #[error("media I/O `{0}` is none of auto, io_uring, epoll")]
    Io(String),
    /// An unknown priority.
    #[error("media priority `{0}` is none of normal, realtime")]
    Priority(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_from_their_words() {
        assert_eq!("io_uring".parse(), Ok(MediaIo::Uring));
        assert_eq!("uring".parse(), Ok(MediaIo::Uring));
        assert_eq!(" epoll ".parse(), Ok(MediaIo::Epoll));
        assert!("kqueue".parse::<MediaIo>().is_err());
        for io in MediaIo::ALL {
            assert_eq!(io.as_str().parse(), Ok(io));
        }
        assert_eq!("realtime".parse(), Ok(MediaPriority::Realtime));
        assert!("high".parse::<MediaPriority>().is_err());
        let config: MediaConfig =
            toml::from_str("threads = 2\nio = \"epoll\"\npriority = \"realtime\"").unwrap();
        assert_eq!(
            config,
            MediaConfig {
                threads: Some(2),
                io: MediaIo::Epoll,
                priority: MediaPriority::Realtime,
            }
        );
        assert!(toml::from_str::<MediaConfig>("io = \"poll\"").is_err());
        assert_eq!(
            MediaConfig {
                threads: Some(0),
                ..MediaConfig::default()
            }
            .validate(),
            Err(ConfigError::Threads(0))
        );
        assert!(MediaConfig::default().validate().is_ok());
        assert!(MediaConfig::default().thread_count() >= 1);
    }
}
