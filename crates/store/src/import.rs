//! Streaming CSV import of call lists.
//!
//! Three stages run at once, so memory stays flat whatever the file size:
//! 1. one thread reads CSV records (any `Read`, or an `AsyncRead` through a bridge) in chunks;
//! 2. worker threads (one per core) check each row: column count, UTF-8, phone number to E.164
//!    with the campaign's default country, time zone (explicit column, else from the number), and
//!    turn the other columns into a JSON object;
//! 3. the async writer puts chunks back in file order, flags do-not-call numbers, and stores the
//!    rows: multi-row `INSERT ... ON CONFLICT DO NOTHING` on SQLite ([`sqlite`]), `COPY`
//!    straight into `contacts` after an in-memory duplicate check on PostgreSQL ([`postgres`]).
//!    A number already in the campaign or earlier in the file is a duplicate (the first
//!    occurrence wins), so a second upload of the same file adds nothing.
//!
//! Rows are committed in chunks of [`ImportOptions::commit_rows`] (5,000 by default), each
//! chunk whole, with the list's counts updated in the same transaction. A chunk's rows are
//! gathered first and its transaction opened only once they are all there: no transaction (and
//! on SQLite no write lock) is ever held while the upload's next bytes are awaited, so a slow
//! or stalled client never holds up the engine's own writes. An upload that stops half-way
//! leaves an *incomplete list*: `complete = false`, the chunks before the failure stored with
//! exactly the counts the list row shows, nothing of the chunk that failed. Uploading the same
//! file again completes it.
//!
//! Its statements are raw SQL, unlike the rest of the store: on PostgreSQL every chunk's
//! statements run on the sqlx transaction that `COPY` needs (sea-orm has no `COPY`), and on
//! SQLite the multi-row inserts of thousands of rows bind with bare `?` placeholders, which
//! sqlx resolves in linear time, with the chunk's bookkeeping in the same transaction.

use crate::db::{Backend, Store, exec, ms, query};
use crate::entity::contact_list;
use crate::error::{Error, Result};
use csv::ByteRecord;
use domain::phone::Normalizer;
use domain::zones::{ZoneTable, explicit_zone};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex, mpsc};

/// Headers recognised as the phone column when none is named (case-insensitive).
pub const PHONE_HEADERS: &[&str] = &[
    "phone",
    "phone_number",
    "phonenumber",
    "number",
    "telephone",
    "tel",
    "mobile",
    "msisdn",
];
/// Headers recognised as the time-zone column when none is named (case-insensitive).
pub const TIMEZONE_HEADERS: &[&str] = &["timezone", "time_zone", "tz"];
/// Most row errors kept in a summary; past it only the count grows.
pub const MAX_ERRORS: usize = 100_000;

mod postgres;
mod sqlite;

const CHUNK_ROWS: usize = 2048;
/// Columns an import writes, in the order both insert paths give them.
const CONTACT_COLUMNS: &str =
    "campaign_id, list_id, e164, zone_set_id, extra, status, attempts, next_attempt_at, created_at";
/// Rows per transaction by default: a few tens of milliseconds of writing, so the engine's
/// outcome writes wait at most that long for SQLite's write lock.
pub const COMMIT_ROWS: usize = 5_000;
const ANALYZE_AFTER: u64 = 50_000;
/// The list's counts, written in each chunk's transaction.
const UPDATE_LIST: &str = "UPDATE contact_lists SET imported = $1, duplicates = $2, dnc = $3, \
                           rejected = $4 WHERE id = $5";

/// How to read an upload.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Header of the phone column (`None`: the first of [`PHONE_HEADERS`] present).
    pub phone_column: Option<String>,
    /// Header of an explicit time-zone column (`None`: the first of [`TIMEZONE_HEADERS`], if any).
    pub timezone_column: Option<String>,
    /// Name of the list (usually the file name).
    pub list_name: String,
    /// Field delimiter.
    pub delimiter: u8,
    /// Parsing threads (0: one per core).
    pub workers: usize,
    /// When the new contacts become due (`None`: now).
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows per transaction (at least 1; [`COMMIT_ROWS`] by default). Each transaction is opened
    /// only when its rows are parsed and waiting.
    pub commit_rows: usize,
    /// PostgreSQL: most numbers (the campaign's and the file's) held in memory for the
    /// duplicate check, 16 bytes each; past it the database's unique index does the check,
    /// through a slower insert. The default, 3,500,000, is about 40 MB.
    pub max_numbers_in_memory: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            phone_column: None,
            timezone_column: None,
            list_name: "upload".into(),
            delimiter: b',',
            workers: 0,
            due_at: None,
            commit_rows: COMMIT_ROWS,
            max_numbers_in_memory: 3_500_000,
        }
    }
}

/// A refused row: its line in the file (the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowError {
    /// Line number (1-based; the line where the record starts).
    pub line: u64,
    /// Why the row was refused.
    pub reason: String,
}

impl RowError {
    pub(crate) fn new(line: u64, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportSummary {
    /// The list created for this upload.
    pub list_id: i64,
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Contacts stored.
    pub imported: u64,
    /// Rows whose number was already in the campaign or earlier in the file.
    pub duplicates: u64,
    /// New contacts whose number is on the global or the campaign's do-not-call list: stored
    /// with status `dnc`, never dialled while the number stays listed.
    pub dnc: u64,
    /// Rows refused.
    pub rejected: u64,
    /// Each refused row, in file order (at most [`MAX_ERRORS`]).
    pub errors: Vec<RowError>,
    /// Whether more rows were refused than `errors` holds.
    pub errors_truncated: bool,
}

/// The file's layout, found from its header.
#[derive(Debug, Clone)]
struct Layout {
    columns: usize,
    phone: usize,
    timezone: Option<usize>,
    /// (index, JSON-encoded key) of every other column.
    extra: Vec<(usize, String)>,
    names: Vec<String>,
}

/// A row ready to store.
#[derive(Debug)]
struct GoodRow {
    e164: String,
    zone_key: Cow<'static, str>,
    extra: String,
    /// On a do-not-call list (set by the writer).
    dnc: bool,
}

#[derive(Debug)]
struct Parsed {
    seq: u64,
    rows: Vec<GoodRow>,
    errors: Vec<RowError>,
    read: u64,
}

enum Msg {
    Layout(Layout),
    Chunk(Parsed),
}

impl Store {
    /// Imports a CSV call list into a campaign; see the module documentation for the pipeline.
    pub async fn import_csv<R: Read + Send + 'static>(
        &self,
        campaign_id: i64,
        reader: R,
        options: &ImportOptions,
    ) -> Result<ImportSummary> {
        let campaign = self.require_campaign_id(campaign_id).await?;
        let country = campaign.spec.country()?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Msg>>(4);
        let options_for_reader = options.clone();
        let reading = tokio::task::spawn_blocking(move || {
            let result = read_and_parse(reader, &options_for_reader, Normalizer::new(country), &tx);
            if let Err(err) = result {
                let _ = tx.blocking_send(Err(err));
            }
        });
        let written = self.write_import(campaign_id, options, rx).await;
        let joined = reading.await;
        let summary = written?;
        joined.map_err(|err| Error::Task(err.to_string()))?;
        Ok(summary)
    }

    /// [`Store::import_csv`] from an async reader (an HTTP multipart field, a socket).
    pub async fn import_csv_async<R>(
        &self,
        campaign_id: i64,
        reader: R,
        options: &ImportOptions,
    ) -> Result<ImportSummary>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        self.import_csv(campaign_id, bridge, options).await
    }

    async fn write_import(
        &self,
        campaign_id: i64,
        options: &ImportOptions,
        mut rx: tokio::sync::mpsc::Receiver<Result<Msg>>,
    ) -> Result<ImportSummary> {
        let layout = match rx.recv().await {
            Some(Ok(Msg::Layout(layout))) => layout,
            Some(Err(err)) => return Err(err),
            Some(Ok(Msg::Chunk(_))) | None => {
                return Err(Error::Task(
                    "the CSV reader stopped before the header".into(),
                ));
            }
        };
        let created = ms(crate::db::now());
        let list = contact_list::ActiveModel {
            campaign_id: Set(campaign_id),
            name: Set(options.list_name.clone()),
            columns: Set(serde_json::to_string(&layout.names).unwrap_or_else(|_| "[]".into())),
            created_at: Set(created),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        let mut writer = Writer {
            store: self,
            campaign_id,
            list_id: list.id,
            created,
            due: options.due_at.map_or(created, ms),
            check_dnc: self
                .query_one(
                    "SELECT 1 AS hit FROM dnc WHERE campaign_id IN (0, $1) LIMIT 1",
                    vec![campaign_id.into()],
                )
                .await?
                .is_some(),
            max_numbers: options.max_numbers_in_memory,
            commit_rows: options.commit_rows.max(1),
            zone_ids: HashMap::new(),
            registered: HashSet::new(),
            summary: ImportSummary {
                list_id: list.id,
                ..Default::default()
            },
        };
        let result = match self.backend {
            Backend::Sqlite => writer.run_sqlite(&mut rx).await,
            Backend::Postgres => writer.run_postgres(&mut rx).await,
        };
        let mut summary = writer.summary;
        summary.errors.sort_by_key(|e| e.line);
        // A failed upload leaves the list as its last committed chunk wrote it: incomplete.
        result?;
        self.execute(
            "UPDATE contact_lists SET imported = $1, duplicates = $2, dnc = $3, rejected = $4, \
             complete = $5 WHERE id = $6",
            vec![
                to_i64(summary.imported).into(),
                to_i64(summary.duplicates).into(),
                to_i64(summary.dnc).into(),
                to_i64(summary.rejected).into(),
                true.into(),
                list.id.into(),
            ],
        )
        .await?;
        if summary.imported >= ANALYZE_AFTER {
            // Fresh statistics keep the planner on the lease index after a big upload.
            let sql = match self.backend {
                Backend::Postgres => "ANALYZE contacts",
                Backend::Sqlite => "PRAGMA optimize",
            };
            self.execute(sql, Vec::new()).await?;
        }
        tracing::info!(
            campaign_id,
            list_id = list.id,
            rows = summary.rows,
            imported = summary.imported,
            duplicates = summary.duplicates,
            dnc = summary.dnc,
            rejected = summary.rejected,
            "list imported"
        );
        Ok(summary)
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct Writer<'a> {
    store: &'a Store,
    campaign_id: i64,
    list_id: i64,
    created: i64,
    due: i64,
    check_dnc: bool,
    /// See [`ImportOptions::max_numbers_in_memory`].
    max_numbers: usize,
    /// See [`ImportOptions::commit_rows`].
    commit_rows: usize,
    zone_ids: HashMap<Cow<'static, str>, i64>,
    registered: HashSet<i64>,
    summary: ImportSummary,
}

/// Yields parsed chunks in file order, whatever order the workers finish in.
struct Ordered<'r> {
    rx: &'r mut tokio::sync::mpsc::Receiver<Result<Msg>>,
    waiting: BTreeMap<u64, Parsed>,
    next: u64,
}

impl Ordered<'_> {
    async fn next(&mut self) -> Result<Option<Parsed>> {
        loop {
            if let Some(chunk) = self.waiting.remove(&self.next) {
                self.next += 1;
                return Ok(Some(chunk));
            }
            match self.rx.recv().await {
                Some(Ok(Msg::Chunk(chunk))) => {
                    self.waiting.insert(chunk.seq, chunk);
                }
                Some(Ok(Msg::Layout(_))) => {}
                Some(Err(err)) => return Err(err),
                None if self.waiting.is_empty() => return Ok(None),
                None => return Err(Error::Task("a CSV parsing worker died".into())),
            }
        }
    }
}

impl Writer<'_> {
    fn account(&mut self, chunk: &mut Parsed) {
        self.summary.rows += chunk.read;
        self.summary.rejected += chunk.errors.len() as u64;
        let room = MAX_ERRORS.saturating_sub(self.summary.errors.len());
        if chunk.errors.len() > room {
            self.summary.errors_truncated = true;
        }
        self.summary
            .errors
            .extend(chunk.errors.drain(..).take(room));
    }

    /// Zone-set ids for new keys. On SQLite the open write transaction must do it (another
    /// connection would wait for our own lock); on PostgreSQL autocommit is fine and lets the
    /// shared cache learn them.
    // The map's own key type: cloning a borrowed table zone into it costs nothing.
    #[allow(clippy::ptr_arg)]
    async fn zone_id<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        key: &Cow<'static, str>,
    ) -> Result<i64> {
        if let Some(id) = self.zone_ids.get(key) {
            return Ok(*id);
        }
        let id = match self.store.backend {
            Backend::Sqlite => intern_zone_set(conn, key).await?,
            Backend::Postgres => self.store.zone_set_id(&self.store.db, key).await?,
        };
        self.zone_ids.insert(key.clone(), id);
        Ok(id)
    }
}

/// `write!` into a byte buffer.
struct CopyLine<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for CopyLine<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Escapes a value for PostgreSQL's text COPY format.
fn copy_escape(out: &mut Vec<u8>, value: &str) {
    for &byte in value.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

async fn intern_zone_set<C: ConnectionTrait>(conn: &C, key: &str) -> Result<i64> {
    exec(
        conn,
        "INSERT INTO zone_sets (zones) VALUES ($1) ON CONFLICT (zones) DO NOTHING",
        vec![key.into()],
    )
    .await?;
    query(
        conn,
        "SELECT id FROM zone_sets WHERE zones = $1",
        vec![key.into()],
    )
    .await?
    .first()
    .ok_or_else(|| Error::Corrupt(format!("zone set `{key}` vanished")))?
    .try_get("", "id")
    .map_err(Error::from)
}

/// Finds the columns from the header.
fn layout(headers: &ByteRecord, options: &ImportOptions) -> Result<Layout> {
    let names: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            std::str::from_utf8(raw)
                .map(|s| s.trim().to_owned())
                .map_err(|_| Error::BadFile(format!("header column {} is not valid UTF-8", i + 1)))
        })
        .collect::<Result<_>>()?;
    if names.iter().all(String::is_empty) {
        return Err(Error::BadFile(
            "the file is empty or has no header line".into(),
        ));
    }
    let find = |wanted: &str| names.iter().position(|n| n.eq_ignore_ascii_case(wanted));
    let phone = match &options.phone_column {
        Some(name) => find(name).ok_or_else(|| {
            Error::BadFile(format!(
                "no column `{name}` in the header (columns: {})",
                names.join(", ")
            ))
        })?,
        None => PHONE_HEADERS.iter().find_map(|h| find(h)).ok_or_else(|| {
            Error::BadFile(format!(
                "no phone column found (looked for {}; columns: {}); name it with --phone-column",
                PHONE_HEADERS.join(", "),
                names.join(", ")
            ))
        })?,
    };
    let timezone = match &options.timezone_column {
        Some(name) => Some(find(name).ok_or_else(|| {
            Error::BadFile(format!(
                "no column `{name}` in the header (columns: {})",
                names.join(", ")
            ))
        })?),
        None => TIMEZONE_HEADERS.iter().find_map(|h| find(h)),
    };
    let extra = names
        .iter()
        .enumerate()
        .filter(|(i, name)| *i != phone && Some(*i) != timezone && !name.is_empty())
        .map(|(i, name)| (i, serde_json::to_string(name).unwrap_or_default()))
        .collect::<Vec<_>>();
    let extra_names = extra
        .iter()
        .map(|(i, _)| names[*i].clone())
        .collect::<Vec<_>>();
    Ok(Layout {
        columns: names.len(),
        phone,
        timezone,
        extra,
        names: extra_names,
    })
}

/// Checks one record; the good ones come back ready to store.
fn parse_row(
    layout: &Layout,
    normalizer: &Normalizer,
    table: &'static ZoneTable,
    line: u64,
    record: &ByteRecord,
) -> Result<GoodRow, RowError> {
    if record.len() != layout.columns {
        return Err(RowError::new(
            line,
            format!(
                "expected {} columns, found {}",
                layout.columns,
                record.len()
            ),
        ));
    }
    let field = |i: usize| -> Result<&str, RowError> {
        std::str::from_utf8(record.get(i).unwrap_or_default()).map_err(|_| {
            RowError::new(
                line,
                format!(
                    "column {} is not valid UTF-8 (save the file as UTF-8)",
                    i + 1
                ),
            )
        })
    };
    let e164 = normalizer
        .normalize(field(layout.phone)?)
        .map_err(|reason| RowError::new(line, reason))?;
    let explicit = match layout.timezone {
        Some(i) => Some(field(i)?.trim()).filter(|v| !v.is_empty()),
        None => None,
    };
    let zone_key: Cow<'static, str> = match explicit {
        Some(name) => {
            Cow::Owned(explicit_zone(name).map_err(|reason| RowError::new(line, reason))?)
        }
        None => match table.lookup(&e164) {
            Some(key) => Cow::Borrowed(key),
            None => {
                return Err(RowError::new(
                    line,
                    format!("no time zone is known for {e164}; add a timezone column"),
                ));
            }
        },
    };
    let mut extra = String::with_capacity(64);
    extra.push('{');
    for (i, key) in &layout.extra {
        let value = field(*i)?.trim();
        if value.is_empty() {
            continue;
        }
        if extra.len() > 1 {
            extra.push(',');
        }
        extra.push_str(key);
        extra.push(':');
        extra.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    extra.push('}');
    Ok(GoodRow {
        e164,
        zone_key,
        extra,
        dnc: false,
    })
}

type RawChunk = (u64, Vec<(u64, ByteRecord)>);

/// Reads the file and fans chunks out to parsing workers; runs on a blocking thread.
fn read_and_parse<R: Read>(
    reader: R,
    options: &ImportOptions,
    normalizer: Normalizer,
    tx: &tokio::sync::mpsc::Sender<Result<Msg>>,
) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = csv.byte_headers()?.clone();
    let layout = Arc::new(layout(&headers, options)?);
    tx.blocking_send(Ok(Msg::Layout((*layout).clone())))
        .map_err(|_| Error::Task("import writer stopped".into()))?;

    let workers = if options.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        options.workers
    };
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<RawChunk>(workers * 2);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let table = ZoneTable::get();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let chunk_rx = Arc::clone(&chunk_rx);
            let layout = Arc::clone(&layout);
            let tx = tx.clone();
            std::thread::spawn(move || {
                loop {
                    let next = match chunk_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, records)) = next else { return };
                    let mut parsed = Parsed {
                        seq,
                        rows: Vec::with_capacity(records.len()),
                        errors: Vec::new(),
                        read: records.len() as u64,
                    };
                    for (line, record) in &records {
                        match parse_row(&layout, &normalizer, table, *line, record) {
                            Ok(row) => parsed.rows.push(row),
                            Err(err) => parsed.errors.push(err),
                        }
                    }
                    if tx.blocking_send(Ok(Msg::Chunk(parsed))).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();

    let mut seq = 0;
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let mut record = ByteRecord::new();
    let mut outcome = Ok(());
    let mut csv_errors = Vec::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                chunk.push((line, std::mem::take(&mut record)));
                if chunk.len() == CHUNK_ROWS {
                    if chunk_tx.send((seq, std::mem::take(&mut chunk))).is_err() {
                        break;
                    }
                    seq += 1;
                }
            }
            Ok(false) => break,
            Err(err) => {
                if let csv::ErrorKind::Io(_) = err.kind() {
                    outcome = Err(Error::from(std::io::Error::other(err.to_string())));
                    break;
                }
                let line = err.position().map_or(0, |p| p.line());
                csv_errors.push(RowError::new(line, format!("unreadable CSV: {err}")));
            }
        }
    }
    if !chunk.is_empty() && chunk_tx.send((seq, chunk)).is_ok() {
        seq += 1;
    }
    drop(chunk_tx);
    for handle in handles {
        if handle.join().is_err() {
            outcome = outcome.and(Err(Error::Task("a CSV parsing worker panicked".into())));
        }
    }
    if !csv_errors.is_empty() && outcome.is_ok() {
        let read = csv_errors.len() as u64;
        let _ = tx.blocking_send(Ok(Msg::Chunk(Parsed {
            seq,
            rows: Vec::new(),
            errors: csv_errors,
            read,
        })));
    }
    outcome
}

impl From<csv::Error> for Error {
    fn from(err: csv::Error) -> Self {
        Error::BadFile(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&[u8]]) -> ByteRecord {
        ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn rows_are_checked_with_reasons() {
        let headers = record(&[b"name", b"phone", b"city"]);
        let layout = layout(&headers, &ImportOptions::default()).unwrap();
        assert_eq!(layout.phone, 1);
        let us = Normalizer::new(domain::Country::US);
        let table = ZoneTable::get();
        let good = parse_row(
            &layout,
            &us,
            table,
            2,
            &record(&[b"Ann", b"(212) 555-0123", b"NYC"]),
        )
        .unwrap();
        assert_eq!(good.e164, "+12125550123");
        assert_eq!(good.zone_key, "America/New_York");
        assert_eq!(good.extra, r#"{"name":"Ann","city":"NYC"}"#);
        let err = parse_row(&layout, &us, table, 3, &record(&[b"Bob", b"x"])).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("expected 3 columns, found 2"));
        let err = parse_row(
            &layout,
            &us,
            table,
            4,
            &record(&[b"\xff", b"2125550123", b""]),
        )
        .unwrap_err();
        assert!(err.reason.contains("UTF-8"), "{}", err.reason);
        let err = parse_row(&layout, &us, table, 5, &record(&[b"Cy", b"12", b""])).unwrap_err();
        assert!(err.reason.contains("`12`"), "{}", err.reason);
    }

    #[test]
    fn explicit_time_zones_win_and_are_checked() {
        let headers = record(&[b"Phone", b"TZ"]);
        let layout = layout(&headers, &ImportOptions::default()).unwrap();
        assert_eq!(layout.timezone, Some(1));
        let us = Normalizer::new(domain::Country::US);
        let table = ZoneTable::get();
        let row = parse_row(
            &layout,
            &us,
            table,
            2,
            &record(&[b"2125550123", b"America/Chicago"]),
        )
        .unwrap();
        assert_eq!(row.zone_key, "America/Chicago");
        let err = parse_row(
            &layout,
            &us,
            table,
            3,
            &record(&[b"2125550123", b"Moon/Base"]),
        )
        .unwrap_err();
        assert!(err.reason.contains("unknown time zone"), "{}", err.reason);
    }

    #[test]
    fn missing_phone_column_is_a_file_error() {
        let headers = record(&[b"name", b"email"]);
        let err = layout(&headers, &ImportOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no phone column"), "{err}");
    }

    #[test]
    fn copy_values_are_escaped() {
        let mut out = Vec::new();
        copy_escape(&mut out, "a\\b\tc\nd");
        assert_eq!(out, b"a\\\\b\\tc\\nd");
    }
}

/// Entry point of the `csv_row` fuzz target (the `fuzz` feature): a call list's header and
/// rows through the import's reading and row checks, without a database. The first byte picks
/// the campaign's country and the delimiter. Every row comes back good or refused with its
/// line; a good row holds an E.164 number, a known zone key and a JSON object of its columns.
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub fn fuzz_rows(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let countries = [
        domain::Country::US,
        domain::Country::GB,
        domain::Country::FR,
        domain::Country::DE,
    ];
    let options = ImportOptions {
        delimiter: [b',', b';', b'\t', b'|'][usize::from(mode >> 2) % 4],
        ..Default::default()
    };
    let normalizer = Normalizer::new(countries[usize::from(mode) % 4]);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(data);
    let Ok(headers) = csv.byte_headers().cloned() else {
        return;
    };
    let Ok(layout) = layout(&headers, &options) else {
        return;
    };
    let table = ZoneTable::get();
    let mut record = ByteRecord::new();
    while let Ok(true) = csv.read_byte_record(&mut record) {
        let line = record.position().map_or(0, |p| p.line());
        match parse_row(&layout, &normalizer, table, line, &record) {
            Ok(row) => {
                assert!(row.e164.starts_with('+'), "{}", row.e164);
                assert!(!row.zone_key.is_empty());
                let extra: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&row.extra).expect("the columns as a JSON object");
                assert!(extra.len() <= layout.extra.len());
            }
            Err(err) => assert_eq!(err.line, line),
        }
    }
}
