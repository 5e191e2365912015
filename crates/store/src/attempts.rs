//! Call attempts: start, each step of the call's life, the final outcome, the agent's
//! disposition, and abandon-rate accounting.

//!
//! Every statement here is built with sea-orm's query builder (entities and `sea_query`), one
//! way of querying for the attempt tables and the contact updates that go with them; the
//! retry rules themselves are `domain::retry`, run inside the transaction that ends an attempt.

use crate::db::{Store, from_ms, ms};
use crate::entity::{abandon_stat, attempt, callback, campaign, contact, disposition, dnc};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use domain::retry::{self, AttemptEnd, ContactBefore};
use domain::{AmdResult, ContactAfter, ContactStatus, Disposition, Outcome};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Func, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use serde::{Deserialize, Serialize};

/// One step of a call's life, recorded on its attempt row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEvent {
    /// 180 Ringing.
    Ringing,
    /// 183 Session Progress with early media.
    EarlyMedia,
    /// 200 OK.
    Answered,
    /// Answering-machine detection decided.
    Amd(AmdResult),
    /// Bridged with an agent.
    Bridged {
        /// The agent.
        agent_id: i64,
    },
    /// A recording of the call was written.
    Recording {
        /// Path of the file.
        path: String,
    },
}

/// How an attempt ended, for [`Store::finish_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The outcome.
    pub outcome: Outcome,
    /// Final SIP status code, if any (e.g. 486, 503).
    pub sip_code: Option<u16>,
    /// Detail: the failure reason, the SIT tone heard, ...
    pub reason: Option<String>,
    /// When the call ended.
    pub ended_at: DateTime<Utc>,
}

/// Live answers and abandons of a campaign over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AbandonCounts {
    /// Calls a person answered (connected or abandoned).
    pub live_answers: u64,
    /// Of those, the abandoned ones.
    pub abandons: u64,
}

impl AbandonCounts {
    /// Abandons / live answers (0 when there were none).
    pub fn rate(&self) -> f64 {
        if self.live_answers == 0 {
            0.0
        } else {
            self.abandons as f64 / self.live_answers as f64
        }
    }
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    /// Id.
    pub id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// Contact.
    pub contact_id: i64,
    /// Node that placed it.
    pub node_id: String,
    /// Number dialled.
    pub e164: String,
    /// INVITE sent.
    pub started_at: DateTime<Utc>,
    /// 180 Ringing.
    pub ring_at: Option<DateTime<Utc>>,
    /// Early media.
    pub early_media_at: Option<DateTime<Utc>>,
    /// Answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// AMD verdict.
    pub amd_result: Option<AmdResult>,
    /// When AMD decided.
    pub amd_at: Option<DateTime<Utc>>,
    /// Bridged with an agent.
    pub bridged_at: Option<DateTime<Utc>>,
    /// Agent.
    pub agent_id: Option<i64>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Final SIP code.
    pub sip_code: Option<u16>,
    /// Outcome.
    pub outcome: Option<Outcome>,
    /// Detail.
    pub reason: Option<String>,
    /// Recording file.
    pub recording_path: Option<String>,
}

impl TryFrom<attempt::Model> for Attempt {
    type Error = Error;

    fn try_from(row: attempt::Model) -> Result<Self> {
        Ok(Self {
            id: row.id,
            campaign_id: row.campaign_id,
            contact_id: row.contact_id,
            node_id: row.node_id,
            e164: row.e164,
            started_at: from_ms(row.started_at),
            ring_at: row.ring_at.map(from_ms),
            early_media_at: row.early_media_at.map(from_ms),
            answered_at: row.answered_at.map(from_ms),
            amd_result: row.amd_result.as_deref().map(str::parse).transpose()?,
            amd_at: row.amd_at.map(from_ms),
            bridged_at: row.bridged_at.map(from_ms),
            agent_id: row.agent_id,
            ended_at: row.ended_at.map(from_ms),
            sip_code: row.sip_code.and_then(|c| u16::try_from(c).ok()),
            outcome: row.outcome.as_deref().map(str::parse).transpose()?,
            reason: row.reason,
            recording_path: row.recording_path,
        })
    }
}

const HOUR_MS: i64 = 3_600_000;

impl Store {
    /// Records that a call to a leased contact started; returns the attempt id. Refuses with
    /// [`Error::DoNotCall`] a number on the global or the campaign's do-not-call list: the check
    /// and the insert are one statement, so a number whose listing has been committed is never
    /// given an attempt (a check before this call alone would leave a gap for a listing to
    /// land in).
    pub async fn start_attempt(
        &self,
        contact_id: i64,
        node_id: &str,
        started_at: DateTime<Utc>,
    ) -> Result<i64> {
        use contact::Column as C;
        let number_listed = Query::select()
            .expr(Expr::val(1))
            .from_as(dnc::Entity, "d")
            .and_where(Expr::col(("d", dnc::Column::E164)).equals(("c", C::E164)))
            .and_where(
                Expr::col(("d", dnc::Column::CampaignId))
                    .is_in([Expr::val(0i64), Expr::col(("c", C::CampaignId))]),
            )
            .take();
        let dialled = Query::select()
            .expr(Expr::col(("c", C::CampaignId)))
            .expr(Expr::col(("c", C::Id)))
            .expr(Expr::val(node_id))
            .expr(Expr::col(("c", C::E164)))
            .expr(Expr::val(ms(started_at)))
            .from_as(contact::Entity, "c")
            .and_where(Expr::col(("c", C::Id)).eq(contact_id))
            .and_where(Expr::not_exists(number_listed))
            .take();
        let insert = Query::insert()
            .into_table(attempt::Entity)
            .columns([
                attempt::Column::CampaignId,
                attempt::Column::ContactId,
                attempt::Column::NodeId,
                attempt::Column::E164,
                attempt::Column::StartedAt,
            ])
            .select_from(dialled)
            .map_err(|err| Error::Db(DbErr::Custom(err.to_string())))?
            .returning(
                Query::returning().columns([attempt::Column::Id, attempt::Column::CampaignId]),
            )
            .to_owned();
        let Some(row) = self.db.query_one(&insert).await? else {
            let e164 = contact::Entity::find_by_id(contact_id)
                .select_only()
                .column(C::E164)
                .into_tuple::<String>()
                .one(&self.db)
                .await?
                .ok_or(Error::NoSuchContact(contact_id))?;
            return Err(Error::DoNotCall(e164));
        };
        let id: i64 = row.try_get("", "id")?;
        let campaign_id: i64 = row.try_get("", "campaign_id")?;
        tracing::debug!(attempt_id = id, contact_id, campaign_id, "attempt started");
        Ok(id)
    }

    /// Records one step of a call's life at time `at`.
    pub async fn attempt_event(
        &self,
        attempt_id: i64,
        event: AttemptEvent,
        at: DateTime<Utc>,
    ) -> Result<()> {
        use attempt::Column as A;
        let at = ms(at);
        let first = |col: A| -> Expr { Func::coalesce([Expr::col(col), Expr::val(at)]).into() };
        let update = attempt::Entity::update_many().filter(A::Id.eq(attempt_id));
        let update = match event {
            AttemptEvent::Ringing => update.col_expr(A::RingAt, first(A::RingAt)),
            AttemptEvent::EarlyMedia => update.col_expr(A::EarlyMediaAt, first(A::EarlyMediaAt)),
            AttemptEvent::Answered => update.col_expr(A::AnsweredAt, Expr::val(at)),
            AttemptEvent::Amd(result) => update
                .col_expr(A::AmdResult, Expr::val(result.as_str()))
                .col_expr(A::AmdAt, Expr::val(at)),
            AttemptEvent::Bridged { agent_id } => update
                .col_expr(A::BridgedAt, Expr::val(at))
                .col_expr(A::AgentId, Expr::val(agent_id)),
            AttemptEvent::Recording { path } => update.col_expr(A::RecordingPath, Expr::val(path)),
        };
        if update.exec(&self.db).await?.rows_affected == 0 {
            return Err(Error::NoSuchAttempt(attempt_id));
        }
        Ok(())
    }

    /// Records how an attempt ended, in one transaction: the attempt row, the contact's status,
    /// attempts and next attempt under the campaign's retry rules, the abandon counters, and
    /// the lease cleared.
    pub async fn finish_attempt(&self, attempt_id: i64, finish: &Finish) -> Result<ContactAfter> {
        use contact::Column as C;
        let txn = self.write_txn().await?;
        // Locked until the commit, as `set_disposition` locks it: the two are written at about
        // the same time, and each decides the contact's status from what the other did.
        let row = attempt::Entity::find_by_id(attempt_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or(Error::NoSuchAttempt(attempt_id))?;
        if row.outcome.is_some() {
            return Err(Error::Invalid(format!(
                "attempt {attempt_id} is finished already"
            )));
        }
        // Read inside the transaction: on SQLite it holds the write lock, and a second pooled
        // connection may not be free while other writers wait for that lock.
        let campaign = campaign::Entity::find_by_id(row.campaign_id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::NoSuchCampaign(row.campaign_id.to_string()))
            .and_then(crate::campaigns::Campaign::try_from)?;
        let ended = ms(finish.ended_at);
        attempt::Entity::update_many()
            .col_expr(attempt::Column::EndedAt, Expr::val(ended))
            .col_expr(attempt::Column::Outcome, Expr::val(finish.outcome.as_str()))
            .col_expr(
                attempt::Column::SipCode,
                Expr::val(finish.sip_code.map(i32::from)),
            )
            .col_expr(attempt::Column::Reason, Expr::val(finish.reason.clone()))
            .filter(attempt::Column::Id.eq(attempt_id))
            .exec(&txn)
            .await?;

        // Locked too: a do-not-call entry committed between this read and the update below
        // would otherwise be overwritten with a retry (PostgreSQL; SQLite's writers take turns
        // and the builder leaves the lock out there).
        let (status, attempts, next_attempt_at) = contact::Entity::find_by_id(row.contact_id)
            .select_only()
            .columns([C::Status, C::Attempts, C::NextAttemptAt])
            .lock_exclusive()
            .into_tuple::<(String, i32, i64)>()
            .one(&txn)
            .await?
            .ok_or(Error::NoSuchContact(row.contact_id))?;
        let before = ContactBefore {
            id: row.contact_id,
            status: status.parse()?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            next_attempt_at: from_ms(next_attempt_at),
        };
        let disposed = disposition::Entity::find()
            .select_only()
            .column(disposition::Column::Id)
            .filter(disposition::Column::AttemptId.eq(attempt_id))
            .into_tuple::<i64>()
            .one(&txn)
            .await?
            .is_some();
        let end = AttemptEnd {
            outcome: finish.outcome,
            ended_at: finish.ended_at,
            disposed,
        };
        let next = retry::after(&end, &before, &campaign.spec);
        if next.add_dnc {
            self.add_dnc_in(&txn, 0, &row.e164, "opt-out", ended)
                .await?;
        }
        // The lease is this node's to clear; another node may hold a newer one.
        let this_lease = Expr::col(C::LeaseNode).eq(row.node_id.as_str());
        contact::Entity::update_many()
            .col_expr(
                C::Attempts,
                Expr::val(i32::try_from(next.attempts).unwrap_or(i32::MAX)),
            )
            .col_expr(C::LastOutcome, Expr::val(finish.outcome.as_str()))
            .col_expr(C::LastAttemptAt, Expr::val(row.started_at))
            .col_expr(C::Status, Expr::val(next.status.as_str()))
            .col_expr(C::NextAttemptAt, Expr::val(ms(next.next_attempt_at)))
            .col_expr(
                C::LeaseNode,
                Expr::case(this_lease.clone(), Expr::val(None::<String>))
                    .finally(Expr::col(C::LeaseNode))
                    .into(),
            )
            .col_expr(
                C::LeaseUntil,
                Expr::case(this_lease, Expr::val(None::<i64>))
                    .finally(Expr::col(C::LeaseUntil))
                    .into(),
            )
            .filter(C::Id.eq(row.contact_id))
            .exec(&txn)
            .await?;
        if next.callback_made {
            callback::Entity::update_many()
                .col_expr(callback::Column::DoneAt, Expr::val(ended))
                .col_expr(callback::Column::DoneAttemptId, Expr::val(attempt_id))
                .filter(callback::Column::ContactId.eq(row.contact_id))
                .filter(callback::Column::DoneAt.is_null())
                .exec(&txn)
                .await?;
        }
        if finish.outcome.is_live_answer() {
            use abandon_stat::Column as S;
            let abandoned = i64::from(finish.outcome == Outcome::Abandoned);
            abandon_stat::Entity::insert(abandon_stat::ActiveModel {
                campaign_id: Set(row.campaign_id),
                hour: Set(ended - ended.rem_euclid(HOUR_MS)),
                live_answers: Set(1),
                abandons: Set(abandoned),
            })
            .on_conflict(
                OnConflict::columns([S::CampaignId, S::Hour])
                    .value(
                        S::LiveAnswers,
                        Expr::col((abandon_stat::Entity, S::LiveAnswers)).add(1),
                    )
                    .value(
                        S::Abandons,
                        Expr::col((abandon_stat::Entity, S::Abandons))
                            .add(Expr::col(("excluded", S::Abandons))),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        let after = next.contact_after(row.contact_id);
        tracing::debug!(
            attempt_id,
            contact_id = row.contact_id,
            campaign_id = row.campaign_id,
            outcome = %finish.outcome,
            status = %after.status,
            "attempt finished"
        );
        Ok(after)
    }

    /// Records an agent's disposition of an attempt, in one transaction with its effect on the
    /// contact. A do-not-call request writes a global do-not-call entry and takes every
    /// contact with that number out of dialling at once.
    pub async fn set_disposition(
        &self,
        attempt_id: i64,
        agent_id: Option<i64>,
        disposition: &Disposition,
    ) -> Result<ContactAfter> {
        disposition.check(agent_id)?;
        let txn = self.write_txn().await?;
        // See `finish_attempt`: on PostgreSQL the call's end, read before this commits, would
        // otherwise overwrite the contact's status set here (SQLite's writers take turns anyway;
        // the lock is not written there).
        let row = attempt::Entity::find_by_id(attempt_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or(Error::NoSuchAttempt(attempt_id))?;
        let at = ms(crate::db::now());
        let callback_at = disposition.callback_at.map(ms);
        let saved = disposition::ActiveModel {
            attempt_id: Set(attempt_id),
            contact_id: Set(row.contact_id),
            campaign_id: Set(row.campaign_id),
            agent_id: Set(agent_id),
            kind: Set(disposition.kind.as_str().to_owned()),
            note: Set(disposition.note.clone()),
            callback_at: Set(callback_at),
            created_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;

        use contact::Column as C;
        let status = retry::after_disposition(disposition.kind);
        if status == ContactStatus::Dnc {
            self.add_dnc_in(&txn, 0, &row.e164, "disposition", at)
                .await?;
        }
        let update = contact::Entity::update_many()
            .col_expr(C::Status, Expr::val(status.as_str()))
            .filter(C::Id.eq(row.contact_id));
        if status == ContactStatus::Callback {
            let due = callback_at.unwrap_or(at);
            let personal = disposition.callback_personal.then_some(agent_id).flatten();
            update
                .col_expr(C::NextAttemptAt, Expr::val(due))
                .col_expr(C::CallbackAgentId, Expr::val(personal))
                .col_expr(C::LeaseNode, Expr::val(None::<String>))
                .col_expr(C::LeaseUntil, Expr::val(None::<i64>))
                .exec(&txn)
                .await?;
            callback::ActiveModel {
                campaign_id: Set(row.campaign_id),
                contact_id: Set(row.contact_id),
                agent_id: Set(personal),
                due_at: Set(due),
                disposition_id: Set(saved.id),
                created_at: Set(at),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        } else {
            update
                .col_expr(C::CallbackAgentId, Expr::val(None::<i64>))
                .exec(&txn)
                .await?;
        }
        let after = contact_after(&txn, row.contact_id).await?;
        txn.commit().await?;
        tracing::info!(
            attempt_id,
            contact_id = row.contact_id,
            campaign_id = row.campaign_id,
            kind = %disposition.kind,
            "disposition set"
        );
        Ok(after)
    }

    /// Live answers and abandons of a campaign ended since `since`; exact, and cheap enough to
    /// call every few seconds (whole hours come from per-hour counters, the first partial hour
    /// from the attempts themselves).
    pub async fn abandon_counts(
        &self,
        campaign_id: i64,
        since: DateTime<Utc>,
    ) -> Result<AbandonCounts> {
        let since = ms(since);
        let first_full_hour = since + (HOUR_MS - since.rem_euclid(HOUR_MS)) % HOUR_MS;
        let total = |col: Expr| Func::coalesce([col.sum(), Expr::val(0i64)]).cast_as("BIGINT");
        let full = {
            use abandon_stat::Column as S;
            Query::select()
                .expr_as(total(Expr::col(S::LiveAnswers)), "live")
                .expr_as(total(Expr::col(S::Abandons)), "abandons")
                .from(abandon_stat::Entity)
                .and_where(Expr::col(S::CampaignId).eq(campaign_id))
                .and_where(Expr::col(S::Hour).gte(first_full_hour))
                .take()
        };
        let partial = {
            use attempt::Column as A;
            let abandoned = Expr::case(
                Expr::col(A::Outcome).eq(Outcome::Abandoned.as_str()),
                Expr::val(1i64),
            )
            .finally(Expr::val(0i64));
            Query::select()
                .expr_as(Expr::col(Asterisk).count(), "live")
                .expr_as(total(abandoned.into()), "abandons")
                .from(attempt::Entity)
                .and_where(Expr::col(A::CampaignId).eq(campaign_id))
                .and_where(Expr::col(A::EndedAt).gte(since))
                .and_where(Expr::col(A::EndedAt).lt(first_full_hour))
                .and_where(
                    Expr::col(A::Outcome)
                        .is_in([Outcome::Abandoned.as_str(), Outcome::Connected.as_str()]),
                )
                .take()
        };
        let full = self.db.query_one(&full).await?;
        let partial = self.db.query_one(&partial).await?;
        let mut counts = AbandonCounts::default();
        for row in [full, partial].into_iter().flatten() {
            counts.live_answers += u64::try_from(row.try_get::<i64>("", "live")?).unwrap_or(0);
            counts.abandons += u64::try_from(row.try_get::<i64>("", "abandons")?).unwrap_or(0);
        }
        Ok(counts)
    }

    /// [`Store::abandon_counts`] over the last `window` (24 h or 30 days: the regulator's window).
    pub async fn abandon_counts_over(
        &self,
        campaign_id: i64,
        window: std::time::Duration,
    ) -> Result<AbandonCounts> {
        let window = chrono::Duration::from_std(window)
            .map_err(|_| Error::Invalid("abandon window too long".into()))?;
        self.abandon_counts(campaign_id, crate::db::now() - window)
            .await
    }

    /// One attempt.
    pub async fn attempt(&self, attempt_id: i64) -> Result<Attempt> {
        attempt::Entity::find_by_id(attempt_id)
            .one(&self.db)
            .await?
            .ok_or(Error::NoSuchAttempt(attempt_id))?
            .try_into()
    }
}

/// Where a contact stands, read inside the transaction that changed it.
async fn contact_after<C: ConnectionTrait>(conn: &C, contact_id: i64) -> Result<ContactAfter> {
    use contact::Column as C;
    let (status, attempts, next) = contact::Entity::find_by_id(contact_id)
        .select_only()
        .columns([C::Status, C::Attempts, C::NextAttemptAt])
        .into_tuple::<(String, i32, i64)>()
        .one(conn)
        .await?
        .ok_or(Error::NoSuchContact(contact_id))?;
    let status: ContactStatus = status.parse()?;
    Ok(ContactAfter {
        contact_id,
        status,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: matches!(status, ContactStatus::Pending | ContactStatus::Callback)
            .then(|| from_ms(next)),
    })
}
