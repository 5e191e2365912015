//! An agent's own digest algorithms: the phones that cannot answer the service's challenges
//! (baresip gives up on any algorithm it does not know) are offered this list instead.

use sea_orm_migration::prelude::*;

/// Adds `agents.digest_algorithms` (names, comma-separated, preferred first; NULL: the
/// service's list).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    DigestAlgorithms,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Agents::Table)
                .add_column(ColumnDef::new(Agents::DigestAlgorithms).string().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Agents::Table)
                .drop_column(Agents::DigestAlgorithms)
                .to_owned(),
        )
        .await
    }
}
