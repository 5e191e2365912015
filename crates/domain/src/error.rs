//! The domain's error type: a campaign definition or a value that breaks the rules.

use std::fmt;

/// One refused value of a campaign file: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Dotted path of the field, e.g. `pacing.max_ratio` (empty when the file itself is unreadable).
    pub field: String,
    /// Why the value is refused, in words a campaign manager understands.
    pub reason: String,
}

impl FieldError {
    /// Several refusals on one line, `; `-separated, for an error message.
    pub fn join(errors: &[FieldError]) -> String {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A refusal of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// A value the dialer's rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A campaign definition has invalid values (every one is listed).
    #[error("invalid campaign: {}", FieldError::join(.0))]
    InvalidSpec(Vec<FieldError>),
    /// A value is not acceptable (the message says which and why).
    #[error("{0}")]
    Invalid(String),
}
