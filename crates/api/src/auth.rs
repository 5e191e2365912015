//! Who is asking and what they may do: browser sessions (a cookie), API tokens (bearer), the
//! role every route needs, the cross-site request checks for cookie sessions, and the limits
//! on login attempts.
//!
//! One middleware runs before every routed request: it finds the principal from the
//! `Authorization: Bearer` header or the session cookie, refuses a cross-site state change made
//! with a cookie, and refuses the request with 401 (no login) or 403 (a role that may not)
//! according to [`access`]. Handlers narrow further what an agent-role principal sees (its own
//! agent, the call on its line, that contact) through [`Auth`].

use crate::AppState;
use crate::error::Failure;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use store::{Credential, Principal, Role};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dialer_session";

/// Settings of sessions and logins.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Mark the session cookie `Secure` (the service is reached over HTTPS).
    pub secure_cookies: bool,
    /// How long a browser session lasts.
    pub session_ttl: Duration,
    /// Login attempts one account may make at once; then one more per `login_replenish`.
    pub login_burst_per_account: u32,
    /// Login attempts one client address may make at once; then one more per
    /// `login_replenish` divided by 4.
    pub login_burst_per_address: u32,
    /// How often an account regains one attempt.
    pub login_replenish: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            secure_cookies: false,
            session_ttl: Duration::from_secs(12 * 3600),
            login_burst_per_account: 5,
            login_burst_per_address: 20,
            login_replenish: Duration::from_secs(12),
        }
    }
}

/// Sessions' settings and the login limiters, shared by every request.
pub(crate) struct AuthState {
    pub(crate) options: AuthOptions,
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl AuthState {
    pub(crate) fn new(options: AuthOptions) -> AuthState {
        let quota = |burst: u32, period: Duration| {
            Quota::with_period(period.max(Duration::from_millis(1)))
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
        };
        AuthState {
            per_account: RateLimiter::keyed(quota(
                options.login_burst_per_account,
                options.login_replenish,
            )),
            per_address: RateLimiter::keyed(quota(
                options.login_burst_per_address,
                options.login_replenish / 4,
            )),
            options,
        }
    }

    /// Counts a login attempt for `account` from `address`; the wait before the next one
    /// allowed when either limit is reached.
    pub(crate) fn login_attempt(&self, account: &str, address: Option<IpAddr>) -> Option<Duration> {
        // The limiters keep a cell per key: forget the idle ones before they pile up.
        if self.per_account.len() > 10_000 {
            self.per_account.retain_recent();
        }
        if self.per_address.len() > 10_000 {
            self.per_address.retain_recent();
        }
        let now = DefaultClock::default().now();
        let mut wait = None;
        if let Some(ip) = address
            && let Err(until) = self.per_address.check_key(&ip)
        {
            wait = Some(until.wait_time_from(now));
        }
        if wait.is_none()
            && let Err(until) = self.per_account.check_key(&account.to_ascii_lowercase())
        {
            wait = Some(until.wait_time_from(now));
        }
        wait
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A principal of at least this role (`Agent`: any login; handlers narrow agents further).
    AtLeast(Role),
}

/// The access each route needs, by method and route template; a route missing here needs an
/// admin (closed by default). `docs/api.md` has this as a table, and the tests prove it.
pub fn access(method: &Method, route: &str) -> Access {
    use Access::{AtLeast, Public};
    use Role::{Admin, Agent, Manager, Supervisor};
    let m = method.as_str();
    match (m, route) {
        ("GET", "/healthz") | ("POST", "/api/v1/login") => Public,
        ("POST", "/api/v1/logout") | ("GET", "/api/v1/me") => AtLeast(Agent),
        ("GET" | "POST", "/api/v1/tokens") | ("DELETE", "/api/v1/tokens/{id}") => AtLeast(Agent),
        ("GET" | "POST", "/api/v1/users") | ("DELETE", "/api/v1/users/{id}") => AtLeast(Admin),
        ("GET", "/api/v1/audit") => AtLeast(Admin),
        ("GET", "/metrics") => AtLeast(Supervisor),
        ("GET", "/api/v1/campaigns" | "/api/v1/campaigns/{name}") => AtLeast(Supervisor),
        ("POST", "/api/v1/campaigns") => AtLeast(Manager),
        ("GET", "/api/v1/campaigns/{name}/spec") => AtLeast(Manager),
        ("POST", "/api/v1/campaigns/{name}/start" | "/api/v1/campaigns/{name}/stop") => {
            AtLeast(Manager)
        }
        ("POST", "/api/v1/campaigns/{name}/pause") => AtLeast(Supervisor),
        ("PATCH", "/api/v1/campaigns/{name}/pacing") => AtLeast(Supervisor),
        ("POST", "/api/v1/campaigns/{name}/lists") => AtLeast(Manager),
        ("GET", "/api/v1/campaigns/{name}/contacts" | "/api/v1/campaigns/{name}/attempts") => {
            AtLeast(Manager)
        }
        ("GET", "/api/v1/campaigns/{name}/contacts/counts") => AtLeast(Supervisor),
        ("GET", "/api/v1/contacts/{id}" | "/api/v1/attempts/{id}") => AtLeast(Agent),
        ("GET", "/api/v1/agents") => AtLeast(Supervisor),
        ("POST", "/api/v1/agents") => AtLeast(Admin),
        ("GET", "/api/v1/agents/{id}" | "/api/v1/agents/{id}/call") => AtLeast(Agent),
        (
            "POST",
            "/api/v1/agents/{id}/ready"
            | "/api/v1/agents/{id}/pause"
            | "/api/v1/agents/{id}/logout"
            | "/api/v1/agents/{id}/webrtc"
            | "/api/v1/agents/{id}/hangup"
            | "/api/v1/agents/{id}/hold"
            | "/api/v1/agents/{id}/unhold"
            | "/api/v1/agents/{id}/dtmf"
            | "/api/v1/agents/{id}/disposition",
        ) => AtLeast(Agent),
        ("GET", "/api/v1/snapshot" | "/api/v1/events") => AtLeast(Agent),
        _ => AtLeast(Admin),
    }
}

/// The principal of a request that passed [`authenticate`].
#[derive(Debug, Clone)]
pub(crate) struct Auth(pub(crate) Arc<Principal>);

impl std::ops::Deref for Auth {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl Auth {
    /// The agent record an agent-role principal acts as (`None` for the roles above).
    pub(crate) fn own_agent(&self) -> Result<Option<i64>, Failure> {
        if self.role != Role::Agent {
            return Ok(None);
        }
        self.user.agent_id.map(Some).ok_or_else(|| {
            forbidden(format!(
                "`{}` has the agent role but no agent: an admin must link one",
                self.user.username
            ))
        })
    }

    /// Refuses an agent-role principal acting on another agent.
    pub(crate) fn may_act_for(&self, agent_id: i64) -> Result<(), Failure> {
        match self.own_agent()? {
            Some(own) if own != agent_id => Err(forbidden(format!(
                "an agent acts on itself only: agent {agent_id} is not yours"
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses a principal below `role`.
    pub(crate) fn require(&self, role: Role, what: &str) -> Result<(), Failure> {
        if self.role.covers(role) {
            Ok(())
        } else {
            Err(forbidden(format!(
                "{what} needs the {role} role (you are {})",
                self.role
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Auth>()
            .cloned()
            .ok_or_else(unauthorized)
    }
}

/// 401: no valid login.
pub(crate) fn unauthorized() -> Failure {
    Failure::new(
        StatusCode::UNAUTHORIZED,
        "login required: send `Authorization: Bearer <token>` or log in at POST /api/v1/login",
    )
}

/// 403 with the reason.
pub(crate) fn forbidden(why: impl Into<String>) -> Failure {
    Failure::new(StatusCode::FORBIDDEN, why)
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(text) = value.to_str() else {
        return Some(Err(()));
    };
    let Some((scheme, token)) = text.split_once(' ') else {
        return Some(Err(()));
    };
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Some(Ok(token.trim()))
    } else {
        Some(Err(()))
    }
}

/// The session secret of the request's cookie, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether `origin` (`http://host:port`) is this service as the request addressed it.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.trim_end_matches('/').eq_ignore_ascii_case(host))
}

/// Why a request is cross-site, if it is: a foreign `Origin` or a `Sec-Fetch-Site` other than
/// `same-origin`/`none`.
pub(crate) fn cross_site(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Some(format!("Sec-Fetch-Site is `{site}`"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("?");
        if !same_origin(text, headers) {
            return Some(format!("Origin `{text}` is not this service"));
        }
    }
    None
}

/// Whether the request shows it comes from this service's own pages.
fn proven_same_origin(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin")
        || headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| same_origin(o, headers))
}

/// The route that takes `multipart/form-data` (a CSV file from the console's upload form).
const UPLOAD_ROUTE: &str = "/api/v1/campaigns/{name}/lists";

/// The cross-site request forgery checks of a state change made with a session cookie: never
/// from another site, and never a body an HTML form can send without a CORS preflight
/// (`text/plain`, urlencoded, multipart), except the upload's multipart with an `Origin` or
/// `Sec-Fetch-Site` proving it comes from this service's own pages.
fn csrf(method: &Method, route: &str, headers: &HeaderMap) -> Result<(), Failure> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(why) = cross_site(headers) {
        return Err(forbidden(format!(
            "cross-site request refused: {why} (a session cookie acts only from this service's pages)"
        )));
    }
    let kind = crate::extract::content_type(headers).unwrap_or_default();
    let form_type = matches!(
        kind.as_str(),
        "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
    );
    if !form_type {
        return Ok(());
    }
    if route == UPLOAD_ROUTE && kind == "multipart/form-data" {
        if proven_same_origin(headers) {
            return Ok(());
        }
        return Err(forbidden(
            "an upload with a session cookie needs an Origin or Sec-Fetch-Site header showing \
             this service (a form on any site can post multipart)",
        ));
    }
    Err(forbidden(format!(
        "a `{kind}` body is refused with a session cookie: a form on any site can send it; \
         send JSON (or TOML as application/toml)"
    )))
}

/// The client's address as the server saw it.
pub(crate) fn client_address(request: &Request) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .or_else(|| {
            extensions
                .get::<ConnectInfo<crate::serve::ClientAddr>>()
                .map(|info| info.0.0.ip())
        })
}

/// Finds the principal, checks cross-site rules and the route's [`access`].
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(route) = route else {
        // Unrouted: the fallback answers 404/405 and reveals nothing.
        return next.run(request).await;
    };
    let needed = access(request.method(), &route);
    let headers = request.headers();
    let principal = match bearer(headers) {
        Some(Ok(secret)) => match state.engine.store().token_principal(secret).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                tracing::info!(route, "refused: unknown, revoked or expired API token");
                return unauthorized().into_response();
            }
            Err(err) => return Failure::from(err).into_response(),
        },
        // Another scheme (`Basic` from a proxy or a curious client) is no credential of ours:
        // the request goes on as without one, so public routes still answer.
        Some(Err(())) | None => match session_cookie(headers) {
            Some(secret) => match state.engine.store().session_principal(&secret).await {
                Ok(found) => found,
                Err(err) => return Failure::from(err).into_response(),
            },
            None => None,
        },
    };
    let by_cookie = principal
        .as_ref()
        .is_some_and(|p| matches!(p.via, Credential::Session(_)));
    // Login itself is checked too: a foreign page must not log a browser in to its account.
    if (by_cookie || route == "/api/v1/login")
        && let Err(refusal) = csrf(request.method(), &route, request.headers())
    {
        tracing::info!(route, "refused: cross-site request with a session");
        return refusal.into_response();
    }
    if let Access::AtLeast(role) = needed {
        let Some(principal) = &principal else {
            if matches!(bearer(request.headers()), Some(Err(()))) {
                return with_challenge(
                    Failure::new(
                        StatusCode::UNAUTHORIZED,
                        "only `Authorization: Bearer <token>` or a session cookie (POST \
                         /api/v1/login) is accepted; this Authorization header is neither",
                    )
                    .into_response(),
                );
            }
            return with_challenge(unauthorized().into_response());
        };
        if !principal.role.covers(role) {
            tracing::info!(user = %principal.user.username, role = %principal.role, route, "refused: role");
            return forbidden(format!(
                "{} {route} needs the {role} role (you are {})",
                request.method(),
                principal.role
            ))
            .into_response();
        }
    }
    if let Some(principal) = principal {
        tracing::debug!(user = %principal.user.username, role = %principal.role, route, "authenticated");
        request.extensions_mut().insert(Auth(Arc::new(principal)));
    }
    next.run(request).await
}

fn with_challenge(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"dialer\""),
    );
    response
}

/// The `Set-Cookie` of a new session.
pub(crate) fn session_set_cookie(options: &AuthOptions, secret: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, secret))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(options.secure_cookies)
        .path("/")
        .max_age(
            cookie::time::Duration::try_from(options.session_ttl)
                .unwrap_or(cookie::time::Duration::hours(12)),
        )
        .build()
}

/// The `Set-Cookie` that removes the session cookie.
pub(crate) fn session_clear_cookie(options: &AuthOptions) -> Cookie<'static> {
    let mut cookie = session_set_cookie(options, String::new());
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn cross_site_state_changes_with_a_cookie_are_refused() {
        let host = ("host", "127.0.0.1:8080");
        let own = ("origin", "http://127.0.0.1:8080");
        let post = Method::POST;
        let route = "/api/v1/campaigns";
        let check = |pairs: &[(&str, &str)]| csrf(&post, route, &headers(pairs));
        assert!(check(&[host, ("origin", "https://evil.example")]).is_err());
        assert!(check(&[host, ("sec-fetch-site", "cross-site")]).is_err());
        assert!(check(&[host, ("sec-fetch-site", "same-site")]).is_err());
        assert!(check(&[host, own]).is_ok());
        // A type a form can send is refused even from the own pages; JSON needs a preflight.
        assert!(check(&[host, own, ("content-type", "text/plain")]).is_err());
        assert!(
            check(&[
                host,
                own,
                ("content-type", "application/x-www-form-urlencoded")
            ])
            .is_err()
        );
        assert!(check(&[host, ("content-type", "application/json")]).is_ok());
        assert!(check(&[host, ("content-type", "application/toml")]).is_ok());
        // The upload takes multipart from the own pages only.
        let multipart = ("content-type", "multipart/form-data; boundary=x");
        let upload = |pairs: &[(&str, &str)]| csrf(&post, UPLOAD_ROUTE, &headers(pairs));
        assert!(upload(&[host, multipart]).is_err());
        assert!(upload(&[host, multipart, ("origin", "https://evil.example")]).is_err());
        assert!(upload(&[host, multipart, own]).is_ok());
        assert!(upload(&[host, multipart, ("sec-fetch-site", "same-origin")]).is_ok());
        assert!(check(&[host, multipart, own]).is_err());
        // Reading is never refused here.
        assert!(
            csrf(
                &Method::GET,
                route,
                &headers(&[host, ("origin", "https://evil.example")])
            )
            .is_ok()
        );
    }

    #[test]
    fn routes_not_in_the_table_need_an_admin() {
        assert_eq!(
            access(&Method::GET, "/api/v1/something-new"),
            Access::AtLeast(Role::Admin)
        );
        assert_eq!(access(&Method::POST, "/api/v1/login"), Access::Public);
    }

    #[test]
    fn login_attempts_are_limited_per_account_and_address() {
        let state = AuthState::new(AuthOptions {
            login_burst_per_account: 2,
            login_burst_per_address: 3,
            login_replenish: Duration::from_secs(60),
            ..AuthOptions::default()
        });
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(state.login_attempt("ann", ip).is_none());
        assert!(state.login_attempt("ANN", ip).is_none());
        assert!(state.login_attempt("ann", ip).is_some());
        // The address has used its three, whatever the account.
        assert!(state.login_attempt("bob", ip).is_some());
    }
}
