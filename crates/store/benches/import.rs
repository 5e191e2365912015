//! Import throughput and memory: a generated call list (names, numbers in several national
//! formats, 2% bad rows, 1% duplicates) imported end to end on SQLite and PostgreSQL, with
//! chunked commits (`store::COMMIT_ROWS` rows per transaction, the default) against one
//! transaction for the whole file.
//!
//! ```text
//! DIALER_BENCH_ROWS=1000000 cargo bench -p store --bench import -- [--rows N] [--runs 3] [--db sqlite|postgres|both] [--parse] [--commit-rows N|all]
//! ```
//!
//! The row count comes from `--rows`, else `DIALER_BENCH_ROWS`, else 100,000 (so a plain
//! `cargo bench` stays short; the figures in docs/store.md are for 1,000,000). Without
//! `--commit-rows` every database is measured twice: chunked, then `all` (one transaction; the
//! writer then holds every parsed row until the file ends, as no chunk is complete before).
//!
//! Each run imports into a fresh database. PostgreSQL is the test server
//! (`DIALER_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`); a fresh database
//! is created and dropped per run. Peak RSS is the process's `VmHWM`, reset (through
//! `/proc/self/clear_refs`) before each database and mode, so each line's peak is its own.
//! `--parse` also times phone-number normalisation alone on one thread, to show where the
//! time goes.

use std::io::{BufRead, BufReader, BufWriter};
use std::time::{Duration, Instant};
use store::{ImportOptions, Store};

struct Options {
    rows: u64,
    runs: usize,
    db: String,
    parse: bool,
    /// Rows per transaction of each mode measured (`usize::MAX`: the whole file).
    commit_rows: Vec<usize>,
}

/// `N` rows per transaction, or `all` for one transaction.
fn commit_rows(value: &str) -> Option<usize> {
    match value {
        "all" => Some(usize::MAX),
        n => n.parse().ok(),
    }
}

fn options() -> Options {
    let mut options = Options {
        rows: std::env::var("DIALER_BENCH_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000),
        runs: 3,
        db: "both".into(),
        parse: false,
        commit_rows: vec![store::COMMIT_ROWS, usize::MAX],
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
                if let Some(n) = args.next().as_deref().and_then(commit_rows) {
                    options.commit_rows = vec![n];
                }
            }
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

/// Starts the peak resident memory count (`VmHWM`) over from the current size.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// What a mode is called in the output.
fn mode_name(commit_rows: usize) -> String {
    if commit_rows == usize::MAX {
        "one transaction".into()
    } else {
        format!("{commit_rows} rows/commit")
    }
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
        "generated {} rows ({} bad, {} duplicates), {:.1} MiB; {} cores",
        written.rows,
        written.bad,
        written.duplicates,
        size as f64 / 1048576.0,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if options.parse {
        parse_only(&file);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut table = Vec::new();
    for db in ["sqlite", "postgres"] {
        if options.db != "both" && options.db != db {
            continue;
        }
        for &commit_rows in &options.commit_rows {
            let mode = mode_name(commit_rows);
            reset_peak_rss();
            let mut times = Vec::new();
            for run in 0..options.runs {
                let (elapsed, summary) = runtime.block_on(async {
                    if db == "sqlite" {
                        let path = dir.path().join(format!("bench-{run}.db"));
                        let url = testkit::sqlite_url(&path);
                        let result = import_once(&url, &file, commit_rows).await;
                        let _ = std::fs::remove_file(&path);
                        result
                    } else {
                        let Some(pg) = testkit::postgres().await else {
                            panic!("PostgreSQL is not reachable");
                        };
                        let result = import_once(pg.url(), &file, commit_rows).await;
                        drop(pg);
                        result
                    }
                });
                println!(
                    "{db:<8} {mode:<18} run {}: {:.2}s = {:>9.0} rows/s  (imported {}, duplicates {}, dnc {}, rejected {})  peak RSS so far {:.0} MiB",
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
            table.push(format!(
                "| {db} | {mode} | {:.2} s | {:.0} | {:.0} MiB |",
                m.as_secs_f64(),
                written.rows as f64 / m.as_secs_f64(),
                peak_rss_mib()
            ));
        }
    }
    println!(
        "\n{} rows, median of {} runs:\n\n| database | commits | time | rows/s | peak RSS |\n| --- | --- | --- | --- | --- |",
        written.rows, options.runs
    );
    for line in table {
        println!("{line}");
    }
    println!("peak RSS of the whole process: {:.0} MiB", peak_rss_mib());
}
