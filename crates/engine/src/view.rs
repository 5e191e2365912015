//! What the engine shows: agents, calls and campaigns as plain serde values, the events that
//! carry their changes, and the inputs of the facade (pacing patches, dispositions, agents).

use chrono::{DateTime, Utc};
use domain::{AbandonWindow, CampaignStatus, DialMode, FieldError, Outcome};
use serde::{Deserialize, Serialize};

/// Where an agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// No open leg to the dialer.
    LoggedOut,
    /// Waiting for a call, since [`AgentView::since`] (the longest-waiting ready agent gets
    /// the next live answer).
    Ready,
    /// Chosen for a live answer that is being connected (a few milliseconds).
    Reserved,
    /// Talking to a callee.
    OnCall,
    /// After a call, until a disposition is set or the campaign's wrap-up time runs out.
    WrapUp,
    /// Not taking calls, for [`AgentView::pause_reason`].
    Paused,
}

impl AgentState {
    /// The state's name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::Ready => "ready",
            AgentState::Reserved => "reserved",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
            AgentState::Paused => "paused",
        }
    }
}

/// An agent as supervisors and the agent desktop see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentView {
    /// Store id.
    pub id: i64,
    /// Login and SIP user name.
    pub username: String,
    /// Name shown to supervisors.
    pub display_name: String,
    /// State.
    pub state: AgentState,
    /// Since when the agent is in this state.
    pub since: DateTime<Utc>,
    /// Why the agent paused (with [`AgentState::Paused`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    /// The campaign the agent is logged in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The node holding the agent's leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The attempt on the agent's line (on a call, or being wrapped up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_id: Option<i64>,
    /// Calls connected to the agent since login.
    pub calls: u64,
    /// Seconds talked since login.
    pub talk_secs: f64,
    /// Seconds spent ready (waiting for calls) since login.
    pub wait_secs: f64,
    /// Digest algorithms offered to the agent's phone instead of the service's (absent: the
    /// service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_algorithms: Option<Vec<String>>,
    /// The agent's day so far, over every session of it, the one in progress included
    /// (absent: not logged in today). Days end at midnight in the service's
    /// `agent_day_time_zone` (UTC by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<AgentDay>,
}

/// An agent's figures for one day, summed over its sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentDay {
    /// The day, in the service's `agent_day_time_zone`.
    pub day: chrono::NaiveDate,
    /// Sessions (logins) begun this day.
    pub sessions: u32,
    /// When the first of them began.
    pub first_login: DateTime<Utc>,
    /// Calls connected to the agent.
    pub calls: u64,
    /// Seconds talked.
    pub talk_secs: f64,
    /// Seconds spent ready (waiting for calls).
    pub wait_secs: f64,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// INVITE sent.
    Dialing,
    /// 180 Ringing.
    Ringing,
    /// 183 with early media (listened to for special information tones).
    EarlyMedia,
    /// Answered; answering-machine detection listening.
    Answered,
    /// A person (or not sure): waiting for an agent, at most 2 s after the greeting.
    Live,
    /// Connected to an agent.
    Bridged,
    /// An answering machine: being hung up on, or waiting for the beep.
    Machine,
    /// Leaving the campaign's message on a machine.
    LeavingMessage,
    /// No agent in time: the abandon message is playing.
    Abandoning,
    /// Agentless mode: the campaign's message is playing.
    PlayingMessage,
    /// Over ([`CallUpdate::outcome`] says how).
    Ended,
}

impl CallState {
    /// The state's name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Dialing => "dialing",
            CallState::Ringing => "ringing",
            CallState::EarlyMedia => "early_media",
            CallState::Answered => "answered",
            CallState::Live => "live",
            CallState::Bridged => "bridged",
            CallState::Machine => "machine",
            CallState::LeavingMessage => "leaving_message",
            CallState::Abandoning => "abandoning",
            CallState::PlayingMessage => "playing_message",
            CallState::Ended => "ended",
        }
    }
}

/// One call's state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallUpdate {
    /// The campaign.
    pub campaign: String,
    /// The attempt's store id (also the call's id in the engine).
    pub attempt_id: i64,
    /// The contact.
    pub contact_id: i64,
    /// The number dialled (E.164).
    pub number: String,
    /// The new state.
    pub state: CallState,
    /// The agent connected to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    /// How it ended (with [`CallState::Ended`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The final SIP status, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Agents of a campaign by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentCounts {
    /// Logged in, in any state.
    pub logged_in: u32,
    /// Waiting for a call.
    pub ready: u32,
    /// Being connected to a call.
    pub reserved: u32,
    /// Talking.
    pub on_call: u32,
    /// In wrap-up.
    pub wrap_up: u32,
    /// Paused.
    pub paused: u32,
}

/// Calls of a campaign in flight, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallCounts {
    /// Every call not ended yet.
    pub in_flight: u32,
    /// Dialing, ringing or in early media.
    pub dialing: u32,
    /// Answered, AMD listening.
    pub answered: u32,
    /// Live, waiting for an agent.
    pub waiting: u32,
    /// Connected to agents.
    pub bridged: u32,
    /// Machines, abandons and messages being played.
    pub other: u32,
}

/// What a campaign's calls came to since the engine started it (this node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallTotals {
    /// Calls placed (INVITE sent).
    pub placed: u64,
    /// Answered (200 OK).
    pub answered: u64,
    /// Live answers (a person, or not sure).
    pub live: u64,
    /// Live answers connected to an agent (or given the agentless message).
    pub connected: u64,
    /// Live answers abandoned (no agent within 2 s).
    pub abandoned: u64,
    /// Answering machines.
    pub machines: u64,
    /// Messages left on machines.
    pub messages_left: u64,
    /// Busy.
    pub busy: u64,
    /// Not answered.
    pub no_answer: u64,
    /// Declined or unavailable.
    pub rejected: u64,
    /// Numbers that do not exist (SIT, 404).
    pub invalid: u64,
    /// Carrier or network failures.
    pub failed: u64,
    /// Detector verdicts HUMAN (the live share of the machine-share drift).
    #[serde(default)]
    pub amd_human: u64,
    /// Detector verdicts MACHINE.
    #[serde(default)]
    pub amd_machine: u64,
    /// Detector verdicts NOTSURE (including answers with no audio before the timeout).
    #[serde(default)]
    pub amd_notsure: u64,
    /// Leased contacts not dialled at the last check (hours closed, do-not-call, no attempts
    /// left); given back.
    pub skipped: u64,
}

/// The abandon rate over the campaign's legal window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AbandonView {
    /// The window (24 h or 30 days).
    pub window: AbandonWindow,
    /// Live answers in the window (stored history and this run).
    pub live_answers: u64,
    /// Abandons among them.
    pub abandons: u64,
    /// Abandons / live answers.
    pub rate: f64,
    /// The campaign's limit.
    pub target: f64,
}

/// What the pacer sees and decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PacingView {
    /// Why the last decision was what it was (`model`, `guard`, `progressive`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Calls in progress per active agent.
    pub dial_level: f64,
    /// Estimated share of calls a person answers.
    pub answer_rate: f64,
    /// Estimated share of calls a machine answers.
    pub machine_rate: f64,
    /// Estimated mean talk time, seconds.
    pub talk_mean_secs: f64,
    /// The model's abandon probability for one more call.
    pub next_call_abandon_probability: f64,
    /// Pacing decisions taken.
    pub decisions: u64,
    /// CPU time spent in the pacer (handling events and deciding), seconds.
    pub cpu_secs: f64,
}

/// Where the campaign's trunk registration stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TrunkRegistrationState {
    /// The trunk needs no registration (`register` is off).
    #[default]
    NotRequired,
    /// The first REGISTER is not answered yet: no call goes out.
    Registering,
    /// The carrier holds our registration.
    Registered,
    /// The last REGISTER failed (see `code`): retried with backoff, no call goes out.
    Failed,
    /// Not held (the campaign is stopped).
    Unregistered,
}

impl TrunkRegistrationState {
    /// The state's name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkRegistrationState::NotRequired => "not_required",
            TrunkRegistrationState::Registering => "registering",
            TrunkRegistrationState::Registered => "registered",
            TrunkRegistrationState::Failed => "failed",
            TrunkRegistrationState::Unregistered => "unregistered",
        }
    }
}

/// The campaign's trunk as this node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrunkFigures {
    /// Registration state.
    pub registration: TrunkRegistrationState,
    /// Status code of the last failed REGISTER (408: no answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Seconds the registrar granted at the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_secs: Option<u32>,
    /// When the last successful REGISTER was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<DateTime<Utc>>,
    /// Successful REGISTERs (the first and its refreshes) of the registration held.
    #[serde(default)]
    pub refreshes: u64,
    /// Failed REGISTERs in a row.
    #[serde(default)]
    pub failures: u32,
    /// Where requests go now (`udp:192.0.2.1:5060`): the target chosen by NAPTR/SRV, or the
    /// outbound proxy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Live figures of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignFigures {
    /// When they were taken.
    pub at: DateTime<Utc>,
    /// Agents.
    pub agents: AgentCounts,
    /// Calls in flight.
    pub calls: CallCounts,
    /// Totals since the campaign was started on this node.
    pub totals: CallTotals,
    /// Abandon rate over the window.
    pub abandon: AbandonView,
    /// Pacing.
    pub pacing: PacingView,
    /// Share of logged-in agent time spent talking or in wrap-up since start (0-1).
    pub occupancy: f64,
    /// Mean wait of an agent between two calls, seconds.
    pub mean_wait_secs: f64,
    /// Answer-to-agent times of connected calls: median and 99th percentile, seconds.
    pub connect_median_secs: f64,
    /// 99th percentile of answer-to-agent times, seconds.
    pub connect_p99_secs: f64,
    /// Median of greeting-end-to-agent times of live answers, seconds: the clock of the
    /// 2-second rule (answer-to-agent also counts the greeting and the detector's listening).
    #[serde(default)]
    pub greeting_connect_median_secs: f64,
    /// 99th percentile of greeting-end-to-agent times, seconds.
    #[serde(default)]
    pub greeting_connect_p99_secs: f64,
    /// The trunk: registration and target in use (boxed: events carry figures every second).
    #[serde(default)]
    pub trunk: Box<TrunkFigures>,
}

/// A campaign and its live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignView {
    /// Store id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Running, paused or stopped.
    pub status: CampaignStatus,
    /// Dial mode in force.
    pub mode: DialMode,
    /// Live figures (zeroes when the campaign has not run on this node).
    pub figures: CampaignFigures,
}

impl CampaignView {
    /// A campaign's view before it has figures: its settings, every count zero.
    pub(crate) fn idle(
        id: i64,
        name: &str,
        status: CampaignStatus,
        spec: &domain::CampaignSpec,
        at: DateTime<Utc>,
    ) -> Self {
        CampaignView {
            id,
            name: name.to_owned(),
            status,
            mode: spec.pacing.mode,
            figures: CampaignFigures {
                at,
                agents: Default::default(),
                calls: Default::default(),
                totals: Default::default(),
                abandon: AbandonView {
                    window: spec.pacing.abandon_window,
                    live_answers: 0,
                    abandons: 0,
                    rate: 0.0,
                    target: spec.pacing.abandon_target,
                },
                pacing: PacingView {
                    reason: None,
                    dial_level: 0.0,
                    answer_rate: 0.0,
                    machine_rate: 0.0,
                    talk_mean_secs: 0.0,
                    next_call_abandon_probability: 0.0,
                    decisions: 0,
                    cpu_secs: 0.0,
                },
                occupancy: 0.0,
                mean_wait_secs: 0.0,
                connect_median_secs: 0.0,
                connect_p99_secs: 0.0,
                greeting_connect_median_secs: 0.0,
                greeting_connect_p99_secs: 0.0,
                trunk: Box::new(TrunkFigures {
                    registration: if spec.trunk.register {
                        TrunkRegistrationState::Unregistered
                    } else {
                        TrunkRegistrationState::NotRequired
                    },
                    ..TrunkFigures::default()
                }),
            },
        }
    }
}

/// Something that changed, for dashboards and the agent desktop (WebSocket stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A call changed state.
    Call(CallUpdate),
    /// An agent changed state.
    Agent(AgentView),
    /// A campaign's figures (every second while it is loaded) or status changed.
    Campaign(CampaignView),
}

/// Everything at once, for a terminal view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// This node.
    pub node: String,
    /// Every campaign.
    pub campaigns: Vec<CampaignView>,
    /// Every agent (logged out ones too).
    pub agents: Vec<AgentView>,
    /// Calls in flight on this node, in their latest state.
    pub calls: Vec<CallUpdate>,
}

/// What [`crate::Engine::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReport {
    /// Calls not yet answered that were cancelled.
    pub cancelled: u32,
    /// Calls that finished by themselves within the grace time.
    pub finished: u32,
    /// Calls still up when the grace time ran out, hung up.
    pub cut: u32,
    /// Leases given back.
    pub leases_released: u64,
}

/// A new agent account, as the API takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Login and SIP user name (letters, digits, `.`, `_`, `-`).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "alice", pattern = "^[A-Za-z0-9._-]{1,64}$")
    )]
    pub username: String,
    /// Name shown to supervisors (the username when empty).
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    #[serde(default)]
    pub display_name: String,
    /// SIP password (at least 8 characters; only digest hashes are stored).
    #[cfg_attr(feature = "openapi", schema(example = "correct-horse", min_length = 8))]
    pub password: String,
    /// Names of the campaigns the agent works on.
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// Digest algorithms offered to this agent's phone instead of the service's
    /// `digest_algorithms`, preferred first (`MD5`, `SHA-256`, `MD5-sess`, `SHA-256-sess`):
    /// for a phone that gives up on the service's challenges. Absent: the service's.
    #[cfg_attr(feature = "openapi", schema(example = json!(["MD5"]), min_items = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_algorithms: Option<Vec<String>>,
}

impl AgentSpec {
    /// The agent's own digest algorithms, checked: each known, none twice, at least one.
    pub fn algorithms(&self) -> Result<Option<Vec<sip::digest::DigestAlgorithm>>, FieldError> {
        let Some(names) = &self.digest_algorithms else {
            return Ok(None);
        };
        parse_algorithms(names).map(Some)
    }
}

/// Digest algorithm names as algorithms: each known, none twice, at least one.
pub(crate) fn parse_algorithms(
    names: &[String],
) -> Result<Vec<sip::digest::DigestAlgorithm>, FieldError> {
    if names.is_empty() {
        return Err(field_error(
            "digest_algorithms",
            "must name at least one algorithm (or be left out for the service's)",
        ));
    }
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let algorithm: sip::digest::DigestAlgorithm = name
            .parse()
            .map_err(|err| field_error(format!("digest_algorithms[{i}]"), format!("{err}")))?;
        if out.contains(&algorithm) {
            return Err(field_error(
                format!("digest_algorithms[{i}]"),
                format!("names {} twice", algorithm.as_str()),
            ));
        }
        out.push(algorithm);
    }
    Ok(out)
}

/// A field error of the engine's own (the store's constructor is private to it).
pub(crate) fn field_error(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}
