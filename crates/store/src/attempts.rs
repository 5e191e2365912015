//! Call attempts: start, each step of the call's life, the final outcome, the agent's
//! disposition, and abandon-rate accounting.

use crate::db::{Store, exec, query};
use crate::entity::{attempt, callback, disposition};
use crate::error::{Error, Result};
use crate::types::{AmdResult, ContactStatus, DispositionKind, Outcome, from_ms, ms};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, EntityTrait, QuerySelect, Set};
use serde::Serialize;

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

/// Where the contact stands after an attempt or a disposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContactAfter {
    /// Contact id.
    pub contact_id: i64,
    /// New status.
    pub status: ContactStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it is due again (pending and callback contacts).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An agent's disposition of a connected call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// What happened.
    pub kind: DispositionKind,
    /// Free text.
    pub note: Option<String>,
    /// For [`DispositionKind::Callback`]: when to call back.
    pub callback_at: Option<DateTime<Utc>>,
    /// For a callback: only this agent takes it (otherwise anyone).
    pub callback_personal: bool,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        let row = self
            .query_one(
                "INSERT INTO attempts (campaign_id, contact_id, node_id, e164, started_at) \
                 SELECT c.campaign_id, c.id, $1, c.e164, $2 FROM contacts c \
                 WHERE c.id = $3 AND NOT EXISTS (SELECT 1 FROM dnc d \
                   WHERE d.e164 = c.e164 AND d.campaign_id IN (0, c.campaign_id)) \
                 RETURNING id, campaign_id",
                vec![node_id.into(), ms(started_at).into(), contact_id.into()],
            )
            .await?;
        let Some(row) = row else {
            let contact = self
                .query_one(
                    "SELECT e164 FROM contacts WHERE id = $1",
                    vec![contact_id.into()],
                )
                .await?
                .ok_or(Error::NoSuchContact(contact_id))?;
            return Err(Error::DoNotCall(contact.try_get("", "e164")?));
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
        let at = ms(at);
        let (sql, values): (&str, Vec<sea_orm::Value>) = match event {
            AttemptEvent::Ringing => (
                "UPDATE attempts SET ring_at = COALESCE(ring_at, $1) WHERE id = $2",
                vec![at.into(), attempt_id.into()],
            ),
            AttemptEvent::EarlyMedia => (
                "UPDATE attempts SET early_media_at = COALESCE(early_media_at, $1) WHERE id = $2",
                vec![at.into(), attempt_id.into()],
            ),
            AttemptEvent::Answered => (
                "UPDATE attempts SET answered_at = $1 WHERE id = $2",
                vec![at.into(), attempt_id.into()],
            ),
            AttemptEvent::Amd(result) => (
                "UPDATE attempts SET amd_result = $1, amd_at = $2 WHERE id = $3",
                vec![result.as_str().into(), at.into(), attempt_id.into()],
            ),
            AttemptEvent::Bridged { agent_id } => (
                "UPDATE attempts SET bridged_at = $1, agent_id = $2 WHERE id = $3",
                vec![at.into(), agent_id.into(), attempt_id.into()],
            ),
            AttemptEvent::Recording { path } => (
                "UPDATE attempts SET recording_path = $1 WHERE id = $2",
                vec![path.into(), attempt_id.into()],
            ),
        };
        if self.execute(sql, values).await? == 0 {
            return Err(Error::NoSuchAttempt(attempt_id));
        }
        Ok(())
    }

    /// Records how an attempt ended, in one transaction: the attempt row, the contact's status,
    /// attempts and next attempt under the campaign's retry rules, the abandon counters, and
    /// the lease cleared.
    pub async fn finish_attempt(&self, attempt_id: i64, finish: &Finish) -> Result<ContactAfter> {
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
        let campaign = crate::entity::campaign::Entity::find_by_id(row.campaign_id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::NoSuchCampaign(row.campaign_id.to_string()))
            .and_then(crate::campaigns::Campaign::try_from)?;
        let ended = ms(finish.ended_at);
        exec(
            &txn,
            "UPDATE attempts SET ended_at = $1, outcome = $2, sip_code = $3, reason = $4 WHERE id = $5",
            vec![
                ended.into(),
                finish.outcome.as_str().into(),
                finish.sip_code.map(i32::from).into(),
                finish.reason.clone().into(),
                attempt_id.into(),
            ],
        )
        .await?;

        // Locked too: a do-not-call entry committed between this read and the update below
        // would otherwise be overwritten with a retry (PostgreSQL; SQLite's writers take turns).
        let lock = match self.backend {
            crate::db::Backend::Postgres => " FOR UPDATE",
            crate::db::Backend::Sqlite => "",
        };
        let contact = query(
            &txn,
            &format!("SELECT status, attempts FROM contacts WHERE id = $1{lock}"),
            vec![row.contact_id.into()],
        )
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NoSuchContact(row.contact_id))?;
        let old_status: ContactStatus = contact.try_get::<String>("", "status")?.parse()?;
        let attempts = u32::try_from(contact.try_get::<i32>("", "attempts")?).unwrap_or(0) + 1;
        // An agent who already set a disposition on this call has decided the contact's fate.
        let disposed = !query(
            &txn,
            "SELECT id FROM dispositions WHERE attempt_id = $1",
            vec![attempt_id.into()],
        )
        .await?
        .is_empty();

        let (status, next) = if disposed || old_status == ContactStatus::Dnc {
            (None, None)
        } else {
            match finish.outcome {
                Outcome::Connected | Outcome::MachineMessageLeft => {
                    (Some(ContactStatus::Done), None)
                }
                Outcome::InvalidNumber => (Some(ContactStatus::Invalid), None),
                Outcome::DoNotCall => {
                    self.add_dnc_in(&txn, 0, &row.e164, "opt-out", ended)
                        .await?;
                    (Some(ContactStatus::Dnc), None)
                }
                retryable => {
                    let rule = campaign.spec.retry_rule(retryable);
                    let global = campaign.spec.retry.max_attempts;
                    let max = rule
                        .and_then(|r| r.max_attempts)
                        .map_or(global, |m| m.min(global));
                    match rule {
                        Some(rule) if attempts < max => {
                            let again = if old_status == ContactStatus::Callback {
                                ContactStatus::Callback
                            } else {
                                ContactStatus::Pending
                            };
                            (Some(again), Some(ended + rule.delay.as_millis_i64()))
                        }
                        _ => (Some(ContactStatus::Exhausted), None),
                    }
                }
            }
        };
        exec(
            &txn,
            "UPDATE contacts SET attempts = $1, last_outcome = $2, last_attempt_at = $3, \
             status = COALESCE($4, status), next_attempt_at = COALESCE($5, next_attempt_at), \
             lease_node = CASE WHEN lease_node = $6 THEN NULL ELSE lease_node END, \
             lease_until = CASE WHEN lease_node = $6 THEN NULL ELSE lease_until END \
             WHERE id = $7",
            vec![
                i32::try_from(attempts).unwrap_or(i32::MAX).into(),
                finish.outcome.as_str().into(),
                ms(from_ms(row.started_at)).into(),
                status.map(|s| s.as_str().to_owned()).into(),
                next.into(),
                row.node_id.clone().into(),
                row.contact_id.into(),
            ],
        )
        .await?;
        if old_status == ContactStatus::Callback {
            exec(
                &txn,
                "UPDATE callbacks SET done_at = $1, done_attempt_id = $2 \
                 WHERE contact_id = $3 AND done_at IS NULL",
                vec![ended.into(), attempt_id.into(), row.contact_id.into()],
            )
            .await?;
        }
        if finish.outcome.is_live_answer() {
            let abandoned = i64::from(finish.outcome == Outcome::Abandoned);
            exec(
                &txn,
                "INSERT INTO abandon_stats (campaign_id, hour, live_answers, abandons) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (campaign_id, hour) DO UPDATE SET \
                 live_answers = abandon_stats.live_answers + 1, \
                 abandons = abandon_stats.abandons + excluded.abandons",
                vec![
                    row.campaign_id.into(),
                    (ended - ended.rem_euclid(HOUR_MS)).into(),
                    abandoned.into(),
                ],
            )
            .await?;
        }
        let after = contact_after(&txn, row.contact_id).await?;
        txn.commit().await?;
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
        if disposition.kind == DispositionKind::Callback && disposition.callback_at.is_none() {
            return Err(Error::Invalid("a callback needs callback_at".into()));
        }
        if disposition.callback_personal && agent_id.is_none() {
            return Err(Error::Invalid(
                "a personal callback needs the agent who promised it".into(),
            ));
        }
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

        let set_status = |status: ContactStatus| {
            exec(
                &txn,
                "UPDATE contacts SET status = $1, callback_agent_id = NULL WHERE id = $2",
                vec![status.as_str().into(), row.contact_id.into()],
            )
        };
        match disposition.kind {
            DispositionKind::Sale | DispositionKind::NotInterested | DispositionKind::Other => {
                set_status(ContactStatus::Done).await?;
            }
            DispositionKind::WrongNumber => {
                set_status(ContactStatus::Invalid).await?;
            }
            DispositionKind::DoNotCall => {
                self.add_dnc_in(&txn, 0, &row.e164, "disposition", at)
                    .await?;
                set_status(ContactStatus::Dnc).await?;
            }
            DispositionKind::Callback => {
                let due = callback_at.unwrap_or(at);
                let personal = disposition.callback_personal.then_some(agent_id).flatten();
                exec(
                    &txn,
                    "UPDATE contacts SET status = $1, next_attempt_at = $2, callback_agent_id = $3, \
                     lease_node = NULL, lease_until = NULL WHERE id = $4",
                    vec![
                        ContactStatus::Callback.as_str().into(),
                        due.into(),
                        personal.into(),
                        row.contact_id.into(),
                    ],
                )
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
            }
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
        let full = self
            .query_one(
                "SELECT CAST(COALESCE(SUM(live_answers), 0) AS BIGINT) AS live, \
                 CAST(COALESCE(SUM(abandons), 0) AS BIGINT) AS abandons \
                 FROM abandon_stats WHERE campaign_id = $1 AND hour >= $2",
                vec![campaign_id.into(), first_full_hour.into()],
            )
            .await?;
        let partial = self
            .query_one(
                "SELECT COUNT(*) AS live, \
                 CAST(COALESCE(SUM(CASE WHEN outcome = $4 THEN 1 ELSE 0 END), 0) AS BIGINT) AS abandons \
                 FROM attempts WHERE campaign_id = $1 AND ended_at >= $2 AND ended_at < $3 \
                 AND outcome IN ($4, $5)",
                vec![
                    campaign_id.into(),
                    since.into(),
                    first_full_hour.into(),
                    Outcome::Abandoned.as_str().into(),
                    Outcome::Connected.as_str().into(),
                ],
            )
            .await?;
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

async fn contact_after(txn: &DatabaseTransaction, contact_id: i64) -> Result<ContactAfter> {
    let row = query(
        txn,
        "SELECT status, attempts, next_attempt_at FROM contacts WHERE id = $1",
        vec![contact_id.into()],
    )
    .await?
    .into_iter()
    .next()
    .ok_or(Error::NoSuchContact(contact_id))?;
    let status: ContactStatus = row.try_get::<String>("", "status")?.parse()?;
    let next: i64 = row.try_get("", "next_attempt_at")?;
    Ok(ContactAfter {
        contact_id,
        status,
        attempts: u32::try_from(row.try_get::<i32>("", "attempts")?).unwrap_or(0),
        next_attempt_at: matches!(status, ContactStatus::Pending | ContactStatus::Callback)
            .then(|| from_ms(next)),
    })
}
