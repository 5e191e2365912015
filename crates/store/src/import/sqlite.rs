//! The SQLite side of an import: multi-row `INSERT ... ON CONFLICT DO NOTHING`, one write
//! transaction per [`Writer::commit_rows`] rows.
//!
//! SQLite runs in this process: its insert work is CPU we share with the parsing workers, so
//! the statement is kept lean (constants inlined, bare `?` placeholders, 3 bound values a row)
//! and the duplicate check is the unique index itself (a probe SQLite does anyway).
//!
//! SQLite has one write lock for the whole database, which the engine's outcome writes need
//! too. A chunk's rows are therefore gathered (and checked against the do-not-call lists)
//! before its transaction begins, and the transaction takes the lock at `BEGIN IMMEDIATE`, so
//! it holds it only while writing, never while the upload's next bytes are awaited.

use super::{CONTACT_COLUMNS, GoodRow, Msg, Ordered, UPDATE_LIST, Writer};
use crate::db::{exec, query};
use crate::error::Result;
use domain::ContactStatus;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// Rows per `INSERT` (3 bound values each: far below SQLite's 32,766).
const INSERT_ROWS: usize = 1000;

impl Writer<'_> {
    pub(super) async fn run_sqlite(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<Result<Msg>>,
    ) -> Result<()> {
        let mut ordered = Ordered {
            rx,
            waiting: BTreeMap::new(),
            next: 0,
        };
        let mut pending: Vec<GoodRow> = Vec::new();
        loop {
            let next = ordered.next().await?;
            let done = next.is_none();
            if let Some(mut chunk) = next {
                self.account(&mut chunk);
                pending.append(&mut chunk.rows);
            }
            while pending.len() >= self.commit_rows || (done && !pending.is_empty()) {
                let take = pending.len().min(self.commit_rows);
                let rows: Vec<GoodRow> = pending.drain(..take).collect();
                self.write_chunk(rows).await?;
            }
            if done {
                break;
            }
        }
        Ok(())
    }

    /// Stores one chunk in one transaction, with the list's counts.
    async fn write_chunk(&mut self, mut rows: Vec<GoodRow>) -> Result<()> {
        // A read, outside the transaction: the write lock is taken for writing only.
        for batch in rows.chunks_mut(INSERT_ROWS) {
            self.flag_dnc(&self.store.db, batch).await?;
        }
        let txn = self.store.write_txn().await?;
        let mut counts = (0, 0, 0);
        for batch in rows.chunks(INSERT_ROWS) {
            let (fresh, listed): (Vec<&GoodRow>, Vec<&GoodRow>) =
                batch.iter().partition(|row| !row.dnc);
            let imported = self.insert(&txn, &fresh, ContactStatus::Pending).await?;
            let dnc = self.insert(&txn, &listed, ContactStatus::Dnc).await?;
            counts.0 += imported;
            counts.1 += dnc;
            counts.2 += batch.len() as u64 - imported - dnc;
        }
        // Counted before the commit: the list row written with it must show them.
        self.summary.imported += counts.0;
        self.summary.dnc += counts.1;
        self.summary.duplicates += counts.2;
        self.commit(txn).await
    }

    /// Updates the list's counts in the transaction, then commits: the list row always
    /// matches what is stored.
    async fn commit(&self, txn: DatabaseTransaction) -> Result<()> {
        let s = &self.summary;
        exec(
            &txn,
            UPDATE_LIST,
            vec![
                super::to_i64(s.imported).into(),
                super::to_i64(s.duplicates).into(),
                super::to_i64(s.dnc).into(),
                super::to_i64(s.rejected).into(),
                self.list_id.into(),
            ],
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Inserts rows with one status; returns how many were new.
    async fn insert(
        &mut self,
        txn: &DatabaseTransaction,
        rows: &[&GoodRow],
        status: ContactStatus,
    ) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut sql = format!("INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ");
        let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 3);
        let mut zone_ids = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            // On SQLite the open write transaction must intern new zone sets: another
            // connection would wait for our own lock.
            let zone = self.zone_id(txn, &row.zone_key).await?;
            zone_ids.push(zone);
            if i > 0 {
                sql.push(',');
            }
            // Bare `?` placeholders (see `db::placeholder`); our own constants inlined.
            let _ = write!(
                sql,
                "({}, {}, ?, ?, ?, '{}', 0, {}, {})",
                self.campaign_id,
                self.list_id,
                status.as_str(),
                self.due,
                self.created
            );
            values.push(row.e164.as_str().into());
            values.push(zone.into());
            values.push(row.extra.as_str().into());
        }
        sql.push_str(" ON CONFLICT (e164, campaign_id) DO NOTHING");
        let inserted = exec(txn, &sql, values).await?;
        zone_ids.sort_unstable();
        zone_ids.dedup();
        let new: Vec<i64> = zone_ids
            .into_iter()
            .filter(|id| self.registered.insert(*id))
            .collect();
        self.store
            .register_campaign_zone_sets(txn, self.campaign_id, new)
            .await?;
        Ok(inserted)
    }

    /// Marks the rows whose number is on the global or the campaign's do-not-call list.
    async fn flag_dnc<C: ConnectionTrait>(&self, conn: &C, rows: &mut [GoodRow]) -> Result<()> {
        if !self.check_dnc || rows.is_empty() {
            return Ok(());
        }
        let mut sql = format!(
            "SELECT e164 FROM dnc WHERE campaign_id IN (0, {}) AND e164 IN (",
            self.campaign_id
        );
        let mut values: Vec<Value> = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('?');
            values.push(row.e164.as_str().into());
        }
        sql.push(')');
        let mut listed = HashSet::new();
        for hit in query(conn, &sql, values).await? {
            listed.insert(hit.try_get::<String>("", "e164")?);
        }
        for row in rows {
            row.dnc = listed.contains(&row.e164);
        }
        Ok(())
    }
}
