//! What the media tests share: receive loops of a test's own on a chosen backend, and a macro
//! that runs a check once on each backend.

#![allow(dead_code)]

use media::{MediaConfig, MediaIo, MediaRuntime};

/// Receive loops of their own on `io`, started, checked to be on that backend; `None` where
/// io_uring cannot receive (outside CI, whose kernel can).
pub fn loops(io: MediaIo) -> Option<MediaRuntime> {
    loops_with(MediaConfig {
        io,
        ..MediaConfig::default()
    })
}

/// Receive loops of their own as `config` says, started; `None` where `config` asks for
/// io_uring and it cannot receive here (outside CI).
pub fn loops_with(config: MediaConfig) -> Option<MediaRuntime> {
    let media = MediaRuntime::new(config);
    match media.start() {
        Ok(()) => {
            let expected = match config.io {
                MediaIo::Epoll => Some("epoll"),
                MediaIo::Uring => Some("io_uring"),
                MediaIo::Auto => media.receive_loop(),
            };
            assert_eq!(media.receive_loop(), expected);
            Some(media)
        }
        Err(e) if config.io == MediaIo::Uring && std::env::var_os("CI").is_none() => {
            eprintln!("io_uring cannot receive here ({e}); the io_uring variant is skipped");
            None
        }
        Err(e) => panic!("receive loops on {}: {e}", config.io),
    }
}

/// Runs each named check, a function taking the [`MediaRuntime`] to open its legs on, once on
/// each backend, as the tests `io_uring::NAME` and `epoll::NAME`. Async checks come first,
/// each with its `tokio::test` arguments in brackets if any; then, after `; blocking:`, checks
/// that run their own tokio runtimes.
macro_rules! on_each_backend {
    (
        $($name:ident $([$($flavour:tt)*])?),* $(,)?
        $(; blocking: $($blocking:ident),* $(,)?)?
    ) => {
        mod io_uring {
            $(
                #[tokio::test $(($($flavour)*))?]
                async fn $name() {
                    if let Some(media) = crate::support::loops(media::MediaIo::Uring) {
                        super::$name(media).await;
                    }
                }
            )*
            $($(
                #[test]
                fn $blocking() {
                    if let Some(media) = crate::support::loops(media::MediaIo::Uring) {
                        super::$blocking(media);
                    }
                }
            )*)?
        }
        mod epoll {
            $(
                #[tokio::test $(($($flavour)*))?]
                async fn $name() {
                    if let Some(media) = crate::support::loops(media::MediaIo::Epoll) {
                        super::$name(media).await;
                    }
                }
            )*
            $($(
                #[test]
                fn $blocking() {
                    if let Some(media) = crate::support::loops(media::MediaIo::Epoll) {
                        super::$blocking(media);
                    }
                }
            )*)?
        }
    };
}

pub(crate) use on_each_backend;
