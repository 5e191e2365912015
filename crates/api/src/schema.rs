//! The OpenAPI schemas of what the API sends and takes.
//!
//! The engine's and the store's types are serialised as they are; they do not derive
//! `utoipa::ToSchema` (those crates know nothing of HTTP), so this module describes the same
//! JSON with mirror types. Every mirror refuses unknown fields and is checked against real
//! values in the tests (`serde_json::from_value::<schema::X>(to_value(real))`), so a field added
//! to a view without its schema fails a test instead of silently leaving the document.

#![allow(missing_docs)] // The fields' doc comments are the schema's descriptions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An error answer: what went wrong and, for bad input, every field at fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

/// One refused value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    /// Dotted path of the field (`pacing.max_ratio`), or the parameter's name; empty when the
    /// body as a whole is unreadable.
    #[schema(example = "pacing.max_ratio")]
    pub field: String,
    /// Why it is refused.
    pub reason: String,
}

/// Whether a campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Running,
    Paused,
    Stopped,
}

/// How a campaign decides how many calls to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DialMode {
    Preview,
    Progressive,
    Predictive,
    Agentless,
}

/// The regulator's window of the abandon rate: `24h` (UK) or `30d` (US).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AbandonWindow {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "30d")]
    ThirtyDays,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Connected,
    Abandoned,
    MachineHungUp,
    MachineMessageLeft,
    Busy,
    NoAnswer,
    Rejected,
    InvalidNumber,
    Failed,
    DoNotCall,
}

/// Where a contact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    Pending,
    Callback,
    Done,
    Exhausted,
    Invalid,
    Dnc,
}

/// What answering-machine detection said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AmdResult {
    Human,
    Machine,
    NotSure,
}

/// An agent's verdict on a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispositionKind {
    Sale,
    NotInterested,
    Callback,
    DoNotCall,
    WrongNumber,
    Other,
}

/// Where an agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    LoggedOut,
    Ready,
    Reserved,
    OnCall,
    WrapUp,
    Paused,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Dialing,
    Ringing,
    EarlyMedia,
    Answered,
    Live,
    Bridged,
    Machine,
    LeavingMessage,
    Abandoning,
    PlayingMessage,
    Ended,
}

/// What applying a campaign definition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// A new campaign was created, paused.
    Created,
    /// The definition changed.
    Updated,
    /// The definition was already the same.
    Unchanged,
}

/// An agent as supervisors and the agent desktop see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentView {
    pub id: i64,
    /// Login and SIP user name.
    pub username: String,
    pub display_name: String,
    pub state: AgentState,
    /// Since when the agent is in this state.
    pub since: DateTime<Utc>,
    /// Why the agent paused.
    #[serde(default)]
    pub pause_reason: Option<String>,
    /// The campaign the agent is logged in to.
    #[serde(default)]
    pub campaign: Option<String>,
    /// The node holding the agent's leg.
    #[serde(default)]
    pub node: Option<String>,
    /// The attempt on the agent's line (on a call, or being wrapped up).
    #[serde(default)]
    pub attempt_id: Option<i64>,
    /// Calls connected to the agent since login.
    pub calls: u64,
    /// Seconds talked since login.
    pub talk_secs: f64,
    /// Seconds spent ready since login.
    pub wait_secs: f64,
}

/// One call's state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallUpdate {
    pub campaign: String,
    /// The attempt's id (also the call's id).
    pub attempt_id: i64,
    pub contact_id: i64,
    /// The number dialled (E.164).
    pub number: String,
    pub state: CallState,
    #[serde(default)]
    pub agent_id: Option<i64>,
    /// How it ended (with state `ended`).
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub sip_code: Option<u16>,
    pub at: DateTime<Utc>,
}

/// Agents of a campaign by state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentCounts {
    pub logged_in: u32,
    pub ready: u32,
    pub reserved: u32,
    pub on_call: u32,
    pub wrap_up: u32,
    pub paused: u32,
}

/// Calls of a campaign in flight, by state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallCounts {
    pub in_flight: u32,
    /// Dialing, ringing or in early media.
    pub dialing: u32,
    /// Answered, AMD listening.
    pub answered: u32,
    /// Live, waiting for an agent.
    pub waiting: u32,
    pub bridged: u32,
    /// Machines, abandons and messages being played.
    pub other: u32,
}

/// What a campaign's calls came to since it was started on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallTotals {
    pub placed: u64,
    pub answered: u64,
    pub live: u64,
    pub connected: u64,
    pub abandoned: u64,
    pub machines: u64,
    pub messages_left: u64,
    pub busy: u64,
    pub no_answer: u64,
    pub rejected: u64,
    pub invalid: u64,
    pub failed: u64,
    /// Leased contacts not dialled at the last check (hours closed, do-not-call).
    pub skipped: u64,
}

/// The abandon rate over the campaign's legal window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbandonView {
    pub window: AbandonWindow,
    pub live_answers: u64,
    pub abandons: u64,
    /// Abandons / live answers.
    pub rate: f64,
    /// The campaign's limit.
    pub target: f64,
}

/// What the pacer sees and decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PacingView {
    /// Why the last decision was what it was.
    #[serde(default)]
    pub reason: Option<String>,
    pub dial_level: f64,
    pub answer_rate: f64,
    pub machine_rate: f64,
    pub talk_mean_secs: f64,
    pub next_call_abandon_probability: f64,
    pub decisions: u64,
    /// CPU time spent in the pacer, seconds.
    pub cpu_secs: f64,
}

/// Live figures of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignFigures {
    pub at: DateTime<Utc>,
    pub agents: AgentCounts,
    pub calls: CallCounts,
    pub totals: CallTotals,
    pub abandon: AbandonView,
    pub pacing: PacingView,
    /// Share of logged-in agent time spent talking or in wrap-up (0-1).
    pub occupancy: f64,
    pub mean_wait_secs: f64,
    /// Answer-to-agent time of connected calls, median, seconds (greeting and detection
    /// included).
    pub connect_median_secs: f64,
    pub connect_p99_secs: f64,
    /// Greeting-end-to-agent time of live answers, median, seconds: the 2-second rule's clock.
    #[serde(default)]
    pub greeting_connect_median_secs: f64,
    #[serde(default)]
    pub greeting_connect_p99_secs: f64,
}

/// A campaign and its live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    pub status: CampaignStatus,
    /// Dial mode in force.
    pub mode: DialMode,
    pub figures: CampaignFigures,
}

/// What `POST /api/v1/campaigns` did, and the campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct Lagged {
    pub missed: u64,
}

/// Campaigns, agents and calls in flight, at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    /// This node.
    pub node: String,
    pub campaigns: Vec<CampaignView>,
    pub agents: Vec<AgentView>,
    pub calls: Vec<CallUpdate>,
}

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub id: i64,
    pub campaign_id: i64,
    /// The list (upload) it came from.
    #[serde(default)]
    pub list_id: Option<i64>,
    /// Number, E.164.
    pub e164: String,
    /// Time zones (IANA names).
    pub zones: Vec<String>,
    /// The other columns of its upload row.
    pub extra: BTreeMap<String, serde_json::Value>,
    pub status: ContactStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt (or lease expiry while leased).
    pub next_attempt_at: DateTime<Utc>,
    /// Node holding a lease.
    #[serde(default)]
    pub lease_node: Option<String>,
    #[serde(default)]
    pub last_outcome: Option<Outcome>,
    #[serde(default)]
    pub last_attempt_at: Option<DateTime<Utc>>,
}

/// A stored attempt: one call's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub id: i64,
    pub campaign_id: i64,
    pub contact_id: i64,
    /// Node that placed it.
    pub node_id: String,
    pub e164: String,
    /// INVITE sent.
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub ring_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub early_media_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub amd_result: Option<AmdResult>,
    #[serde(default)]
    pub amd_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub bridged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub agent_id: Option<i64>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sip_code: Option<u16>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Detail: failure reason, SIT tone heard, ...
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub recording_path: Option<String>,
}

/// One page of contacts; pass `next_after_id` as `after_id` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPage {
    pub items: Vec<Contact>,
    /// The id to continue after; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_id: Option<i64>,
}

/// One page of attempts; pass `next_after_id` as `after_id` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptPage {
    pub items: Vec<Attempt>,
    /// The id to continue after; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after_id: Option<i64>,
}

/// Contacts of a campaign by status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCounts {
    /// Status -> contacts (statuses with none are left out).
    pub by_status: BTreeMap<String, u64>,
    pub total: u64,
}

/// A refused row of an upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowError {
    /// Line in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// What an upload did: the same report as `dialer import --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSummary {
    /// The list created for this upload.
    pub list_id: i64,
    /// Data rows read (header excluded).
    pub rows: u64,
    pub imported: u64,
    /// Rows whose number was already in the campaign or earlier in the file.
    pub duplicates: u64,
    /// New contacts on a do-not-call list (stored, never dialled).
    pub dnc: u64,
    pub rejected: u64,
    /// Each refused row in file order (at most 1,000).
    pub errors: Vec<RowError>,
    pub errors_truncated: bool,
}

/// Where a contact stands after a disposition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactAfter {
    pub contact_id: i64,
    pub status: ContactStatus,
    pub attempts: u32,
    /// When it is due again.
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Liveness of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `ok`, or `shutting_down`.
    pub status: String,
    pub node: String,
}

// The campaign definition (request body of `POST /api/v1/campaigns`, answer of `.../spec`).
// Field by field as in campaigns/README.md; durations are strings like "25s", "1500ms", "2h".

/// A campaign definition, as its TOML file says it (see campaigns/README.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// Unique name: letters, digits, `-`, `_`, `.` (1-100).
    #[schema(
        example = "spring-renewals",
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// ISO 3166 country of numbers written without a country code.
    #[schema(example = "US")]
    pub default_country: String,
    /// Number presented to callees.
    #[schema(example = "+12025550143")]
    pub caller_id: String,
    /// Ringing time before giving up (15 s to 120 s).
    #[serde(default)]
    #[schema(example = "25s")]
    #[schema(nullable = false)]
    pub ring_timeout: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub recording: Option<bool>,
    /// Message (WAV) played to an abandoned live answer; required in progressive and
    /// predictive modes.
    #[serde(default)]
    pub abandon_message: Option<String>,
    /// Message played to every answered call in agentless mode.
    #[serde(default)]
    pub agentless_message: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub pacing: Option<Pacing>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub amd: Option<Amd>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub calling_hours: Option<CallingHours>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub retry: Option<Retry>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub wrap_up: Option<WrapUp>,
    pub trunk: Trunk,
}

/// Pacing limits (all optional; defaults in campaigns/README.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pacing {
    #[serde(default)]
    #[schema(nullable = false)]
    pub mode: Option<DialMode>,
    /// Lines per idle agent (progressive), the predictive pacer's starting ratio.
    #[serde(default)]
    #[schema(nullable = false, minimum = 0.1, maximum = 20.0)]
    pub ratio: Option<f64>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 0.1, maximum = 20.0)]
    pub min_ratio: Option<f64>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 0.1, maximum = 20.0)]
    pub max_ratio: Option<f64>,
    /// Highest share of live answers abandoned over the window (0.03 = 3%).
    #[serde(default)]
    #[schema(nullable = false, minimum = 0.0, exclusive_maximum = 1.0)]
    pub abandon_target: Option<f64>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub abandon_window: Option<AbandonWindow>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 10000)]
    pub max_lines: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub min_agents: Option<u32>,
    /// Allows an abandon target above 3%.
    #[serde(default)]
    #[schema(nullable = false)]
    pub override_legal_limits: Option<bool>,
}

/// What to do with an answering machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MachineAction {
    HangUp,
    LeaveMessage,
}

/// Answering-machine detection (durations as strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amd {
    #[serde(default)]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub machine_action: Option<MachineAction>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub initial_silence: Option<String>,
    #[serde(default)]
    pub greeting: Option<String>,
    #[serde(default)]
    pub after_greeting_silence: Option<String>,
    #[serde(default)]
    pub total_analysis_time: Option<String>,
    #[serde(default)]
    pub min_word_length: Option<String>,
    #[serde(default)]
    pub between_words_silence: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 20)]
    pub maximum_words: Option<u32>,
    #[serde(default)]
    pub silence_threshold: Option<u32>,
}

/// Calling hours in the callee's local time: `"HH:MM-HH:MM"` or `"closed"` per day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallingHours {
    #[serde(default)]
    #[schema(example = "09:00-20:00", nullable = false)]
    pub default: Option<String>,
    #[serde(default)]
    pub mon: Option<String>,
    #[serde(default)]
    pub tue: Option<String>,
    #[serde(default)]
    pub wed: Option<String>,
    #[serde(default)]
    pub thu: Option<String>,
    #[serde(default)]
    pub fri: Option<String>,
    #[serde(default)]
    pub sat: Option<String>,
    #[serde(default)]
    pub sun: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub override_legal_limits: Option<bool>,
}

/// When to try again after one outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    #[schema(example = "20m")]
    pub delay: String,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_attempts: Option<u32>,
}

/// Retry rules per outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub busy: Option<RetryRule>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub no_answer: Option<RetryRule>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub machine: Option<RetryRule>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub failed: Option<RetryRule>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub rejected: Option<RetryRule>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub abandoned: Option<RetryRule>,
}

/// Agents' wrap-up after a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapUp {
    #[serde(default)]
    #[schema(nullable = false)]
    pub timeout: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub default: Option<DispositionKind>,
    /// Phone key -> disposition.
    #[serde(default)]
    #[schema(nullable = false)]
    pub digits: Option<BTreeMap<String, DispositionKind>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub callback_after: Option<String>,
}

/// SIP transport to the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// The carrier trunk; credentials are names of environment variables, never values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    #[schema(example = "sip:sip.carrier.example:5060")]
    pub uri: String,
    #[serde(default)]
    #[schema(nullable = false)]
    pub transport: Option<Transport>,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Most new calls per second the carrier accepts.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1)]
    pub cps: Option<u32>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The example campaign files, read by the store and written back as JSON, match the
    /// mirror of the definition (so the document describes what `.../spec` returns).
    #[test]
    fn example_campaigns_match_the_spec_schema() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../campaigns");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let spec = domain::CampaignSpec::from_toml(&text).unwrap();
            let value = serde_json::to_value(&spec).unwrap();
            let mirrored: CampaignSpec = serde_json::from_value(value.clone())
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            // And back: the mirror loses nothing the store reads.
            let again: domain::CampaignSpec =
                serde_json::from_value(serde_json::to_value(&mirrored).unwrap()).unwrap();
            assert_eq!(again, spec, "{}", path.display());
            checked += 1;
        }
        assert!(checked >= 3);
    }

    #[test]
    fn enums_serialise_as_the_stores() {
        for outcome in domain::Outcome::ALL {
            let v = serde_json::to_value(outcome).unwrap();
            let _: Outcome = serde_json::from_value(v).unwrap();
        }
        for status in domain::ContactStatus::ALL {
            let v = serde_json::to_value(status).unwrap();
            let _: ContactStatus = serde_json::from_value(v).unwrap();
        }
        for kind in domain::DispositionKind::ALL {
            let v = serde_json::to_value(kind).unwrap();
            let _: DispositionKind = serde_json::from_value(v).unwrap();
        }
        for amd in domain::AmdResult::ALL {
            let v = serde_json::to_value(amd).unwrap();
            let _: AmdResult = serde_json::from_value(v).unwrap();
        }
        for status in domain::CampaignStatus::ALL {
            let v = serde_json::to_value(status).unwrap();
            let _: CampaignStatus = serde_json::from_value(v).unwrap();
        }
    }
}
