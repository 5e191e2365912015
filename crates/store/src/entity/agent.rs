//! The `agents` table.

use sea_orm::entity::prelude::*;

/// One row of `agents`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Login and SIP user name.
    #[sea_orm(unique)]
    pub username: String,
    /// Name shown to supervisors.
    pub display_name: String,
    /// SIP digest realm the hashes were made for.
    pub realm: String,
    /// MD5(username:realm:password), hex (RFC 2617 HA1).
    pub ha1_md5: String,
    /// SHA-256(username:realm:password), hex (RFC 7616 HA1).
    pub ha1_sha256: String,
    /// Creation time (ms since the epoch).
    pub created_at: i64,
    /// Digest algorithms offered to this agent's phone instead of the service's (names,
    /// comma-separated, preferred first); NULL: the service's.
    pub digest_algorithms: Option<String>,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
