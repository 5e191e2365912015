//! The WebSocket event stream: a snapshot first, then every call, agent and campaign event
//! (campaign figures come every second while a campaign is loaded), as JSON text messages
//! tagged by `type`.

use crate::AppState;
use crate::auth::{Auth, cross_site, forbidden};
use crate::error::{ApiResult, Failure};
use crate::extract::Query;
use crate::schema;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use engine::{EngineEvent, Snapshot};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

/// What a client wants to see.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamFilter {
    /// Only this campaign's calls, agents and figures.
    campaign: Option<String>,
    /// Comma-separated event types to send: `call`, `agent`, `campaign` (default: all).
    types: Option<String>,
}

#[derive(Debug, Clone)]
struct Filter {
    campaign: Option<String>,
    calls: bool,
    agents: bool,
    campaigns: bool,
    /// An agent-role client's own agent: it sees itself and its calls, nothing else.
    agent: Option<i64>,
}

/// What an agent may see of a snapshot: itself and the calls connected to it.
pub(crate) fn agent_snapshot(mut s: Snapshot, agent: i64) -> Snapshot {
    let line = s
        .agents
        .iter()
        .find(|a| a.id == agent)
        .and_then(|a| a.attempt_id);
    s.agents.retain(|a| a.id == agent);
    s.calls
        .retain(|c| c.agent_id == Some(agent) || Some(c.attempt_id) == line);
    s.campaigns.clear();
    s
}

impl Filter {
    fn parse(f: StreamFilter) -> Result<Filter, Failure> {
        let mut filter = Filter {
            campaign: f.campaign,
            calls: true,
            agents: true,
            campaigns: true,
            agent: None,
        };
        if let Some(types) = f.types {
            filter.calls = false;
            filter.agents = false;
            filter.campaigns = false;
            for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                match t {
                    "call" => filter.calls = true,
                    "agent" => filter.agents = true,
                    "campaign" => filter.campaigns = true,
                    other => {
                        return Err(Failure::field(
                            StatusCode::BAD_REQUEST,
                            format!("unknown event type `{other}`: use call, agent, campaign"),
                            "types",
                            format!("`{other}` is not call, agent or campaign"),
                        ));
                    }
                }
            }
        }
        Ok(filter)
    }

    fn wants(&self, event: &EngineEvent) -> bool {
        if let Some(own) = self.agent {
            return match event {
                EngineEvent::Call(c) => self.calls && c.agent_id == Some(own),
                EngineEvent::Agent(a) => self.agents && a.id == own,
                EngineEvent::Campaign(_) => false,
            };
        }
        let campaign = |name: Option<&str>| match &self.campaign {
            None => true,
            Some(wanted) => name == Some(wanted.as_str()),
        };
        match event {
            EngineEvent::Call(c) => self.calls && campaign(Some(&c.campaign)),
            EngineEvent::Agent(a) => self.agents && campaign(a.campaign.as_deref()),
            EngineEvent::Campaign(c) => self.campaigns && campaign(Some(&c.name)),
        }
    }

    fn snapshot(&self, mut s: Snapshot) -> Snapshot {
        if let Some(own) = self.agent {
            s = agent_snapshot(s, own);
        }
        if let Some(wanted) = &self.campaign {
            s.campaigns.retain(|c| &c.name == wanted);
            s.agents.retain(|a| a.campaign.as_deref() == Some(wanted));
            s.calls.retain(|c| &c.campaign == wanted);
        }
        s
    }
}

/// The live event stream (WebSocket).
///
/// The first message is a `snapshot` (campaigns, agents, calls in flight); then `call`,
/// `agent` and `campaign` events as they happen (campaign figures every second), and `lagged`
/// if the client fell behind and events were skipped. Each message is one JSON text frame
/// matching `StreamMessage`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(StreamFilter),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; each message is one JSON text frame matching StreamMessage", body = schema::StreamMessage),
        (status = 400, description = "Not a WebSocket upgrade, or a bad filter: the error names the filter", body = schema::Problem),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    auth: Auth,
    headers: axum::http::HeaderMap,
    Query(filter): Query<StreamFilter>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Browsers send any site's WebSocket handshake with the cookies and leave the checking to
    // the server: the stream carries dialled numbers.
    if let Some(why) = cross_site(&headers) {
        tracing::info!(user = %auth.user.username, "event stream refused: {why}");
        return Err(forbidden(format!("cross-site WebSocket refused: {why}")));
    }
    let mut filter = Filter::parse(filter)?;
    filter.agent = auth.own_agent()?;
    let upgrade = upgrade.map_err(|rejection| {
        Failure::new(
            rejection.status(),
            format!("this is a WebSocket endpoint: {}", rejection.body_text()),
        )
    })?;
    Ok(upgrade.on_upgrade(move |socket| stream(socket, state, filter)))
}

impl utoipa::PartialSchema for schema::StreamMessage {
    /// One of the variants' objects with the `type` tag added as a property of its own: a closed
    /// object cannot be combined with the tag by `allOf` (it refuses the tag's property).
    fn schema() -> RefOr<Schema> {
        let variants = [
            (
                "snapshot",
                "Sent first: everything at once.",
                schema::Snapshot::schema(),
            ),
            (
                "call",
                "A call changed state.",
                schema::CallUpdate::schema(),
            ),
            (
                "agent",
                "An agent changed state.",
                schema::AgentView::schema(),
            ),
            (
                "campaign",
                "A campaign's figures (every second while it is loaded) or status changed.",
                schema::CampaignView::schema(),
            ),
            (
                "lagged",
                "The client was too slow: this many events were skipped.",
                schema::Lagged::schema(),
            ),
        ];
        let mut one_of = OneOfBuilder::new().description(Some(
            "A message of the WebSocket stream (`/api/v1/events`), tagged by `type`.",
        ));
        for (tag, description, variant) in variants {
            one_of = one_of.item(with_tag(tag, description, variant));
        }
        RefOr::T(Schema::OneOf(one_of.build()))
    }
}

impl utoipa::ToSchema for schema::StreamMessage {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schema::Snapshot::schemas(schemas);
        schema::CallUpdate::schemas(schemas);
        schema::AgentView::schemas(schemas);
        schema::CampaignView::schemas(schemas);
        schema::Lagged::schemas(schemas);
    }
}

/// A variant's object with the property `type` (always `tag`) added and required.
fn with_tag(tag: &str, description: &str, variant: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = variant else {
        return variant;
    };
    let tag_schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([tag]))
        .build();
    object
        .properties
        .insert("type".to_owned(), RefOr::T(Schema::Object(tag_schema)));
    object.required.insert(0, "type".to_owned());
    object.description = Some(description.to_owned());
    RefOr::T(Schema::Object(object))
}

fn text(value: &impl serde::Serialize) -> Option<Message> {
    match serde_json::to_string(value) {
        Ok(json) => Some(Message::Text(Utf8Bytes::from(json))),
        Err(err) => {
            tracing::error!(%err, "event not serialisable");
            None
        }
    }
}

fn tagged(kind: &str, value: &impl serde::Serialize) -> Option<Message> {
    let mut json = serde_json::to_value(value).ok()?;
    let object = json.as_object_mut()?;
    object.insert("type".into(), serde_json::Value::String(kind.into()));
    text(&json)
}

async fn stream(mut socket: WebSocket, state: AppState, filter: Filter) {
    // Subscribe before the snapshot so nothing falls between the two.
    let mut events = state.engine.subscribe();
    match state.engine.snapshot().await {
        Ok(snapshot) => {
            if let Some(msg) = tagged("snapshot", &filter.snapshot(snapshot))
                && socket.send(msg).await.is_err()
            {
                return;
            }
        }
        Err(err) => tracing::warn!(%err, "event stream: no snapshot"),
    }
    let mut keepalive = tokio::time::interval(Duration::from_secs(15));
    keepalive.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    if !filter.wants(&event) {
                        continue;
                    }
                    if let Some(msg) = text(&event)
                        && socket.send(msg).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "event stream client lagged");
                    let lagged = tagged("lagged", &schema::Lagged { missed });
                    if let Some(msg) = lagged
                        && socket.send(msg).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; text from clients is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = keepalive.tick() => {
                if state.engine.is_shutting_down() {
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            () = state.shutdown.cancelled() => break,
        }
    }
    let _ = socket
        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
            code: axum::extract::ws::close_code::AWAY,
            reason: Utf8Bytes::from_static("the dialer is shutting down"),
        })))
        .await;
}
