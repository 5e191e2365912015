//! Contacts and attempts: filtered pages, single records, counts by status.

use crate::AppState;
use crate::auth::{Auth, forbidden};
use crate::error::{ApiResult, Failure};
use crate::extract::{Path, Query};
use crate::schema;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::{ContactStatus, Outcome};
use serde::Deserialize;
use store::{Attempt, Contact, MAX_PAGE};
use utoipa::IntoParams;

pub(crate) fn page_size(limit: Option<u64>) -> Result<u64, Failure> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(Failure::field(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_PAGE}"),
            "limit",
            format!("{n} is not between 1 and {MAX_PAGE}"),
        )),
    }
}

/// The id a full page continues after; a short page is the last.
fn next_after<T>(items: &[T], limit: u64, id: impl Fn(&T) -> i64) -> Option<i64> {
    if items.len() as u64 == limit {
        items.last().map(id)
    } else {
        None
    }
}

async fn campaign_id(state: &AppState, name: &str) -> ApiResult<i64> {
    Ok(state.engine.store().require_campaign(name).await?.id)
}

/// Filters of a campaign's contacts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ContactFilter {
    /// Only contacts with this status.
    status: Option<ContactStatus>,
    /// Only numbers starting with this (E.164, e.g. `+1212`).
    number_prefix: Option<String>,
    /// Only ids above this (the previous page's `next_after_id`).
    after_id: Option<i64>,
    /// Page size, 1 to 10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
}

/// A campaign's contacts, by id, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{name}/contacts",
    tag = "contacts",
    params(("name" = String, Path, description = "Campaign name"), ContactFilter),
    responses(
        (status = 200, description = "One page of the campaign's contacts, by id; `next_after_id` continues it", body = schema::ContactPage),
        (status = 400, description = "A bad filter (an unknown parameter, a bad status, a limit out of range): the error names it", body = schema::Problem),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
    )
)]
pub(crate) async fn list_contacts(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(filter): Query<ContactFilter>,
) -> ApiResult<Json<schema::ContactPage>> {
    let limit = page_size(filter.limit)?;
    let query = store::ContactQuery {
        campaign_id: campaign_id(&state, &name).await?,
        status: filter.status,
        number_prefix: filter.number_prefix,
        after_id: filter.after_id,
        limit,
    };
    let items = state.engine.store().contacts(&query).await?;
    let next_after_id = next_after(&items, limit, |c| c.id);
    Ok(Json(schema::ContactPage {
        items,
        next_after_id,
    }))
}

/// A campaign's contacts counted by status.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{name}/contacts/counts",
    tag = "contacts",
    params(("name" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign's contacts counted by status, and their total", body = schema::ContactCounts),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
    )
)]
pub(crate) async fn contact_counts(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<schema::ContactCounts>> {
    let id = campaign_id(&state, &name).await?;
    let counts = state.engine.store().contact_counts(id).await?;
    let total = counts.iter().map(|(_, n)| n).sum();
    Ok(Json(schema::ContactCounts {
        by_status: counts
            .into_iter()
            .map(|(status, n)| (status.as_str().to_owned(), n))
            .collect(),
        total,
    }))
}

/// One contact.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    params(("id" = i64, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact as stored", body = schema::Contact),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No contact of this id", body = schema::Problem),
    )
)]
pub(crate) async fn get_contact(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Contact>> {
    if let Some(agent) = auth.own_agent()? {
        // An agent sees the contact of the call on its line, and no other (whether another
        // exists is not said either).
        let on_line = match line_attempt(&state, agent).await? {
            Some(attempt) => state.engine.store().attempt(attempt).await?.contact_id == id,
            None => false,
        };
        if !on_line {
            return Err(forbidden(format!(
                "contact {id} is not on your line: an agent sees only the contact of its call"
            )));
        }
    }
    Ok(Json(state.engine.store().contact(id).await?))
}

/// The attempt on an agent's line (a call, or one being wrapped up).
async fn line_attempt(state: &AppState, agent: i64) -> ApiResult<Option<i64>> {
    Ok(state.engine.agent(agent).await?.attempt_id)
}

/// Filters of a campaign's attempts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AttemptFilter {
    /// Only this contact's attempts.
    contact_id: Option<i64>,
    /// Only attempts with this outcome.
    outcome: Option<Outcome>,
    /// Started at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Started before (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Only ids above this (the previous page's `next_after_id`).
    after_id: Option<i64>,
    /// Page size, 1 to 10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
}

/// A campaign's attempts (one per call), by id, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{name}/attempts",
    tag = "attempts",
    params(("name" = String, Path, description = "Campaign name"), AttemptFilter),
    responses(
        (status = 200, description = "One page of the campaign's attempts, by id; `next_after_id` continues it", body = schema::AttemptPage),
        (status = 400, description = "A bad filter (an unknown parameter, a bad outcome or time, a limit out of range): the error names it", body = schema::Problem),
        (status = 404, description = "No campaign of this name", body = schema::Problem),
    )
)]
pub(crate) async fn list_attempts(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(filter): Query<AttemptFilter>,
) -> ApiResult<Json<schema::AttemptPage>> {
    let limit = page_size(filter.limit)?;
    let query = store::AttemptQuery {
        campaign_id: Some(campaign_id(&state, &name).await?),
        contact_id: filter.contact_id,
        outcome: filter.outcome,
        from: filter.from,
        to: filter.to,
        after_id: filter.after_id,
        limit,
    };
    let items = state.engine.store().attempts(&query).await?;
    let next_after_id = next_after(&items, limit, |a| a.id);
    Ok(Json(schema::AttemptPage {
        items,
        next_after_id,
    }))
}

/// One attempt.
#[utoipa::path(
    get,
    path = "/api/v1/attempts/{id}",
    tag = "attempts",
    params(("id" = i64, Path, description = "Attempt id")),
    responses(
        (status = 200, description = "The attempt as stored", body = schema::Attempt),
        (status = 400, description = "The id is not a number: the error names `id`", body = schema::Problem),
        (status = 404, description = "No attempt of this id", body = schema::Problem),
    )
)]
pub(crate) async fn get_attempt(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Attempt>> {
    if let Some(agent) = auth.own_agent()? {
        let refuse = || {
            forbidden(format!(
                "attempt {id} is not yours: an agent sees only its own calls"
            ))
        };
        if line_attempt(&state, agent).await? != Some(id) {
            // Not the call on the line: one the agent took before, or refused.
            let attempt = state
                .engine
                .store()
                .attempt(id)
                .await
                .map_err(|_| refuse())?;
            if attempt.agent_id != Some(agent) {
                return Err(refuse());
            }
            return Ok(Json(attempt));
        }
    }
    Ok(Json(state.engine.store().attempt(id).await?))
}
