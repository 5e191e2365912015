//! The `dnc` table.

use sea_orm::entity::prelude::*;

/// One row of `dnc`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dnc")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Number in E.164.
    pub e164: String,
    /// Campaign, or 0 for the global list.
    pub campaign_id: i64,
    /// Where the entry came from (file name, `disposition`, ...).
    pub source: Option<String>,
    /// When it was added (ms since the epoch).
    pub created_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
