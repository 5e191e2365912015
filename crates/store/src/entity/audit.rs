//! The `audit_log` table.

use sea_orm::entity::prelude::*;

/// One row of `audit_log`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who, as shown (`user alice`, `token 3 (ci) of alice`, `cli`).
    pub actor: String,
    /// The acting user's id.
    pub user_id: Option<i64>,
    /// The acting token's id.
    pub token_id: Option<i64>,
    /// What (`user.create`, `campaign.apply`, ...).
    pub action: String,
    /// On what (a user name, a campaign name, a token id).
    pub target: String,
    /// JSON detail, without secrets.
    pub detail: String,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
