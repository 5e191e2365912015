//! Zone sets in the database: interning keys to ids, and the zone sets a campaign uses.

use crate::db::{Store, exec, query};
use crate::error::{Error, Result};
use crate::zones::parse_zone_set;
use chrono_tz::Tz;
use sea_orm::ConnectionTrait;
use std::sync::Arc;

impl Store {
    /// The id of a zone-set key, inserting it on first use.
    pub(crate) async fn zone_set_id<C: ConnectionTrait>(&self, conn: &C, key: &str) -> Result<i64> {
        if let Some(id) = self.cached_zone_id(key) {
            return Ok(id);
        }
        exec(
            conn,
            "INSERT INTO zone_sets (zones) VALUES ($1) ON CONFLICT (zones) DO NOTHING",
            vec![key.into()],
        )
        .await?;
        let rows = query(
            conn,
            "SELECT id FROM zone_sets WHERE zones = $1",
            vec![key.into()],
        )
        .await?;
        let id: i64 = rows
            .first()
            .ok_or_else(|| Error::Corrupt(format!("zone set `{key}` vanished")))?
            .try_get("", "id")?;
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
        let row = self
            .query_one("SELECT zones FROM zone_sets WHERE id = $1", vec![id.into()])
            .await?
            .ok_or_else(|| Error::Corrupt(format!("zone set {id} missing")))?;
        let key: String = row.try_get("", "zones")?;
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
        let rows = self
            .query_all(
                "SELECT zone_set_id FROM campaign_zone_sets WHERE campaign_id = $1",
                vec![campaign_id.into()],
            )
            .await?;
        let mut sets = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("", "zone_set_id")?;
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
            exec(
                conn,
                "INSERT INTO campaign_zone_sets (campaign_id, zone_set_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                vec![campaign_id.into(), id.into()],
            )
            .await?;
        }
        Ok(())
    }
}
