//! The pages for people, served from the binary: the agent desktop at `/agent`. Plain HTML,
//! CSS and JavaScript compiled in with `include_str!`, so a fresh clone needs no front-end build.
//! The pages hold no data of their own: they call the API with the browser's session.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// What a page may load and where it may connect: only this service (scripts, styles, the API,
/// the event WebSocket), nothing inline, never framed by another site.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // A new binary serves new files at the same address: the browser must ask again.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
            (
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The pages' routes (public: the data behind them needs a login).
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/agent", get(|| async { Redirect::permanent("/agent/") }))
        .route(
            "/agent/",
            get(|| async {
                asset(
                    "text/html; charset=utf-8",
                    include_str!("../pages/agent/index.html"),
                )
            }),
        )
        .route(
            "/agent/app.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../pages/agent/app.js"),
                )
            }),
        )
        .route(
            "/agent/recorder.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("../pages/agent/recorder.js"),
                )
            }),
        )
        .route(
            "/agent/app.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("../pages/agent/app.css"),
                )
            }),
        )
}
