//! The engine's error type.

use domain::FieldError;

/// Everything the engine's facade can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The contact base refused or failed an operation.
    #[error("store: {0}")]
    Store(#[from] store::Error),
    /// The SIP endpoint could not be set up or refused an operation.
    #[error("sip: {0}")]
    Sip(#[from] sip::Error),
    /// An RTP leg, the bridge or a recording failed.
    #[error("media: {0}")]
    Media(#[from] media::MediaError),
    /// The cluster state (in-process or shared) failed.
    #[error("cluster state: {0}")]
    Cluster(#[from] ClusterError),
    /// A campaign definition or a pacing change has invalid values (every one is named).
    #[error("invalid settings: {}", FieldError::join(.0))]
    Invalid(Vec<FieldError>),
    /// The engine's own configuration is unusable (the message says which setting and why).
    #[error("engine configuration: {0}")]
    Config(String),
    /// No campaign has this name.
    #[error("no campaign `{0}`")]
    NoSuchCampaign(String),
    /// No agent has this id or username.
    #[error("no agent `{0}`")]
    NoSuchAgent(String),
    /// The agent is not logged in (its phone has no open leg to the dialer).
    #[error("agent {0} is not logged in")]
    NotLoggedIn(i64),
    /// The action does not fit the agent's state (e.g. hanging up with no call).
    #[error("agent {agent} cannot {action} while {state}")]
    AgentState {
        /// The agent.
        agent: i64,
        /// What was asked.
        action: &'static str,
        /// The agent's state.
        state: &'static str,
    },
    /// The agent's call cannot do what was asked (not bridged, already on hold, the callee
    /// offered no telephone-event).
    #[error("agent {agent}'s call cannot {action}: {reason}")]
    CallRefused {
        /// The agent.
        agent: i64,
        /// What was asked.
        action: &'static str,
        /// Why not.
        reason: String,
    },
    /// The attempt was not handled by this agent.
    #[error("attempt {attempt} was not handled by agent {agent}")]
    NotAgentsAttempt {
        /// The agent.
        agent: i64,
        /// The attempt.
        attempt: i64,
    },
    /// A recorded message of a campaign cannot be used.
    #[error("message `{path}`: {reason}")]
    Prompt {
        /// The file as the campaign names it.
        path: String,
        /// Why it cannot be played.
        reason: String,
    },
    /// A browser's WebRTC offer cannot be answered (the text says why).
    #[error("WebRTC offer refused: {0}")]
    BadOffer(String),
    /// The agent is assigned to no campaign on this node to log in to.
    #[error("agent {0} has no campaign to log in to")]
    NoCampaign(i64),
    /// The engine is shutting down and takes no new work.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// This part of the engine is not available yet (the facade is ahead of the runtime).
    #[error("not available yet: {0}")]
    NotReady(&'static str),
}

impl From<domain::Error> for EngineError {
    /// A campaign definition or a value the rules refuse, reported as the store reports it.
    fn from(err: domain::Error) -> Self {
        Self::Store(err.into())
    }
}

/// A failure of the cluster state's backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The backend (e.g. Redis) could not be reached or refused the command.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("corrupt value: {0}")]
    Corrupt(String),
}

impl EngineError {
    /// The fields named by an [`EngineError::Invalid`] (or a store `InvalidSpec`), for 4xx
    /// answers that name the field.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            EngineError::Invalid(fields) => fields,
            EngineError::Store(store::Error::InvalidSpec(fields)) => fields,
            _ => &[],
        }
    }

    /// Whether the caller's input is at fault (a 4xx), rather than the engine or a backend.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            EngineError::Invalid(_)
                | EngineError::NoSuchCampaign(_)
                | EngineError::NoSuchAgent(_)
                | EngineError::NotLoggedIn(_)
                | EngineError::AgentState { .. }
                | EngineError::NotAgentsAttempt { .. }
                | EngineError::CallRefused { .. }
                | EngineError::Prompt { .. }
                | EngineError::Store(
                    store::Error::InvalidSpec(_)
                        | store::Error::Invalid(_)
                        | store::Error::NoSuchCampaign(_)
                        | store::Error::NoSuchAgent(_)
                        | store::Error::NoSuchAttempt(_)
                        | store::Error::NoSuchContact(_)
                        | store::Error::AgentExists(_)
                        | store::Error::BadFile(_)
                )
        )
    }
}

/// Result with the engine's [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
