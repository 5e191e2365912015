//! Leasing latency: "the next K due contacts" on a campaign of 1,000,000 contacts, SQLite and
//! PostgreSQL, with the query plan.
//!
//! ```text
//! cargo bench -p store --bench lease -- [--contacts 1000000] [--k 100] [--leases 200] [--db sqlite|postgres|both]
//! ```
//!
//! Each lease takes the next K contacts (nothing is released in between, as on a busy node).
//! Two calling-hours situations are measured: every zone open (around the clock), and a US
//! morning where the western zones are still closed (the query must skip them).

use std::time::{Duration, Instant};
use store::{ImportOptions, Store};

struct Options {
    contacts: u64,
    k: usize,
    leases: usize,
    db: String,
}

fn options() -> Options {
    let mut options = Options {
        contacts: 1_000_000,
        k: 100,
        leases: 200,
        db: "both".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--contacts" => options.contacts = value().parse().unwrap_or(options.contacts),
            "--k" => options.k = value().parse().unwrap_or(options.k),
            "--leases" => options.leases = value().parse().unwrap_or(options.leases),
            "--db" => options.db = value(),
            _ => {}
        }
    }
    options
}

fn campaign(name: &str, hours: &str) -> domain::CampaignSpec {
    domain::CampaignSpec::from_toml(&format!(
        r#"
name = "{name}"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "prompts/abandon.wav"
{hours}
[trunk]
uri = "sip:127.0.0.1"
"#
    ))
    .expect("campaign")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(
    store: &Store,
    campaign_id: i64,
    k: usize,
    leases: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(leases);
    let mut total = 0;
    for i in 0..leases {
        let started = Instant::now();
        let got = store
            .lease_due(
                campaign_id,
                &format!("bench-{i}"),
                k,
                now,
                Duration::from_secs(300),
            )
            .await
            .expect("lease");
        times.push(started.elapsed());
        total += got.len();
        assert!(!got.is_empty(), "ran out of due contacts");
    }
    assert!(total >= leases * k / 2, "leases came back short: {total}");
    times.sort();
    times
}

async fn run(url: &str, db: &str, options: &Options, file: &std::path::Path) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let always = "[calling_hours]\ndefault = \"00:00-24:00\"\noverride_legal_limits = true\n";
    let (open, _) = store
        .apply_campaign(&campaign("open", always))
        .await
        .expect("apply");
    let (legal, _) = store
        .apply_campaign(&campaign("legal", ""))
        .await
        .expect("apply");
    let due = chrono::Utc::now() - chrono::Duration::days(365);
    for c in [&open, &legal] {
        let started = Instant::now();
        let summary = store
            .import_csv(
                c.id,
                std::fs::File::open(file).expect("open"),
                &ImportOptions {
                    due_at: Some(due),
                    ..Default::default()
                },
            )
            .await
            .expect("import");
        println!(
            "{db:<8} campaign `{}`: {} contacts imported in {:.1}s",
            c.name,
            summary.imported,
            started.elapsed().as_secs_f64()
        );
    }
    // A Wednesday in July, 13:30 UTC: 09:30 in New York, 06:30 in Los Angeles (closed),
    // 03:30 in Honolulu (closed).
    let morning = chrono::DateTime::parse_from_rfc3339("2026-07-15T13:30:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    for (label, c, now) in [
        ("all zones open", &open, chrono::Utc::now()),
        ("US morning, west closed", &legal, morning),
    ] {
        let times = measure(&store, c.id, options.k, options.leases, now).await;
        println!(
            "{db:<8} {label:<24} K={} x{}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
            options.k,
            options.leases,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.9).as_secs_f64() * 1e3,
            percentile(&times, 1.0).as_secs_f64() * 1e3,
        );
        let plan = store
            .explain_lease(c.id, options.k, now)
            .await
            .expect("explain");
        println!("{db:<8} plan ({label}):\n{}", indent(&plan));
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .take(40)
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("contacts.csv");
    let mix = store::sample::ListShape {
        rows: options.contacts,
        bad: 0.0,
        duplicates: 0.0,
        seed: 3,
    };
    store::sample::write_csv(
        std::io::BufWriter::new(std::fs::File::create(&file).expect("create")),
        &mix,
    )
    .expect("generate");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if options.db != "postgres" {
            let url = testkit::sqlite_url(&dir.path().join("lease.db"));
            run(&url, "sqlite", &options, &file).await;
        }
        if options.db != "sqlite" {
            let pg = testkit::postgres()
                .await
                .expect("PostgreSQL is not reachable");
            run(pg.url(), "postgres", &options, &file).await;
        }
    });
}
