//! The screen pop: the call on an agent's line with its contact's card, the contact's earlier
//! calls and the campaign's script filled in, as the agent desktop shows it at the bridge.

use crate::view::{AgentState, AgentView};
use chrono::{DateTime, Utc};
use domain::ContactStatus;
use serde::{Deserialize, Serialize};
use store::{Attempt, Contact, PastAttempt};

/// How many earlier calls a card lists (newest first).
pub(crate) const HISTORY_LIMIT: u64 = 50;

/// What is on an agent's line: `call` is absent (null) when nothing is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentLine {
    /// The call on the line or in its wrap-up, or null.
    pub call: Option<LineCall>,
}

/// The call on an agent's line (talking, or wrapping it up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineCall {
    /// The attempt (the call's id; dispositions name it).
    pub attempt_id: i64,
    /// The campaign.
    pub campaign: String,
    /// The agent's state with it: `reserved`, `on_call` or `wrap_up`.
    pub state: AgentState,
    /// Since when the agent is in that state.
    pub since: DateTime<Utc>,
    /// When the callee answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// When the callee was connected to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridged_at: Option<DateTime<Utc>>,
    /// Who is called.
    pub contact: ContactCard,
    /// The contact's earlier calls, newest first (at most 50; this one left out).
    pub history: Vec<PastAttempt>,
    /// The campaign's script with the contact's fields filled in (absent: the campaign has
    /// none). Plain text: show it as text, never as HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// A contact as the agent's screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactCard {
    /// The contact's id.
    pub id: i64,
    /// The name from the list (a `name` column, else `first_name` and `last_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The number, E.164.
    pub number: String,
    /// The callee's time zones (IANA names), the likeliest first.
    pub time_zones: Vec<String>,
    /// The list's other columns, as given in the CSV.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The contact's status.
    pub status: ContactStatus,
    /// Calls made to it so far.
    pub attempts: u32,
}

/// A column's value as text (a CSV gives strings; other JSON values are printed).
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A column of the contact's row by name, exactly or else ignoring case and spaces.
fn column<'a>(contact: &'a Contact, name: &str) -> Option<&'a serde_json::Value> {
    contact.extra.get(name).or_else(|| {
        contact
            .extra
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

impl ContactCard {
    /// The card of a stored contact.
    pub fn of(contact: &Contact) -> Self {
        let non_empty = |name: &str| {
            column(contact, name)
                .map(text)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let name = non_empty("name").or_else(|| {
            let parts: Vec<String> = ["first_name", "last_name"]
                .into_iter()
                .filter_map(non_empty)
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        Self {
            id: contact.id,
            name,
            number: contact.e164.clone(),
            time_zones: contact.zones.clone(),
            fields: contact.extra.clone(),
            status: contact.status,
            attempts: contact.attempts,
        }
    }
}

/// Fills a campaign's script from the contact and the agent (`domain::script`'s built-ins,
/// then the list's columns).
pub fn render_script(
    script: &str,
    campaign: &str,
    card: &ContactCard,
    agent: &AgentView,
) -> String {
    domain::script::render(script, |name| match name {
        "phone" => Some(card.number.clone()),
        "name" => card.name.clone(),
        "agent_name" => Some(if agent.display_name.is_empty() {
            agent.username.clone()
        } else {
            agent.display_name.clone()
        }),
        "agent_username" => Some(agent.username.clone()),
        "campaign" => Some(campaign.to_owned()),
        "time_zone" => card.time_zones.first().cloned(),
        other => card.fields.get(other).map(text).or_else(|| {
            card.fields
                .iter()
                .find(|(k, _)| k.trim() == other)
                .map(|(_, v)| text(v))
        }),
    })
}

/// Puts the pieces read from the store together.
pub(crate) fn line_call(
    agent: &AgentView,
    attempt: &Attempt,
    contact: &Contact,
    campaign: &domain::CampaignSpec,
    history: Vec<PastAttempt>,
) -> LineCall {
    let card = ContactCard::of(contact);
    let script = campaign
        .script
        .as_deref()
        .map(|s| render_script(s, &campaign.name, &card, agent));
    LineCall {
        attempt_id: attempt.id,
        campaign: campaign.name.clone(),
        state: agent.state,
        since: agent.since,
        answered_at: attempt.answered_at,
        bridged_at: attempt.bridged_at,
        contact: card,
        history,
        script,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(extra: serde_json::Value) -> Contact {
        Contact {
            id: 7,
            campaign_id: 1,
            list_id: Some(1),
            e164: "+13125550101".into(),
            zones: vec!["America/Chicago".into()],
            extra: extra.as_object().cloned().unwrap_or_default(),
            status: ContactStatus::Pending,
            attempts: 1,
            next_attempt_at: Utc::now(),
            lease_node: None,
            last_outcome: None,
            last_attempt_at: None,
        }
    }

    fn agent() -> AgentView {
        AgentView {
            id: 3,
            username: "ann".into(),
            display_name: "Ann Agent".into(),
            state: AgentState::OnCall,
            since: Utc::now(),
            pause_reason: None,
            campaign: Some("c".into()),
            node: None,
            attempt_id: Some(9),
            calls: 1,
            talk_secs: 0.0,
            wait_secs: 0.0,
            digest_algorithms: None,
            today: None,
        }
    }

    #[test]
    fn the_card_names_the_contact_and_the_script_is_filled() {
        let c = contact(
            serde_json::json!({"First_Name": "Jo", "last_name": "Bloggs", "plan": "Gold <b>", "visits": 3}),
        );
        let card = ContactCard::of(&c);
        assert_eq!(card.name.as_deref(), Some("Jo Bloggs"));
        let script = "Hi {{name}} ({{First_Name}}), {{agent_name}} of {{campaign}}: {{plan}}, {{visits}} visits, {{time_zone}}, {{phone}}, {{nothing}}.";
        assert_eq!(
            render_script(script, "c", &card, &agent()),
            "Hi Jo Bloggs (Jo), Ann Agent of c: Gold <b>, 3 visits, America/Chicago, +13125550101, ."
        );
        let named = ContactCard::of(&contact(serde_json::json!({"name": " Sam "})));
        assert_eq!(named.name.as_deref(), Some("Sam"));
        assert_eq!(ContactCard::of(&contact(serde_json::json!({}))).name, None);
    }
}
