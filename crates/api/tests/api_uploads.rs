//! Uploads that cannot hurt the service, over real HTTP on SQLite (whose single write lock a
//! stalled upload used to hold) and PostgreSQL (where it held a transaction open): a client that stalls mid-upload is cut off with 408 after the
//! idle timeout, keeping the whole chunks committed before it and nothing of the next, while
//! a campaign running against sipp at the same time writes every outcome; a body over the size
//! limit is refused with 413 and a JSON problem.

#[path = "../../engine/tests/support/peers.rs"]
mod peers;
#[macro_use]
mod support;

use peers::sipp_carrier;
use serde_json::Value;
use std::time::Duration;
use support::{Api, Db, assert_problem};
use testkit::wait_for;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An agentless campaign (no agent needed) whose every call ends quickly: live answers hear
/// the message, the others are busy, failed or declined.
fn calls_toml(carrier: std::net::SocketAddr) -> String {
    format!(
        r#"
name = "calls"
default_country = "US"
caller_id = "+12025550123"
agentless_message = "abandon.wav"

[pacing]
mode = "agentless"
max_lines = 10

[amd]
enabled = false

[calling_hours]
default = "00:00-24:00"
override_legal_limits = true

[retry]
max_attempts = 1

[trunk]
uri = "sip:{carrier}"
cps = 20
"#
    )
}

/// Attempts of `campaign` with an outcome, and all of them.
async fn finished_attempts(api: &Api, campaign: &str) -> (usize, usize) {
    let (status, page) = api
        .get(&format!("/api/v1/campaigns/{campaign}/attempts?limit=1000"))
        .await;
    assert_eq!(status, 200, "{page:#}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let done = items.iter().filter(|a| !a["outcome"].is_null()).count();
    (done, items.len())
}

async fn pending(api: &Api, campaign: &str) -> u64 {
    let (_, counts) = api
        .get(&format!("/api/v1/campaigns/{campaign}/contacts/counts"))
        .await;
    counts["by_status"]["pending"].as_u64().unwrap_or(0)
}

async fn a_stalled_upload_times_out_while_calls_write_their_outcomes(db: Db) {
    let idle = Duration::from_secs(30);
    let serving = api::ApiConfig {
        upload_idle_timeout: idle,
        ..Default::default()
    };
    let Some(api) = Api::start_serving(db, |_, _| {}, serving).await else {
        return;
    };
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let (status, body) = api.apply_toml(&calls_toml(carrier.addr())).await;
    assert_eq!(status, 201, "{body:#}");
    let mut csv = String::from("phone\n");
    for i in 0..5 {
        for fate in [1, 2, 4, 8] {
            csv.push_str(&format!("+131255501{i}{fate}\n"));
        }
    }
    let (status, report) = api.upload("calls", "calls.csv", &csv).await;
    assert_eq!((status, report["imported"].as_u64()), (201, Some(20)));
    let bulk = support::campaign_toml("bulk", support::nowhere());
    assert_eq!(api.apply_toml(&bulk).await.0, 201);

    // 12,000 rows of a much longer body, then nothing: two chunks of 5,000 are committed.
    let mut upload = tokio::net::TcpStream::connect(api.addr).await.unwrap();
    let mut rows = String::from("phone\n");
    for i in 0..12_000u32 {
        rows.push_str(&format!("+1312{}{:04}\n", 200 + i / 10_000, i % 10_000));
    }
    let head = format!(
        "POST /api/v1/campaigns/bulk/lists HTTP/1.1\r\nhost: {}\r\n\
         authorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=XYZ\r\ncontent-length: 50000000\r\n\r\n\
         --XYZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"bulk.csv\"\r\n\
         content-type: text/csv\r\n\r\n",
        api.addr, api.token
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(rows.as_bytes()).await.unwrap();
    upload.flush().await.unwrap();
    let stalled_at = tokio::time::Instant::now();
    assert!(
        wait_for(Duration::from_secs(30), || async {
            pending(&api, "bulk").await == 10_000
        })
        .await,
        "the upload's first chunks were not committed: {} pending",
        pending(&api, "bulk").await
    );

    // Calls go on meanwhile, and every outcome is written while the client still stalls.
    assert_eq!(api.post("/api/v1/campaigns/calls/start").await.0, 200);
    let mut answer = Vec::new();
    let mut read = Box::pin(upload.read_to_end(&mut answer));
    let all_written = async {
        wait_for(Duration::from_secs(60), || async {
            finished_attempts(&api, "calls").await == (20, 20)
        })
        .await
    };
    tokio::select! {
        written = all_written => assert!(
            written,
            "calls lost outcomes: {:?} of 20 finished\n{}",
            finished_attempts(&api, "calls").await,
            carrier.diagnostics()
        ),
        _ = &mut read => panic!(
            "the upload was answered before the calls were done (after {:?})",
            stalled_at.elapsed()
        ),
    }

    // Then the stalled upload is cut off: 408 with a JSON problem naming the part.
    tokio::time::timeout(idle + Duration::from_secs(20), &mut read)
        .await
        .expect("the stalled upload is answered")
        .unwrap();
    drop(read);
    let waited = stalled_at.elapsed();
    assert!(waited >= idle - Duration::from_secs(1), "{waited:?}");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(json).unwrap_or_else(|_| panic!("{answer}"));
    assert_problem(&(408, body.clone()), 408, "file");
    assert!(
        body["error"].as_str().unwrap().contains("incomplete"),
        "{body:#}"
    );
    // The whole chunks stay, nothing of the half-read third; the rest of the file completes
    // the list on a second upload.
    assert_eq!(pending(&api, "bulk").await, 10_000);
    let (status, report) = api.upload("bulk", "bulk.csv", &rows).await;
    assert_eq!(status, 201, "{report:#}");
    assert_eq!(
        (report["imported"].as_u64(), report["duplicates"].as_u64()),
        (Some(2_000), Some(10_000))
    );
    api.stop().await;
}

async fn an_upload_over_the_limit_is_refused_with_413(db: Db) {
    let serving = api::ApiConfig {
        max_upload: 64 * 1024,
        ..Default::default()
    };
    let Some(api) = Api::start_serving(db, |_, _| {}, serving).await else {
        return;
    };
    let toml = support::campaign_toml("big", support::nowhere());
    assert_eq!(api.apply_toml(&toml).await.0, 201);
    let mut csv = String::from("phone\n");
    for i in 0..8_000u32 {
        csv.push_str(&format!("+1312200{i:04}\n"));
    }
    assert!(csv.len() > 64 * 1024);
    let (status, body) = api.upload("big", "big.csv", &csv).await;
    assert_problem(&(status, body.clone()), 413, "file");
    assert!(
        body["error"].as_str().unwrap().contains("too large"),
        "{body:#}"
    );
    // Under the limit the same route takes the list.
    let (status, report) = api.upload("big", "small.csv", &csv[..20_000]).await;
    assert_eq!(status, 201, "{report:#}");
    api.stop().await;
}

on_both!(a_stalled_upload_times_out_while_calls_write_their_outcomes);
on_both!(an_upload_over_the_limit_is_refused_with_413);
