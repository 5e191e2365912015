//! Logging in and out, who am I, users, API tokens and the audit log.

use crate::AppState;
use crate::auth::{self, Auth, client_address};
use crate::error::{ApiResult, Failure};
use crate::extract::{JsonBody, Path, Query};
use crate::schema;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::{LOCATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::{ApiToken, AuditEntry, Credential, NewUser, Role, User};
use utoipa::{IntoParams, ToSchema};

/// A login. Its `Debug` leaves the password out.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    /// Login name.
    #[schema(example = "alice")]
    pub(crate) username: String,
    /// Password.
    #[schema(min_length = 1, max_length = 1024)]
    pub(crate) password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Who the caller is and how they proved it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user: User,
    /// The role in force (a token's may be below its owner's).
    pub role: Role,
    /// `session` (a browser cookie) or `token`.
    pub via: String,
    /// The token's id, when `via` is `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    /// When a session just opened ends (login only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The campaigns the caller's agent works on (an agent-role user; `GET /api/v1/me` only),
    /// for the agent desktop's choice of campaign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<AgentCampaign>,
}

/// A campaign an agent works on, as the agent desktop offers it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentCampaign {
    /// Name.
    pub name: String,
    /// Dial mode in force.
    pub mode: domain::DialMode,
    /// Running, paused or stopped.
    pub status: domain::CampaignStatus,
}

fn me(auth: &store::Principal, expires_at: Option<DateTime<Utc>>) -> Me {
    let (via, token_id) = match &auth.via {
        Credential::Token(id, _) => ("token", Some(*id)),
        _ => ("session", None),
    };
    Me {
        user: auth.user.clone(),
        role: auth.role,
        via: via.into(),
        token_id,
        expires_at,
        campaigns: Vec::new(),
    }
}

/// Log in: a session cookie for a browser.
///
/// The cookie is HttpOnly and SameSite=Strict (and Secure when the service is served over
/// HTTPS). Attempts are limited per account and per client address: past the limit, 429 with
/// `Retry-After`.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "accounts",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Logged in: `Set-Cookie` holds the session", body = Me),
        (status = 400, description = "The body is not JSON", body = schema::Problem),
        (status = 401, description = "Wrong username or password (which one is not said)", body = schema::Problem),
        (status = 403, description = "A login from another site's page", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "A missing or unknown field", body = schema::Problem),
        (status = 429, description = "Too many attempts for this account or from this address: `Retry-After` says when to try again", body = schema::Problem),
    )
)]
pub(crate) async fn login(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let address = client_address(&request);
    let JsonBody(body) =
        <JsonBody<LoginRequest> as axum::extract::FromRequest<AppState>>::from_request(
            request, &state,
        )
        .await?;
    if let Some(wait) = state.auth.login_attempt(&body.username, address) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::warn!(user = %body.username, ?address, retry_after = secs, "login refused: too many attempts");
        let mut response = Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many login attempts: try again in {secs} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return Ok(response);
    }
    let store = state.engine.store();
    let Some(user) = store.check_login(&body.username, &body.password).await? else {
        tracing::info!(user = %body.username, ?address, "login failed");
        return Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "wrong username or password",
        ));
    };
    let (secret, expires) = store
        .create_session(user.id, state.auth.options.session_ttl)
        .await?;
    tracing::info!(user = %user.username, role = %user.role, ?address, "logged in");
    let principal = store::Principal {
        role: user.role,
        user,
        via: Credential::Session(0),
    };
    let jar = CookieJar::new().add(auth::session_set_cookie(&state.auth.options, secret));
    Ok((jar, Json(me(&principal, Some(expires)))).into_response())
}

/// Log out: the session ends on the server and its cookie is removed.
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    tag = "accounts",
    responses(
        (status = 204, description = "The session ended (a token's caller: nothing to end)"),
        (status = 401, description = "Not logged in", body = schema::Problem),
    )
)]
pub(crate) async fn end_session(
    State(state): State<AppState>,
    auth: Auth,
    jar: CookieJar,
) -> ApiResult<Response> {
    if let Some(secret) = jar.get(auth::SESSION_COOKIE).map(|c| c.value().to_owned()) {
        state.engine.store().end_session(&secret).await?;
        tracing::info!(user = %auth.user.username, "logged out");
    }
    let jar = jar.add(auth::session_clear_cookie(&state.auth.options));
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// Who am I: the user, the role in force, session or token.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not logged in", body = schema::Problem),
    )
)]
pub(crate) async fn get_me(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Me>> {
    let mut answer = me(&auth, None);
    if let Some(agent_id) = auth.user.agent_id {
        let assigned = state
            .engine
            .store()
            .agents()
            .await?
            .into_iter()
            .find(|agent| agent.id == agent_id)
            .map(|agent| agent.campaigns)
            .unwrap_or_default();
        answer.campaigns = state
            .engine
            .campaigns()
            .await?
            .into_iter()
            .filter(|campaign| assigned.contains(&campaign.id))
            .map(|campaign| AgentCampaign {
                name: campaign.name,
                mode: campaign.mode,
                status: campaign.status,
            })
            .collect();
    }
    Ok(Json(answer))
}

/// A new user. Its `Debug` leaves the password out.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserRequest {
    /// Login name: 1-64 letters, digits, `.`, `_`, `-`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub(crate) username: String,
    /// 8 to 1,024 bytes; only its argon2id hash is stored.
    #[schema(min_length = 8, max_length = 1024)]
    pub(crate) password: String,
    /// Role.
    pub(crate) role: Role,
    /// For the agent role: the username of the agent (its SIP account) this user acts as.
    #[serde(default)]
    pub(crate) agent: Option<String>,
}

impl std::fmt::Debug for UserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRequest")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

fn invalid(field: &str, err: store::Error) -> Failure {
    match err {
        store::Error::Invalid(reason) => Failure::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
            field,
            reason,
        ),
        other => Failure::from(other),
    }
}

/// Create a user (admin).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "accounts",
    request_body = UserRequest,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "The body is not JSON", body = schema::Problem),
        (status = 401, description = "Not logged in", body = schema::Problem),
        (status = 403, description = "Not an admin", body = schema::Problem),
        (status = 409, description = "The username is taken", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "A refused field (username, password, role without or with an agent, an unknown agent): the error names it", body = schema::Problem),
    )
)]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<UserRequest>,
) -> ApiResult<Response> {
    let store = state.engine.store();
    if let Err(err) = store::check_username(&body.username) {
        return Err(invalid("username", err));
    }
    if let Err(err) = store::check_password(&body.password) {
        return Err(invalid("password", err));
    }
    let agent_id = match &body.agent {
        Some(name) => Some(
            store
                .agent_by_username(name)
                .await?
                .ok_or_else(|| {
                    Failure::field(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("agent: no agent `{name}`"),
                        "agent",
                        format!("no agent `{name}`"),
                    )
                })?
                .id,
        ),
        None => None,
    };
    let new = NewUser {
        username: body.username,
        password: body.password,
        role: body.role,
        agent_id,
    };
    // What the store may still refuse is the role's agent (missing, extra, taken).
    let user = store
        .create_user(&new, &auth)
        .await
        .map_err(|err| invalid("agent", err))?;
    tracing::info!(by = %auth.actor(), user = %user.username, role = %user.role, "user created");
    let location = format!("/api/v1/users/{}", user.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(user)).into_response())
}

/// Every user (admin).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "accounts",
    responses(
        (status = 200, description = "Every user, by name", body = [User]),
        (status = 401, description = "Not logged in", body = schema::Problem),
        (status = 403, description = "Not an admin", body = schema::Problem),
    )
)]
pub(crate) async fn list_users(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.engine.store().users().await?))
}

/// Delete a user with its sessions and tokens (admin; not the last admin).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "accounts",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user, now deleted", body = User),
        (status = 400, description = "The id is not a number", body = schema::Problem),
        (status = 401, description = "Not logged in", body = schema::Problem),
        (status = 403, description = "Not an admin", body = schema::Problem),
        (status = 404, description = "No user of this id", body = schema::Problem),
        (status = 409, description = "The last admin", body = schema::Problem),
    )
)]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<User>> {
    let user = state
        .engine
        .store()
        .delete_user(id, &auth)
        .await
        .map_err(|err| match err {
            store::Error::Invalid(reason) => Failure::new(StatusCode::CONFLICT, reason),
            other => Failure::from(other),
        })?;
    tracing::info!(by = %auth.actor(), user = %user.username, "user deleted");
    Ok(Json(user))
}

/// A new API token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// What it is for (1-100 characters).
    #[schema(example = "crm-sync", min_length = 1, max_length = 100)]
    pub(crate) name: String,
    /// The role it acts with: at most its owner's (default: the owner's).
    #[serde(default)]
    pub(crate) role: Option<Role>,
    /// The owner's username (admins only; default: the caller).
    #[serde(default)]
    pub(crate) user: Option<String>,
    /// End of validity (default: none).
    #[serde(default)]
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// A token just made, with its secret: shown this once, stored only as a hash.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token as listed.
    pub token: ApiToken,
    /// The bearer secret: `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// Make an API token (for oneself; an admin for anyone).
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "accounts",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token with its secret, shown this once", body = CreatedToken),
        (status = 400, description = "The body is not JSON", body = schema::Problem),
        (status = 401, description = "Not logged in", body = schema::Problem),
        (status = 403, description = "A token for another user, not being an admin", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "A refused field (a role above the owner's, an unknown user, a bad name): the error names it", body = schema::Problem),
    )
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<TokenRequest>,
) -> ApiResult<Response> {
    let store = state.engine.store();
    let owner = match &body.user {
        Some(name) if *name != auth.user.username => {
            auth.require(Role::Admin, "a token for another user")?;
            store.user_by_name(name).await?.ok_or_else(|| {
                Failure::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("user: no user `{name}`"),
                    "user",
                    format!("no user `{name}`"),
                )
            })?
        }
        _ => auth.user.clone(),
    };
    // A token never outranks the credential that made it.
    let role = body.role.unwrap_or(owner.role.min_with(auth.role));
    if !auth.role.covers(role) {
        return Err(auth::forbidden(format!(
            "a {} cannot make a token of the {role} role",
            auth.role
        )));
    }
    let field = if body.name.trim().is_empty() || body.name.chars().count() > 100 {
        "name"
    } else {
        "role"
    };
    let made = store
        .create_token(owner.id, &body.name, role, body.expires_at, &auth)
        .await
        .map_err(|err| invalid(field, err))?;
    tracing::info!(by = %auth.actor(), token = made.token.id, owner = %owner.username, role = %role, "token created");
    let location = format!("/api/v1/tokens/{}", made.token.id);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(CreatedToken {
            token: made.token,
            secret: made.secret,
        }),
    )
        .into_response())
}

/// API tokens: one's own (an admin: everyone's), newest first, without their secrets.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "accounts",
    responses(
        (status = 200, description = "The tokens, newest first", body = [ApiToken]),
        (status = 401, description = "Not logged in", body = schema::Problem),
    )
)]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let whose = (auth.role != Role::Admin).then_some(auth.user.id);
    Ok(Json(state.engine.store().tokens(whose).await?))
}

/// Revoke an API token (one's own; an admin any): refused from the next request on.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "accounts",
    params(("id" = i64, Path, description = "Token id")),
    responses(
        (status = 200, description = "The token, now revoked", body = ApiToken),
        (status = 400, description = "The id is not a number", body = schema::Problem),
        (status = 401, description = "Not logged in", body = schema::Problem),
        (status = 404, description = "No token of this id that the caller may revoke", body = schema::Problem),
    )
)]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApiToken>> {
    let store = state.engine.store();
    let token = store.token(id).await?;
    let yours = token
        .as_ref()
        .is_some_and(|t| t.user_id == auth.user.id || auth.role == Role::Admin);
    if !yours {
        return Err(Failure::not_found(format!("no token {id} of yours")));
    }
    let token = store.revoke_token(id, &auth).await?;
    tracing::info!(by = %auth.actor(), token = id, "token revoked");
    Ok(Json(token))
}

/// Where to start and how much.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditFilter {
    /// Only entries after this id (the previous page's `next_after_id`).
    after_id: Option<i64>,
    /// Page size, 1 to 10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
}

/// One page of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Entries in order.
    pub items: Vec<AuditEntry>,
    /// The id to continue after; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_id: Option<i64>,
}

/// The audit log, oldest first (admin). Nothing edits or deletes it.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "accounts",
    params(AuditFilter),
    responses(
        (status = 200, description = "One page of the audit log", body = AuditPage),
        (status = 400, description = "A bad parameter: the error names it", body = schema::Problem),
        (status = 401, description = "Not logged in", body = schema::Problem),
        (status = 403, description = "Not an admin", body = schema::Problem),
    )
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Json<AuditPage>> {
    let limit = crate::records::page_size(filter.limit)?;
    let items = state
        .engine
        .store()
        .audit_log(filter.after_id, limit)
        .await?;
    let next_after_id = if items.len() as u64 == limit {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        items,
        next_after_id,
    }))
}
