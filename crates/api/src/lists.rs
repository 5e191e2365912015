//! List upload: a multipart CSV streamed into the store's import, with the same per-row report
//! as `dialer import --json`.
//!
//! An upload cannot hurt the service: its size is bounded (413), a client that sends nothing
//! for the idle timeout is cut off (408), and the import holds no transaction while it waits
//! for bytes (the store gathers each chunk of rows before writing it), so a slow client never
//! holds the database's write lock. Either refusal keeps the chunks committed before it, in a
//! list marked incomplete; nothing of a half-read chunk is stored.

use crate::AppState;
use crate::error::{ApiResult, Failure};
use crate::extract::{Path, Query};
use crate::schema;
use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Field, Multipart, MultipartError, MultipartRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::IntoParams;

/// The upload route's limits (from [`crate::ApiConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UploadLimits {
    /// Largest body, bytes.
    pub(crate) max_bytes: usize,
    /// Longest wait for the client's next bytes.
    pub(crate) idle_timeout: Duration,
}

/// Why the body stopped before its end, as the client is told.
#[derive(Debug, Clone)]
struct BodyFailure {
    status: StatusCode,
    reason: String,
}

/// Options of an upload, as query parameters (or multipart text parts before `file`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadOptions {
    /// Header of the phone column (default: phone, phone_number, number, telephone, tel, mobile).
    phone_column: Option<String>,
    /// Header of a time-zone column with IANA names (default: timezone, time_zone or tz).
    timezone_column: Option<String>,
    /// Field delimiter, one ASCII character (default `,`).
    #[param(pattern = "^[\\x01-\\x7f]$")]
    pub(crate) delimiter: Option<String>,
    /// Name of the list (default: the file's name).
    list_name: Option<String>,
}

pub(crate) fn delimiter(text: &str) -> Result<u8, Failure> {
    match text.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ if text == "\\t" || text == "tab" => Ok(b'\t'),
        _ => Err(Failure::field(
            StatusCode::BAD_REQUEST,
            "the delimiter must be one ASCII character",
            "delimiter",
            format!("`{text}` is not one ASCII character"),
        )),
    }
}

fn multipart_failure(err: impl std::fmt::Display, status: StatusCode) -> Failure {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Failure::field(
            status,
            format!("the upload is too large: {err}"),
            "file",
            err.to_string(),
        );
    }
    Failure::field(
        status,
        format!("bad multipart body: {err}"),
        "file",
        err.to_string(),
    )
}

/// Waits for the client's next multipart step, at most the idle timeout.
async fn within<T>(
    limits: UploadLimits,
    step: impl Future<Output = Result<T, MultipartError>>,
) -> ApiResult<T> {
    match tokio::time::timeout(limits.idle_timeout, step).await {
        Ok(result) => result.map_err(|err| multipart_failure(err.body_text(), err.status())),
        Err(_) => Err(stalled(limits).into_failure(None)),
    }
}

fn stalled(limits: UploadLimits) -> BodyFailure {
    BodyFailure {
        status: StatusCode::REQUEST_TIMEOUT,
        reason: format!(
            "no data for {}s: the upload stalled",
            limits.idle_timeout.as_secs_f64()
        ),
    }
}

impl BodyFailure {
    /// The answer: what happened, and what is kept when an import had begun.
    fn into_failure(self, list: Option<&str>) -> Failure {
        let kept = match list {
            Some(list) => format!(
                "; rows of chunks committed before are kept in list `{list}`, marked \
                 incomplete (upload the same file again to complete it)"
            ),
            None => String::new(),
        };
        let error = if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the upload is too large: {}{kept}", self.reason)
        } else {
            format!("the upload stopped: {}{kept}", self.reason)
        };
        Failure::field(self.status, error, "file", self.reason)
    }
}

/// Streams one multipart part into the import, chunk by chunk (never the whole file in
/// memory). A body that breaks off, goes past the size limit or stalls past the idle timeout
/// fails the import: the chunks committed before stay, in an incomplete list.
async fn import_field(
    store: &store::Store,
    campaign_id: i64,
    mut field: Field<'_>,
    options: &store::ImportOptions,
    limits: UploadLimits,
) -> ApiResult<store::ImportSummary> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    let reader = tokio_util::io::StreamReader::new(tokio_stream_from(rx));
    let failure: Arc<Mutex<Option<BodyFailure>>> = Arc::default();
    let failed = failure.clone();
    let pump = async move {
        loop {
            let why = match tokio::time::timeout(limits.idle_timeout, field.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        // The import stopped reading (it failed): nothing more to pass on.
                        return;
                    }
                    continue;
                }
                Ok(Ok(None)) => return,
                Ok(Err(err)) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => BodyFailure {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    reason: format!("the body is over the limit of {} bytes", limits.max_bytes),
                },
                Ok(Err(err)) => BodyFailure {
                    status: StatusCode::BAD_REQUEST,
                    reason: format!("the body broke off ({})", err.body_text()),
                },
                Err(_) => stalled(limits),
            };
            let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why.reason.clone());
            if let Ok(mut slot) = failed.lock() {
                *slot = Some(why);
            }
            let _ = tx.send(Err(io)).await;
            return;
        }
    };
    let (_, summary) = tokio::join!(pump, store.import_csv_async(campaign_id, reader, options));
    match summary {
        Ok(summary) => Ok(summary),
        Err(err) => {
            let why = failure.lock().ok().and_then(|mut slot| slot.take());
            match why {
                // The body's fault, whatever the import made of the missing bytes.
                Some(why) => {
                    tracing::warn!(
                        campaign_id,
                        list = %options.list_name,
                        status = why.status.as_u16(),
                        reason = %why.reason,
                        "list upload refused mid-body"
                    );
                    Err(why.into_failure(Some(&options.list_name)))
                }
                None => Err(err.into()),
            }
        }
    }
}

/// A receiver as a stream, without pulling in `tokio-stream`.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + Unpin + 'static {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Upload a call list (CSV with a header line) into a campaign.
///
/// The list is the multipart part `file`. Each row's number is normalised to E.164 with the
/// campaign's country, its time zone found, duplicates and do-not-call numbers flagged; bad
/// rows are reported with their line number and skipped. Uploading the same file twice adds
/// nothing. Options come as query parameters or as text parts before `file`.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{name}/lists",
    tag = "lists",
    params(("name" = String, Path, description = "Campaign name"), UploadOptions),
    request_body(content = schema::UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The list is stored: the per-row report (as `dialer import --json`), refused rows with their line", body = schema::ImportSummary),
        (status = 400, description = "Not multipart, no `file` part, an unknown part, a bad option, or the body broke off: the error names the part or option", body = schema::Problem),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
        (status = 408, description = "The client sent nothing for the idle timeout (`upload_idle_timeout`, 30 s by default): chunks committed before are kept in a list marked incomplete", body = schema::Problem),
        (status = 413, description = "The body is over the size limit (`max_upload`, 1 GiB by default): chunks committed before are kept in a list marked incomplete", body = schema::Problem),
        (status = 422, description = "The file cannot be read as a list (no header, no phone column): nothing is stored", body = schema::Problem),
    )
)]
pub(crate) async fn upload_list(
    State(state): State<AppState>,
    axum::Extension(limits): axum::Extension<UploadLimits>,
    Path(name): Path<String>,
    Query(query): Query<UploadOptions>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let mut multipart = multipart.map_err(|rejection| {
        Failure::field(
            StatusCode::BAD_REQUEST,
            format!(
                "send the list as multipart/form-data with a `file` part: {}",
                rejection.body_text()
            ),
            "file",
            rejection.body_text(),
        )
    })?;
    let store = state.engine.store().clone();
    let campaign = store.require_campaign(&name).await?;
    // An empty option is no option (forms send empty fields).
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let query = UploadOptions {
        phone_column: given(query.phone_column),
        timezone_column: given(query.timezone_column),
        delimiter: given(query.delimiter),
        list_name: given(query.list_name),
    };
    let mut options = store::ImportOptions {
        phone_column: query.phone_column,
        timezone_column: query.timezone_column,
        list_name: query.list_name.clone().unwrap_or_else(|| "upload".into()),
        ..Default::default()
    };
    if let Some(d) = &query.delimiter {
        options.delimiter = delimiter(d)?;
    }
    let mut named = query.list_name.is_some();
    loop {
        let field = within(limits, multipart.next_field()).await?;
        let Some(field) = field else {
            return Err(Failure::field(
                StatusCode::BAD_REQUEST,
                "the multipart body has no `file` part",
                "file",
                "missing",
            ));
        };
        let part = field.name().unwrap_or_default().to_owned();
        if part == "file" {
            if !named && let Some(file_name) = field.file_name().filter(|n| !n.is_empty()) {
                options.list_name = file_name.to_owned();
            }
            let started = std::time::Instant::now();
            let summary = import_field(&store, campaign.id, field, &options, limits).await?;
            tracing::info!(
                campaign = %campaign.name,
                list = %options.list_name,
                rows = summary.rows,
                imported = summary.imported,
                rejected = summary.rejected,
                secs = started.elapsed().as_secs_f64(),
                "list uploaded over the API"
            );
            return Ok((StatusCode::CREATED, Json(summary)).into_response());
        }
        let text = within(limits, field.text()).await?;
        let known = ["phone_column", "timezone_column", "delimiter", "list_name"];
        if text.is_empty() && known.contains(&part.as_str()) {
            continue;
        }
        match part.as_str() {
            "phone_column" => options.phone_column = Some(text),
            "timezone_column" => options.timezone_column = Some(text),
            "delimiter" => options.delimiter = delimiter(&text)?,
            "list_name" => {
                options.list_name = text;
                named = true;
            }
            other => {
                return Err(Failure::field(
                    StatusCode::BAD_REQUEST,
                    format!("unknown multipart part `{other}`"),
                    other,
                    "expected phone_column, timezone_column, delimiter, list_name, then file",
                ));
            }
        }
    }
}
