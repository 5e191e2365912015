//! Paged, filtered reads for the API, and the CSV export.

use crate::attempts::Attempt;
use crate::db::Store;
use crate::db::{from_ms, ms};
use crate::entity::{agent, attempt, contact, contact_list, disposition};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use domain::{ContactStatus, Outcome};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Most rows one page returns.
pub const MAX_PAGE: u64 = 10_000;

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// Id.
    pub id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// List it came from.
    pub list_id: Option<i64>,
    /// Number, E.164.
    pub e164: String,
    /// Time zones (IANA names).
    pub zones: Vec<String>,
    /// Other columns of its upload row.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Status.
    pub status: ContactStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt (or lease expiry while leased).
    pub next_attempt_at: DateTime<Utc>,
    /// Node holding a lease.
    pub lease_node: Option<String>,
    /// Last outcome.
    pub last_outcome: Option<Outcome>,
    /// Last attempt time.
    pub last_attempt_at: Option<DateTime<Utc>>,
}

/// One earlier call to a contact, as an agent's screen shows it: when, how it ended, what the
/// agent made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PastAttempt {
    /// The attempt's id.
    pub attempt_id: i64,
    /// INVITE sent.
    pub started_at: DateTime<Utc>,
    /// How it ended (absent while it is still under way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The agent's disposition (`sale`, `callback`, ...), if one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// The disposition's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The agent who took the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    /// That agent's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
}

/// Filter and page of [`Store::contacts`]; pages go by id (pass the last id seen as `after_id`).
#[derive(Debug, Clone, Default)]
pub struct ContactQuery {
    /// Campaign.
    pub campaign_id: i64,
    /// Only this status.
    pub status: Option<ContactStatus>,
    /// Only numbers starting with this (E.164, e.g. `+1212`).
    pub number_prefix: Option<String>,
    /// Only ids above this.
    pub after_id: Option<i64>,
    /// Page size (at most [`MAX_PAGE`]; 0 means 100).
    pub limit: u64,
}

/// Filter and page of [`Store::attempts`]; pages go by id.
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    /// Only this campaign.
    pub campaign_id: Option<i64>,
    /// Only this contact.
    pub contact_id: Option<i64>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// Only ids above this.
    pub after_id: Option<i64>,
    /// Page size (at most [`MAX_PAGE`]; 0 means 100).
    pub limit: u64,
}

fn page(limit: u64) -> u64 {
    if limit == 0 { 100 } else { limit.min(MAX_PAGE) }
}

impl Store {
    /// One page of a campaign's contacts.
    pub async fn contacts(&self, q: &ContactQuery) -> Result<Vec<Contact>> {
        let mut select =
            contact::Entity::find().filter(contact::Column::CampaignId.eq(q.campaign_id));
        if let Some(status) = q.status {
            select = select.filter(contact::Column::Status.eq(status.as_str()));
        }
        if let Some(prefix) = &q.number_prefix {
            select = select.filter(contact::Column::E164.starts_with(prefix.as_str()));
        }
        if let Some(after) = q.after_id {
            select = select.filter(contact::Column::Id.gt(after));
        }
        let rows = select
            .order_by_asc(contact::Column::Id)
            .limit(page(q.limit))
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.contact_from(row).await?);
        }
        Ok(out)
    }

    /// One contact.
    pub async fn contact(&self, id: i64) -> Result<Contact> {
        let row = contact::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(Error::NoSuchContact(id))?;
        self.contact_from(row).await
    }

    async fn contact_from(&self, row: contact::Model) -> Result<Contact> {
        let zones = self.zones_of(row.zone_set_id).await?;
        let extra = match serde_json::from_str(&row.extra) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        Ok(Contact {
            id: row.id,
            campaign_id: row.campaign_id,
            list_id: row.list_id,
            e164: row.e164,
            zones: zones.iter().map(|z| z.name().to_owned()).collect(),
            extra,
            status: row.status.parse()?,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            next_attempt_at: from_ms(row.next_attempt_at),
            lease_node: row.lease_node,
            last_outcome: row.last_outcome.as_deref().map(str::parse).transpose()?,
            last_attempt_at: row.last_attempt_at.map(from_ms),
        })
    }

    /// A contact's attempts, newest first (at most `limit`), with their dispositions and
    /// agents' names, leaving out `except` (the call on the line).
    pub async fn contact_history(
        &self,
        contact_id: i64,
        except: Option<i64>,
        limit: u64,
    ) -> Result<Vec<PastAttempt>> {
        let mut select = attempt::Entity::find().filter(attempt::Column::ContactId.eq(contact_id));
        if let Some(id) = except {
            select = select.filter(attempt::Column::Id.ne(id));
        }
        let rows = select
            .order_by_desc(attempt::Column::StartedAt)
            .order_by_desc(attempt::Column::Id)
            .limit(page(limit))
            .all(&self.db)
            .await?;
        let disposed = disposition::Entity::find()
            .filter(disposition::Column::ContactId.eq(contact_id))
            .all(&self.db)
            .await?;
        let agent_ids: Vec<i64> = rows.iter().filter_map(|r| r.agent_id).collect();
        let agents = if agent_ids.is_empty() {
            Vec::new()
        } else {
            agent::Entity::find()
                .filter(agent::Column::Id.is_in(agent_ids))
                .all(&self.db)
                .await?
        };
        rows.into_iter()
            .map(|row| {
                let disposition = disposed.iter().find(|d| d.attempt_id == row.id);
                Ok(PastAttempt {
                    attempt_id: row.id,
                    started_at: from_ms(row.started_at),
                    outcome: row.outcome.as_deref().map(str::parse).transpose()?,
                    disposition: disposition.map(|d| d.kind.clone()),
                    note: disposition.and_then(|d| d.note.clone()),
                    agent_id: row.agent_id,
                    agent_name: row.agent_id.and_then(|id| {
                        agents
                            .iter()
                            .find(|a| a.id == id)
                            .map(|a| a.display_name.clone())
                    }),
                })
            })
            .collect()
    }

    /// One page of attempts.
    pub async fn attempts(&self, q: &AttemptQuery) -> Result<Vec<Attempt>> {
        let mut select = attempt::Entity::find();
        if let Some(id) = q.campaign_id {
            select = select.filter(attempt::Column::CampaignId.eq(id));
        }
        if let Some(id) = q.contact_id {
            select = select.filter(attempt::Column::ContactId.eq(id));
        }
        if let Some(outcome) = q.outcome {
            select = select.filter(attempt::Column::Outcome.eq(outcome.as_str()));
        }
        if let Some(from) = q.from {
            select = select.filter(attempt::Column::StartedAt.gte(ms(from)));
        }
        if let Some(to) = q.to {
            select = select.filter(attempt::Column::StartedAt.lt(ms(to)));
        }
        if let Some(after) = q.after_id {
            select = select.filter(attempt::Column::Id.gt(after));
        }
        select
            .order_by_asc(attempt::Column::Id)
            .limit(page(q.limit))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Attempt::try_from)
            .collect()
    }

    /// Writes every contact of a campaign as CSV: number, status, attempts, last outcome and
    /// times, time zones, then the upload columns of all its lists. Returns the rows written.
    pub async fn export_csv<W: Write>(&self, campaign_id: i64, writer: W) -> Result<u64> {
        self.require_campaign_id(campaign_id).await?;
        let mut columns: Vec<String> = Vec::new();
        for list in contact_list::Entity::find()
            .filter(contact_list::Column::CampaignId.eq(campaign_id))
            .order_by_asc(contact_list::Column::Id)
            .all(&self.db)
            .await?
        {
            let names: Vec<String> = serde_json::from_str(&list.columns).unwrap_or_default();
            for name in names {
                if !columns.contains(&name) {
                    columns.push(name);
                }
            }
        }
        let mut out = csv::Writer::from_writer(writer);
        let fixed = [
            "phone",
            "status",
            "attempts",
            "last_outcome",
            "last_attempt_at",
            "next_attempt_at",
            "timezone",
        ];
        out.write_record(
            fixed
                .iter()
                .copied()
                .chain(columns.iter().map(String::as_str)),
        )
        .map_err(|err| Error::Io(std::io::Error::other(err)))?;
        let mut after = None;
        let mut written = 0u64;
        loop {
            let page = self
                .contacts(&ContactQuery {
                    campaign_id,
                    after_id: after,
                    limit: 5_000,
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for c in &page {
                let pending = matches!(c.status, ContactStatus::Pending | ContactStatus::Callback);
                let mut record = vec![
                    c.e164.clone(),
                    c.status.to_string(),
                    c.attempts.to_string(),
                    c.last_outcome.map(|o| o.to_string()).unwrap_or_default(),
                    c.last_attempt_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                    if pending {
                        c.next_attempt_at.to_rfc3339()
                    } else {
                        String::new()
                    },
                    c.zones.join(" "),
                ];
                for name in &columns {
                    record.push(match c.extra.get(name) {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    });
                }
                out.write_record(&record)
                    .map_err(|err| Error::Io(std::io::Error::other(err)))?;
                written += 1;
            }
        }
        out.flush()?;
        Ok(written)
    }
}
