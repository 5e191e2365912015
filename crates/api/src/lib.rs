//! The dialer's HTTP interface (axum): REST for campaigns, list uploads, contacts, attempts,
//! agents and live pacing control; a WebSocket stream of call, agent and campaign events;
//! Prometheus `/metrics`; an OpenAPI document at `/api-docs/openapi.json` with Swagger UI at
//! `/swagger-ui/`.
//!
//! Every refusal is a JSON [`schema::Problem`] with a 4xx status naming the field at fault;
//! a handler never panics on input. See `docs/api.md` for the endpoints with examples.
//!
//! ```no_run
//! # async fn demo(engine: engine::Engine) -> Result<(), api::ApiError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! api::serve(listener, engine, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod accounts;
mod agents;
pub mod auth;
mod campaigns;
mod error;
mod events;
mod extract;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod lists;
pub mod metrics;
mod pages;
mod records;
pub mod schema;
mod serve;

pub use accounts::{AgentCampaign, AuditPage, CreatedToken, Me};
pub use auth::AuthOptions;
pub use campaigns::{spec_from_json, spec_from_toml};
pub use error::{ApiError, Failure};
pub use serve::{ApiConfig, DEFAULT_MAX_UPLOAD, DEFAULT_UPLOAD_IDLE_TIMEOUT, tls_config};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use engine::{Engine, Snapshot};
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// Largest JSON or TOML body (campaign definitions, agents, patches).
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    engine: Engine,
    /// Cancelled when the server stops: WebSocket streams close instead of holding it open.
    shutdown: CancellationToken,
    /// Sessions' settings and the login limiters.
    auth: Arc<auth::AuthState>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dialer",
        description = "Outbound predictive dialer: campaigns, call lists, agents, live pacing, \
                       events and figures. Errors are `Problem` JSON naming the field at fault."
    ),
    tags(
        (name = "accounts", description = "Logging in, users, API tokens and the audit log"),
        (name = "campaigns", description = "Campaign definitions, status and live pacing control"),
        (name = "lists", description = "Call list uploads (CSV)"),
        (name = "contacts", description = "Contacts of a campaign"),
        (name = "attempts", description = "Call attempts and their outcomes"),
        (name = "agents", description = "Agent accounts, states and dispositions"),
        (name = "events", description = "Live event stream (WebSocket) and snapshots"),
        (name = "service", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts(&ApiConfig::default()).1
}

fn parts(config: &ApiConfig) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // The upload route takes large bodies (up to the configured limit) and its idle timeout;
    // every other route the default limit.
    let uploads = OpenApiRouter::<AppState>::new()
        .routes(routes!(lists::upload_list))
        .layer(axum::Extension(lists::UploadLimits {
            max_bytes: config.max_upload,
            idle_timeout: config.upload_idle_timeout,
        }))
        .layer(DefaultBodyLimit::max(config.max_upload));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::end_session))
        .routes(routes!(accounts::get_me))
        .routes(routes!(accounts::list_users, accounts::create_user))
        .routes(routes!(accounts::delete_user))
        .routes(routes!(accounts::list_tokens, accounts::create_token))
        .routes(routes!(accounts::revoke_token))
        .routes(routes!(accounts::audit))
        .routes(routes!(
            campaigns::list_campaigns,
            campaigns::create_campaign
        ))
        .routes(routes!(campaigns::get_campaign))
        .routes(routes!(campaigns::get_spec))
        .routes(routes!(campaigns::start_campaign))
        .routes(routes!(campaigns::pause_campaign))
        .routes(routes!(campaigns::stop_campaign))
        .routes(routes!(campaigns::patch_pacing))
        .merge(uploads)
        .routes(routes!(records::list_contacts))
        .routes(routes!(records::contact_counts))
        .routes(routes!(records::get_contact))
        .routes(routes!(records::list_attempts))
        .routes(routes!(records::get_attempt))
        .routes(routes!(agents::list_agents, agents::create_agent))
        .routes(routes!(agents::get_agent))
        .routes(routes!(agents::line_call))
        .routes(routes!(agents::ready))
        .routes(routes!(agents::pause))
        .routes(routes!(agents::logout))
        .routes(routes!(agents::webrtc))
        .routes(routes!(agents::hangup))
        .routes(routes!(agents::hold))
        .routes(routes!(agents::unhold))
        .routes(routes!(agents::dtmf))
        .routes(routes!(agents::disposition))
        .routes(routes!(snapshot))
        .routes(routes!(events::events))
        .routes(routes!(health))
        .routes(routes!(metrics_text))
        .split_for_parts();
    document_security(&mut doc);
    (router, doc)
}

/// Adds the security schemes (bearer token, session cookie) to the document, marks the public
/// operations as needing none, and documents 401 and 403 on every other one.
fn document_security(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
    };
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            auth::SESSION_COOKIE,
            "The browser session of POST /api/v1/login (HttpOnly, SameSite=Strict)",
        ))),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("session", Vec::<String>::new()),
    ]);
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            (axum::http::Method::GET, &mut item.get),
            (axum::http::Method::POST, &mut item.post),
            (axum::http::Method::PUT, &mut item.put),
            (axum::http::Method::PATCH, &mut item.patch),
            (axum::http::Method::DELETE, &mut item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            match auth::access(&method, path) {
                auth::Access::Public => {
                    operation.security = Some(vec![SecurityRequirement::default()]);
                }
                auth::Access::AtLeast(role) => {
                    let answers = &mut operation.responses.responses;
                    answers.entry("401".into()).or_insert_with(|| {
                        problem("No login: no or an unknown, revoked or expired token or session")
                            .into()
                    });
                    answers.entry("403".into()).or_insert_with(|| {
                        problem(&format!(
                            "Needs the {role} role (or more), or a session cookie's request came from another site"
                        ))
                        .into()
                    });
                }
            }
        }
    }
}

/// The API's routes over `engine`, with `/metrics`, the OpenAPI document and Swagger UI.
/// Installs the Prometheus recorder if no recorder is installed yet.
pub fn router(engine: Engine) -> Router {
    router_with(engine, CancellationToken::new(), &ApiConfig::default())
}

/// [`router`] with the upload limits and login settings of `config` (its TLS settings are
/// [`serve_with`]'s).
pub fn router_with_config(engine: Engine, config: &ApiConfig) -> Router {
    router_with(engine, CancellationToken::new(), config)
}

fn router_with(engine: Engine, shutdown: CancellationToken, config: &ApiConfig) -> Router {
    metrics::install();
    let (routes, doc) = parts(config);
    let mut options = config.auth.clone();
    // Under HTTPS the session cookie never travels in clear.
    options.secure_cookies |= config.tls.is_some();
    let state = AppState {
        engine,
        shutdown,
        auth: Arc::new(auth::AuthState::new(options)),
    };
    // A route layer: it runs after routing, so it knows the route template it checks.
    let routes = routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state);
    Router::new()
        .merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", doc))
        .merge(routes)
        .merge(pages::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(count_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // A bug behind a handler answers 500 as JSON instead of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
}

/// Serves the API on `listener` until `shutdown` completes, then lets requests in progress
/// finish and closes the event streams.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    serve_with(listener, engine, ApiConfig::default(), shutdown).await
}

/// [`serve`] with `config`: the upload limits, the login settings, and HTTPS when it holds TLS
/// settings.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    engine: Engine,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let token = CancellationToken::new();
    let app = router_with(engine, token.clone(), &config);
    let graceful = async move {
        shutdown.await;
        token.cancel();
    };
    let addr = listener.local_addr().ok();
    // The client's address feeds the per-address login limit.
    match config.tls {
        Some(tls) => {
            tracing::info!(?addr, "API listening (HTTPS)");
            let app = app.into_make_service_with_connect_info::<serve::ClientAddr>();
            axum::serve(serve::TlsListener::new(listener, tls), app)
                .with_graceful_shutdown(graceful)
                .await?;
        }
        None => {
            tracing::info!(?addr, "API listening (HTTP)");
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await?;
        }
    }
    Ok(())
}

async fn not_found(request: Request) -> Failure {
    Failure::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = what, "a request handler panicked");
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (logged on the server)",
    )
    .into_response()
}

async fn method_not_allowed(request: Request) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Counts requests by method, matched route (not the raw path: ids would explode the series)
/// and status.
async fn count_requests(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let has_body = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .is_some_and(|len| len.as_bytes() != b"0")
        || request
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    ::metrics::counter!(
        "dialer_http_requests_total",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    let status = response.status();
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        || (has_body && (status.is_client_error() || status.is_server_error()))
    {
        // A refused request's body may not have been read to its end (an upload refused for
        // its campaign or options, one over the limit), and then the server closes the
        // connection. Saying so stops a keep-alive client from sending its next request on it
        // (it would see the connection close instead of an answer).
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Campaigns, agents and calls in flight, at once.
#[utoipa::path(
    get,
    path = "/api/v1/snapshot",
    tag = "events",
    responses((
        status = 200,
        description = "Every campaign with its figures, every agent and every call in flight, as of now",
        body = schema::Snapshot
    ))
)]
async fn snapshot(
    State(state): State<AppState>,
    auth: auth::Auth,
) -> error::ApiResult<Json<Snapshot>> {
    let snapshot = state.engine.snapshot().await?;
    Ok(Json(match auth.own_agent()? {
        Some(agent) => events::agent_snapshot(snapshot, agent),
        None => snapshot,
    }))
}

/// Liveness of the node.
///
/// 200 while the node takes work, 503 once it is shutting down.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses(
        (status = 200, description = "The node takes work (`status` is `ok`)", body = schema::Health),
        (status = 503, description = "The node is shutting down (`status` is `shutting_down`)", body = schema::Health),
    )
)]
async fn health(State(state): State<AppState>) -> Response {
    let down = state.engine.is_shutting_down();
    let body = schema::Health {
        status: if down { "shutting_down" } else { "ok" }.into(),
        node: state.engine.node_id().to_owned(),
    };
    let status = if down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
///
/// The text exposition format: calls by outcome, calls in flight, agents by state, abandon
/// rate over each campaign's window, pacing decisions, SIP and RTP errors, HTTP requests.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((
        status = 200,
        description = "Every metric in the Prometheus text exposition format (version 0.0.4)",
        content_type = "text/plain; version=0.0.4",
        body = String
    ))
)]
async fn metrics_text(State(state): State<AppState>) -> Response {
    let body = metrics::render(&state.engine).await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
