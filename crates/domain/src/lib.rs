//! The dialer's rules and vocabulary, apart from any storage: campaign definitions (the
//! campaign file's TOML, validated field by field), calling hours, phone numbers and the time
//! zones their callees may be in, outcomes, dispositions and statuses, and the retry rules that
//! decide what a contact becomes after each attempt.
//!
//! Everything here is plain data and pure functions, tested without a database; the `store`
//! crate persists these values and runs [`retry::after`] inside the transaction that ends an
//! attempt.
//!
//! ```
//! # fn demo() -> Result<(), domain::Error> {
//! use domain::retry::{AttemptEnd, ContactBefore, after};
//! use domain::{CampaignSpec, ContactStatus, Outcome};
//!
//! let spec = CampaignSpec::from_toml(
//!     r#"
//! name = "spring"
//! default_country = "US"
//! caller_id = "+12025550123"
//! abandon_message = "prompts/abandon.wav"
//! [retry]
//! busy = { delay = "15m" }
//! [trunk]
//! uri = "sip:carrier.example"
//! "#,
//! )?;
//! let now = chrono::Utc::now();
//! let contact = ContactBefore { id: 1, status: ContactStatus::Pending, attempts: 0, next_attempt_at: now };
//! let end = AttemptEnd { outcome: Outcome::Busy, ended_at: now, disposed: false };
//! let next = after(&end, &contact, &spec);
//! assert_eq!(next.status, ContactStatus::Pending);
//! assert_eq!(next.next_attempt_at, now + chrono::TimeDelta::minutes(15));
//! assert_eq!(next.attempts_left, 2);
//! # Ok(()) }
//! # demo().unwrap();
//! ```

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod error;
pub mod hours;
#[cfg(feature = "openapi")]
mod openapi;
mod pacing;
pub mod phone;
pub mod retry;
pub mod script;
pub mod spec;
mod types;
pub mod zones;

pub use error::{Error, FieldError};
pub use hours::{CallingHours, DayHours};
pub use pacing::PacingPatch;
pub use phonenumber::country::Id as Country;
pub use retry::ContactAfter;
pub use spec::{
    AbandonWindow, Amd, CampaignSpec, DialMode, Dur, MachineAction, NotSureAction, Pacing, Retry,
    RetryRule, SrtpPolicy, Transport, Trunk, WrapUp,
};
pub use types::{AmdResult, CampaignStatus, ContactStatus, Disposition, DispositionKind, Outcome};
