//! Test support shared by the workspace's tests: real peers, fresh databases, free ports.
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

/// Default PostgreSQL server used when `DIALER_TEST_POSTGRES` is not set.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Default Redis server used when `DIALER_TEST_REDIS` is not set.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

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

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("cannot bind a TCP port on 127.0.0.1: {err}"))
}

/// A unique name for this test's resources (database name, Redis key prefix).
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A database of its own on the PostgreSQL test server, dropped when this value is dropped.
pub struct TempPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TempPostgres {
    /// The connection URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The fresh database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                // The name is ours (letters, digits, underscores), never outside input.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// The PostgreSQL test server's URL (`DIALER_TEST_POSTGRES`, else [`DEFAULT_POSTGRES`]).
pub fn postgres_admin_url() -> String {
    std::env::var("DIALER_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// Creates a fresh database on the PostgreSQL test server, or reports the server missing.
pub async fn postgres() -> Option<TempPostgres> {
    use sqlx::Connection;
    let admin_url = postgres_admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(conn) => conn,
        Err(err) => {
            missing("postgresql", &format!("{admin_url}: {err}"));
            return None;
        }
    };
    let name = unique_name("dialer_test");
    if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
    {
        missing("postgresql", &format!("cannot create a database: {err}"));
        return None;
    }
    let url = match admin_url.rsplit_once('/') {
        Some((server, _db)) => format!("{server}/{name}"),
        None => format!("{admin_url}/{name}"),
    };
    Some(TempPostgres {
        admin_url,
        name,
        url,
    })
}

/// The Redis test server's URL (`DIALER_TEST_REDIS`, else [`DEFAULT_REDIS`]).
pub fn redis_url() -> String {
    std::env::var("DIALER_TEST_REDIS").unwrap_or_else(|_| DEFAULT_REDIS.to_owned())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn fresh_postgres_database_is_created_and_dropped() {
        let Some(db) = super::postgres().await else {
            return;
        };
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(db.url())
            .await
            .expect("connect to the fresh database");
        let one: (i32,) = sqlx::query_as("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .expect("query");
        assert_eq!(one.0, 1);
    }
}
