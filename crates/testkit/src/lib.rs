//! Test support shared by the workspace's tests and benchmarks: real peers, fresh databases,
//! free ports, waiting, raw SIP text, test audio and test certificates. It depends on none of
//! the product's crates, so that every crate can use it in its own tests.
//!
//! Tests that need a peer (sipp, espeak-ng, PostgreSQL, Redis, Chromium) ask for it here. On a
//! developer's machine a missing peer skips the test with a loud message on stderr; under CI
//! (`CI` or `DIALER_REQUIRE_PEERS` set) it fails the test, so nothing silently passes.
//!
//! ```no_run
//! # async fn t() {
//! let Some(sipp) = testkit::program("sipp") else { return };
//! let Some(db) = testkit::postgres().await else { return };
//! let url = db.url();
//! # }
//! ```

#![warn(missing_docs)]

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;

pub mod audio;
pub mod browser;
pub mod db;
pub mod sip_msg;
pub mod sipp;
pub mod tls;
pub mod wait;

pub use db::{
    DEFAULT_POSTGRES, DEFAULT_REDIS, TempPostgres, postgres, postgres_admin_url, redis_url,
    sqlite_url,
};
pub use wait::wait_for;

/// Whether a missing peer must fail the test (under CI) instead of skipping it.
pub fn peers_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("DIALER_REQUIRE_PEERS").is_some()
}

/// Reports a missing peer: panics under CI, otherwise prints a loud skip notice.
pub fn missing(peer: &str, why: &str) {
    if peers_required() {
        panic!("required test peer `{peer}` is unavailable: {why}");
    }
    eprintln!(
        "SKIPPED: test peer `{peer}` is unavailable ({why}); set CI=1 to make this a failure"
    );
}

/// Finds an executable on `PATH`, or reports it missing (see [`missing`]).
pub fn program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        missing(name, "not found on PATH");
    }
    found
}

/// A UDP port on 127.0.0.1 that was free a moment ago, for handing to a peer such as sipp.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("cannot bind a UDP port on 127.0.0.1: {err}"))
}

/// A port `p` on 127.0.0.1 free a moment ago on UDP and TCP, with `p + 1` free on TCP: a
/// softphone such as baresip binds its `sip_listen` port on both transports and TLS one above,
/// and fails to start if any of them is taken.
pub fn free_phone_port() -> u16 {
    loop {
        let port = free_tcp_port();
        if port < 65_000
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("cannot bind a TCP port on 127.0.0.1: {err}"))
}

/// The workspace's root directory, for files of other crates (the media corpus) from a test
/// wherever it lives.
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A unique name for this test's resources (database name, Redis key prefix).
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
