//! The `callbacks` table.

use sea_orm::entity::prelude::*;

/// One row of `callbacks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "callbacks")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// Contact to call back.
    pub contact_id: i64,
    /// Agent it belongs to (none: anyone).
    pub agent_id: Option<i64>,
    /// When to call (ms since the epoch).
    pub due_at: i64,
    /// Disposition that asked for it.
    pub disposition_id: i64,
    /// When it was dialled.
    pub done_at: Option<i64>,
    /// Attempt that dialled it.
    pub done_attempt_id: Option<i64>,
    /// When it was asked for.
    pub created_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
