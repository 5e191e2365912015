//! The `api_tokens` table.

use sea_orm::entity::prelude::*;

/// One row of `api_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 (hex) of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The owner.
    pub user_id: i64,
    /// What it is for.
    pub name: String,
    /// The role it acts with (at most its owner's).
    pub role: String,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// End of validity (ms since the epoch), if any.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
