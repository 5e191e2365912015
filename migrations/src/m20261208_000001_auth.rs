//! Accounts of the HTTP API: users with a role, browser sessions, API tokens and the audit log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Creates `users`, `sessions`, `api_tokens` and `audit_log`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Role,
    PasswordHash,
    AgentId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    TokenHash,
    UserId,
    Name,
    Role,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    UserId,
    TokenId,
    Action,
    Target,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(big_pk_auto(Users::Id))
                .col(string_uniq(Users::Username))
                .col(string(Users::Role))
                // An argon2id PHC string: algorithm, parameters, salt and hash together.
                .col(string(Users::PasswordHash))
                // An agent-role user's SIP agent (its digest credentials stay on `agents`).
                .col(big_integer_null(Users::AgentId).unique_key())
                .col(big_integer(Users::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_users_agent")
                        .from(Users::Table, Users::AgentId)
                        .to(Agents::Table, Agents::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        // Session ids and tokens are stored as SHA-256 hex only: a copy of the database gives
        // no one a way in.
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(big_pk_auto(Sessions::Id))
                .col(string_uniq(Sessions::TokenHash))
                .col(big_integer(Sessions::UserId))
                .col(big_integer(Sessions::CreatedAt))
                .col(big_integer(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sessions_user")
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(big_pk_auto(ApiTokens::Id))
                .col(string_uniq(ApiTokens::TokenHash))
                .col(big_integer(ApiTokens::UserId))
                .col(string(ApiTokens::Name))
                .col(string(ApiTokens::Role))
                .col(big_integer(ApiTokens::CreatedAt))
                .col(big_integer_null(ApiTokens::ExpiresAt))
                .col(big_integer_null(ApiTokens::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_api_tokens_user")
                        .from(ApiTokens::Table, ApiTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // No foreign keys: an entry outlives the user or token it names.
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(big_integer(AuditLog::At))
                .col(string(AuditLog::Actor))
                .col(big_integer_null(AuditLog::UserId))
                .col(big_integer_null(AuditLog::TokenId))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::Target))
                .col(text(AuditLog::Detail))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
