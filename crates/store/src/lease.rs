//! Leasing due contacts to a node, and giving them back.
//!
//! A lease is `lease_node` + `lease_until`, and `next_attempt_at` is moved to `lease_until` at
//! the same time: a leased contact is simply "not due" for everyone, and when a node dies its
//! contacts become due again by themselves when the lease expires. One statement does the
//! selection and the update, so it is atomic on SQLite (one writer) and, with `FOR UPDATE SKIP
//! LOCKED`, never hands the same contact to two nodes on PostgreSQL.

use crate::db::{Backend, Store, now};
use crate::db::{from_ms, ms};
use crate::entity::{campaign, campaign_zone_set, contact, dnc};
use crate::error::{Error, Result};
use crate::plans::LeasePlan;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use domain::ContactStatus;
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
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
    ///
    /// One statement in the common case: the campaign's calling hours, retry limit and zone
    /// sets are cached per campaign ([`LeasePlan`]), and the statement itself checks that the
    /// cache is current (the campaign's `updated_at` and its number of zone sets), leasing
    /// nothing otherwise. Only when it leases nothing does a second query ask whether the cache
    /// was stale, and then the plan is reloaded and the lease tried once more.
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
        let lease_ms = i64::try_from(lease.as_millis())
            .map_err(|_| Error::Invalid("lease duration too long".into()))?;
        // Stored times are milliseconds: hand out exactly what is stored.
        let until = from_ms(ms(now).saturating_add(lease_ms));
        let mut plan = self.lease_plan(campaign_id).await?;
        let mut rows = self
            .lease_rows(&plan, campaign_id, node_id, k, now, until, options)
            .await?;
        if rows.is_empty() && !self.lease_plan_is_current(campaign_id, &plan).await? {
            self.forget_lease_plan(campaign_id);
            plan = self.lease_plan(campaign_id).await?;
            rows = self
                .lease_rows(&plan, campaign_id, node_id, k, now, until, options)
                .await?;
        }
        // Callbacks first, as the statement picked them; then the oldest due.
        rows.sort_by_key(|row| (row.status != ContactStatus::Callback.as_str(), row.id));

        let mut contacts = Vec::with_capacity(rows.len());
        for row in rows {
            let zones = match plan.zones(row.zone_set_id) {
                Some(zones) => zones,
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

    /// Runs the lease statement for the zone sets open now under `plan`.
    #[allow(clippy::too_many_arguments)]
    async fn lease_rows(
        &self,
        plan: &LeasePlan,
        campaign_id: i64,
        node_id: &str,
        k: usize,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        options: &LeaseOptions,
    ) -> Result<Vec<LeaseRow>> {
        let open = plan.open(now);
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let q = LeaseQuery {
            campaign_id,
            open_zone_sets: &open,
            callback_agents: &options.callback_agents,
            max_attempts: plan.max_attempts,
            version: plan.version,
            zone_set_count: plan.zone_sets.len(),
            k,
            now,
            until,
            node_id,
        };
        let sql = self.lease_sql(&q);
        match self.backend {
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                let rows = q
                    .bind_pg(sqlx::query(sqlx::AssertSqlSafe(sql)))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(LeaseRow::from_row).collect()
            }
            Backend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                let rows = q
                    .bind_sqlite(sqlx::query(sqlx::AssertSqlSafe(sql)))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(LeaseRow::from_row).collect()
            }
        }
    }

    /// The lease statement. Parameters: $1 campaign, $2 now, $3 k, $4 node, $5 lease end,
    /// $6 max attempts, $7 campaign version, $8 zone-set count, $9 candidates per zone set,
    /// and on PostgreSQL $10 the agents whose personal callbacks may be leased.
    ///
    /// Candidates come from one range scan of `contacts_due` per open zone set (callbacks:
    /// one scan over all open sets, they are few), merged in `next_attempt_at` order; the
    /// number checks (do-not-call, attempts) and, on PostgreSQL, the row locks are applied
    /// to that merged stream lazily, so about K candidates are read and exactly the rows
    /// handed out are locked (a lock per zone set's candidates would block other nodes for
    /// nothing).
    ///
    /// Raw SQL, the one statement of this module that is: the query builder cannot write a
    /// lock on a derived table's rows (`FOR UPDATE OF t SKIP LOCKED` inside each half of a
    /// `UNION ALL`), SQLite's compound members need the `SELECT * FROM (...)` wrappers to keep
    /// their own `ORDER BY ... LIMIT`, and the PostgreSQL form is an `UPDATE ... FROM` a CTE;
    /// it is bound straight through sqlx, as the hottest statement of the store.
    fn lease_sql(&self, q: &LeaseQuery<'_>) -> String {
        let callback = ContactStatus::Callback.as_str();
        let pending = ContactStatus::Pending.as_str();
        let not_dnc = "NOT EXISTS (SELECT 1 FROM dnc d WHERE d.e164 = t.e164 \
                       AND d.campaign_id IN (0, $1))";
        let guard = "EXISTS (SELECT 1 FROM campaigns g WHERE g.id = $1 AND g.updated_at = $7) \
                     AND (SELECT COUNT(*) FROM campaign_zone_sets s WHERE s.campaign_id = $1) = $8";
        let returning = "RETURNING contacts.id, contacts.list_id, contacts.e164, \
                         contacts.zone_set_id, contacts.attempts, contacts.extra, contacts.status, \
                         contacts.callback_agent_id";
        let mut zones_in = String::new();
        push_ids(&mut zones_in, q.open_zone_sets);
        // Personal callbacks only for the ready agents.
        let agents = |alias: &str| match self.backend {
            Backend::Postgres => format!(
                "({alias}.callback_agent_id IS NULL OR {alias}.callback_agent_id = ANY($10))"
            ),
            Backend::Sqlite => {
                let mut ids = String::new();
                push_ids(&mut ids, q.callback_agents);
                format!(
                    "({alias}.callback_agent_id IS NULL OR {alias}.callback_agent_id IN ({ids}))"
                )
            }
        };
        let due = |alias: &str, status: &str| {
            format!(
                "{alias}.campaign_id = $1 AND {alias}.status = '{status}' \
                 AND {alias}.next_attempt_at <= $2"
            )
        };
        let callbacks = format!(
            "SELECT c.id, c.next_attempt_at FROM contacts c WHERE {} AND c.zone_set_id IN \
             ({zones_in}) AND {} ORDER BY c.next_attempt_at LIMIT $9",
            due("c", callback),
            agents("c")
        );
        let branch = |zone: i64| {
            format!(
                "SELECT c.id, c.next_attempt_at FROM contacts c WHERE {} AND c.zone_set_id = \
                 {zone} ORDER BY c.next_attempt_at LIMIT $9",
                due("c", pending)
            )
        };
        let mut sql = String::new();
        match self.backend {
            Backend::Postgres => {
                let branches = q
                    .open_zone_sets
                    .iter()
                    .map(|z| format!("({})", branch(*z)))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ");
                // Each half locks lazily (LockRows under its LIMIT); the Append runs the
                // callbacks first and pulls pending rows only while K is not reached.
                let _ = write!(
                    sql,
                    "WITH picked AS (SELECT id FROM (\
                     SELECT id FROM (SELECT t.id FROM ({callbacks}) c JOIN contacts t ON t.id = c.id \
                     WHERE {} AND {} AND {not_dnc} ORDER BY c.next_attempt_at LIMIT $3 \
                     FOR UPDATE OF t SKIP LOCKED) cb \
                     UNION ALL \
                     SELECT id FROM (SELECT t.id FROM (SELECT id, next_attempt_at FROM ({branches}) u \
                     ORDER BY next_attempt_at LIMIT $9) c JOIN contacts t ON t.id = c.id \
                     WHERE {} AND t.attempts < $6 AND {not_dnc} ORDER BY c.next_attempt_at LIMIT $3 \
                     FOR UPDATE OF t SKIP LOCKED) pe\
                     ) both_kinds WHERE {guard} LIMIT $3) \
                     UPDATE contacts SET lease_node = $4, lease_until = $5, next_attempt_at = $5 \
                     FROM picked WHERE contacts.id = picked.id {returning}",
                    due("t", callback),
                    agents("t"),
                    due("t", pending),
                );
            }
            Backend::Sqlite => {
                // SQLite has one writer at a time: no locks to skip, and the statement is
                // atomic by itself. Compound members cannot carry their own ORDER BY/LIMIT,
                // hence the `SELECT * FROM (...)` wrappers.
                let branches = q
                    .open_zone_sets
                    .iter()
                    .map(|z| format!("SELECT * FROM ({})", branch(*z)))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ");
                let _ = write!(
                    sql,
                    "UPDATE contacts SET lease_node = $4, lease_until = $5, next_attempt_at = $5 \
                     WHERE id IN (\
                     SELECT id FROM (SELECT t.id FROM ({callbacks}) c JOIN contacts t ON t.id = c.id \
                     WHERE {not_dnc} LIMIT $3) \
                     UNION ALL \
                     SELECT id FROM (SELECT t.id FROM ({branches} ORDER BY next_attempt_at LIMIT $9) c \
                     JOIN contacts t ON t.id = c.id WHERE t.attempts < $6 AND {not_dnc} LIMIT $3) \
                     LIMIT $3) AND {guard} {returning}"
                );
            }
        }
        sql
    }

    /// The database's plan (and, on PostgreSQL, timing) of the lease statement, without
    /// leasing anything: for benchmarks and operators checking indexes.
    pub async fn explain_lease(
        &self,
        campaign_id: i64,
        k: usize,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let plan = self.lease_plan(campaign_id).await?;
        let open = plan.open(now);
        if open.is_empty() {
            return Ok("no zone set is open at this time: nothing to lease".into());
        }
        let q = LeaseQuery {
            campaign_id,
            open_zone_sets: &open,
            callback_agents: &[],
            max_attempts: plan.max_attempts,
            version: plan.version,
            zone_set_count: plan.zone_sets.len(),
            k: k.clamp(1, MAX_LEASE),
            now,
            until: now,
            node_id: "explain",
        };
        let sql = self.lease_sql(&q);
        let mut plan_text = String::new();
        // ANALYZE runs the update: do it in a transaction that is rolled back.
        match self.backend {
            Backend::Postgres => {
                let mut tx = self.db.get_postgres_connection_pool().begin().await?;
                let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
                let rows = q
                    .bind_pg(sqlx::query(sqlx::AssertSqlSafe(explain)))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollback().await?;
                for row in rows {
                    plan_text.push_str(&sqlx::Row::try_get::<String, _>(&row, 0)?);
                    plan_text.push('\n');
                }
            }
            Backend::Sqlite => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let rows = q
                    .bind_sqlite(sqlx::query(sqlx::AssertSqlSafe(explain)))
                    .fetch_all(self.db.get_sqlite_connection_pool())
                    .await?;
                for row in rows {
                    plan_text.push_str(&sqlx::Row::try_get::<String, _>(&row, "detail")?);
                    plan_text.push('\n');
                }
            }
        }
        Ok(plan_text)
    }

    /// The campaign's lease plan, from the cache or the database.
    async fn lease_plan(&self, campaign_id: i64) -> Result<Arc<LeasePlan>> {
        if let Some(plan) = self
            .lease_plans
            .lock()
            .ok()
            .and_then(|plans| plans.get(&campaign_id).cloned())
        {
            return Ok(plan);
        }
        let campaign = self.require_campaign_id(campaign_id).await?;
        let zone_sets = self.campaign_zone_sets(campaign_id).await?;
        let plan = Arc::new(LeasePlan {
            version: ms(campaign.updated_at),
            hours: campaign.spec.calling_hours.clone(),
            max_attempts: i64::from(campaign.spec.retry.max_attempts),
            zone_sets,
        });
        if let Ok(mut plans) = self.lease_plans.lock() {
            plans.insert(campaign_id, plan.clone());
        }
        Ok(plan)
    }

    /// Drops a campaign's cached lease plan (it changed).
    pub(crate) fn forget_lease_plan(&self, campaign_id: i64) {
        if let Ok(mut plans) = self.lease_plans.lock() {
            plans.remove(&campaign_id);
        }
    }

    /// Whether the campaign and its zone sets are still what `plan` was built from.
    async fn lease_plan_is_current(&self, campaign_id: i64, plan: &LeasePlan) -> Result<bool> {
        let zone_sets = Query::select()
            .expr(Expr::col(Asterisk).count())
            .from(campaign_zone_set::Entity)
            .and_where(Expr::col(campaign_zone_set::Column::CampaignId).eq(campaign_id))
            .take();
        let (version, zone_sets) = campaign::Entity::find_by_id(campaign_id)
            .select_only()
            .column(campaign::Column::UpdatedAt)
            .column_as(
                Expr::SubQuery(None, Box::new(zone_sets.into())),
                "zone_sets",
            )
            .into_tuple::<(i64, i64)>()
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NoSuchCampaign(campaign_id.to_string()))?;
        Ok(
            version == plan.version
                && usize::try_from(zone_sets).ok() == Some(plan.zone_sets.len()),
        )
    }

    /// Gives leased contacts back (not dialled): they are due again at once.
    /// Contacts leased by another node are left alone. Returns how many were released.
    pub async fn release(&self, contact_ids: &[i64], node_id: &str) -> Result<u64> {
        use contact::Column as C;
        let mut released = 0;
        for chunk in contact_ids.chunks(1000) {
            released += contact::Entity::update_many()
                .col_expr(C::LeaseNode, Expr::val(None::<String>))
                .col_expr(C::LeaseUntil, Expr::val(None::<i64>))
                .col_expr(C::NextAttemptAt, Expr::val(ms(now())))
                .filter(C::LeaseNode.eq(node_id))
                .filter(C::Id.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(released)
    }

    /// Extends this node's leases on contacts still in a call to `until`: a call that outlasts
    /// its lease must not make its contact due again (it would be dialled while on the phone).
    /// Contacts whose lease has gone (finished, released, or taken by another node after an
    /// expiry) are left alone. Returns how many leases were extended.
    pub async fn renew(
        &self,
        contact_ids: &[i64],
        node_id: &str,
        until: DateTime<Utc>,
    ) -> Result<u64> {
        use contact::Column as C;
        let mut renewed = 0;
        for chunk in contact_ids.chunks(1000) {
            renewed += contact::Entity::update_many()
                .col_expr(C::LeaseUntil, Expr::val(ms(until)))
                .col_expr(C::NextAttemptAt, Expr::val(ms(until)))
                .filter(C::LeaseNode.eq(node_id))
                .filter(C::Id.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(renewed)
    }

    /// Gives back every lease a node holds (on shutdown). Returns how many were released.
    pub async fn release_node(&self, node_id: &str) -> Result<u64> {
        use contact::Column as C;
        let released = contact::Entity::update_many()
            .col_expr(C::LeaseNode, Expr::val(None::<String>))
            .col_expr(C::LeaseUntil, Expr::val(None::<i64>))
            .col_expr(C::NextAttemptAt, Expr::val(ms(now())))
            .filter(C::LeaseNode.eq(node_id))
            .exec(&self.db)
            .await?
            .rows_affected;
        tracing::info!(node = node_id, released, "released the node's leases");
        Ok(released)
    }

    /// Whether a number is on the global or the campaign's do-not-call list.
    pub async fn is_dnc(&self, campaign_id: i64, e164: &str) -> Result<bool> {
        Ok(dnc::Entity::find()
            .select_only()
            .column(dnc::Column::Id)
            .filter(dnc::Column::E164.eq(e164))
            .filter(dnc::Column::CampaignId.is_in([0, campaign_id]))
            .into_tuple::<i64>()
            .one(&self.db)
            .await?
            .is_some())
    }

    /// When a leased contact's lease runs out (for tests and the API).
    pub async fn lease_of(&self, contact_id: i64) -> Result<Option<(String, DateTime<Utc>)>> {
        let (node, until) = contact::Entity::find_by_id(contact_id)
            .select_only()
            .columns([contact::Column::LeaseNode, contact::Column::LeaseUntil])
            .into_tuple::<(Option<String>, Option<i64>)>()
            .one(&self.db)
            .await?
            .ok_or(Error::NoSuchContact(contact_id))?;
        Ok(node.zip(until.map(from_ms)))
    }
}

/// One lease statement's parameters.
#[derive(Clone, Copy)]
struct LeaseQuery<'a> {
    campaign_id: i64,
    open_zone_sets: &'a [i64],
    callback_agents: &'a [i64],
    max_attempts: i64,
    version: i64,
    zone_set_count: usize,
    k: usize,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    node_id: &'a str,
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

impl LeaseQuery<'_> {
    /// Candidates read per zone set at most: room for rows other nodes hold locked.
    fn per_zone(&self) -> i64 {
        to_i64(self.k.saturating_mul(4).max(self.k + 100))
    }

    fn bind_pg<'q>(&self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(self.campaign_id)
            .bind(ms(self.now))
            .bind(to_i64(self.k))
            .bind(self.node_id.to_owned())
            .bind(ms(self.until))
            .bind(self.max_attempts)
            .bind(self.version)
            .bind(to_i64(self.zone_set_count))
            .bind(self.per_zone())
            .bind(self.callback_agents.to_vec())
    }

    fn bind_sqlite<'q>(&self, query: SqliteQuery<'q>) -> SqliteQuery<'q> {
        query
            .bind(self.campaign_id)
            .bind(ms(self.now))
            .bind(to_i64(self.k))
            .bind(self.node_id.to_owned())
            .bind(ms(self.until))
            .bind(self.max_attempts)
            .bind(self.version)
            .bind(to_i64(self.zone_set_count))
            .bind(self.per_zone())
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

impl LeaseRow {
    fn from_row<'r, R>(row: &'r R) -> Result<Self>
    where
        R: sqlx::Row,
        &'static str: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get("id")?,
            list_id: row.try_get("list_id")?,
            e164: row.try_get("e164")?,
            zone_set_id: row.try_get("zone_set_id")?,
            attempts: row.try_get("attempts")?,
            extra: row.try_get("extra")?,
            status: row.try_get("status")?,
            callback_agent_id: row.try_get("callback_agent_id")?,
        })
    }
}

pub(crate) fn push_ids(sql: &mut String, ids: &[i64]) {
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(sql, "{id}");
    }
}
