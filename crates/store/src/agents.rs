//! Agents: accounts, SIP digest credentials, campaign assignment.

use crate::db::{Store, now};
use crate::db::{from_ms, ms};
use crate::entity::{agent, agent_campaign};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use md5::Md5;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A new agent account.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Login and SIP user name (letters, digits, `.`, `_`, `-`).
    pub username: String,
    /// Name shown to supervisors.
    pub display_name: String,
    /// SIP password (only its digest hashes are stored).
    pub password: String,
    /// SIP digest realm of the dialer's registrar.
    pub realm: String,
    /// Campaigns the agent works on.
    pub campaigns: Vec<i64>,
}

/// A stored agent. The password itself is never stored: only the digest HA1 values, which
/// are what a registrar needs to check a SIP `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// Id.
    pub id: i64,
    /// Login and SIP user name.
    pub username: String,
    /// Name shown to supervisors.
    pub display_name: String,
    /// Digest realm the hashes are for.
    pub realm: String,
    /// HA1 for `algorithm=MD5`: hex MD5 of `username:realm:password`.
    #[serde(skip)]
    pub ha1_md5: String,
    /// HA1 for `algorithm=SHA-256`: hex SHA-256 of `username:realm:password`.
    #[serde(skip)]
    pub ha1_sha256: String,
    /// Campaigns the agent works on.
    pub campaigns: Vec<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Digest algorithm names offered to this agent's phone instead of the service's,
    /// preferred first (`None`: the service's). The store keeps the names as given; the
    /// engine checks them.
    pub digest_algorithms: Option<Vec<String>>,
}

/// Digest HA1 values of `username:realm:password` (RFC 7616): (MD5, SHA-256), lowercase hex.
pub fn digest_ha1(username: &str, realm: &str, password: &str) -> (String, String) {
    let input = format!("{username}:{realm}:{password}");
    (
        hex::encode(Md5::digest(input.as_bytes())),
        hex::encode(Sha256::digest(input.as_bytes())),
    )
}

impl Store {
    /// Creates an agent.
    pub async fn create_agent(&self, new: &NewAgent) -> Result<Agent> {
        let valid = !new.username.is_empty()
            && new.username.len() <= 64
            && new
                .username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Error::Invalid(format!(
                "agent username `{}` must be 1-64 letters, digits, `.`, `_` or `-`",
                new.username
            )));
        }
        if new.password.len() < 8 {
            return Err(Error::Invalid(
                "agent SIP password must be at least 8 characters".into(),
            ));
        }
        if self.agent_by_username(&new.username).await?.is_some() {
            return Err(Error::AgentExists(new.username.clone()));
        }
        let (md5, sha256) = digest_ha1(&new.username, &new.realm, &new.password);
        let txn = self.write_txn().await?;
        let row = agent::ActiveModel {
            username: Set(new.username.clone()),
            display_name: Set(new.display_name.clone()),
            realm: Set(new.realm.clone()),
            ha1_md5: Set(md5),
            ha1_sha256: Set(sha256),
            created_at: Set(ms(now())),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        for campaign_id in &new.campaigns {
            link(row.id, *campaign_id)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        self.agent_from(row).await
    }

    /// The agent with this username, if any.
    pub async fn agent_by_username(&self, username: &str) -> Result<Option<Agent>> {
        match agent::Entity::find()
            .filter(agent::Column::Username.eq(username))
            .one(&self.db)
            .await?
        {
            Some(row) => Ok(Some(self.agent_from(row).await?)),
            None => Ok(None),
        }
    }

    /// Every agent, by username.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        let rows = agent::Entity::find()
            .order_by_asc(agent::Column::Username)
            .all(&self.db)
            .await?;
        let mut agents = Vec::with_capacity(rows.len());
        for row in rows {
            agents.push(self.agent_from(row).await?);
        }
        Ok(agents)
    }

    /// Agents assigned to a campaign.
    pub async fn campaign_agents(&self, campaign_id: i64) -> Result<Vec<Agent>> {
        let mut agents = Vec::new();
        for link in agent_campaign::Entity::find()
            .filter(agent_campaign::Column::CampaignId.eq(campaign_id))
            .all(&self.db)
            .await?
        {
            if let Some(row) = agent::Entity::find_by_id(link.agent_id)
                .one(&self.db)
                .await?
            {
                agents.push(self.agent_from(row).await?);
            }
        }
        agents.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(agents)
    }

    /// Puts an agent on a campaign (or takes them off).
    pub async fn assign_agent(
        &self,
        agent_id: i64,
        campaign_id: i64,
        assigned: bool,
    ) -> Result<()> {
        if assigned {
            link(agent_id, campaign_id)
                .exec_without_returning(&self.db)
                .await?;
        } else {
            agent_campaign::Entity::delete_many()
                .filter(agent_campaign::Column::AgentId.eq(agent_id))
                .filter(agent_campaign::Column::CampaignId.eq(campaign_id))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Changes an agent's SIP password.
    pub async fn set_agent_password(&self, username: &str, password: &str) -> Result<()> {
        let agent = self
            .agent_by_username(username)
            .await?
            .ok_or_else(|| Error::NoSuchAgent(username.to_owned()))?;
        if password.len() < 8 {
            return Err(Error::Invalid(
                "agent SIP password must be at least 8 characters".into(),
            ));
        }
        let (md5, sha256) = digest_ha1(username, &agent.realm, password);
        agent::Entity::update_many()
            .col_expr(agent::Column::Ha1Md5, Expr::val(md5))
            .col_expr(agent::Column::Ha1Sha256, Expr::val(sha256))
            .filter(agent::Column::Id.eq(agent.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Sets the digest algorithms offered to an agent's phone (`None`: the service's).
    pub async fn set_agent_digest_algorithms(
        &self,
        agent_id: i64,
        algorithms: Option<&[String]>,
    ) -> Result<()> {
        if let Some(names) = algorithms
            && (names.is_empty() || names.iter().any(|n| n.is_empty() || n.contains(',')))
        {
            return Err(Error::Invalid(
                "digest algorithms must be a non-empty list of names without commas".into(),
            ));
        }
        let value = algorithms.map(|names| names.join(","));
        let done = agent::Entity::update_many()
            .col_expr(agent::Column::DigestAlgorithms, Expr::val(value))
            .filter(agent::Column::Id.eq(agent_id))
            .exec(&self.db)
            .await?;
        if done.rows_affected == 0 {
            return Err(Error::NoSuchAgent(agent_id.to_string()));
        }
        Ok(())
    }

    async fn agent_from(&self, row: agent::Model) -> Result<Agent> {
        let campaigns = agent_campaign::Entity::find()
            .filter(agent_campaign::Column::AgentId.eq(row.id))
            .order_by_asc(agent_campaign::Column::CampaignId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|link| link.campaign_id)
            .collect();
        Ok(Agent {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            realm: row.realm,
            ha1_md5: row.ha1_md5,
            ha1_sha256: row.ha1_sha256,
            campaigns,
            created_at: from_ms(row.created_at),
            digest_algorithms: row.digest_algorithms.map(|names| {
                names
                    .split(',')
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
                    .collect()
            }),
        })
    }
}

/// Puts an agent on a campaign; a link that exists already is left as it is.
fn link(agent_id: i64, campaign_id: i64) -> sea_orm::TryInsert<agent_campaign::ActiveModel> {
    agent_campaign::Entity::insert(agent_campaign::ActiveModel {
        agent_id: Set(agent_id),
        campaign_id: Set(campaign_id),
    })
    .on_conflict_do_nothing()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ha1_matches_rfc_2617_example() {
        // RFC 2617 section 3.5: Mufasa / testrealm@host.com / Circle Of Life.
        let (md5, _) = super::digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(md5, "939e7578ed9e3c518a452acee763bce9");
    }
}
