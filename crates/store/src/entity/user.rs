//! The `users` table.

use sea_orm::entity::prelude::*;

/// One row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Login name.
    #[sea_orm(unique)]
    pub username: String,
    /// `admin`, `manager`, `supervisor` or `agent`.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The agent record of an agent-role user.
    pub agent_id: Option<i64>,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
