//! The `campaigns` table.

use sea_orm::entity::prelude::*;

/// One row of `campaigns`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique name.
    #[sea_orm(unique)]
    pub name: String,
    /// `running`, `paused` or `stopped`.
    pub status: String,
    /// The `CampaignSpec` as JSON.
    pub spec: String,
    /// `retry.max_attempts`, copied out of the spec for the lease query.
    pub max_attempts: i32,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
