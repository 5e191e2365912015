//! The `campaign_zone_sets` table.

use sea_orm::entity::prelude::*;

/// One row of `campaign_zone_sets`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign_zone_sets")]
pub struct Model {
    /// Campaign.
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: i64,
    /// A zone set used by at least one of its contacts.
    #[sea_orm(primary_key, auto_increment = false)]
    pub zone_set_id: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
