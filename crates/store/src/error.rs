//! The store's error type.

use domain::FieldError;

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
    #[error("invalid campaign: {}", FieldError::join(.0))]
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
    /// No user has this name or id.
    #[error("no user `{0}`")]
    NoSuchUser(String),
    /// A user with this name exists already.
    #[error("user `{0}` exists already")]
    UserExists(String),
    /// No API token has this id.
    #[error("no token {0}")]
    NoSuchToken(i64),
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

impl From<domain::Error> for Error {
    fn from(err: domain::Error) -> Self {
        match err {
            domain::Error::InvalidSpec(fields) => Self::InvalidSpec(fields),
            domain::Error::Invalid(reason) => Self::Invalid(reason),
        }
    }
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
