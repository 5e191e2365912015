//! Accounts of the HTTP API: users with a role (passwords as argon2id PHC strings), browser
//! sessions and API tokens (both kept as the SHA-256 of a 256-bit random secret, so the
//! database holds nothing that logs anyone in), and the audit log of changes.

use crate::db::{Store, from_ms, ms, now};
use crate::entity::{agent, api_token, audit, session, user};
use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::time::Duration;

/// What a user may do; each role may do what the roles below it may (see docs/api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users, tokens, trunks, legal overrides, the audit log; and everything below.
    Admin,
    /// Campaigns, lists, do-not-call, contacts and reports; and everything below.
    Manager,
    /// Live pacing within a manager's bounds, agents' states, calls in flight.
    Supervisor,
    /// One agent's own state, the call on its line and that contact, dispositions.
    Agent,
}

impl Role {
    /// Every role, highest first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::Supervisor, Role::Agent];

    /// The role's name as stored and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Admin => 3,
            Role::Manager => 2,
            Role::Supervisor => 1,
            Role::Agent => 0,
        }
    }

    /// The lower of two roles.
    pub fn min_with(self, other: Role) -> Role {
        if self.covers(other) { other } else { self }
    }

    /// Whether this role may do what `other` may.
    pub fn covers(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "role `{s}` is not one of admin, manager, supervisor, agent"
                ))
            })
    }
}

/// A new user. Its `Debug` leaves the password out.
#[derive(Clone)]
pub struct NewUser {
    /// Login name (1-64 letters, digits, `.`, `_`, `-`).
    pub username: String,
    /// Password, 8 to 1,024 bytes (only its argon2id hash is stored).
    pub password: String,
    /// Role.
    pub role: Role,
    /// The agent record an agent-role user acts as (required for, and only for, that role).
    pub agent_id: Option<i64>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

/// A stored user (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The agent record of an agent-role user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An API token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    /// Id.
    pub id: i64,
    /// The owner's id.
    pub user_id: i64,
    /// The owner's login name.
    pub username: String,
    /// What it is for.
    pub name: String,
    /// The role it acts with (at most its owner's).
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// End of validity, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token just made: the only time its secret is seen.
#[derive(Clone)]
pub struct NewToken {
    /// The token as listed.
    pub token: ApiToken,
    /// The bearer secret (`dlr_` and 64 hex digits).
    pub secret: String,
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session (its row id).
    Session(i64),
    /// An API token (its id and name).
    Token(i64, String),
    /// The command line on the service's machine (whoever may open the database).
    Cli,
}

/// Who is acting: the user, the role in force (a token's may be lower than its owner's) and
/// the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// The role in force.
    pub role: Role,
    /// How it was proved.
    pub via: Credential,
}

impl Principal {
    /// The command line acting as nobody in particular (`dialer user add`, `dialer dnc ...`).
    pub fn cli() -> Principal {
        Principal {
            user: User {
                id: 0,
                username: "cli".into(),
                role: Role::Admin,
                agent_id: None,
                created_at: DateTime::UNIX_EPOCH,
            },
            role: Role::Admin,
            via: Credential::Cli,
        }
    }

    /// How the audit log names this actor (`user alice`, `token 3 (ci) of alice`, `cli`).
    pub fn actor(&self) -> String {
        match &self.via {
            Credential::Session(_) => format!("user {}", self.user.username),
            Credential::Token(id, name) => {
                format!("token {id} ({name}) of {}", self.user.username)
            }
            Credential::Cli => "cli".into(),
        }
    }

    fn user_id(&self) -> Option<i64> {
        (self.via != Credential::Cli).then_some(self.user.id)
    }

    fn token_id(&self) -> Option<i64> {
        match self.via {
            Credential::Token(id, _) => Some(id),
            _ => None,
        }
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Id (entries are numbered in order).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`user alice`, `token 3 (ci) of alice`, `cli`).
    pub actor: String,
    /// The acting user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The acting token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    /// What was done (`user.create`, `token.revoke`, `campaign.apply`, `campaign.pacing`, ...).
    pub action: String,
    /// On what (a user, a token id, a campaign).
    pub target: String,
    /// The change, without secrets.
    pub detail: serde_json::Value,
}

/// Keys whose values never go into the audit log.
const SECRET_KEYS: [&str; 5] = ["password", "secret", "token", "ha1", "authorization"];

/// `value` with every secret-looking key's value replaced (the audit detail must never hold
/// one, whatever a caller passes).
pub fn redact_secrets(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| lower.contains(s)) && !v.is_null() {
                    (k.clone(), serde_json::Value::String("***".into()))
                } else {
                    (k.clone(), redact_secrets(v))
                }
            })
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(redact_secrets).collect(),
        other => other.clone(),
    }
}

/// A new 256-bit random secret in hex, with a prefix.
fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A random password for accounts a program makes (the demo's): 24 hex digits, 96 bits.
pub fn random_password() -> String {
    new_secret("")[..24].to_owned()
}

/// SHA-256 of a secret, hex: what is stored and looked up. A fast hash is enough for
/// 256-bit random secrets (nothing to guess); passwords get argon2.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Login names: 1-64 letters, digits, `.`, `_` or `-`.
pub fn check_username(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "username `{name}` must be 1-64 letters, digits, `.`, `_` or `-`"
        )))
    }
}

/// Passwords of 8 to 1,024 bytes (the upper bound keeps hashing cheap to refuse).
pub fn check_password(password: &str) -> Result<()> {
    if password.len() < 8 {
        return Err(Error::Invalid(
            "password must be at least 8 characters".into(),
        ));
    }
    if password.len() > 1024 {
        return Err(Error::Invalid("password must be at most 1024 bytes".into()));
    }
    Ok(())
}

/// argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's recommendation), on a
/// blocking thread: it takes tens of milliseconds by design.
async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| Error::Invalid(format!("cannot hash the password: {err}")))
    })
    .await
    .map_err(|err| Error::Task(err.to_string()))?
}

async fn verify_password(password: String, phc: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let Ok(hash) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
    .await
    .map_err(|err| Error::Task(err.to_string()))
}

/// A hash to check unknown users' passwords against, so that a login for a name that does not
/// exist takes as long as one with a wrong password.
async fn decoy_hash() -> Result<String> {
    static DECOY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DECOY.get() {
        return Ok(hash.clone());
    }
    let hash = hash_password(new_secret("")).await?;
    Ok(DECOY.get_or_init(|| hash).clone())
}

fn role_of(stored: &str) -> Result<Role> {
    stored
        .parse()
        .map_err(|_| Error::Corrupt(format!("unknown role `{stored}`")))
}

fn user_from(row: user::Model) -> Result<User> {
    Ok(User {
        id: row.id,
        username: row.username,
        role: role_of(&row.role)?,
        agent_id: row.agent_id,
        created_at: from_ms(row.created_at),
    })
}

impl Store {
    /// Creates a user; the audit log says who did.
    pub async fn create_user(&self, new: &NewUser, by: &Principal) -> Result<User> {
        check_username(&new.username)?;
        check_password(&new.password)?;
        match (new.role, new.agent_id) {
            (Role::Agent, None) => {
                return Err(Error::Invalid(
                    "an agent-role user needs its agent (the SIP agent it acts as)".into(),
                ));
            }
            (role, Some(_)) if role != Role::Agent => {
                return Err(Error::Invalid(format!(
                    "only agent-role users have an agent, not a{} {role}",
                    if role == Role::Admin { "n" } else { "" }
                )));
            }
            _ => {}
        }
        if self.user_by_name(&new.username).await?.is_some() {
            return Err(Error::UserExists(new.username.clone()));
        }
        if let Some(agent_id) = new.agent_id {
            if agent::Entity::find_by_id(agent_id)
                .one(&self.db)
                .await?
                .is_none()
            {
                return Err(Error::NoSuchAgent(agent_id.to_string()));
            }
            if user::Entity::find()
                .filter(user::Column::AgentId.eq(agent_id))
                .one(&self.db)
                .await?
                .is_some()
            {
                return Err(Error::Invalid(format!(
                    "agent {agent_id} belongs to another user already"
                )));
            }
        }
        let hash = hash_password(new.password.clone()).await?;
        let txn = self.write_txn().await?;
        let row = user::ActiveModel {
            username: Set(new.username.clone()),
            role: Set(new.role.as_str().into()),
            password_hash: Set(hash),
            agent_id: Set(new.agent_id),
            created_at: Set(ms(now())),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let user = user_from(row)?;
        audit_in(
            &txn,
            by,
            "user.create",
            &user.username,
            serde_json::json!({"id": user.id, "role": user.role, "agent_id": user.agent_id}),
        )
        .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// The user of this name, if any.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await?
            .map(user_from)
            .transpose()
    }

    /// The user of this id, if any.
    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(user_from)
            .transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?
            .into_iter()
            .map(user_from)
            .collect()
    }

    /// How many users there are (none: `serve` says how to make the first admin).
    pub async fn user_count(&self) -> Result<u64> {
        Ok(user::Entity::find().count(&self.db).await?)
    }

    /// Deletes a user with its sessions and tokens (the last admin cannot be deleted).
    pub async fn delete_user(&self, id: i64, by: &Principal) -> Result<User> {
        let user = self
            .user(id)
            .await?
            .ok_or_else(|| Error::NoSuchUser(id.to_string()))?;
        let txn = self.write_txn().await?;
        if user.role == Role::Admin {
            let admins = user::Entity::find()
                .filter(user::Column::Role.eq(Role::Admin.as_str()))
                .count(&txn)
                .await?;
            if admins <= 1 {
                return Err(Error::Invalid(format!(
                    "`{}` is the last admin: make another admin first",
                    user.username
                )));
            }
        }
        // Explicitly, not only by the foreign keys' cascade: revocation must not depend on
        // the connection's foreign-key setting.
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        api_token::Entity::delete_many()
            .filter(api_token::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        user::Entity::delete_by_id(id).exec(&txn).await?;
        audit_in(
            &txn,
            by,
            "user.delete",
            &user.username,
            serde_json::json!({"id": id, "role": user.role}),
        )
        .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// Sets a user's password; every session of the user ends.
    pub async fn set_user_password(&self, id: i64, password: &str, by: &Principal) -> Result<()> {
        check_password(password)?;
        let user = self
            .user(id)
            .await?
            .ok_or_else(|| Error::NoSuchUser(id.to_string()))?;
        let hash = hash_password(password.to_owned()).await?;
        let txn = self.write_txn().await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::val(hash))
            .filter(user::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        audit_in(
            &txn,
            by,
            "user.password",
            &user.username,
            serde_json::json!({"id": id}),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The user if `password` is theirs. An unknown name costs the same time as a wrong
    /// password.
    pub async fn check_login(&self, username: &str, password: &str) -> Result<Option<User>> {
        let row = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await?;
        let Some(row) = row else {
            let _ = verify_password(password.to_owned(), decoy_hash().await?).await?;
            return Ok(None);
        };
        if verify_password(password.to_owned(), row.password_hash.clone()).await? {
            Ok(Some(user_from(row)?))
        } else {
            Ok(None)
        }
    }

    /// Opens a session for a user: the secret for the cookie and when it ends. Expired
    /// sessions are cleared on the way.
    pub async fn create_session(
        &self,
        user_id: i64,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>)> {
        let secret = new_secret("");
        let at = now();
        let expires = at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
        session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(ms(at)))
            .exec(&self.db)
            .await?;
        session::ActiveModel {
            token_hash: Set(secret_hash(&secret)),
            user_id: Set(user_id),
            created_at: Set(ms(at)),
            expires_at: Set(ms(expires)),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok((secret, expires))
    }

    /// Who holds this session secret, if it is a live session.
    pub async fn session_principal(&self, secret: &str) -> Result<Option<Principal>> {
        let Some(row) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(secret_hash(secret)))
            .filter(session::Column::ExpiresAt.gt(ms(now())))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.user(row.user_id).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            role: user.role,
            user,
            via: Credential::Session(row.id),
        }))
    }

    /// Ends the session with this secret (logging out); true if there was one.
    pub async fn end_session(&self, secret: &str) -> Result<bool> {
        let done = session::Entity::delete_many()
            .filter(session::Column::TokenHash.eq(secret_hash(secret)))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected > 0)
    }

    /// Makes an API token for `user_id` acting with `role` (at most the user's; an agent-role
    /// token only for an agent-role user). The secret is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
        by: &Principal,
    ) -> Result<NewToken> {
        let owner = self
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NoSuchUser(user_id.to_string()))?;
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid(
                "a token's name must be 1-100 characters".into(),
            ));
        }
        if !owner.role.covers(role) {
            return Err(Error::Invalid(format!(
                "a token of `{}` may have at most the role {}, not {role}",
                owner.username, owner.role
            )));
        }
        if role == Role::Agent && owner.agent_id.is_none() {
            return Err(Error::Invalid(format!(
                "`{}` has no agent: an agent-role token needs an agent-role user",
                owner.username
            )));
        }
        let secret = new_secret("dlr_");
        let txn = self.write_txn().await?;
        let row = api_token::ActiveModel {
            token_hash: Set(secret_hash(&secret)),
            user_id: Set(user_id),
            name: Set(name.to_owned()),
            role: Set(role.as_str().into()),
            created_at: Set(ms(now())),
            expires_at: Set(expires_at.map(ms)),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let token = token_from(row, &owner.username)?;
        audit_in(
            &txn,
            by,
            "token.create",
            &token.id.to_string(),
            serde_json::json!({"name": token.name, "user": owner.username, "role": role,
                "expires_at": token.expires_at}),
        )
        .await?;
        txn.commit().await?;
        Ok(NewToken { token, secret })
    }

    /// Tokens, newest first: every user's, or one user's.
    pub async fn tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
        let mut query = api_token::Entity::find().order_by_desc(api_token::Column::Id);
        if let Some(id) = user_id {
            query = query.filter(api_token::Column::UserId.eq(id));
        }
        let names: std::collections::HashMap<i64, String> = self
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                let owner = names.get(&row.user_id).cloned().unwrap_or_default();
                token_from(row, &owner)
            })
            .collect()
    }

    /// One token.
    pub async fn token(&self, id: i64) -> Result<Option<ApiToken>> {
        let Some(row) = api_token::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let owner = self.user(row.user_id).await?.map(|u| u.username);
        token_from(row, &owner.unwrap_or_default()).map(Some)
    }

    /// Revokes a token: the next request bearing it is refused (nothing caches it).
    pub async fn revoke_token(&self, id: i64, by: &Principal) -> Result<ApiToken> {
        let txn = self.write_txn().await?;
        api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Expr::val(ms(now())))
            .filter(api_token::Column::Id.eq(id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        audit_in(
            &txn,
            by,
            "token.revoke",
            &id.to_string(),
            serde_json::json!({"id": id}),
        )
        .await?;
        txn.commit().await?;
        self.token(id).await?.ok_or(Error::NoSuchToken(id))
    }

    /// Who bears this token, if it is live (not revoked, not expired, its owner exists).
    pub async fn token_principal(&self, secret: &str) -> Result<Option<Principal>> {
        let at = ms(now());
        let Some(row) = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(secret_hash(secret)))
            .filter(api_token::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if row.expires_at.is_some_and(|end| end <= at) {
            return Ok(None);
        }
        let Some(user) = self.user(row.user_id).await? else {
            return Ok(None);
        };
        let token_role = role_of(&row.role)?;
        // A token never acts above its owner's current role (the owner may have been lowered).
        let role = if user.role.covers(token_role) {
            token_role
        } else {
            user.role
        };
        Ok(Some(Principal {
            user,
            role,
            via: Credential::Token(row.id, row.name),
        }))
    }

    /// Writes an audit entry (for changes made outside a store transaction, right after them).
    pub async fn audit(
        &self,
        by: &Principal,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        audit_in(&self.db, by, action, target, detail).await
    }

    /// The audit log in order, from after `after_id`, at most `limit` entries.
    pub async fn audit_log(&self, after_id: Option<i64>, limit: u64) -> Result<Vec<AuditEntry>> {
        let mut query = audit::Entity::find().order_by_asc(audit::Column::Id);
        if let Some(after) = after_id {
            query = query.filter(audit::Column::Id.gt(after));
        }
        query
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.id,
                    at: from_ms(row.at),
                    actor: row.actor,
                    user_id: row.user_id,
                    token_id: row.token_id,
                    action: row.action,
                    target: row.target,
                    detail: serde_json::from_str(&row.detail)
                        .map_err(|err| Error::Corrupt(format!("audit detail: {err}")))?,
                })
            })
            .collect()
    }
}

fn token_from(row: api_token::Model, owner: &str) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.id,
        user_id: row.user_id,
        username: owner.to_owned(),
        name: row.name,
        role: role_of(&row.role)?,
        created_at: from_ms(row.created_at),
        expires_at: row.expires_at.map(from_ms),
        revoked_at: row.revoked_at.map(from_ms),
    })
}

/// Writes an audit entry on `conn` (a transaction: the entry commits with the change).
pub(crate) async fn audit_in<C: ConnectionTrait>(
    conn: &C,
    by: &Principal,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    audit::ActiveModel {
        at: Set(ms(now())),
        actor: Set(by.actor()),
        user_id: Set(by.user_id()),
        token_id: Set(by.token_id()),
        action: Set(action.to_owned()),
        target: Set(target.to_owned()),
        detail: Set(redact_secrets(&detail).to_string()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_cover_the_ones_below() {
        assert!(Role::Admin.covers(Role::Agent));
        assert!(Role::Manager.covers(Role::Supervisor));
        assert!(!Role::Supervisor.covers(Role::Manager));
        assert_eq!("manager".parse::<Role>().ok(), Some(Role::Manager));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let detail = serde_json::json!({"trunk": {"password": "x", "uri": "sip:a"},
            "tokens": [{"secret": "y"}], "name": "n"});
        let clean = redact_secrets(&detail);
        assert_eq!(clean["trunk"]["password"], "***");
        assert_eq!(clean["trunk"]["uri"], "sip:a");
        assert_eq!(clean["tokens"], "***");
        assert_eq!(clean["name"], "n");
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_secret("dlr_");
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(a, new_secret("dlr_"));
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
    }

    #[test]
    fn new_user_debug_has_no_password() {
        let new = NewUser {
            username: "u".into(),
            password: "hunter2hunter2".into(),
            role: Role::Admin,
            agent_id: None,
        };
        assert!(!format!("{new:?}").contains("hunter2"));
    }
}
