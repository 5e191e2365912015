//! Do-not-call lists: global (campaign id 0) and per campaign.

use crate::db::Store;
use crate::db::ms;
use crate::entity::{contact, dnc};
use crate::error::{Error, Result};
use crate::import::RowError;
use domain::ContactStatus;
use domain::phone::Normalizer;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TryInsertResult};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read};

/// Which do-not-call list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DncScope {
    /// Every campaign.
    Global,
    /// One campaign (by id).
    Campaign(i64),
}

impl DncScope {
    fn campaign_id(self) -> i64 {
        match self {
            Self::Global => 0,
            Self::Campaign(id) => id,
        }
    }
}

/// Result of a do-not-call upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DncSummary {
    /// Numbers added.
    pub added: u64,
    /// Numbers already on the list.
    pub already: u64,
    /// Lines refused.
    pub rejected: u64,
    /// Each refused line, with its reason.
    pub errors: Vec<RowError>,
}

const DNC_BATCH: usize = 1000;

impl Store {
    /// Adds one number (E.164) inside a transaction; contacts with it stop being dialled at once.
    pub(crate) async fn add_dnc_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        campaign_id: i64,
        e164: &str,
        source: &str,
        at: i64,
    ) -> Result<bool> {
        let added = dnc::Entity::insert(entry(campaign_id, e164, source, at))
            .on_conflict_do_nothing_on(KEY)
            .exec_without_returning(conn)
            .await?;
        flag_contacts(conn, campaign_id, &[e164.to_owned()]).await?;
        Ok(inserted(added) > 0)
    }

    /// Adds numbers (already E.164) to a do-not-call list; returns how many were new.
    pub async fn add_dnc(&self, scope: DncScope, e164s: &[String], source: &str) -> Result<u64> {
        let txn = self.write_txn().await?;
        let mut added = 0;
        for chunk in e164s.chunks(DNC_BATCH) {
            added += insert_batch(&txn, scope.campaign_id(), chunk, source).await?;
        }
        txn.commit().await?;
        Ok(added)
    }

    /// Takes a number off a do-not-call list. Contacts already marked `dnc` stay so.
    pub async fn remove_dnc(&self, scope: DncScope, e164: &str) -> Result<bool> {
        Ok(dnc::Entity::delete_many()
            .filter(dnc::Column::E164.eq(e164))
            .filter(dnc::Column::CampaignId.eq(scope.campaign_id()))
            .exec(&self.db)
            .await?
            .rows_affected
            > 0)
    }

    /// Loads a do-not-call file: one number per line, or a CSV whose first column is the number
    /// (a header line is skipped). National numbers use `country`.
    pub async fn import_dnc<R: Read + Send + 'static>(
        &self,
        reader: R,
        scope: DncScope,
        country: domain::Country,
        source: &str,
    ) -> Result<DncSummary> {
        if let DncScope::Campaign(id) = scope {
            self.require_campaign_id(id).await?;
        }
        let normalizer = Normalizer::new(country);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ParsedDnc>(4);
        let reading = tokio::task::spawn_blocking(move || read_dnc(reader, normalizer, &tx));
        let mut summary = DncSummary::default();
        let txn = self.write_txn().await?;
        while let Some(parsed) = rx.recv().await {
            match parsed {
                ParsedDnc::Numbers(numbers) => {
                    let added = insert_batch(&txn, scope.campaign_id(), &numbers, source).await?;
                    summary.added += added;
                    summary.already += numbers.len() as u64 - added;
                }
                ParsedDnc::Bad(error) => {
                    summary.rejected += 1;
                    summary.errors.push(error);
                }
            }
        }
        reading
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        txn.commit().await?;
        tracing::info!(
            ?scope,
            added = summary.added,
            rejected = summary.rejected,
            "do-not-call list loaded"
        );
        Ok(summary)
    }
}

enum ParsedDnc {
    Numbers(Vec<String>),
    Bad(RowError),
}

fn read_dnc<R: Read>(
    reader: R,
    normalizer: Normalizer,
    tx: &tokio::sync::mpsc::Sender<ParsedDnc>,
) -> Result<()> {
    let mut batch = Vec::with_capacity(DNC_BATCH);
    let mut buf = Vec::new();
    let mut reader = BufReader::new(reader);
    let mut line_no = 0u64;
    let send = |msg| {
        tx.blocking_send(msg)
            .map_err(|_| Error::Task("do-not-call writer stopped".into()))
    };
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let Ok(text) = std::str::from_utf8(&buf) else {
            send(ParsedDnc::Bad(RowError::new(line_no, "invalid UTF-8")))?;
            continue;
        };
        let text = text.trim_start_matches('\u{feff}');
        let first = text
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if first.is_empty() {
            continue;
        }
        match normalizer.normalize(first) {
            Ok(e164) => batch.push(e164),
            // A first line with letters is a header, not a bad number.
            Err(_) if line_no == 1 && first.chars().any(|c| c.is_ascii_alphabetic()) => {}
            Err(reason) => send(ParsedDnc::Bad(RowError::new(line_no, reason)))?,
        }
        if batch.len() == DNC_BATCH {
            send(ParsedDnc::Numbers(std::mem::take(&mut batch)))?;
        }
    }
    if !batch.is_empty() {
        send(ParsedDnc::Numbers(batch))?;
    }
    Ok(())
}

async fn insert_batch<C: ConnectionTrait>(
    conn: &C,
    campaign_id: i64,
    numbers: &[String],
    source: &str,
) -> Result<u64> {
    if numbers.is_empty() {
        return Ok(0);
    }
    let at = ms(crate::db::now());
    let rows = numbers
        .iter()
        .map(|number| entry(campaign_id, number, source, at));
    let added = dnc::Entity::insert_many(rows)
        .on_conflict_do_nothing_on(KEY)
        .exec_without_returning(conn)
        .await?;
    let added = inserted(added);
    flag_contacts(conn, campaign_id, numbers).await?;
    Ok(added)
}

/// Marks dialable contacts with these numbers `dnc` (all campaigns for the global list).
async fn flag_contacts<C: ConnectionTrait>(
    conn: &C,
    campaign_id: i64,
    numbers: &[String],
) -> Result<u64> {
    use contact::Column as C;
    let mut update = contact::Entity::update_many()
        .col_expr(C::Status, Expr::val(ContactStatus::Dnc.as_str()))
        .filter(C::Status.is_in([
            ContactStatus::Pending.as_str(),
            ContactStatus::Callback.as_str(),
        ]));
    if campaign_id != 0 {
        update = update.filter(C::CampaignId.eq(campaign_id));
    }
    Ok(update
        .filter(C::E164.is_in(numbers.iter().map(String::as_str)))
        .exec(conn)
        .await?
        .rows_affected)
}

/// One do-not-call entry.
fn entry(campaign_id: i64, e164: &str, source: &str, at: i64) -> dnc::ActiveModel {
    dnc::ActiveModel {
        e164: Set(e164.to_owned()),
        campaign_id: Set(campaign_id),
        source: Set(Some(source.to_owned())),
        created_at: Set(at),
        ..Default::default()
    }
}

/// The list's key: an entry already on the list is left as it is.
const KEY: [dnc::Column; 2] = [dnc::Column::E164, dnc::Column::CampaignId];

fn inserted(result: TryInsertResult<u64>) -> u64 {
    match result {
        TryInsertResult::Inserted(rows) => rows,
        TryInsertResult::Empty | TryInsertResult::Conflicted => 0,
    }
}
