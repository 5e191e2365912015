//! The `sessions` table: browser sessions.

use sea_orm::entity::prelude::*;

/// One row of `sessions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 (hex) of the session id the browser holds.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Whose session.
    pub user_id: i64,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// End of validity (ms since the epoch).
    pub expires_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
