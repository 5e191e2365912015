//! The `attempts` table.

use sea_orm::entity::prelude::*;

/// One row of `attempts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// Contact called.
    pub contact_id: i64,
    /// Node that placed the call.
    pub node_id: String,
    /// Number dialled.
    pub e164: String,
    /// INVITE sent (ms since the epoch).
    pub started_at: i64,
    /// 180 Ringing.
    pub ring_at: Option<i64>,
    /// 183 with early media.
    pub early_media_at: Option<i64>,
    /// 200 OK.
    pub answered_at: Option<i64>,
    /// `human`, `machine` or `notsure`.
    pub amd_result: Option<String>,
    /// When AMD decided.
    pub amd_at: Option<i64>,
    /// Connected to an agent.
    pub bridged_at: Option<i64>,
    /// Agent connected.
    pub agent_id: Option<i64>,
    /// Call ended.
    pub ended_at: Option<i64>,
    /// Final SIP status code.
    pub sip_code: Option<i32>,
    /// Outcome (`Outcome` as text).
    pub outcome: Option<String>,
    /// Failure reason or other detail.
    pub reason: Option<String>,
    /// Recording file.
    pub recording_path: Option<String>,
}

/// Relations are followed by explicit queries; none are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
