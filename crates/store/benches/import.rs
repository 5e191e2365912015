//! Import throughput and memory: a generated call list (names, numbers in several national
//! formats, 2% bad rows, 1% duplicates) imported end to end on SQLite and PostgreSQL.
//!
//! ```text
//! cargo bench -p store --bench import -- [--rows 1000000] [--runs 3] [--db sqlite|postgres|both] [--parse] [--commit-rows N]
//! ```
//!
//! `--commit-rows` sets the rows per transaction (default `store::COMMIT_ROWS`, 5,000); the
//! import used 100,000 before it stopped holding a transaction open while waiting for rows.
//!
//! Each run imports into a fresh database. PostgreSQL is the test server
//! (`DIALER_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`); a fresh database
//! is created and dropped per run. Peak RSS is the process's `VmHWM`: run one database per
//! invocation (`--db sqlite`) to read it per database. `--parse` also times phone-number
//! normalisation alone on one thread, to show where the time goes.

use std::io::{BufRead, BufReader, BufWriter};
use std::time::{Duration, Instant};
use store::{ImportOptions, Store};

struct Options {
    rows: u64,
    runs: usize,
    db: String,
    parse: bool,
    commit_rows: usize,
}

fn options() -> Options {
    let mut options = Options {
        rows: 1_000_000,
        runs: 3,
        db: "both".into(),
        parse: false,
        commit_rows: store::COMMIT_ROWS,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => {
                options.rows = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(options.rows)
            }
            "--runs" => {
                options.runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(options.runs)
            }
            "--db" => options.db = args.next().unwrap_or(options.db),
            "--parse" => options.parse = true,
            "--commit-rows" => {
                options.commit_rows = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(options.commit_rows)
            }
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

/// Peak resident memory of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

const CAMPAIGN: &str = r#"
name = "bench"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "prompts/abandon.wav"
[trunk]
uri = "sip:127.0.0.1"
"#;

async fn import_once(
    url: &str,
    file: &std::path::Path,
    commit_rows: usize,
) -> (Duration, store::ImportSummary) {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let spec = domain::CampaignSpec::from_toml(CAMPAIGN).expect("campaign");
    let (campaign, _) = store.apply_campaign(&spec).await.expect("apply");
    let reader = std::fs::File::open(file).expect("open the generated file");
    let started = Instant::now();
    let summary = store
        .import_csv(
            campaign.id,
            reader,
            &ImportOptions {
                commit_rows,
                ..Default::default()
            },
        )
        .await
        .expect("import");
    (started.elapsed(), summary)
}

fn parse_only(file: &std::path::Path) {
    let normalizer = domain::phone::Normalizer::new(domain::Country::US);
    let reader = BufReader::new(std::fs::File::open(file).expect("open"));
    let numbers: Vec<String> = csv_fields(reader).collect();
    let started = Instant::now();
    let mut ok = 0u64;
    for number in &numbers {
        if normalizer.normalize(number).is_ok() {
            ok += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "parse only: {} numbers ({ok} valid) in {:.2}s on one thread = {:.0} numbers/s, {:.2} us each",
        numbers.len(),
        elapsed.as_secs_f64(),
        numbers.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / numbers.len() as f64
    );
}

/// The phone column (third) of the generated file, naively split (good enough for timing).
fn csv_fields(reader: impl BufRead) -> impl Iterator<Item = String> {
    reader.lines().skip(1).filter_map(|line| {
        let line = line.ok()?;
        let mut fields = line.split(',');
        fields.nth(2).map(str::to_owned)
    })
}

fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("list.csv");
    let mix = store::sample::ListShape {
        rows: options.rows,
        ..Default::default()
    };
    let written = store::sample::write_csv(
        BufWriter::new(std::fs::File::create(&file).expect("create")),
        &mix,
    )
    .expect("generate");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {} rows ({} bad, {} duplicates), {:.1} MiB; {} cores; {} rows per commit",
        written.rows,
        written.bad,
        written.duplicates,
        size as f64 / 1048576.0,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.commit_rows
    );
    if options.parse {
        parse_only(&file);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for db in ["sqlite", "postgres"] {
        if options.db != "both" && options.db != db {
            continue;
        }
        let mut times = Vec::new();
        for run in 0..options.runs {
            let (elapsed, summary) = runtime.block_on(async {
                if db == "sqlite" {
                    let path = dir.path().join(format!("bench-{run}.db"));
                    let url = testkit::sqlite_url(&path);
                    let result = import_once(&url, &file, options.commit_rows).await;
                    let _ = std::fs::remove_file(&path);
                    result
                } else {
                    let Some(pg) = testkit::postgres().await else {
                        panic!("PostgreSQL is not reachable");
                    };
                    let result = import_once(pg.url(), &file, options.commit_rows).await;
                    drop(pg);
                    result
                }
            });
            println!(
                "{db:<8} run {}: {:.2}s = {:>9.0} rows/s  (imported {}, duplicates {}, dnc {}, rejected {})  peak RSS so far {:.0} MiB",
                run + 1,
                elapsed.as_secs_f64(),
                summary.rows as f64 / elapsed.as_secs_f64(),
                summary.imported,
                summary.duplicates,
                summary.dnc,
                summary.rejected,
                peak_rss_mib()
            );
            assert_eq!(summary.rejected, written.bad, "bad rows miscounted");
            times.push(elapsed);
        }
        let m = median(times);
        println!(
            "{db:<8} median {:.2}s = {:.0} rows/s over {} runs",
            m.as_secs_f64(),
            written.rows as f64 / m.as_secs_f64(),
            options.runs
        );
    }
    println!("peak RSS of the whole process: {:.0} MiB", peak_rss_mib());
}
