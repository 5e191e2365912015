//! The `contacts` table.

use sea_orm::entity::prelude::*;

/// One row of `contacts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// List (upload) it came from.
    pub list_id: Option<i64>,
    /// Number in E.164 (`+14155550123`).
    pub e164: String,
    /// Time zones of the callee (a `zone_sets` row).
    pub zone_set_id: i64,
    /// The upload row's other columns as a JSON object.
    pub extra: String,
    /// `pending`, `callback`, `done`, `exhausted`, `invalid` or `dnc`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Earliest next attempt (ms since the epoch); while leased, the lease expiry.
    pub next_attempt_at: i64,
    /// Node holding the lease.
    pub lease_node: Option<String>,
    /// Lease expiry (ms since the epoch).
    pub lease_until: Option<i64>,
    /// Outcome of the last attempt.
    pub last_outcome: Option<String>,
    /// Time of the last attempt (ms since the epoch).
    pub last_attempt_at: Option<i64>,
    /// Agent a personal callback belongs to.
    pub callback_agent_id: Option<i64>,
    /// Import time (ms since the epoch).
    pub created_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
