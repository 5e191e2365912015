//! From an E.164 number to the time zones its callee may be in.
//!
//! The table is libphonenumber's `resources/timezones/map_data.txt` (Apache-2.0, see
//! `data/timezones.txt` for the notice), compiled in. The longest matching prefix wins; a prefix
//! with several zones keeps them all, and the calling-hours check then needs every one open.

use chrono_tz::Tz;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

const DATA: &str = include_str!("../data/timezones.txt");

/// The longest prefix in the table (digits).
const MAX_PREFIX: usize = 8;

/// Prefix-to-zones lookup built once from the compiled-in table.
#[derive(Debug)]
pub struct ZoneTable {
    prefixes: HashMap<&'static str, u32>,
    /// Canonical zone-set keys (sorted, comma-separated IANA names), indexed by the map's values.
    keys: Vec<String>,
}

impl ZoneTable {
    /// The table, parsed on first use.
    pub fn get() -> &'static ZoneTable {
        static TABLE: OnceLock<ZoneTable> = OnceLock::new();
        TABLE.get_or_init(|| Self::parse(DATA))
    }

    fn parse(data: &'static str) -> Self {
        let mut prefixes = HashMap::new();
        let mut keys: Vec<String> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        for line in data.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((prefix, zones)) = line.split_once('|') else {
                continue;
            };
            let mut names: Vec<&str> = zones.split('&').collect();
            names.sort_unstable();
            let key = names.join(",");
            let next = u32::try_from(keys.len()).unwrap_or(u32::MAX);
            let id = *index.entry(key.clone()).or_insert_with(|| {
                keys.push(key);
                next
            });
            prefixes.insert(prefix, id);
        }
        Self { prefixes, keys }
    }

    /// The zone-set key (`America/Boise,America/Los_Angeles`) of an E.164 number (with or
    /// without `+`), or `None` when no prefix matches.
    pub fn lookup(&self, e164: &str) -> Option<&str> {
        let digits = e164.strip_prefix('+').unwrap_or(e164);
        let longest = digits.len().min(MAX_PREFIX);
        (1..=longest).rev().find_map(|len| {
            let prefix = digits.get(..len)?;
            self.prefixes
                .get(prefix)
                .and_then(|&id| self.keys.get(id as usize))
                .map(String::as_str)
        })
    }

    /// Every distinct zone-set key of the table.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }
}

/// Parses a zone-set key (comma-separated IANA names) into zones.
pub fn parse_zone_set(key: &str) -> Result<Vec<Tz>, String> {
    key.split(',')
        .map(|name| Tz::from_str(name.trim()).map_err(|_| format!("unknown time zone `{name}`")))
        .collect()
}

/// Checks one explicit time zone (from an import column) and returns its canonical key.
pub fn explicit_zone(name: &str) -> Result<String, String> {
    let name = name.trim();
    Tz::from_str(name)
        .map(|tz| tz.name().to_owned())
        .map_err(|_| format!("unknown time zone `{name}` (use an IANA name like America/New_York)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let table = ZoneTable::get();
        assert_eq!(table.lookup("+12125550123"), Some("America/New_York"));
        assert_eq!(table.lookup("+12082015555"), Some("America/Denver"));
        assert_eq!(
            table.lookup("+12083995555"),
            Some("America/Boise,America/Los_Angeles")
        );
        assert_eq!(table.lookup("+442071234567"), Some("Europe/London"));
        assert_eq!(table.lookup("+33142685300"), Some("Europe/Paris"));
        assert_eq!(table.lookup("+999"), None);
    }

    #[test]
    fn every_zone_in_the_table_is_known_to_chrono_tz() {
        for key in ZoneTable::get().keys() {
            parse_zone_set(key).unwrap_or_else(|err| panic!("{key}: {err}"));
        }
    }

    #[test]
    fn explicit_zones_are_checked() {
        assert_eq!(explicit_zone(" Europe/Paris ").unwrap(), "Europe/Paris");
        assert!(explicit_zone("Mars/Olympus").is_err());
    }
}
