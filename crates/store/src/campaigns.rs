//! Campaigns: create-or-update by name, look up, list, status.

use crate::db::{Store, now};
use crate::db::{from_ms, ms};
use crate::entity::{campaign, contact};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use domain::{CampaignSpec, CampaignStatus, ContactStatus};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    /// Id.
    pub id: i64,
    /// Unique name (same as `spec.name`).
    pub name: String,
    /// Whether it dials.
    pub status: CampaignStatus,
    /// Its definition.
    pub spec: CampaignSpec,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What [`Store::apply_campaign`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// A new campaign was created (paused: a supervisor starts it).
    Created,
    /// An existing campaign's definition changed.
    Updated,
    /// The definition was already the same.
    Unchanged,
}

impl TryFrom<campaign::Model> for Campaign {
    type Error = Error;

    fn try_from(row: campaign::Model) -> Result<Self> {
        let spec: CampaignSpec = serde_json::from_str(&row.spec)
            .map_err(|err| Error::Corrupt(format!("campaign {} definition: {err}", row.id)))?;
        Ok(Self {
            id: row.id,
            name: row.name,
            status: row.status.parse()?,
            spec,
            created_at: from_ms(row.created_at),
            updated_at: from_ms(row.updated_at),
        })
    }
}

impl Store {
    /// Creates the campaign named `spec.name`, or updates it. The spec is validated first.
    ///
    /// When `retry.max_attempts` changes, contacts are moved between `pending` and `exhausted`
    /// in the same transaction, so the lease query's status stays the truth.
    pub async fn apply_campaign(&self, spec: &CampaignSpec) -> Result<(Campaign, Applied)> {
        spec.validate()?;
        let json = serde_json::to_string(spec)
            .map_err(|err| Error::Invalid(format!("cannot store the campaign: {err}")))?;
        let max_attempts = i32::try_from(spec.retry.max_attempts).unwrap_or(i32::MAX);
        let at = ms(now());
        let txn = self.write_txn().await?;
        let existing = campaign::Entity::find()
            .filter(campaign::Column::Name.eq(&spec.name))
            .one(&txn)
            .await?;
        let (row, applied) = match existing {
            None => {
                let row = campaign::ActiveModel {
                    name: Set(spec.name.clone()),
                    status: Set(CampaignStatus::Paused.as_str().to_owned()),
                    spec: Set(json),
                    max_attempts: Set(max_attempts),
                    created_at: Set(at),
                    updated_at: Set(at),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
                (row, Applied::Created)
            }
            Some(row) => {
                let old: Option<CampaignSpec> = serde_json::from_str(&row.spec).ok();
                if old.as_ref() == Some(spec) {
                    (row, Applied::Unchanged)
                } else {
                    let id = row.id;
                    let row_updated = row.updated_at;
                    let mut active: campaign::ActiveModel = row.into();
                    active.spec = Set(json);
                    active.max_attempts = Set(max_attempts);
                    // Strictly increasing: it is the version cached lease plans are checked
                    // against, and two changes may fall in the same millisecond.
                    active.updated_at = Set(std::cmp::max(at, row_updated + 1));
                    let row = active.update(&txn).await?;
                    let set_status = |to: ContactStatus, from: ContactStatus| {
                        contact::Entity::update_many()
                            .col_expr(contact::Column::Status, Expr::val(to.as_str()))
                            .filter(contact::Column::CampaignId.eq(id))
                            .filter(contact::Column::Status.eq(from.as_str()))
                    };
                    set_status(ContactStatus::Exhausted, ContactStatus::Pending)
                        .filter(contact::Column::Attempts.gte(max_attempts))
                        .exec(&txn)
                        .await?;
                    set_status(ContactStatus::Pending, ContactStatus::Exhausted)
                        .filter(contact::Column::Attempts.lt(max_attempts))
                        .exec(&txn)
                        .await?;
                    (row, Applied::Updated)
                }
            }
        };
        txn.commit().await?;
        self.forget_lease_plan(row.id);
        tracing::info!(campaign = %spec.name, campaign_id = row.id, ?applied, "campaign applied");
        Ok((row.try_into()?, applied))
    }

    /// The campaign with this id, if any.
    pub async fn campaign(&self, id: i64) -> Result<Option<Campaign>> {
        campaign::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Campaign::try_from)
            .transpose()
    }

    /// The campaign with this name, if any.
    pub async fn campaign_by_name(&self, name: &str) -> Result<Option<Campaign>> {
        campaign::Entity::find()
            .filter(campaign::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(Campaign::try_from)
            .transpose()
    }

    /// The campaign with this name, or [`Error::NoSuchCampaign`].
    pub async fn require_campaign(&self, name: &str) -> Result<Campaign> {
        self.campaign_by_name(name)
            .await?
            .ok_or_else(|| Error::NoSuchCampaign(name.to_owned()))
    }

    pub(crate) async fn require_campaign_id(&self, id: i64) -> Result<Campaign> {
        self.campaign(id)
            .await?
            .ok_or_else(|| Error::NoSuchCampaign(id.to_string()))
    }

    /// Every campaign, by name.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        campaign::Entity::find()
            .order_by_asc(campaign::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Campaign::try_from)
            .collect()
    }

    /// Starts, pauses or stops a campaign.
    pub async fn set_campaign_status(&self, id: i64, status: CampaignStatus) -> Result<()> {
        use campaign::Column as K;
        let at = ms(now());
        // Strictly increasing, as in `apply_campaign`: cached lease plans are checked against it.
        let version = Expr::case(Expr::col(K::UpdatedAt).lt(at), Expr::val(at))
            .finally(Expr::col(K::UpdatedAt).add(1));
        let changed = campaign::Entity::update_many()
            .col_expr(K::Status, Expr::val(status.as_str()))
            .col_expr(K::UpdatedAt, version.into())
            .filter(K::Id.eq(id))
            .exec(&self.db)
            .await?
            .rows_affected;
        if changed == 0 {
            return Err(Error::NoSuchCampaign(id.to_string()));
        }
        tracing::info!(campaign_id = id, %status, "campaign status changed");
        Ok(())
    }

    /// How many contacts of the campaign are in each status (statuses with none are left out).
    pub async fn contact_counts(&self, campaign_id: i64) -> Result<Vec<(ContactStatus, u64)>> {
        let rows = contact::Entity::find()
            .select_only()
            .column(contact::Column::Status)
            .column_as(Expr::col(Asterisk).count(), "n")
            .filter(contact::Column::CampaignId.eq(campaign_id))
            .group_by(contact::Column::Status)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?;
        let mut counts = Vec::new();
        for (status, n) in rows {
            counts.push((status.parse()?, u64::try_from(n).unwrap_or(0)));
        }
        counts.sort_by_key(|(status, _)| ContactStatus::ALL.iter().position(|s| s == status));
        Ok(counts)
    }
}
