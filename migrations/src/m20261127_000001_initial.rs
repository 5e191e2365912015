//! The initial schema: campaigns, lists, contacts, attempts, agents, dispositions, callbacks and
//! do-not-call entries.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Creates every table of the first release.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    Name,
    Status,
    Spec,
    MaxAttempts,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContactLists {
    Table,
    Id,
    CampaignId,
    Name,
    Columns,
    Imported,
    Duplicates,
    Dnc,
    Rejected,
    Complete,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ZoneSets {
    Table,
    Id,
    Zones,
}

#[derive(DeriveIden)]
enum CampaignZoneSets {
    Table,
    CampaignId,
    ZoneSetId,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    CampaignId,
    ListId,
    E164,
    ZoneSetId,
    Extra,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseNode,
    LeaseUntil,
    LastOutcome,
    LastAttemptAt,
    CallbackAgentId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    CampaignId,
    ContactId,
    NodeId,
    E164,
    StartedAt,
    RingAt,
    EarlyMediaAt,
    AnsweredAt,
    AmdResult,
    AmdAt,
    BridgedAt,
    AgentId,
    EndedAt,
    SipCode,
    Outcome,
    Reason,
    RecordingPath,
}

#[derive(DeriveIden)]
enum AbandonStats {
    Table,
    CampaignId,
    Hour,
    LiveAnswers,
    Abandons,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    Username,
    DisplayName,
    Realm,
    Ha1Md5,
    Ha1Sha256,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AgentCampaigns {
    Table,
    AgentId,
    CampaignId,
}

#[derive(DeriveIden)]
enum Dispositions {
    Table,
    Id,
    AttemptId,
    ContactId,
    CampaignId,
    AgentId,
    Kind,
    Note,
    CallbackAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Callbacks {
    Table,
    Id,
    CampaignId,
    ContactId,
    AgentId,
    DueAt,
    DispositionId,
    DoneAt,
    DoneAttemptId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Dnc {
    Table,
    Id,
    E164,
    CampaignId,
    Source,
    CreatedAt,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Campaigns::Table)
                .col(big_pk_auto(Campaigns::Id))
                .col(string_uniq(Campaigns::Name))
                .col(string(Campaigns::Status))
                .col(text(Campaigns::Spec))
                .col(integer(Campaigns::MaxAttempts))
                .col(big_integer(Campaigns::CreatedAt))
                .col(big_integer(Campaigns::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ContactLists::Table)
                .col(big_pk_auto(ContactLists::Id))
                .col(big_integer(ContactLists::CampaignId))
                .col(string(ContactLists::Name))
                .col(text(ContactLists::Columns))
                .col(big_integer(ContactLists::Imported).default(0))
                .col(big_integer(ContactLists::Duplicates).default(0))
                .col(big_integer(ContactLists::Dnc).default(0))
                .col(big_integer(ContactLists::Rejected).default(0))
                .col(boolean(ContactLists::Complete).default(false))
                .col(big_integer(ContactLists::CreatedAt))
                .foreign_key(&mut fk(
                    "contact_lists_campaign",
                    (ContactLists::Table, ContactLists::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                ))
                .to_owned(),
        )
        .await?;

        // A zone set is the sorted, comma-separated list of IANA zones of a number prefix; contacts
        // point at one so the lease query can filter on a small integer.
        m.create_table(
            Table::create()
                .table(ZoneSets::Table)
                .col(big_pk_auto(ZoneSets::Id))
                .col(string_uniq(ZoneSets::Zones))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CampaignZoneSets::Table)
                .col(big_integer(CampaignZoneSets::CampaignId))
                .col(big_integer(CampaignZoneSets::ZoneSetId))
                .primary_key(
                    Index::create()
                        .col(CampaignZoneSets::CampaignId)
                        .col(CampaignZoneSets::ZoneSetId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Contacts::Table)
                .col(big_pk_auto(Contacts::Id))
                .col(big_integer(Contacts::CampaignId))
                .col(big_integer_null(Contacts::ListId))
                .col(string(Contacts::E164))
                .col(big_integer(Contacts::ZoneSetId))
                .col(text(Contacts::Extra))
                .col(string(Contacts::Status))
                .col(integer(Contacts::Attempts).default(0))
                .col(big_integer(Contacts::NextAttemptAt))
                .col(string_null(Contacts::LeaseNode))
                .col(big_integer_null(Contacts::LeaseUntil))
                .col(string_null(Contacts::LastOutcome))
                .col(big_integer_null(Contacts::LastAttemptAt))
                .col(big_integer_null(Contacts::CallbackAgentId))
                .col(big_integer(Contacts::CreatedAt))
                .foreign_key(&mut fk(
                    "contacts_campaign",
                    (Contacts::Table, Contacts::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                ))
                .to_owned(),
        )
        .await?;
        // One number once per campaign; also serves "every contact with this number" for DNC.
        m.create_index(
            Index::create()
                .name("contacts_number")
                .table(Contacts::Table)
                .col(Contacts::E164)
                .col(Contacts::CampaignId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The hot query: due contacts of a campaign, per open zone set, oldest first.
        m.create_index(
            Index::create()
                .name("contacts_due")
                .table(Contacts::Table)
                .col(Contacts::CampaignId)
                .col(Contacts::Status)
                .col(Contacts::ZoneSetId)
                .col(Contacts::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        // Leased rows are few: a partial index finds a node's leases without slowing imports.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX contacts_leased ON contacts (lease_node) WHERE lease_node IS NOT NULL",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(Attempts::Table)
                .col(big_pk_auto(Attempts::Id))
                .col(big_integer(Attempts::CampaignId))
                .col(big_integer(Attempts::ContactId))
                .col(string(Attempts::NodeId))
                .col(string(Attempts::E164))
                .col(big_integer(Attempts::StartedAt))
                .col(big_integer_null(Attempts::RingAt))
                .col(big_integer_null(Attempts::EarlyMediaAt))
                .col(big_integer_null(Attempts::AnsweredAt))
                .col(string_null(Attempts::AmdResult))
                .col(big_integer_null(Attempts::AmdAt))
                .col(big_integer_null(Attempts::BridgedAt))
                .col(big_integer_null(Attempts::AgentId))
                .col(big_integer_null(Attempts::EndedAt))
                .col(integer_null(Attempts::SipCode))
                .col(string_null(Attempts::Outcome))
                .col(text_null(Attempts::Reason))
                .col(text_null(Attempts::RecordingPath))
                .foreign_key(&mut fk(
                    "attempts_campaign",
                    (Attempts::Table, Attempts::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                ))
                .foreign_key(&mut fk(
                    "attempts_contact",
                    (Attempts::Table, Attempts::ContactId),
                    (Contacts::Table, Contacts::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("attempts_started")
                .table(Attempts::Table)
                .col(Attempts::CampaignId)
                .col(Attempts::StartedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("attempts_ended")
                .table(Attempts::Table)
                .col(Attempts::CampaignId)
                .col(Attempts::EndedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("attempts_contact")
                .table(Attempts::Table)
                .col(Attempts::ContactId)
                .to_owned(),
        )
        .await?;

        // Live answers and abandons per campaign and hour, kept up to date with each outcome so
        // the 30-day abandon rate is a sum over at most 720 rows.
        m.create_table(
            Table::create()
                .table(AbandonStats::Table)
                .col(big_integer(AbandonStats::CampaignId))
                .col(big_integer(AbandonStats::Hour))
                .col(big_integer(AbandonStats::LiveAnswers).default(0))
                .col(big_integer(AbandonStats::Abandons).default(0))
                .primary_key(
                    Index::create()
                        .col(AbandonStats::CampaignId)
                        .col(AbandonStats::Hour),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Agents::Table)
                .col(big_pk_auto(Agents::Id))
                .col(string_uniq(Agents::Username))
                .col(string(Agents::DisplayName))
                .col(string(Agents::Realm))
                .col(string(Agents::Ha1Md5))
                .col(string(Agents::Ha1Sha256))
                .col(big_integer(Agents::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AgentCampaigns::Table)
                .col(big_integer(AgentCampaigns::AgentId))
                .col(big_integer(AgentCampaigns::CampaignId))
                .primary_key(
                    Index::create()
                        .col(AgentCampaigns::AgentId)
                        .col(AgentCampaigns::CampaignId),
                )
                .foreign_key(&mut fk(
                    "agent_campaigns_agent",
                    (AgentCampaigns::Table, AgentCampaigns::AgentId),
                    (Agents::Table, Agents::Id),
                ))
                .foreign_key(&mut fk(
                    "agent_campaigns_campaign",
                    (AgentCampaigns::Table, AgentCampaigns::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Dispositions::Table)
                .col(big_pk_auto(Dispositions::Id))
                .col(big_integer(Dispositions::AttemptId))
                .col(big_integer(Dispositions::ContactId))
                .col(big_integer(Dispositions::CampaignId))
                .col(big_integer_null(Dispositions::AgentId))
                .col(string(Dispositions::Kind))
                .col(text_null(Dispositions::Note))
                .col(big_integer_null(Dispositions::CallbackAt))
                .col(big_integer(Dispositions::CreatedAt))
                .foreign_key(&mut fk(
                    "dispositions_attempt",
                    (Dispositions::Table, Dispositions::AttemptId),
                    (Attempts::Table, Attempts::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("dispositions_attempt")
                .table(Dispositions::Table)
                .col(Dispositions::AttemptId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Callbacks::Table)
                .col(big_pk_auto(Callbacks::Id))
                .col(big_integer(Callbacks::CampaignId))
                .col(big_integer(Callbacks::ContactId))
                .col(big_integer_null(Callbacks::AgentId))
                .col(big_integer(Callbacks::DueAt))
                .col(big_integer(Callbacks::DispositionId))
                .col(big_integer_null(Callbacks::DoneAt))
                .col(big_integer_null(Callbacks::DoneAttemptId))
                .col(big_integer(Callbacks::CreatedAt))
                .foreign_key(&mut fk(
                    "callbacks_contact",
                    (Callbacks::Table, Callbacks::ContactId),
                    (Contacts::Table, Contacts::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("callbacks_contact")
                .table(Callbacks::Table)
                .col(Callbacks::ContactId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("callbacks_campaign_due")
                .table(Callbacks::Table)
                .col(Callbacks::CampaignId)
                .col(Callbacks::DueAt)
                .to_owned(),
        )
        .await?;

        // campaign_id 0 is the global list: a plain column (no NULL) keeps the unique index
        // meaningful on both databases.
        m.create_table(
            Table::create()
                .table(Dnc::Table)
                .col(big_pk_auto(Dnc::Id))
                .col(string(Dnc::E164))
                .col(big_integer(Dnc::CampaignId).default(0))
                .col(string_null(Dnc::Source))
                .col(big_integer(Dnc::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("dnc_number")
                .table(Dnc::Table)
                .col(Dnc::E164)
                .col(Dnc::CampaignId)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Dnc::Table.into_iden(),
            Callbacks::Table.into_iden(),
            Dispositions::Table.into_iden(),
            AgentCampaigns::Table.into_iden(),
            Agents::Table.into_iden(),
            AbandonStats::Table.into_iden(),
            Attempts::Table.into_iden(),
            Contacts::Table.into_iden(),
            CampaignZoneSets::Table.into_iden(),
            ZoneSets::Table.into_iden(),
            ContactLists::Table.into_iden(),
            Campaigns::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
