//! The dialer's contact base: campaigns, call lists, contacts, leasing, attempts, agents and
//! do-not-call lists, and the API's users, sessions, tokens and audit log, on SQLite (the embedded default) or PostgreSQL, with CSV import and export.
//!
//! The campaign runtime leases due contacts, records each attempt's life and outcome, and asks
//! for the abandon counts; the API pages through contacts and attempts and streams uploads in.
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::Error> {
//! use std::time::Duration;
//! let store = store::Store::connect("sqlite://dialer.db?mode=rwc").await?;
//! store.migrate().await?;
//! let spec = domain::CampaignSpec::from_toml(&std::fs::read_to_string("campaigns/demo.toml")?)?;
//! let (campaign, _) = store.apply_campaign(&spec).await?;
//! let file = std::fs::File::open("contacts.csv")?;
//! let summary = store.import_csv(campaign.id, file, &store::ImportOptions::default()).await?;
//! println!("{} imported, {} rejected", summary.imported, summary.rejected);
//! let now = chrono::Utc::now();
//! for contact in store.lease_due(campaign.id, "node-1", 10, now, Duration::from_secs(120)).await? {
//!     let attempt = store.start_attempt(contact.id, "node-1", now).await?;
//!     // ... dial, then:
//!     store
//!         .finish_attempt(attempt, &store::Finish {
//!             outcome: domain::Outcome::Busy,
//!             sip_code: Some(486),
//!             reason: None,
//!             ended_at: chrono::Utc::now(),
//!         })
//!         .await?;
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod agents;
mod attempts;
mod campaigns;
mod db;
mod dnc;
pub mod entity;
mod error;
mod import;
mod lease;
mod plans;
mod queries;
pub mod sample;
mod users;
mod zonesets;

pub use agents::{Agent, NewAgent, digest_ha1};
pub use attempts::{AbandonCounts, Attempt, AttemptEvent, Finish};
pub use campaigns::{Applied, Campaign};
pub use db::{Backend, Store};
pub use dnc::{DncScope, DncSummary};
pub use error::{Error, Result};
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub use import::fuzz_rows;
pub use import::{
    COMMIT_ROWS, ImportOptions, ImportSummary, MAX_ERRORS, PHONE_HEADERS, RowError,
    TIMEZONE_HEADERS,
};
pub use lease::{LeaseOptions, LeasedContact, MAX_LEASE};
pub use queries::{AttemptQuery, Contact, ContactQuery, MAX_PAGE, PastAttempt};
pub use users::{
    ApiToken, AuditEntry, Credential, NewToken, NewUser, Principal, Role, User, check_password,
    check_username, random_password, redact_secrets, secret_hash,
};
