//! Error answers: every failure becomes a status code and a JSON [`Problem`] naming the field.

use crate::schema::Problem;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::FieldError;
use engine::EngineError;

/// A failed request: the status and the JSON body that explains it.
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub problem: Problem,
}

impl Failure {
    /// A failure with a message and no field.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Failure {
            status,
            problem: Problem {
                error: error.into(),
                fields: Vec::new(),
            },
        }
    }

    /// A failure of one field.
    pub fn field(
        status: StatusCode,
        error: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Failure {
            status,
            problem: Problem {
                error: error.into(),
                fields: vec![FieldError {
                    field: field.into(),
                    reason: reason.into(),
                }],
            },
        }
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        Failure::new(StatusCode::NOT_FOUND, what)
    }
}

impl From<store::Error> for Failure {
    fn from(err: store::Error) -> Self {
        Failure::from(EngineError::Store(err))
    }
}

impl From<domain::Error> for Failure {
    fn from(err: domain::Error) -> Self {
        Failure::from(store::Error::from(err))
    }
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Self {
        use store::Error as S;
        let status = match &err {
            EngineError::Invalid(_) | EngineError::Prompt { .. } | EngineError::BadOffer(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            EngineError::NoSuchCampaign(_) | EngineError::NoSuchAgent(_) => StatusCode::NOT_FOUND,
            EngineError::NotLoggedIn(_)
            | EngineError::NoCampaign(_)
            | EngineError::AgentState { .. }
            | EngineError::NotAgentsAttempt { .. }
            | EngineError::CallRefused { .. } => StatusCode::CONFLICT,
            EngineError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::NotReady(_) => StatusCode::NOT_IMPLEMENTED,
            EngineError::Store(store) => match store {
                S::InvalidSpec(_) | S::Invalid(_) | S::BadFile(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                S::NoSuchCampaign(_)
                | S::NoSuchAgent(_)
                | S::NoSuchAttempt(_)
                | S::NoSuchContact(_)
                | S::NoSuchUser(_)
                | S::NoSuchToken(_) => StatusCode::NOT_FOUND,
                S::AgentExists(_) | S::UserExists(_) => StatusCode::CONFLICT,
                // An upload whose body broke off (the client went away, a bad multipart part).
                S::Io(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            EngineError::Sip(_)
            | EngineError::Media(_)
            | EngineError::Cluster(_)
            | EngineError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // A trunk that cannot be resolved or a message file that cannot be read while applying
        // a definition is the definition's fault, reported as such by the engine (Invalid).
        if status.is_server_error() {
            tracing::error!(%err, "request failed");
        }
        Failure {
            status,
            problem: Problem {
                error: err.to_string(),
                fields: err.fields().to_vec(),
            },
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.problem)).into_response()
    }
}

/// The result of a handler.
pub(crate) type ApiResult<T> = Result<T, Failure>;

/// Why [`crate::serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Accepting or serving connections failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTPS certificate or key cannot be used (the message names the file and why).
    #[error("{0}")]
    Tls(String),
}
