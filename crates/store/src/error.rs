//! The store's error type.

use std::fmt;

/// One refused value of a campaign file: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `pacing.max_ratio` (empty when the file itself is unreadable).
    pub field: String,
    /// Why the value is refused, in words a campaign manager understands.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
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

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// The database driver failed outside sea-orm (COPY, raw connections).
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL `{0}`: use sqlite://FILE or postgres://...")]
    UnsupportedUrl(String),
    /// A campaign definition has invalid values (every one is listed).
    #[error("invalid campaign: {}", join(.0))]
    InvalidSpec(Vec<FieldError>),
    /// No campaign has this name or id.
    #[error("no campaign `{0}`")]
    NoSuchCampaign(String),
    /// No contact has this id.
    #[error("no contact {0}")]
    NoSuchContact(i64),
    /// No attempt has this id.
    #[error("no attempt {0}")]
    NoSuchAttempt(i64),
    /// The number is on a do-not-call list: no attempt may start.
    #[error("{0} is on a do-not-call list")]
    DoNotCall(String),
    /// No agent has this username or id.
    #[error("no agent `{0}`")]
    NoSuchAgent(String),
    /// An agent with this username exists already.
    #[error("agent `{0}` exists already")]
    AgentExists(String),
    /// A value given to the store is not acceptable (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    /// Reading the input of an import or writing an export failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV file cannot be read at all (no header, unknown phone column, ...).
    #[error("cannot import: {0}")]
    BadFile(String),
    /// A value stored in the database cannot be decoded (the database was edited by hand).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A background task of the store died.
    #[error("internal task failed: {0}")]
    Task(String),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
