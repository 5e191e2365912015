//! The PostgreSQL side of an import: `COPY` straight into `contacts`.
//!
//! The duplicate check happens before the rows reach the server: the numbers of the campaign
//! (loaded once, as integers) and of the file so far sit in a [`NumberSet`], so the new rows
//! can be sent into `contacts` with a plain `COPY` while the workers parse the next chunks
//! (the server inserts while we parse: both cores work). A chunk is encoded whole before its
//! transaction begins, so no transaction stays open while the upload's next bytes are
//! awaited. The unique index on
//! (number, campaign) stays the safety net: if another upload into the same campaign races us
//! and a `COPY` hits it, that transaction is redone through a staging table and
//! `INSERT ... ON CONFLICT DO NOTHING`. The same slower path serves campaigns (or files) too
//! big for the in-memory set, so memory stays bounded.
//!
//! Each transaction of [`Writer::commit_rows`] rows runs with `synchronous_commit = off`: a server
//! crash may then lose the last few committed transactions, but only whole ones (a chunk is
//! never half there), and the list row they update stays `complete = false`, which is exactly
//! the state an interrupted upload leaves and a second upload of the file completes. The final
//! "complete" update is an ordinary synchronous commit, so when the import reports success
//! everything before it is durable too.

use super::{CONTACT_COLUMNS, GoodRow, Msg, Ordered, UPDATE_LIST, Writer};
use crate::error::{Error, Result};
use domain::ContactStatus;
use futures::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Postgres, Transaction};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// Tries of a chunk that keeps meeting concurrent uploads.
const RETRIES: u64 = 5;

/// Numbers already in the campaign or earlier in the file. E.164 numbers have at most 15
/// digits and never a leading zero, so they are kept as integers: 16 bytes a number instead
/// of a heap string.
#[derive(Debug, Default)]
pub(crate) struct NumberSet {
    numbers: HashSet<u64>,
    /// Anything that is not `+` and 1 to 15 digits (never produced by the normaliser).
    other: HashSet<String>,
}

impl NumberSet {
    /// Adds a number; `false` if it was there already.
    pub(crate) fn insert(&mut self, e164: &str) -> bool {
        match number_key(e164) {
            Some(key) => self.numbers.insert(key),
            None => self.other.insert(e164.to_owned()),
        }
    }

    /// How many numbers it holds.
    pub(crate) fn len(&self) -> usize {
        self.numbers.len() + self.other.len()
    }
}

/// The digits of `+` and 1 to 15 digits as an integer.
fn number_key(e164: &str) -> Option<u64> {
    let digits = e164.strip_prefix('+')?;
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Counts of one transaction, added to the summary when it commits.
#[derive(Debug, Default, Clone, Copy)]
struct Staged {
    /// Rows sent to the server.
    rows: u64,
    /// Of them, flagged do-not-call.
    dnc: u64,
}

impl Writer<'_> {
    pub(super) async fn run_postgres(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<Result<Msg>>,
    ) -> Result<()> {
        let mut ordered = Ordered {
            rx,
            waiting: BTreeMap::new(),
            next: 0,
        };
        let mut pooled = self
            .store
            .db
            .get_postgres_connection_pool()
            .acquire()
            .await?;
        let conn: &mut PgConnection = &mut pooled;
        let mut seen = match self.max_numbers {
            0 => None,
            _ => self.load_numbers(conn).await?,
        };
        let copy_sql = format!("COPY contacts ({CONTACT_COLUMNS}) FROM STDIN");
        let mut buffer = Vec::<u8>::with_capacity(16 << 20);
        let mut done = false;
        // New rows of a parsed chunk not yet in a transaction.
        let mut rest: Vec<GoodRow> = Vec::new();
        while !done {
            // The chunk's rows, encoded, before any transaction is opened: waiting for them
            // may mean waiting for the client.
            let mut staged = Staged::default();
            let mut zones = Vec::new();
            buffer.clear();
            while (staged.rows as usize) < self.commit_rows {
                if rest.is_empty() {
                    let Some(mut parsed) = ordered.next().await? else {
                        done = true;
                        break;
                    };
                    rest = self.prepare(&mut parsed, seen.as_mut()).await?;
                }
                let take = rest.len().min(self.commit_rows - staged.rows as usize);
                let rows: Vec<GoodRow> = rest.drain(..take).collect();
                self.encode(&rows, &mut buffer, &mut zones, &mut staged)
                    .await?;
            }
            if staged.rows == 0 {
                continue;
            }
            let mut tx = conn.begin().await?;
            self.begin_chunk(&mut tx).await?;
            // With the in-memory check the rows go straight into `contacts`; without it
            // through the staging path. (A block: the COPY borrows the transaction until it
            // is finished.)
            let copied = match seen {
                Some(_) => {
                    let mut copy = tx.copy_in_raw(&copy_sql).await?;
                    copy.send(buffer.as_slice()).await?;
                    Some(copy.finish().await)
                }
                None => None,
            };
            match copied {
                Some(Ok(_)) => {
                    let counts = (staged.rows - staged.dnc, staged.dnc);
                    self.finish_chunk(tx, counts, staged.rows, &zones).await?;
                }
                Some(Err(err)) if is_retryable(&err) => {
                    // Another upload into this campaign stored some of these numbers after we
                    // loaded ours: redo this transaction the conflict-tolerant way.
                    tracing::info!(
                        campaign_id = self.campaign_id,
                        list_id = self.list_id,
                        %err,
                        "a concurrent upload stored some of the same numbers; retrying the chunk"
                    );
                    tx.rollback().await?;
                    self.retry_staged(conn, &buffer, staged.rows, &zones)
                        .await?;
                }
                Some(Err(err)) => return Err(err.into()),
                None => match stage_and_insert(&mut tx, &buffer).await {
                    Ok(counts) => self.finish_chunk(tx, counts, staged.rows, &zones).await?,
                    Err(err) if is_retryable(&err) => {
                        tx.rollback().await?;
                        self.retry_staged(conn, &buffer, staged.rows, &zones)
                            .await?;
                    }
                    Err(err) => return Err(err.into()),
                },
            }
            if seen.as_ref().is_some_and(|s| s.len() > self.max_numbers) {
                tracing::info!(
                    campaign_id = self.campaign_id,
                    "too many numbers to check in memory; the database checks the rest"
                );
                seen = None;
            }
        }
        Ok(())
    }

    /// Counts a chunk's rows (`stored`: how many became pending and dnc contacts), registers
    /// its zone sets and the list's counts, and commits.
    async fn finish_chunk(
        &mut self,
        mut tx: Transaction<'_, Postgres>,
        (imported, dnc): (u64, u64),
        rows: u64,
        zones: &[i64],
    ) -> Result<()> {
        self.summary.imported += imported;
        self.summary.dnc += dnc;
        self.summary.duplicates += rows - imported - dnc;
        self.register_zones_pg(&mut tx, zones).await?;
        self.update_list_pg(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The staging path in fresh transactions, until it gets through: concurrent uploads of
    /// overlapping numbers in different orders can deadlock, and the database then aborts
    /// one of them.
    async fn retry_staged(
        &mut self,
        conn: &mut PgConnection,
        buffer: &[u8],
        rows: u64,
        zones: &[i64],
    ) -> Result<()> {
        let mut attempt = 1u64;
        loop {
            let mut tx = conn.begin().await?;
            self.begin_chunk(&mut tx).await?;
            match stage_and_insert(&mut tx, buffer).await {
                Ok(counts) => return self.finish_chunk(tx, counts, rows, zones).await,
                Err(err) if is_retryable(&err) && attempt < RETRIES => {
                    tx.rollback().await?;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                    attempt += 1;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The campaign's numbers, or `None` when there are too many to hold.
    async fn load_numbers(&self, conn: &mut PgConnection) -> Result<Option<NumberSet>> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE campaign_id = $1")
            .bind(self.campaign_id)
            .fetch_one(&mut *conn)
            .await?;
        let mut set = NumberSet::default();
        if count == 0 {
            return Ok(Some(set));
        }
        if usize::try_from(count).map_or(true, |n| n > self.max_numbers) {
            return Ok(None);
        }
        // The campaign id is ours: inlined (COPY takes no parameters).
        let mut stream = conn
            .copy_out_raw(&format!(
                "COPY (SELECT e164 FROM contacts WHERE campaign_id = {}) TO STDOUT",
                self.campaign_id
            ))
            .await?;
        let mut partial = Vec::new();
        while let Some(bytes) = stream.try_next().await? {
            partial.extend_from_slice(&bytes);
            let mut start = 0;
            while let Some(end) = partial[start..].iter().position(|&b| b == b'\n') {
                if let Ok(number) = std::str::from_utf8(&partial[start..start + end]) {
                    set.insert(number);
                }
                start += end + 1;
            }
            partial.drain(..start);
        }
        Ok(Some(set))
    }

    /// Settings and locks of each import transaction.
    async fn begin_chunk(&self, tx: &mut PgConnection) -> Result<()> {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        // The lock the dropped foreign key's trigger took for every row, once: the campaign
        // cannot be deleted under the import.
        sqlx::query("SELECT id FROM campaigns WHERE id = $1 FOR KEY SHARE")
            .bind(self.campaign_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NoSuchCampaign(self.campaign_id.to_string()))?;
        Ok(())
    }

    /// Accounts a parsed chunk and returns its rows that are new (all of them when `seen` is
    /// `None`: the database checks), flagged do-not-call where listed.
    async fn prepare(
        &mut self,
        parsed: &mut super::Parsed,
        seen: Option<&mut NumberSet>,
    ) -> Result<Vec<GoodRow>> {
        self.account(parsed);
        let mut rows = std::mem::take(&mut parsed.rows);
        if let Some(seen) = seen {
            let before = rows.len();
            rows.retain(|row| seen.insert(&row.e164));
            self.summary.duplicates += (before - rows.len()) as u64;
        }
        if self.check_dnc && !rows.is_empty() {
            let numbers: Vec<&str> = rows.iter().map(|r| r.e164.as_str()).collect();
            let listed: HashSet<String> = sqlx::query_scalar(
                "SELECT e164 FROM dnc WHERE campaign_id IN (0, $1) AND e164 = ANY($2)",
            )
            .bind(self.campaign_id)
            .bind(&numbers)
            .fetch_all(self.store.db.get_postgres_connection_pool())
            .await?
            .into_iter()
            .collect();
            for row in &mut rows {
                row.dnc = listed.contains(&row.e164);
            }
        }
        Ok(rows)
    }

    /// Appends rows in COPY text format, in `CONTACT_COLUMNS` order.
    async fn encode(
        &mut self,
        rows: &[GoodRow],
        buffer: &mut Vec<u8>,
        zones: &mut Vec<i64>,
        staged: &mut Staged,
    ) -> Result<()> {
        for row in rows {
            let zone = self.zone_id(&self.store.db, &row.zone_key).await?;
            zones.push(zone);
            let status = if row.dnc {
                staged.dnc += 1;
                ContactStatus::Dnc
            } else {
                ContactStatus::Pending
            };
            let _ = write!(
                super::CopyLine(buffer),
                "{}\t{}\t{}\t{}\t",
                self.campaign_id,
                self.list_id,
                row.e164,
                zone
            );
            super::copy_escape(buffer, &row.extra);
            let _ = writeln!(
                super::CopyLine(buffer),
                "\t{}\t0\t{}\t{}",
                status.as_str(),
                self.due,
                self.created
            );
            staged.rows += 1;
        }
        Ok(())
    }

    async fn register_zones_pg(&mut self, tx: &mut PgConnection, zones: &[i64]) -> Result<()> {
        let mut zones = zones.to_vec();
        zones.sort_unstable();
        zones.dedup();
        zones.retain(|zone| self.registered.insert(*zone));
        if zones.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO campaign_zone_sets (campaign_id, zone_set_id) \
             SELECT $1, zone FROM UNNEST($2::bigint[]) AS zone ON CONFLICT DO NOTHING",
        )
        .bind(self.campaign_id)
        .bind(&zones)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn update_list_pg(&self, tx: &mut PgConnection) -> Result<()> {
        let s = &self.summary;
        sqlx::query(UPDATE_LIST)
            .bind(super::to_i64(s.imported))
            .bind(super::to_i64(s.duplicates))
            .bind(super::to_i64(s.dnc))
            .bind(super::to_i64(s.rejected))
            .bind(self.list_id)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// The conflict-tolerant path: COPY into a temporary table, then insert what is new.
/// Returns how many rows were stored as pending and as do-not-call.
async fn stage_and_insert(
    tx: &mut PgConnection,
    buffer: &[u8],
) -> std::result::Result<(u64, u64), sqlx::Error> {
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS import_staging (seq BIGSERIAL, campaign_id BIGINT, \
         list_id BIGINT, e164 TEXT COLLATE \"C\", zone_set_id BIGINT, extra TEXT, \
         status TEXT COLLATE \"C\", attempts INTEGER, next_attempt_at BIGINT, created_at BIGINT) \
         ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY import_staging ({CONTACT_COLUMNS}) FROM STDIN"
        ))
        .await?;
    copy.send(buffer).await?;
    copy.finish().await?;
    // First occurrence wins: rows go in file order.
    let (total, dnc): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH inserted AS (INSERT INTO contacts ({CONTACT_COLUMNS}) \
         SELECT {CONTACT_COLUMNS} FROM import_staging ORDER BY seq \
         ON CONFLICT (e164, campaign_id) DO NOTHING RETURNING status) \
         SELECT COUNT(*), COUNT(*) FILTER (WHERE status = '{}') FROM inserted",
        ContactStatus::Dnc.as_str()
    )))
    .fetch_one(&mut *tx)
    .await?;
    let total = u64::try_from(total).unwrap_or(0);
    let dnc = u64::try_from(dnc).unwrap_or(0);
    Ok((total - dnc, dnc))
}

/// A unique violation (another upload stored the number first) or a deadlock between two
/// uploads: the chunk can be tried again.
fn is_retryable(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "23505" || code == "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_keyed_as_integers() {
        assert_eq!(number_key("+12125550123"), Some(12_125_550_123));
        assert_eq!(number_key("+999999999999999"), Some(999_999_999_999_999));
        assert_eq!(number_key("+1234567890123456"), None, "16 digits");
        assert_eq!(number_key("12125550123"), None);
        assert_eq!(number_key("+"), None);
        assert_eq!(number_key("+1-212"), None);
        let mut set = NumberSet::default();
        assert!(set.insert("+12125550123"));
        assert!(!set.insert("+12125550123"));
        assert!(set.insert("odd"));
        assert!(!set.insert("odd"));
        assert_eq!(set.len(), 2);
    }
}
