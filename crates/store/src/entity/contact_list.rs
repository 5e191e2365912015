//! The `contact_lists` table.

use sea_orm::entity::prelude::*;

/// One row of `contact_lists`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_lists")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// Name (file name of the upload).
    pub name: String,
    /// The header names kept as extra columns, as a JSON array.
    pub columns: String,
    /// Contacts stored.
    pub imported: i64,
    /// Rows whose number was already in the campaign or earlier in the file.
    pub duplicates: i64,
    /// Rows whose number is on a do-not-call list.
    pub dnc: i64,
    /// Rows refused (bad number, bad time zone, wrong column count, bad encoding).
    pub rejected: i64,
    /// Whether the upload ran to its end.
    pub complete: bool,
    /// Upload time (ms since the epoch).
    pub created_at: i64,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
