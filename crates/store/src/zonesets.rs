//! Zone sets in the database: interning keys to ids, and the zone sets a campaign uses.

use crate::db::Store;
use crate::entity::{campaign_zone_set, zone_set};
use crate::error::{Error, Result};
use chrono_tz::Tz;
use domain::zones::parse_zone_set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use std::sync::Arc;

impl Store {
    /// The id of a zone-set key, inserting it on first use.
    pub(crate) async fn zone_set_id<C: ConnectionTrait>(&self, conn: &C, key: &str) -> Result<i64> {
        if let Some(id) = self.cached_zone_id(key) {
            return Ok(id);
        }
        zone_set::Entity::insert(zone_set::ActiveModel {
            zones: Set(key.to_owned()),
            ..Default::default()
        })
        .on_conflict_do_nothing_on([zone_set::Column::Zones])
        .exec_without_returning(conn)
        .await?;
        let id = zone_set::Entity::find()
            .select_only()
            .column(zone_set::Column::Id)
            .filter(zone_set::Column::Zones.eq(key))
            .into_tuple::<i64>()
            .one(conn)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("zone set `{key}` vanished")))?;
        let zones = parse_zone_set(key).map_err(Error::Invalid)?;
        if let Ok(mut cache) = self.zone_cache.lock() {
            cache.by_key.insert(key.to_owned(), id);
            cache.by_id.insert(id, zones.into());
        }
        Ok(id)
    }

    fn cached_zone_id(&self, key: &str) -> Option<i64> {
        self.zone_cache.lock().ok()?.by_key.get(key).copied()
    }

    /// The zones of a zone-set id (from the cache, else the database).
    pub(crate) async fn zones_of(&self, id: i64) -> Result<Arc<[Tz]>> {
        if let Some(zones) = self
            .zone_cache
            .lock()
            .ok()
            .and_then(|cache| cache.by_id.get(&id).cloned())
        {
            return Ok(zones);
        }
        let key = zone_set::Entity::find_by_id(id)
            .select_only()
            .column(zone_set::Column::Zones)
            .into_tuple::<String>()
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("zone set {id} missing")))?;
        let zones: Arc<[Tz]> = parse_zone_set(&key)
            .map_err(|err| Error::Corrupt(format!("zone set {id}: {err}")))?
            .into();
        if let Ok(mut cache) = self.zone_cache.lock() {
            cache.by_key.insert(key, id);
            cache.by_id.insert(id, zones.clone());
        }
        Ok(zones)
    }

    /// The zone sets used by a campaign's contacts, with their zones.
    pub(crate) async fn campaign_zone_sets(
        &self,
        campaign_id: i64,
    ) -> Result<Vec<(i64, Arc<[Tz]>)>> {
        let ids = campaign_zone_set::Entity::find()
            .select_only()
            .column(campaign_zone_set::Column::ZoneSetId)
            .filter(campaign_zone_set::Column::CampaignId.eq(campaign_id))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?;
        let mut sets = Vec::with_capacity(ids.len());
        for id in ids {
            sets.push((id, self.zones_of(id).await?));
        }
        Ok(sets)
    }

    /// Records that a campaign has contacts in these zone sets (idempotent).
    pub(crate) async fn register_campaign_zone_sets<C: ConnectionTrait>(
        &self,
        conn: &C,
        campaign_id: i64,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<()> {
        for id in ids {
            campaign_zone_set::Entity::insert(campaign_zone_set::ActiveModel {
                campaign_id: Set(campaign_id),
                zone_set_id: Set(id),
            })
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
        }
        Ok(())
    }
}
