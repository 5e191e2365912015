//! Request extractors whose refusals are JSON [`Failure`]s naming the field, not axum's
//! plain-text rejections: a JSON body, a query string and path parameters.

use crate::error::Failure;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// The field an error names: the `serde_path_to_error` path (`pacing.max_ratio`), completed
/// with the key serde names only in its message (an unknown or a missing field).
pub(crate) fn field_name(path: &serde_path_to_error::Path, reason: &str) -> String {
    let text = path.to_string();
    let parent = if text == "." { String::new() } else { text };
    let key = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| reason.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .filter(|key| !key.is_empty());
    match key {
        // An unknown key is on the path already; a missing one is not.
        Some(key) if parent == key || parent.ends_with(&format!(".{key}")) => parent,
        Some(key) if parent.is_empty() => key.to_owned(),
        Some(key) => format!("{parent}.{key}"),
        None => parent,
    }
}

/// A JSON body deserialised with the path of the first bad field.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// Reads a request body, turning a size overrun into 413.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Failure> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        // 413 when the body is over the limit, 400 when it broke off.
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(status, "the body is too large")
        } else {
            Failure::new(
                status,
                format!("cannot read the body: {}", rejection.body_text()),
            )
        }
    })
}

/// Parses JSON text into `T`, naming the field at fault.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::field(
            StatusCode::BAD_REQUEST,
            "the body is empty: send a JSON object",
            "",
            "empty body",
        ));
    }
    // Every body is an object: serde would also read a struct from an array of its fields.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Failure::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object",
            "",
            "not a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.inner();
        let field = field_name(err.path(), &inner.to_string());
        // Syntax errors are the body's as a whole; data errors are one field's.
        let status = if inner.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        let reason = inner.to_string();
        let error = if field.is_empty() {
            format!("invalid JSON body: {reason}")
        } else {
            format!("invalid JSON body: {field}: {reason}")
        };
        Failure::field(status, error, field, reason)
    })?;
    de.end().map_err(|err| {
        Failure::field(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {err}"),
            "",
            err.to_string(),
        )
    })?;
    Ok(value)
}

/// Whether a request's content type is absent or JSON.
pub(crate) fn content_type(req_headers: &axum::http::HeaderMap) -> Option<String> {
    req_headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(kind) = content_type(req.headers())
            && !kind.is_empty()
            && kind != "application/json"
            && !kind.ends_with("+json")
        {
            return Err(Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type `{kind}` is not accepted: send application/json"),
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A query string deserialised with the name of the first bad parameter; unknown
/// parameters are refused (a misspelt filter must not silently return everything).
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let reason = err.inner().to_string();
                let field = field_name(err.path(), &reason);
                Failure::field(
                    StatusCode::BAD_REQUEST,
                    format!("invalid query parameter `{field}`: {reason}"),
                    field,
                    reason,
                )
            })
    }
}

/// Path parameters, refused as JSON naming the parameter.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => {
                use axum::extract::path::ErrorKind;
                let field = match err.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    ErrorKind::DeserializeError { key, .. } => key.clone(),
                    // A lone parameter's error has no key: the route's template names it.
                    _ => parts
                        .extensions
                        .get::<axum::extract::MatchedPath>()
                        .map(|p| {
                            let names: Vec<&str> = p
                                .as_str()
                                .split('/')
                                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                                .collect();
                            if names.len() == 1 {
                                names[0].to_owned()
                            } else {
                                String::new()
                            }
                        })
                        .unwrap_or_default(),
                };
                let reason = err.body_text();
                Err(Failure::field(
                    StatusCode::BAD_REQUEST,
                    format!("invalid path parameter: {reason}"),
                    field,
                    reason,
                ))
            }
            Err(other) => Err(Failure::new(other.status(), other.body_text())),
        }
    }
}
