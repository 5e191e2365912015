//! The `agent_campaigns` table.

use sea_orm::entity::prelude::*;

/// One row of `agent_campaigns`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_campaigns")]
pub struct Model {
    /// Agent.
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: i64,
    /// Campaign the agent works on.
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
