//! Leasing due contacts to a node, and giving them back.
//!
//! A lease is `lease_node` + `lease_until`, and `next_attempt_at` is moved to `lease_until` at
//! the same time: a leased contact is simply "not due" for everyone, and when a node dies its
//! contacts become due again by themselves when the lease expires. One statement does the
//! selection and the update, so it is atomic on SQLite (one writer) and, with `FOR UPDATE SKIP
//! LOCKED`, never hands the same contact to two nodes on PostgreSQL.

use crate::db::{Backend, Store, now};
use crate::error::{Error, Result};
use crate::types::{ContactStatus, from_ms, ms};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::Value;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Most contacts one lease call hands out.
pub const MAX_LEASE: usize = 10_000;

/// A contact leased to a node, ready to dial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeasedContact {
    /// Contact id.
    pub id: i64,
    /// Campaign id.
    pub campaign_id: i64,
    /// List (upload) it came from.
    pub list_id: Option<i64>,
    /// Number to dial, E.164.
    pub e164: String,
    /// Time zones the callee may be in (all must be open to dial).
    #[serde(serialize_with = "zone_names")]
    pub zones: Arc<[Tz]>,
    /// Attempts made so far.
    pub attempts: u32,
    /// The upload row's other columns.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Whether this is a callback someone asked for (dialled before anything else).
    pub callback: bool,
    /// The agent a personal callback belongs to.
    pub callback_agent_id: Option<i64>,
    /// When the lease runs out and the contact becomes due again.
    pub lease_until: DateTime<Utc>,
}

fn zone_names<S: serde::Serializer>(zones: &Arc<[Tz]>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(zones.iter().map(|z| z.name()))
}

/// Options of [`Store::lease_due_with`].
#[derive(Debug, Clone, Default)]
pub struct LeaseOptions {
    /// Agents ready to take their personal callbacks; other agents' callbacks are left alone.
    pub callback_agents: Vec<i64>,
}

impl Store {
    /// Leases up to `k` due contacts of a campaign to `node_id` until `now + lease`.
    ///
    /// Due means: status `pending` with attempts left (or `callback`, dialled first),
    /// `next_attempt_at <= now`, not leased (or the lease expired), calling hours open now in every
    /// zone of the callee, and the number on neither the global nor the campaign's do-not-call
    /// list. Personal callbacks are not leased here; see [`Store::lease_due_with`].
    pub async fn lease_due(
        &self,
        campaign_id: i64,
        node_id: &str,
        k: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<LeasedContact>> {
        self.lease_due_with(
            campaign_id,
            node_id,
            k,
            now,
            lease,
            &LeaseOptions::default(),
        )
        .await
    }

    /// [`Store::lease_due`], also leasing the personal callbacks of `options.callback_agents`.
    pub async fn lease_due_with(
        &self,
        campaign_id: i64,
        node_id: &str,
        k: usize,
        now: DateTime<Utc>,
        lease: Duration,
        options: &LeaseOptions,
    ) -> Result<Vec<LeasedContact>> {
        let k = k.min(MAX_LEASE);
        if k == 0 {
            return Ok(Vec::new());
        }
        if node_id.is_empty() {
            return Err(Error::Invalid("node id must not be empty".into()));
        }
        let campaign = self.require_campaign_id(campaign_id).await?;
        let hours = &campaign.spec.calling_hours;
        let mut zones_by_id = std::collections::HashMap::new();
        let mut open = Vec::new();
        for (id, zones) in self.campaign_zone_sets(campaign_id).await? {
            if hours.is_open(&zones, now) {
                open.push(id);
            }
            zones_by_id.insert(id, zones);
        }
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let lease_ms = i64::try_from(lease.as_millis())
            .map_err(|_| Error::Invalid("lease duration too long".into()))?;
        // Stored times are milliseconds: hand out exactly what is stored.
        let until = from_ms(ms(now).saturating_add(lease_ms));
        let max_attempts = i64::from(campaign.spec.retry.max_attempts);

        let callbacks = LeaseQuery {
            campaign_id,
            status: ContactStatus::Callback,
            open_zone_sets: &open,
            callback_agents: Some(&options.callback_agents),
            max_attempts: None,
            k,
            now,
            until,
            node_id,
        };
        let mut leased = self.lease_status(&callbacks).await?;
        if leased.len() < k {
            let pending = LeaseQuery {
                status: ContactStatus::Pending,
                callback_agents: None,
                max_attempts: Some(max_attempts),
                k: k - leased.len(),
                ..callbacks
            };
            leased.extend(self.lease_status(&pending).await?);
        }

        let mut contacts = Vec::with_capacity(leased.len());
        for row in leased {
            let zones = match zones_by_id.get(&row.zone_set_id) {
                Some(zones) => zones.clone(),
                None => self.zones_of(row.zone_set_id).await?,
            };
            let extra = match serde_json::from_str(&row.extra) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            contacts.push(LeasedContact {
                id: row.id,
                campaign_id,
                list_id: row.list_id,
                e164: row.e164,
                zones,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                extra,
                callback: row.status == ContactStatus::Callback.as_str(),
                callback_agent_id: row.callback_agent_id,
                lease_until: until,
            });
        }
        tracing::debug!(
            campaign_id,
            node = node_id,
            k,
            leased = contacts.len(),
            "leased contacts"
        );
        Ok(contacts)
    }

    fn lease_sql(&self, q: &LeaseQuery<'_>) -> (String, Vec<Value>) {
        let LeaseQuery {
            campaign_id,
            status,
            open_zone_sets,
            callback_agents,
            max_attempts,
            k,
            now,
            until,
            node_id,
        } = *q;
        // $1 campaign, $2 status, $3 now, $4 k, $5 node, $6 until, $7 max attempts.
        let mut filter = String::from(
            "t.campaign_id = $1 AND t.status = $2 AND t.next_attempt_at <= $3 \
             AND NOT EXISTS (SELECT 1 FROM dnc d WHERE d.e164 = t.e164 AND d.campaign_id IN (0, $1))",
        );
        let mut values: Vec<Value> = vec![
            campaign_id.into(),
            status.as_str().into(),
            ms(now).into(),
            i64::try_from(k).unwrap_or(i64::MAX).into(),
            node_id.into(),
            ms(until).into(),
        ];
        if let Some(max) = max_attempts {
            filter.push_str(" AND t.attempts < $7");
            values.push(max.into());
        }
        if let Some(agents) = callback_agents {
            // Ids are integers we format ourselves: no injection possible.
            filter.push_str(" AND (t.callback_agent_id IS NULL");
            if !agents.is_empty() {
                filter.push_str(" OR t.callback_agent_id IN (");
                push_ids(&mut filter, agents);
                filter.push(')');
            }
            filter.push(')');
        }
        let returning = "RETURNING contacts.id, contacts.list_id, contacts.e164, \
                         contacts.zone_set_id, contacts.attempts, contacts.extra, contacts.status, \
                         contacts.callback_agent_id";
        let mut sql = String::new();
        match self.backend {
            Backend::Postgres => {
                sql.push_str("WITH picked AS (SELECT c.id FROM (VALUES ");
                for (i, id) in open_zone_sets.iter().enumerate() {
                    if i > 0 {
                        sql.push(',');
                    }
                    let _ = write!(sql, "({id}::bigint)");
                }
                let _ = write!(
                    sql,
                    ") AS z(id) CROSS JOIN LATERAL (SELECT t.id, t.next_attempt_at FROM contacts t \
                     WHERE {filter} AND t.zone_set_id = z.id ORDER BY t.next_attempt_at LIMIT $4 \
                     FOR UPDATE SKIP LOCKED) c ORDER BY c.next_attempt_at, c.id LIMIT $4) \
                     UPDATE contacts SET lease_node = $5, lease_until = $6, next_attempt_at = $6 \
                     FROM picked WHERE contacts.id = picked.id {returning}"
                );
            }
            Backend::Sqlite => {
                sql.push_str("WITH picked AS (SELECT id FROM (");
                for (i, id) in open_zone_sets.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(" UNION ALL ");
                    }
                    let _ = write!(
                        sql,
                        "SELECT * FROM (SELECT t.id, t.next_attempt_at FROM contacts t WHERE {filter} \
                         AND t.zone_set_id = {id} ORDER BY t.next_attempt_at LIMIT $4)"
                    );
                }
                let _ = write!(
                    sql,
                    ") ORDER BY next_attempt_at, id LIMIT $4) \
                     UPDATE contacts SET lease_node = $5, lease_until = $6, next_attempt_at = $6 \
                     WHERE id IN (SELECT id FROM picked) {returning}"
                );
            }
        }
        (sql, values)
    }

    async fn lease_status(&self, q: &LeaseQuery<'_>) -> Result<Vec<LeaseRow>> {
        let (sql, values) = self.lease_sql(q);
        let rows = self.query_all(&sql, values).await?;
        rows.into_iter()
            .map(|row| {
                Ok(LeaseRow {
                    id: row.try_get("", "id")?,
                    list_id: row.try_get("", "list_id")?,
                    e164: row.try_get("", "e164")?,
                    zone_set_id: row.try_get("", "zone_set_id")?,
                    attempts: row.try_get("", "attempts")?,
                    extra: row.try_get("", "extra")?,
                    status: row.try_get("", "status")?,
                    callback_agent_id: row.try_get("", "callback_agent_id")?,
                })
            })
            .collect()
    }

    /// The database's plan (and, on PostgreSQL, timing) of the lease statement for pending
    /// contacts, without leasing anything: for benchmarks and operators checking indexes.
    pub async fn explain_lease(
        &self,
        campaign_id: i64,
        k: usize,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let campaign = self.require_campaign_id(campaign_id).await?;
        let open: Vec<i64> = self
            .campaign_zone_sets(campaign_id)
            .await?
            .into_iter()
            .filter(|(_, zones)| campaign.spec.calling_hours.is_open(zones, now))
            .map(|(id, _)| id)
            .collect();
        if open.is_empty() {
            return Ok("no zone set is open at this time: nothing to lease".into());
        }
        let (sql, values) = self.lease_sql(&LeaseQuery {
            campaign_id,
            status: ContactStatus::Pending,
            open_zone_sets: &open,
            callback_agents: None,
            max_attempts: Some(i64::from(campaign.spec.retry.max_attempts)),
            k,
            now,
            until: now,
            node_id: "explain",
        });
        let (prefix, column) = match self.backend {
            Backend::Postgres => ("EXPLAIN (ANALYZE, BUFFERS) ", "QUERY PLAN"),
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        };
        // ANALYZE runs the update: do it in a transaction that is rolled back.
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        let rows = crate::db::query(&txn, &format!("{prefix}{sql}"), values).await?;
        txn.rollback().await?;
        let mut plan = String::new();
        for row in rows {
            let line: String = row.try_get("", column)?;
            plan.push_str(&line);
            plan.push('\n');
        }
        Ok(plan)
    }

    /// Gives leased contacts back (not dialled): they are due again at once.
    /// Contacts leased by another node are left alone. Returns how many were released.
    pub async fn release(&self, contact_ids: &[i64], node_id: &str) -> Result<u64> {
        let mut released = 0;
        for chunk in contact_ids.chunks(1000) {
            let mut sql = String::from(
                "UPDATE contacts SET lease_node = NULL, lease_until = NULL, next_attempt_at = $1 \
                 WHERE lease_node = $2 AND id IN (",
            );
            push_ids(&mut sql, chunk);
            sql.push(')');
            released += self
                .execute(&sql, vec![ms(now()).into(), node_id.into()])
                .await?;
        }
        Ok(released)
    }

    /// Gives back every lease a node holds (on shutdown). Returns how many were released.
    pub async fn release_node(&self, node_id: &str) -> Result<u64> {
        let released = self
            .execute(
                "UPDATE contacts SET lease_node = NULL, lease_until = NULL, next_attempt_at = $1 \
                 WHERE lease_node = $2",
                vec![ms(now()).into(), node_id.into()],
            )
            .await?;
        tracing::info!(node = node_id, released, "released the node's leases");
        Ok(released)
    }

    /// Whether a number is on the global or the campaign's do-not-call list.
    pub async fn is_dnc(&self, campaign_id: i64, e164: &str) -> Result<bool> {
        Ok(self
            .query_one(
                "SELECT 1 AS hit FROM dnc WHERE e164 = $1 AND campaign_id IN (0, $2) LIMIT 1",
                vec![e164.into(), campaign_id.into()],
            )
            .await?
            .is_some())
    }

    /// When a leased contact's lease runs out (for tests and the API).
    pub async fn lease_of(&self, contact_id: i64) -> Result<Option<(String, DateTime<Utc>)>> {
        let row = self
            .query_one(
                "SELECT lease_node, lease_until FROM contacts WHERE id = $1",
                vec![contact_id.into()],
            )
            .await?
            .ok_or(Error::NoSuchContact(contact_id))?;
        let node: Option<String> = row.try_get("", "lease_node")?;
        let until: Option<i64> = row.try_get("", "lease_until")?;
        Ok(node.zip(until.map(from_ms)))
    }
}

/// One lease statement's parameters.
#[derive(Clone, Copy)]
struct LeaseQuery<'a> {
    campaign_id: i64,
    status: ContactStatus,
    open_zone_sets: &'a [i64],
    callback_agents: Option<&'a [i64]>,
    max_attempts: Option<i64>,
    k: usize,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    node_id: &'a str,
}

struct LeaseRow {
    id: i64,
    list_id: Option<i64>,
    e164: String,
    zone_set_id: i64,
    attempts: i32,
    extra: String,
    status: String,
    callback_agent_id: Option<i64>,
}

pub(crate) fn push_ids(sql: &mut String, ids: &[i64]) {
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(sql, "{id}");
    }
}
