//! The OpenAPI schemas of what the API sends and takes.
//!
//! The domain's, the engine's and the store's own types derive their schemas (their `openapi`
//! feature, which this crate turns on), so the document describes the JSON the service writes;
//! this module names them in one place and adds the few shapes only HTTP has (errors, pages,
//! health, the upload form). The API tests validate every answer against the document.

#![allow(missing_docs)] // The fields' doc comments are the schema's descriptions.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub use crate::accounts::{AgentCampaign, AuditPage, CreatedToken, Me};
pub use domain::{
    AbandonWindow, AmdResult, CallingHours, CampaignSpec, CampaignStatus, ContactAfter,
    ContactStatus, DialMode, Disposition, DispositionKind, FieldError, Outcome, Pacing,
    PacingPatch,
};
pub use engine::{
    AgentCounts, AgentDay, AgentLine, AgentSpec, AgentState, AgentView, CallCounts, CallState,
    CallTotals, CallUpdate, CampaignFigures, CampaignView, ContactCard, LineCall, PacingView,
    Snapshot, TrunkFigures, TrunkRegistrationState,
};
pub use store::{
    ApiToken, Applied, Attempt, AuditEntry, Contact, ImportSummary, PastAttempt, Role, RowError,
    User,
};

/// An error answer: what went wrong and, for bad input, every field at fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// What went wrong, in one sentence.
    #[schema(
        example = "invalid request body: pacing.max_ratio: invalid type: string \"x\", expected f64"
    )]
    pub error: String,
    /// Each field at fault (a dotted path into the body, a query or path parameter) and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// What `POST /api/v1/campaigns` did, and the campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CampaignApplied {
    pub applied: Applied,
    pub campaign: CampaignView,
}

/// A message of the WebSocket stream (`/api/v1/events`), tagged by `type`.
// Its schema is written in `events.rs`: the derived one (each variant's closed object `allOf`
// the tag) takes no message at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage {
    /// Sent first: everything at once.
    Snapshot(Snapshot),
    /// A call changed state.
    Call(CallUpdate),
    /// An agent changed state.
    Agent(AgentView),
    /// A campaign's figures (every second while it is loaded) or status changed.
    Campaign(CampaignView),
    /// The client was too slow: this many events were skipped.
    Lagged(Lagged),
}

/// Events a slow client missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lagged {
    pub missed: u64,
}

/// One page of contacts; pass `next_after_id` as `after_id` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<Contact>,
    /// The id to continue after; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_id: Option<i64>,
}

/// One page of attempts; pass `next_after_id` as `after_id` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptPage {
    pub items: Vec<Attempt>,
    /// The id to continue after; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_id: Option<i64>,
}

/// Contacts of a campaign by status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactCounts {
    /// Status -> contacts (statuses with none are left out).
    pub by_status: BTreeMap<String, u64>,
    pub total: u64,
}

/// Liveness of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `shutting_down`.
    pub status: String,
    pub node: String,
}

/// The multipart form of a list upload.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)] // Documentation only: the handler reads the parts as a stream.
pub struct UploadForm {
    /// Optional, before `file`: header of the phone column.
    pub phone_column: Option<String>,
    /// Optional, before `file`: header of a time-zone column (IANA names).
    pub timezone_column: Option<String>,
    /// Optional, before `file`: field delimiter (one ASCII character, default `,`).
    #[schema(pattern = "^[\\x01-\\x7f]$")]
    pub delimiter: Option<String>,
    /// Optional, before `file`: the list's name (default: the file's name).
    pub list_name: Option<String>,
    /// The CSV file, with a header line.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}
