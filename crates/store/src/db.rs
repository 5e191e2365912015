//! The [`Store`] handle: connecting, migrating, stored timestamps, and the raw-statement helpers
//! the import uses (see `import` for why it writes raw SQL).

use crate::error::{Error, Result};
use crate::plans::{LeasePlan, ZoneCache};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, QueryResult,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server (several nodes share it).
    Postgres,
}

/// The contact base. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: Backend,
    /// Parsed zone sets by id; rows of `zone_sets` never change, so this never goes stale.
    pub(crate) zone_cache: Arc<Mutex<ZoneCache>>,
    /// What the lease statement needs per campaign; checked by the statement itself.
    pub(crate) lease_plans: Arc<Mutex<HashMap<i64, Arc<LeasePlan>>>>,
    /// How to open the SQLite file again (migrations run on a connection of their own).
    sqlite: Option<(SqliteConnectOptions, bool)>,
}

impl Store {
    /// Connects to `sqlite://FILE?mode=rwc` or `postgres://user@host/db`.
    ///
    /// SQLite runs in WAL mode with a busy timeout, so readers never block the writer and a
    /// second writer waits instead of failing.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            // An in-memory database exists once per connection: keep exactly one.
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let pool = SqlitePoolOptions::new()
                .max_connections(if in_memory { 1 } else { 4 })
                .min_connections(usize::from(in_memory) as u32)
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(3600))
                })
                .connect_with(options.clone())
                .await?;
            let mut store = Self::new(DatabaseConnection::from(pool), Backend::Sqlite);
            store.sqlite = Some((options, in_memory));
            Ok(store)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            Ok(Self::new(DatabaseConnection::from(pool), Backend::Postgres))
        } else {
            Err(Error::UnsupportedUrl(redact(url)))
        }
    }

    fn new(db: DatabaseConnection, backend: Backend) -> Self {
        Self {
            db,
            backend,
            zone_cache: Arc::default(),
            lease_plans: Arc::default(),
            sqlite: None,
        }
    }

    /// Applies every pending migration.
    ///
    /// On a SQLite file the migrations run on a connection of their own, then every pooled
    /// connection re-reads the schema: SQLite matches an `ON CONFLICT` target against the
    /// indexes it knows at prepare time, so a connection that cached the schema half-way
    /// through a migration would refuse upserts.
    pub async fn migrate(&self) -> Result<()> {
        match &self.sqlite {
            Some((options, false)) => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await?;
                let result = Migrator::up(&DatabaseConnection::from(pool.clone()), None).await;
                pool.close().await;
                result?;
                let main = self.db.get_sqlite_connection_pool();
                let mut held = Vec::new();
                for _ in 0..main.options().get_max_connections() {
                    held.push(main.acquire().await?);
                }
                for conn in &mut held {
                    sqlx::query("SELECT count(*) FROM sqlite_master")
                        .execute(&mut **conn)
                        .await?;
                }
            }
            _ => Migrator::up(&self.db, None).await?,
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm connection, for queries this crate does not offer.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A transaction that writes. On SQLite it takes the write lock at `BEGIN` (IMMEDIATE):
    /// a deferred transaction that reads first and writes after another connection committed
    /// fails at once with SQLITE_BUSY_SNAPSHOT ("database is locked", code 517) instead of
    /// waiting out the busy timeout, which concurrent calls' outcomes hit all the time.
    pub(crate) async fn write_txn(&self) -> Result<DatabaseTransaction> {
        Ok(self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?)
    }

    pub(crate) fn db_backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// A statement with `$1..$n` placeholders (both SQLite and PostgreSQL accept them).
    pub(crate) fn stmt(&self, sql: impl Into<String>, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.db_backend(), sql.into(), values)
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>> {
        Ok(self.db.query_one_raw(self.stmt(sql, values)).await?)
    }

    pub(crate) async fn execute(&self, sql: &str, values: Vec<Value>) -> Result<u64> {
        Ok(self
            .db
            .execute_raw(self.stmt(sql, values))
            .await?
            .rows_affected())
    }
}

/// Runs a raw statement on any connection or transaction.
pub(crate) async fn exec<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64> {
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    Ok(conn.execute_raw(stmt).await?.rows_affected())
}

/// Runs a raw query on any connection or transaction.
pub(crate) async fn query<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>> {
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    Ok(conn.query_all_raw(stmt).await?)
}

/// A URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn ms(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp_millis()
}

/// A stored timestamp back to a `DateTime`.
pub(crate) fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

/// Current time; the one place the store reads the clock (callers may pass their own `now`).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("mysql://u:secret@h/db"), "mysql://u:***@h/db");
        assert_eq!(super::redact("foo"), "foo");
    }
}
