//! The `abandon_stats` table.

use sea_orm::entity::prelude::*;

/// One row of `abandon_stats`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "abandon_stats")]
pub struct Model {
    /// Campaign.
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: i64,
    /// Start of the hour (ms since the epoch).
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour: i64,
    /// Live answers (connected or abandoned) ended in that hour.
    pub live_answers: i64,
    /// Abandons ended in that hour.
    pub abandons: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
