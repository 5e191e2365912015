//! The dialling rules against real peers: a campaign whose calling window closes while it runs
//! places no call after the close, and numbers put on the do-not-call list while it runs are
//! never dialled, including numbers already leased and waiting for the trunk's next
//! calls-per-second slot (the engine re-checks each contact just before the INVITE).
//! Agentless mode at two calls per second, so the list outlasts the window, which closes at the
//! next minute boundary at least 8 s away (calling hours are in minutes) in the callees' time
//! zone (UTC-5, written as the callees' local time): the test takes 10 to 70 s. On SQLite and
//! PostgreSQL at once.

mod support;

use std::time::Duration;

use chrono::{Timelike, Utc};
use domain::ContactStatus;
use store::{AttemptQuery, DncScope};
use support::{carrier_calls, sipp_carrier};
use testkit::wait_for;

fn campaign(carrier: std::net::SocketAddr, closes: &str) -> domain::CampaignSpec {
    let text = format!(
        r#"
name = "window"
default_country = "US"
caller_id = "+12025550123"
agentless_message = "voicemail.wav"

[pacing]
mode = "agentless"
max_lines = 10

[amd]
enabled = false

[calling_hours]
default = "00:00-{closes}"
override_legal_limits = true

[retry]
max_attempts = 1

[trunk]
uri = "sip:{carrier}"
cps = 2
"#
    );
    domain::CampaignSpec::from_toml(&text).unwrap()
}

/// The callees' zone (the tz database's POSIX-style name: `Etc/GMT+5` is UTC-5).
const ZONE: &str = "Etc/GMT+5";
const ZONE_OFFSET_SECS: i32 = -5 * 3600;

/// The next minute boundary at least 8 s away, as "HH:MM" in the callees' local time, and its
/// instant; waits past local midnight rather than use a window ending at 24:00.
async fn closing_time() -> (String, chrono::DateTime<Utc>) {
    let zone = chrono::FixedOffset::east_opt(ZONE_OFFSET_SECS).unwrap();
    loop {
        let now = Utc::now().with_timezone(&zone);
        let minute = now.with_second(0).unwrap().with_nanosecond(0).unwrap();
        let close = if now.second() < 52 {
            minute + chrono::Duration::minutes(1)
        } else {
            minute + chrono::Duration::minutes(2)
        };
        if close.date_naive() == now.date_naive() && close.hour() + close.minute() > 0 {
            return (close.format("%H:%M").to_string(), close.with_timezone(&Utc));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_after_the_window_closes_nor_to_numbers_added_to_do_not_call_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_after_the_window_closes_nor_to_numbers_added_to_do_not_call_on_postgres() {
    let Some(db) = testkit::postgres().await else {
        return;
    };
    let store = store::Store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    run(store).await;
}

async fn run(store: store::Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let engine = support::engine(store.clone(), dir.path(), "rules-node").await;
    let (hhmm, close) = closing_time().await;
    let (view, _) = engine
        .apply_campaign(&campaign(carrier.addr(), &hhmm))
        .await
        .unwrap();
    // Every number is busy (fate 2): quick calls, one per second.
    let mut csv = String::from("phone,timezone\n");
    let numbers: Vec<String> = (0..200).map(|i| format!("+1212400{i:03}2")).collect();
    for n in &numbers {
        csv.push_str(&format!("{n},{ZONE}\n"));
    }
    support::import(&store, view.id, csv).await;
    engine.start_campaign("window").await.unwrap();

    // Once a few calls went out, put on the global list the contacts leased and not yet
    // dialled (waiting for a CPS slot) and five numbers further down the list.
    assert!(
        wait_for(Duration::from_secs(60), || async {
            engine
                .campaign("window")
                .await
                .unwrap()
                .figures
                .totals
                .placed
                >= 5
        })
        .await,
        "no calls placed\n{}",
        carrier.diagnostics()
    );
    let dialled: std::collections::HashSet<i64> = store
        .attempts(&AttemptQuery {
            campaign_id: Some(view.id),
            limit: 1000,
            ..AttemptQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|a| a.contact_id)
        .collect();
    let leased: Vec<String> = store
        .contacts(&store::ContactQuery {
            campaign_id: view.id,
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.lease_node.is_some() && !dialled.contains(&c.id))
        .map(|c| c.e164)
        .take(5)
        .collect();
    let mut blocked = leased.clone();
    blocked.extend(numbers[100..105].iter().cloned());
    store
        .add_dnc(DncScope::Global, &blocked, "test")
        .await
        .unwrap();
    // A listing binds from its commit: an attempt that started while it was being written
    // may go ahead, none after.
    let blocked_at = Utc::now();

    // Run past the close, then let calls in flight end.
    let wait = (close - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(8);
    tokio::time::sleep(wait).await;
    assert!(
        wait_for(Duration::from_secs(30), || async {
            engine
                .campaign("window")
                .await
                .unwrap()
                .figures
                .calls
                .in_flight
                == 0
        })
        .await
    );
    assert!(carrier.running(), "{}", carrier.diagnostics());
    let attempts = store
        .attempts(&AttemptQuery {
            campaign_id: Some(view.id),
            limit: 1000,
            ..AttemptQuery::default()
        })
        .await
        .unwrap();
    assert!(!attempts.is_empty());
    for a in &attempts {
        assert!(
            a.started_at < close,
            "attempt {} started at {} after the close {close}",
            a.id,
            a.started_at
        );
        assert!(
            !blocked.contains(&a.e164) || a.started_at < blocked_at,
            "{} dialled after its DNC entry",
            a.e164
        );
    }
    let invites = carrier_calls(&carrier.file("messages.log"));
    assert_eq!(
        invites.len(),
        attempts.len(),
        "carrier INVITEs vs stored attempts"
    );
    for number in &blocked {
        let before = attempts
            .iter()
            .filter(|a| &a.e164 == number && a.started_at < blocked_at)
            .count();
        let invited = invites.iter().filter(|c| &c.number == number).count();
        assert_eq!(
            invited, before,
            "{number} was dialled though on the do-not-call list"
        );
    }
    // The window closed mid-run: contacts are left, undialled and unleased.
    let counts = store.contact_counts(view.id).await.unwrap();
    let pending = counts
        .iter()
        .find(|(s, _)| *s == ContactStatus::Pending)
        .map_or(0, |(_, n)| *n);
    let dnc = counts
        .iter()
        .find(|(s, _)| *s == ContactStatus::Dnc)
        .map_or(0, |(_, n)| *n);
    assert!(
        pending > 0,
        "the window should have closed before the list ran out: {counts:?}"
    );
    assert_eq!(dnc as usize, blocked.len(), "{counts:?}");
    eprintln!(
        "placed {} calls before the {hhmm} close; {} leased contacts put on the do-not-call \
         list while waiting for their slot; {counts:?}",
        attempts.len(),
        leased.len()
    );

    let report = engine.shutdown(Duration::from_secs(2)).await.unwrap();
    eprintln!("{report:?}");
    for number in &numbers {
        let contact = store
            .contacts(&store::ContactQuery {
                campaign_id: view.id,
                number_prefix: Some(number.clone()),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            contact.iter().all(|c| c.lease_node.is_none()),
            "{number} still leased after shutdown"
        );
    }
}
