//! Cheaper bulk loads and leases on PostgreSQL (SQLite is left as it is).
//!
//! - The `contacts.campaign_id` foreign key goes. PostgreSQL checks a foreign key with a trigger
//!   per inserted row (a `SELECT ... FOR KEY SHARE` on the campaign): 3.5 s of server CPU per
//!   million imported contacts, as much as the insert itself. Only the import inserts contacts,
//!   and it takes that same lock on the campaign row once per transaction instead, so a
//!   campaign still cannot disappear under an import. SQLite keeps the constraint: its check is
//!   one B-tree probe, and dropping it would mean rebuilding the table.
//! - `contacts.e164`, `contacts.status` and `dnc.e164` compare bytewise (`COLLATE "C"`): they
//!   are ASCII codes, and under a libc locale every comparison (the unique number index, the
//!   lease index, the do-not-call probes) would call `strcoll`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Drops the per-row foreign-key check on contacts and makes number/status columns bytewise.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE contacts DROP CONSTRAINT IF EXISTS contacts_campaign")
            .await?;
        db.execute_unprepared(
            "ALTER TABLE contacts ALTER COLUMN e164 TYPE varchar COLLATE \"C\", \
             ALTER COLUMN status TYPE varchar COLLATE \"C\"",
        )
        .await?;
        db.execute_unprepared("ALTER TABLE dnc ALTER COLUMN e164 TYPE varchar COLLATE \"C\"")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE dnc ALTER COLUMN e164 TYPE varchar COLLATE \"default\"")
            .await?;
        db.execute_unprepared(
            "ALTER TABLE contacts ALTER COLUMN e164 TYPE varchar COLLATE \"default\", \
             ALTER COLUMN status TYPE varchar COLLATE \"default\"",
        )
        .await?;
        db.execute_unprepared(
            "ALTER TABLE contacts ADD CONSTRAINT contacts_campaign FOREIGN KEY (campaign_id) \
             REFERENCES campaigns (id) ON DELETE CASCADE",
        )
        .await?;
        Ok(())
    }
}
