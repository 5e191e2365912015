//! Agents: accounts, states (ready, paused with a reason, logged out), hang-up, dispositions.
//!
//! An agent logs in by opening its audio leg: its SIP phone registers with the engine and
//! calls in (see `docs/engine.md`). Over the API the agent then becomes ready, pauses, ends a
//! call, sets a disposition and logs out (which hangs the leg up).

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, Failure};
use crate::extract::{JsonBody, Path};
use crate::schema;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::Disposition;
use domain::{ContactAfter, DispositionKind};
use engine::{AgentSpec, AgentView};
use serde::Deserialize;
use utoipa::ToSchema;

/// Refuses a new agent's bad fields by name (the store's own checks do not name them).
async fn check_new_agent(state: &AppState, agent: &AgentSpec) -> ApiResult<()> {
    let refuse = |field: String, reason: String| {
        Err(Failure::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid agent: {field}: {reason}"),
            field,
            reason,
        ))
    };
    let name = &agent.username;
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return refuse(
            "username".into(),
            "must be 1-64 letters, digits, `.`, `_` or `-`".into(),
        );
    }
    if agent.password.len() < 8 {
        return refuse("password".into(), "must be at least 8 characters".into());
    }
    if agent.display_name.chars().count() > 200 {
        return refuse(
            "display_name".into(),
            "must be at most 200 characters".into(),
        );
    }
    if let Err(err) = agent.algorithms() {
        return refuse(err.field, err.reason);
    }
    for (i, campaign) in agent.campaigns.iter().enumerate() {
        if state
            .engine
            .store()
            .campaign_by_name(campaign)
            .await?
            .is_none()
        {
            return refuse(
                format!("campaigns[{i}]"),
                format!("no campaign `{campaign}`"),
            );
        }
    }
    Ok(())
}

/// Create an agent account (its SIP digest hashes are computed in the engine's realm).
#[utoipa::path(
    post,
    path = "/api/v1/agents",
    tag = "agents",
    request_body = AgentSpec,
    responses(
        (status = 201, description = "The new agent, logged out; `Location` names it", body = schema::AgentView),
        (status = 400, description = "The body is not JSON (a syntax error, empty): the error says where", body = schema::Problem),
        (status = 409, description = "The username is taken", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "A refused field (a bad username, a short password, an unknown field, a campaign that does not exist, an unknown or repeated digest algorithm): the error names it", body = schema::Problem),
    )
)]
pub(crate) async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(spec): JsonBody<AgentSpec>,
) -> ApiResult<Response> {
    check_new_agent(&state, &spec).await?;
    let view = state.engine.create_agent(&spec).await?;
    tracing::info!(agent = %view.username, id = view.id, by = %auth.actor(), "agent created over the API");
    state
        .engine
        .store()
        .audit(
            &auth,
            "agent.create",
            &view.username,
            serde_json::json!({"id": view.id, "campaigns": spec.campaigns,
                "digest_algorithms": spec.digest_algorithms}),
        )
        .await?;
    let location = format!("/api/v1/agents/{}", view.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(view)).into_response())
}

/// Every agent, logged in or not.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    responses((status = 200, description = "Every agent, by id, with its state", body = [schema::AgentView]))
)]
pub(crate) async fn list_agents(State(state): State<AppState>) -> ApiResult<Json<Vec<AgentView>>> {
    Ok(Json(state.engine.agents().await?))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent with its state", body = schema::AgentView),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
    )
)]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent(id).await?))
}

/// The call on an agent's line, for the screen pop.
///
/// The attempt, the contact's card, the contact's earlier calls and the campaign's script
/// filled in. `{"call": null}` when the line is free. The `agent` event that puts the agent `on_call`
/// carries the same `attempt_id`, so a desktop fetches this at the bridge.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/call",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The call on the agent's line or in its wrap-up (`call` is null when none)", body = schema::AgentLine),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
    )
)]
pub(crate) async fn line_call(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<engine::AgentLine>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_line(id).await?))
}

/// Make a logged-in agent ready for calls.
///
/// Ends a pause, or ends wrap-up without a disposition. 409 when the agent's phone has no open
/// leg (not logged in).
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/ready",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent, now ready", body = schema::AgentView),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in, or its state does not allow it", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn ready(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_ready(id).await?))
}

/// Why an agent pauses.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PauseRequest {
    /// 1 to 100 characters (`break`, `training`, ...).
    #[schema(example = "break", min_length = 1, max_length = 100)]
    pub(crate) reason: String,
}

/// Pause an agent for a reason; an agent on a call pauses when the call ends.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/pause",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    request_body = PauseRequest,
    responses(
        (status = 200, description = "The agent, paused (or pausing when its call ends)", body = schema::AgentView),
        (status = 400, description = "The id is not a number, or the body is not JSON: the error names the field", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in, or its state does not allow it", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "The reason is refused (empty, too long, missing, an unknown field): the error names it", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<PauseRequest>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_pause(id, &body.reason).await?))
}

/// Log an agent out: its leg is hung up (a call in progress is ended first).
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/logout",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent, now logged out", body = schema::AgentView),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in, or its state does not allow it", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_logout(id).await?))
}

/// A browser's WebRTC offer, to log the agent in with the browser as its audio.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebrtcOffer {
    /// The RTCPeerConnection's offer, ICE gathering complete (no trickle): one audio m-line
    /// with PCMU or PCMA, rtcp-mux, a sha-256 fingerprint.
    pub(crate) sdp: String,
    /// The campaign to log in to; an assigned one (a running one first) when left out.
    #[serde(default)]
    pub(crate) campaign: Option<String>,
}

/// The dialer's answer to a WebRTC offer.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub(crate) struct WebrtcAnswer {
    /// The SDP answer: ICE-lite with the node's host candidate, DTLS server
    /// (`a=setup:passive`), the chosen G.711 codec.
    pub(crate) sdp: String,
}

/// Log an agent in from a browser: its RTCPeerConnection becomes the agent's audio leg.
///
/// The agent is logged in as after a phone's call-in. Posting again while the browser session
/// lives (a reconnect) replaces the browser's connection: the agent keeps its state and any
/// call stays bridged. A browser gone for the grace period (`webrtc_grace`, 60 s) logs the
/// agent out.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/webrtc",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    request_body = WebrtcOffer,
    responses(
        (status = 200, description = "The SDP answer", body = WebrtcAnswer),
        (status = 400, description = "The id is not a number, or the body is not JSON: the error names the field", body = schema::Problem),
        (status = 404, description = "No agent of this id, or no campaign of this name", body = schema::Problem),
        (status = 409, description = "The agent has no campaign to log in to", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "The offer is refused (not SDP, no audio, no PCMU/PCMA, no fingerprint, no ICE credentials, no rtcp-mux): the error says why", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn webrtc(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<WebrtcOffer>,
) -> ApiResult<Json<WebrtcAnswer>> {
    auth.may_act_for(id)?;
    let sdp = state
        .engine
        .agent_webrtc(id, &body.sdp, body.campaign.as_deref())
        .await?;
    tracing::info!(agent = id, by = %auth.actor(), "WebRTC login over the API");
    Ok(Json(WebrtcAnswer { sdp }))
}

/// End the agent's customer call (the agent's leg stays up; the agent goes to wrap-up).
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/hangup",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent, now in wrap-up", body = schema::AgentView),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in or not on a call", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn hangup(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_hangup(id).await?))
}

/// Put the callee of the agent's call on hold.
///
/// The agent's audio is cut; the callee hears the campaign's `hold_message` (looped) or
/// silence.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/hold",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent, its callee now on hold", body = schema::AgentView),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in, not on a call, or its callee is on hold already", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn hold(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_hold(id).await?))
}

/// Take the callee of the agent's call off hold: the two are connected again.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/unhold",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent, talking with its callee again", body = schema::AgentView),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in, not on a call, or its callee is not on hold", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn unhold(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_unhold(id).await?))
}

/// Keys to send to the callee.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DtmfRequest {
    /// 1 to 32 DTMF keys: `0`-`9`, `*`, `#`, `A`-`D`.
    #[schema(
        example = "12#",
        min_length = 1,
        max_length = 32,
        pattern = "^[0-9*#A-Da-d]+$"
    )]
    pub(crate) digits: String,
}

/// Send DTMF keys to the callee of the agent's call.
///
/// RFC 4733 telephone-events on the payload type the callee's SDP gave; 100 ms each, 80 ms
/// apart.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/dtmf",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    request_body = DtmfRequest,
    responses(
        (status = 200, description = "The agent; the keys are on their way", body = schema::AgentView),
        (status = 400, description = "The id is not a number, or the body is not JSON: the error names the field", body = schema::Problem),
        (status = 404, description = "No agent of this id", body = schema::Problem),
        (status = 409, description = "The agent is not logged in or not on a call, the callee is on hold, or the callee offered no telephone-event", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "The keys are refused (none, more than 32, one outside 0-9 * # A-D, an unknown field): the error names `digits`", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn dtmf(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<DtmfRequest>,
) -> ApiResult<Json<AgentView>> {
    auth.may_act_for(id)?;
    Ok(Json(state.engine.agent_dtmf(id, &body.digits).await?))
}

/// An agent's verdict on a call the agent handled.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DispositionRequest {
    /// The attempt (the call) being disposed of.
    pub(crate) attempt_id: i64,
    /// What came of it.
    pub(crate) kind: DispositionKind,
    /// Free text.
    #[serde(default)]
    pub(crate) note: Option<String>,
    /// For `callback`: when to call back (RFC 3339).
    #[serde(default)]
    pub(crate) callback_at: Option<DateTime<Utc>>,
    /// For `callback`: only this agent takes it (otherwise anyone on the campaign).
    #[serde(default)]
    pub(crate) callback_personal: bool,
}

/// Record an agent's disposition of an attempt it handled.
///
/// The contact's status and next attempt follow (a callback at a time, to this agent or
/// anyone; do-not-call at once); the agent's wrap-up ends if it was for that attempt.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/disposition",
    tag = "agents",
    params(("id" = i64, Path, description = "Agent id")),
    request_body = DispositionRequest,
    responses(
        (status = 200, description = "Where the attempt's contact stands now", body = schema::ContactAfter),
        (status = 400, description = "The id is not a number, or the body is not JSON: the error names the field", body = schema::Problem),
        (status = 404, description = "No such attempt or agent", body = schema::Problem),
        (status = 409, description = "The attempt was not this agent's", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "The disposition is refused (a callback without its time, a time in the past, an unknown kind or field): the error names the field", body = schema::Problem),
    )
)]
pub(crate) async fn disposition(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<DispositionRequest>,
) -> ApiResult<Json<ContactAfter>> {
    auth.may_act_for(id)?;
    if body.kind != DispositionKind::Callback
        && (body.callback_at.is_some() || body.callback_personal)
    {
        return Err(Failure::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback_at and callback_personal go with kind = callback only",
            if body.callback_at.is_some() {
                "callback_at"
            } else {
                "callback_personal"
            },
            format!("not allowed with kind `{}`", body.kind),
        ));
    }
    let disposition = Disposition {
        kind: body.kind,
        note: body.note,
        callback_at: body.callback_at,
        callback_personal: body.callback_personal,
    };
    let after = state
        .engine
        .set_disposition(id, body.attempt_id, &disposition)
        .await?;
    tracing::info!(agent = id, attempt = body.attempt_id, kind = %body.kind, by = %auth.actor(), "disposition over the API");
    if body.kind == DispositionKind::DoNotCall {
        // The contact's number joins the do-not-call list: audited (ids only, no number).
        state
            .engine
            .store()
            .audit(
                &auth,
                "dnc.add",
                &format!("attempt {}", body.attempt_id),
                serde_json::json!({"agent_id": id, "attempt_id": body.attempt_id, "source": "disposition"}),
            )
            .await?;
    }
    Ok(Json(after))
}
