//! Databases for tests: a fresh PostgreSQL database each, SQLite files, the Redis server.

use std::path::Path;

use crate::{missing, unique_name};

/// Default PostgreSQL server used when `DIALER_TEST_POSTGRES` is not set.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Default Redis server used when `DIALER_TEST_REDIS` is not set.
pub const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";

/// The URL of an SQLite database in the file `path`, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
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
