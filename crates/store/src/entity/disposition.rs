//! The `dispositions` table.

use sea_orm::entity::prelude::*;

/// One row of `dispositions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dispositions")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Attempt it closes.
    pub attempt_id: i64,
    /// Contact.
    pub contact_id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// Agent who set it.
    pub agent_id: Option<i64>,
    /// `sale`, `not_interested`, `callback`, `do_not_call`, `wrong_number` or `other`.
    pub kind: String,
    /// Free text.
    pub note: Option<String>,
    /// Callback time (ms since the epoch).
    pub callback_at: Option<i64>,
    /// When it was set.
    pub created_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
