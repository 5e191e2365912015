//! What the store caches per process: zone sets, and each campaign's lease plan. Plain data,
//! shared by the [`crate::db::Store`] handle and the lease statement.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use domain::CallingHours;
use std::collections::HashMap;
use std::sync::Arc;

/// Zone sets known to this process, both ways.
#[derive(Debug, Default)]
pub(crate) struct ZoneCache {
    pub(crate) by_id: HashMap<i64, Arc<[Tz]>>,
    pub(crate) by_key: HashMap<String, i64>,
}

/// What a lease needs to know about a campaign, cached per campaign (see
/// `Store::lease_due_with` for how staleness is caught).
#[derive(Debug)]
pub(crate) struct LeasePlan {
    /// The campaign's `updated_at` when read: every change of the campaign moves it.
    pub(crate) version: i64,
    pub(crate) hours: CallingHours,
    pub(crate) max_attempts: i64,
    /// The campaign's zone sets; they are only ever added to, so their count is a version.
    pub(crate) zone_sets: Vec<(i64, Arc<[Tz]>)>,
}

impl LeasePlan {
    /// Zone sets whose calling hours are open now in every zone.
    pub(crate) fn open(&self, now: DateTime<Utc>) -> Vec<i64> {
        self.zone_sets
            .iter()
            .filter(|(_, zones)| self.hours.is_open(zones, now))
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn zones(&self, zone_set_id: i64) -> Option<Arc<[Tz]>> {
        self.zone_sets
            .iter()
            .find(|(id, _)| *id == zone_set_id)
            .map(|(_, zones)| zones.clone())
    }
}
