//! The dialer's database schema as `sea-orm-migration` steps, for SQLite and PostgreSQL.
//!
//! ```no_run
//! use migrations::{Migrator, MigratorTrait};
//! # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::DbErr> {
//! Migrator::up(db, None).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_initial;
mod m20261128_000001_bulk_load;
mod m20261207_000001_agent_digest;
mod m20261208_000001_auth;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_initial::Migration),
            Box::new(m20261128_000001_bulk_load::Migration),
            Box::new(m20261207_000001_agent_digest::Migration),
            Box::new(m20261208_000001_auth::Migration),
        ]
    }
}
