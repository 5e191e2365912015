//! Campaigns: create or update from TOML or JSON, read, start, pause, stop, live pacing.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, Failure};
use crate::extract::{JsonBody, Path, content_type, parse_json, read_body};
use crate::schema;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use domain::CampaignSpec;
use domain::PacingPatch;
use engine::CampaignView;
use serde::Serialize;
use store::{Applied, Role};

/// Parses a campaign definition written in TOML, naming the field at fault.
pub fn spec_from_toml(text: &str) -> Result<CampaignSpec, Failure> {
    match CampaignSpec::from_toml(text) {
        Ok(spec) => Ok(spec),
        Err(domain::Error::InvalidSpec(fields)) => {
            // The domain reports a deserialisation error with no field; find its path.
            if fields.len() == 1 && fields[0].field.is_empty() {
                let unnamed = || {
                    Failure::field(
                        StatusCode::BAD_REQUEST,
                        format!("invalid TOML body: {}", fields[0].reason),
                        "",
                        fields[0].reason.clone(),
                    )
                };
                let Ok(table) = text.parse::<toml::Table>() else {
                    return Err(unnamed());
                };
                return match serde_path_to_error::deserialize::<_, CampaignSpec>(
                    toml::Value::Table(table),
                ) {
                    Err(err) => {
                        let reason = err.inner().to_string().trim().to_owned();
                        let field = crate::extract::field_name(err.path(), &reason);
                        Err(Failure::field(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("invalid campaign: {field}: {reason}"),
                            field,
                            reason,
                        ))
                    }
                    Ok(_) => Err(unnamed()),
                };
            }
            Err(Failure::from(store::Error::InvalidSpec(fields)))
        }
        Err(other) => Err(Failure::from(other)),
    }
}

/// Parses a campaign definition written in JSON, naming the field at fault.
pub fn spec_from_json(bytes: &[u8]) -> Result<CampaignSpec, Failure> {
    let spec: CampaignSpec = parse_json(bytes)?;
    spec.validate()?;
    Ok(spec)
}

#[derive(Serialize)]
struct AppliedBody {
    applied: Applied,
    campaign: CampaignView,
}

/// Create or update a campaign from its definition.
///
/// The definition is the campaign file's TOML (`application/toml`) or the same structure as
/// JSON (`application/json`). A new campaign is created paused (201); an existing one of the
/// same name takes the new definition at once (200). Every refused field is named.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    request_body(
        description = "The campaign definition (campaigns/README.md), as TOML or JSON",
        content(
            (schema::CampaignSpec = "application/json"),
            (String = "application/toml", example = json!("name = \"spring\"\ndefault_country = \"US\"\ncaller_id = \"+12025550143\"\nabandon_message = \"prompts/abandon.wav\"\n\n[trunk]\nuri = \"sip:127.0.0.1:5070\"\n"))
        )
    ),
    responses(
        (status = 201, description = "A new campaign, created paused (`applied` is `created`); `Location` names it", body = schema::CampaignApplied),
        (status = 200, description = "An existing campaign now under this definition (`applied` is `updated` or `unchanged`)", body = schema::CampaignApplied),
        (status = 400, description = "The body cannot be read as TOML or JSON (a syntax error, not UTF-8, empty): the error says where", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is neither TOML nor JSON (`text/plain` neither: any site's form can send it)", body = schema::Problem),
        (status = 422, description = "The definition is refused: every refused field is named with its reason", body = schema::Problem),
    )
)]
pub(crate) async fn create_campaign(
    State(state): State<AppState>,
    auth: Auth,
    request: Request,
) -> ApiResult<Response> {
    let kind = content_type(request.headers()).unwrap_or_default();
    let bytes = read_body(request, &()).await?;
    let json = match kind.as_str() {
        "application/json" => true,
        k if k.ends_with("+json") => true,
        // Not text/plain: an HTML form on any site can post that without a preflight.
        "application/toml" | "text/toml" | "application/x-toml" | "text/x-toml" => false,
        // No type: a JSON object starts with `{`, a TOML file never does.
        "" => bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{'),
        other => {
            return Err(Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type `{other}` is not accepted: send application/toml or application/json"
                ),
            ));
        }
    };
    let spec = if json {
        spec_from_json(&bytes)?
    } else {
        let text = std::str::from_utf8(&bytes).map_err(|err| {
            Failure::field(
                StatusCode::BAD_REQUEST,
                format!("the TOML body is not UTF-8: {err}"),
                "",
                err.to_string(),
            )
        })?;
        spec_from_toml(text)?
    };
    let stored = state.engine.store().campaign_by_name(&spec.name).await?;
    let trunk_changed = match &stored {
        Some(stored) => {
            serde_json::to_value(&stored.spec.trunk).ok() != serde_json::to_value(&spec.trunk).ok()
        }
        None => true,
    };
    if auth.role != Role::Admin {
        check_admin_fields(&spec, stored.as_ref().map(|c| &c.spec))?;
    }
    let (campaign, applied) = state.engine.apply_campaign(&spec).await?;
    tracing::info!(campaign = %campaign.name, ?applied, by = %auth.actor(), "campaign applied over the API");
    if applied != Applied::Unchanged {
        state
            .engine
            .store()
            .audit(
                &auth,
                "campaign.apply",
                &campaign.name,
                serde_json::json!({
                    "applied": applied,
                    "trunk_changed": trunk_changed,
                    "override_legal_limits": {
                        "pacing": spec.pacing.override_legal_limits,
                        "calling_hours": spec.calling_hours.override_legal_limits,
                    },
                    "spec": spec,
                }),
            )
            .await?;
    }
    let status = if applied == Applied::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/api/v1/campaigns/{}", campaign.name);
    Ok((
        status,
        [(LOCATION, location)],
        Json(AppliedBody { applied, campaign }),
    )
        .into_response())
}

/// What only an admin may change in a campaign file: a legal override turned on, an existing
/// campaign's trunk. A manager may re-apply a file with the admin's settings unchanged.
fn check_admin_fields(spec: &CampaignSpec, stored: Option<&CampaignSpec>) -> ApiResult<()> {
    let refuse = |field: &str, what: &str| {
        Err(Failure::field(
            StatusCode::FORBIDDEN,
            format!("{field}: {what} needs the admin role"),
            field,
            format!("{what} needs the admin role"),
        ))
    };
    let was = |get: fn(&CampaignSpec) -> bool| stored.is_some_and(get);
    if spec.calling_hours.override_legal_limits && !was(|s| s.calling_hours.override_legal_limits) {
        return refuse(
            "calling_hours.override_legal_limits",
            "overriding the legal calling hours",
        );
    }
    if spec.pacing.override_legal_limits && !was(|s| s.pacing.override_legal_limits) {
        return refuse(
            "pacing.override_legal_limits",
            "overriding the legal abandon limit",
        );
    }
    if let Some(stored) = stored
        && serde_json::to_value(&stored.trunk).ok() != serde_json::to_value(&spec.trunk).ok()
    {
        return refuse("trunk", "changing a campaign's trunk");
    }
    Ok(())
}

/// Every campaign with its status and live figures (as of the last second).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    responses((status = 200, description = "Every campaign, by name, with its status and figures", body = [schema::CampaignView]))
)]
pub(crate) async fn list_campaigns(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CampaignView>>> {
    Ok(Json(state.engine.campaigns().await?))
}

/// One campaign with its status and live figures.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{name}",
    tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign with its status and figures", body = schema::CampaignView),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
    )
)]
pub(crate) async fn get_campaign(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    Ok(Json(state.engine.campaign(&name).await?))
}

/// A campaign's definition as stored (pacing changes included).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{name}/spec",
    tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign's definition as stored, as JSON", body = schema::CampaignSpec),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
    )
)]
pub(crate) async fn get_spec(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CampaignSpec>> {
    let campaign = state
        .engine
        .store()
        .campaign_by_name(&name)
        .await?
        .ok_or_else(|| Failure::from(engine::EngineError::NoSuchCampaign(name)))?;
    Ok(Json(campaign.spec))
}

/// Start (or resume) dialling.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{name}/start",
    tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign, now running", body = schema::CampaignView),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
        (status = 503, description = "The node is shutting down: it starts nothing", body = schema::Problem),
    )
)]
pub(crate) async fn start_campaign(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let view = state.engine.start_campaign(&name).await?;
    tracing::info!(campaign = %name, by = %auth.actor(), "campaign start over the API");
    state
        .engine
        .store()
        .audit(
            &auth,
            "campaign.start",
            &name,
            serde_json::json!({"status": view.status}),
        )
        .await?;
    Ok(Json(view))
}

/// Stop starting new calls; calls in flight finish, agents stay logged in.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{name}/pause",
    tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign, now paused", body = schema::CampaignView),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn pause_campaign(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let view = state.engine.pause_campaign(&name).await?;
    tracing::info!(campaign = %name, by = %auth.actor(), "campaign pause over the API");
    state
        .engine
        .store()
        .audit(
            &auth,
            "campaign.pause",
            &name,
            serde_json::json!({"status": view.status}),
        )
        .await?;
    Ok(Json(view))
}

/// Stop the campaign.
///
/// Calls not yet answered are cancelled and their contacts given back; answered calls finish.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{name}/stop",
    tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign, now stopped", body = schema::CampaignView),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
        (status = 503, description = "The node is shutting down", body = schema::Problem),
    )
)]
pub(crate) async fn stop_campaign(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let view = state.engine.stop_campaign(&name).await?;
    tracing::info!(campaign = %name, by = %auth.actor(), "campaign stop over the API");
    state
        .engine
        .store()
        .audit(
            &auth,
            "campaign.stop",
            &name,
            serde_json::json!({"status": view.status}),
        )
        .await?;
    Ok(Json(view))
}

/// Change a campaign's pacing while it runs.
///
/// The mode, the ratio bounds, the abandon target. The patched settings are checked as a whole
/// (422 names every refused field and nothing changes), stored, and take effect at the next
/// pacing decision.
#[utoipa::path(
    patch,
    path = "/api/v1/campaigns/{name}/pacing",
    tag = "campaigns",
    params(("name" = String, Path, description = "Campaign name")),
    request_body = PacingPatch,
    responses(
        (status = 200, description = "The campaign with the change in force (unchanged for an empty change)", body = schema::CampaignView),
        (status = 400, description = "The body is not JSON (a syntax error, empty): the error says where", body = schema::Problem),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
        (status = 413, description = "The body is over 1 MiB", body = schema::Problem),
        (status = 415, description = "The content type is not JSON", body = schema::Problem),
        (status = 422, description = "The change is refused (an unknown field, a value out of range, bounds that cross): every refused field is named and nothing changes", body = schema::Problem),
    )
)]
pub(crate) async fn patch_pacing(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    JsonBody(patch): JsonBody<PacingPatch>,
) -> ApiResult<Json<CampaignView>> {
    if patch.is_empty() {
        return Ok(Json(state.engine.campaign(&name).await?));
    }
    let stored = state
        .engine
        .store()
        .campaign_by_name(&name)
        .await?
        .ok_or_else(|| Failure::from(engine::EngineError::NoSuchCampaign(name.clone())))?;
    check_pacing_role(&auth, &patch, &stored.spec.pacing)?;
    let view = state
        .engine
        .update_pacing(&name, &patch)
        .await
        .map_err(|err| {
            // The engine names the campaign file's fields (`pacing.max_ratio`); this body's
            // fields are the pacing section's own.
            let mut failure = Failure::from(err);
            for field in &mut failure.problem.fields {
                if let Some(own) = field.field.strip_prefix("pacing.") {
                    field.field = own.to_owned();
                }
            }
            failure
        })?;
    tracing::info!(campaign = %name, ?patch, by = %auth.actor(), "pacing changed over the API");
    state
        .engine
        .store()
        .audit(
            &auth,
            "campaign.pacing",
            &name,
            serde_json::json!({"patch": patch, "before": stored.spec.pacing}),
        )
        .await?;
    Ok(Json(view))
}

/// Who may change what of the pacing: an admin anything; a manager anything but the legal
/// override; a supervisor the live settings within the bounds a manager set (the mode, the
/// ratio between the stored bounds, the abandon target and the lines no higher than stored).
fn check_pacing_role(auth: &Auth, patch: &PacingPatch, stored: &domain::Pacing) -> ApiResult<()> {
    let refuse = |field: &str, why: String| {
        Err(Failure::field(
            StatusCode::FORBIDDEN,
            format!("{field}: {why}"),
            field,
            why,
        ))
    };
    if let Some(value) = patch.override_legal_limits
        && value != stored.override_legal_limits
        && auth.role != Role::Admin
    {
        return refuse(
            "override_legal_limits",
            "changing the legal override needs the admin role".into(),
        );
    }
    if auth.role.covers(Role::Manager) {
        return Ok(());
    }
    let bound =
        |field: &str| format!("{field} is a manager's bound: a supervisor may not change it");
    if patch.min_ratio.is_some() {
        return refuse("min_ratio", bound("min_ratio"));
    }
    if patch.max_ratio.is_some() {
        return refuse("max_ratio", bound("max_ratio"));
    }
    if patch.abandon_window.is_some() {
        return refuse("abandon_window", bound("abandon_window"));
    }
    if patch.min_agents.is_some() {
        return refuse("min_agents", bound("min_agents"));
    }
    if let Some(ratio) = patch.ratio
        && !(stored.min_ratio..=stored.max_ratio).contains(&ratio)
    {
        return refuse(
            "ratio",
            format!(
                "{ratio} is outside the manager's bounds {}-{}",
                stored.min_ratio, stored.max_ratio
            ),
        );
    }
    if let Some(target) = patch.abandon_target
        && target > stored.abandon_target
    {
        return refuse(
            "abandon_target",
            format!(
                "{target} is above the manager's {}: a supervisor may only lower it",
                stored.abandon_target
            ),
        );
    }
    if let Some(lines) = patch.max_lines
        && lines > stored.max_lines
    {
        return refuse(
            "max_lines",
            format!(
                "{lines} is above the manager's {}: a supervisor may only lower it",
                stored.max_lines
            ),
        );
    }
    Ok(())
}
