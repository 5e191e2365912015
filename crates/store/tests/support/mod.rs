//! Shared setup of the store tests: the same scenario on SQLite and on PostgreSQL.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use domain::CampaignSpec;
use store::{Campaign, ImportOptions, ImportSummary, Store};

/// Runs an async scenario `fn(Store)` as two tests: `sqlite` and `postgres`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _dir) = $crate::support::sqlite().await;
                super::$name(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = testkit::postgres().await else {
                    return;
                };
                let store = $crate::support::connect(db.url()).await;
                super::$name(store).await;
                drop(db);
            }
        }
    };
}

/// A migrated store on a fresh SQLite file.
pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = testkit::sqlite_url(&dir.path().join("t.db"));
    (connect(&url).await, dir)
}

/// A migrated store at `url`.
pub async fn connect(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A valid campaign named `name`; `extra` is TOML added before the trunk section.
pub fn spec(name: &str, extra: &str) -> CampaignSpec {
    CampaignSpec::from_toml(&format!(
        r#"
name = "{name}"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "prompts/abandon.wav"
{extra}
[trunk]
uri = "sip:127.0.0.1:5060"
"#
    ))
    .unwrap()
}

/// Calling hours open around the clock (tests that are not about hours).
pub const ALWAYS_OPEN: &str =
    "[calling_hours]\ndefault = \"00:00-24:00\"\noverride_legal_limits = true\n";

/// Applies a campaign and returns it.
pub async fn campaign(store: &Store, name: &str, extra: &str) -> Campaign {
    store.apply_campaign(&spec(name, extra)).await.unwrap().0
}

/// A fixed instant in UTC.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Imports `csv` with contacts due since 2000 (so any test instant finds them due).
pub async fn import(store: &Store, campaign_id: i64, csv: &str) -> ImportSummary {
    let options = ImportOptions {
        due_at: Some(utc(2000, 1, 1, 0, 0)),
        ..ImportOptions::default()
    };
    store
        .import_csv(
            campaign_id,
            std::io::Cursor::new(csv.as_bytes().to_vec()),
            &options,
        )
        .await
        .unwrap()
}
