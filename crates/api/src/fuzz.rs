//! Entry points for the fuzz targets in `fuzz/` (the `fuzz` feature): every request body and
//! query string the API takes, through the parsing and the checks the handlers run before they
//! reach the engine. Whatever the bytes, they must come back as a value or as a [`Failure`]
//! naming a field, never as a panic.

use crate::agents::{DispositionRequest, PauseRequest};
use crate::error::Failure;
use crate::extract::{Query, parse_json};
use crate::lists::UploadOptions;
use crate::records::{AttemptFilter, ContactFilter};
use axum::extract::FromRequestParts as _;
use domain::PacingPatch;
use engine::AgentSpec;

/// Runs the body or query string `data` through the parsing of the request kind `kind`
/// picks (the kinds wrap around), then the checks its handler runs first.
pub fn request(kind: u8, data: &[u8]) {
    let failure: Option<Failure> = match kind % 9 {
        0 => crate::spec_from_json(data).err(),
        1 => match std::str::from_utf8(data) {
            Ok(text) => crate::spec_from_toml(text).err(),
            Err(_) => None,
        },
        2 => match parse_json::<PacingPatch>(data) {
            // As the engine does: the patched section checked as a whole.
            Ok(patch) => {
                let pacing = patch.apply(&domain::Pacing::default());
                let _ = pacing.problems();
                None
            }
            Err(failure) => Some(failure),
        },
        3 => match parse_json::<AgentSpec>(data) {
            Ok(agent) => agent.algorithms().err().map(|err| {
                Failure::field(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    err.to_string(),
                    err.field,
                    err.reason,
                )
            }),
            Err(failure) => Some(failure),
        },
        4 => parse_json::<PauseRequest>(data).err(),
        5 => parse_json::<DispositionRequest>(data).err(),
        6 => match parse_query::<UploadOptions>(data) {
            Ok(options) => options
                .delimiter
                .as_deref()
                .and_then(|d| crate::lists::delimiter(d).err()),
            Err(failure) => Some(failure),
        },
        7 => query::<ContactFilter>(data),
        _ => query::<AttemptFilter>(data),
    };
    if let Some(failure) = failure {
        // A refusal names a status a client can act on.
        assert!(failure.status.is_client_error(), "{failure:?}");
        assert!(!failure.problem.error.is_empty(), "{failure:?}");
    }
}

/// A query string through the API's query extractor; the refusal if any.
fn query<T: serde::de::DeserializeOwned + Send>(data: &[u8]) -> Option<Failure> {
    parse_query::<T>(data).err()
}

/// A query string through the API's query extractor.
fn parse_query<T: serde::de::DeserializeOwned + Send>(data: &[u8]) -> Result<T, Failure> {
    let text: String = data
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '_' })
        .collect();
    let uri = format!("/x?{text}");
    let request = axum::http::Request::builder()
        .uri(uri)
        .body(())
        .map_err(|err| {
            Failure::field(
                axum::http::StatusCode::BAD_REQUEST,
                err.to_string(),
                "query",
                err.to_string(),
            )
        })?;
    let (mut parts, ()) = request.into_parts();
    futures::executor::block_on(Query::<T>::from_request_parts(&mut parts, &())).map(|q| q.0)
}
