//! `dialer amd`: classify recordings as a live person or an answering machine, with the same
//! detector and parameters a campaign uses, so a campaign manager can tune them on their own
//! recordings; `--corpus` prints the confusion matrix of a labelled folder.

use crate::Global;
use anyhow::Context as _;
use media::detect::{AmdParams, Channel, Corpus, CorpusReport, classify, read_wav};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `dialer amd`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dialer amd greeting.wav answer.wav
  dialer amd --json --set greeting=2s call-*.wav
  dialer amd --config campaigns/spring.toml --channel 0 recording.wav
  dialer amd --corpus crates/media/corpus
  dialer amd --corpus my-recordings/          (human/*.wav and machine/*.wav)
  dialer amd --corpus /tmp/world --split holdout --by noise,snr_db")]
pub struct Args {
    /// WAV recordings to classify (8 kHz; PCM, mu-law or A-law; mono or stereo).
    #[arg(required_unless_present = "corpus")]
    pub files: Vec<PathBuf>,

    /// Classify a labelled folder (labels.csv, WAV files under human/ and machine/, or files
    /// named human*/machine*) and print the confusion matrix, the Asterisk baseline's beside it.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub corpus: Option<PathBuf>,

    /// With --corpus: only the clips of this split (`train`/`test`, `tune`/`holdout`).
    #[arg(long, requires = "corpus")]
    pub split: Option<String>,

    /// With --corpus: the Asterisk baseline is always printed beside ours now; kept so older
    /// command lines still work.
    #[arg(long, requires = "corpus", hide = true)]
    pub compare: bool,

    /// With --corpus: one row per value of these label columns (e.g. `noise`, `snr_db`,
    /// `noise,snr_db`, `kind`, `codec`), ours beside the baseline.
    #[arg(long, requires = "corpus", value_name = "COLUMN[,COLUMN]")]
    pub by: Option<String>,

    /// With --corpus: list every misclassified clip.
    #[arg(long, requires = "corpus")]
    pub errors: bool,

    /// Print JSON (one object per file, or the corpus report) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Read parameters from a campaign file's `[amd]` table (or a file holding only that table).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run the Asterisk app_amd algorithm with its defaults instead of ours.
    #[arg(long)]
    pub baseline: bool,

    /// Set one parameter, e.g. `greeting=2s`, `after_greeting_silence_ms=700`,
    /// `algorithm=asterisk` (repeatable; applied after --config).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Longest silence before the greeting (e.g. `2500ms`).
    #[arg(long, value_name = "DURATION")]
    pub initial_silence: Option<String>,
    /// Longest greeting a person gives.
    #[arg(long, value_name = "DURATION")]
    pub greeting: Option<String>,
    /// Silence after the greeting that means a person is waiting.
    #[arg(long, value_name = "DURATION")]
    pub after_greeting_silence: Option<String>,
    /// Time after which the verdict is NOTSURE.
    #[arg(long, value_name = "DURATION")]
    pub total_analysis_time: Option<String>,
    /// Mean absolute sample below which audio is silence (Asterisk algorithm; ceiling of the
    /// adaptive floor's starting point).
    #[arg(long, value_name = "LEVEL")]
    pub silence_threshold: Option<String>,

    /// Which channel of a stereo file is the callee (0-based); default: the mix of all.
    #[arg(long, value_name = "N")]
    pub channel: Option<u16>,
}

impl Args {
    /// The parameters: defaults (or the baseline), then --config, then the flags.
    fn params(&self) -> anyhow::Result<AmdParams> {
        let mut params = if self.baseline {
            AmdParams::asterisk()
        } else {
            AmdParams::default()
        };
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let from_file =
                AmdParams::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
            params = if self.baseline {
                AmdParams {
                    algorithm: media::detect::AmdAlgorithm::Asterisk,
                    ..from_file
                }
            } else {
                from_file
            };
        }
        let named = [
            ("initial_silence", &self.initial_silence),
            ("greeting", &self.greeting),
            ("after_greeting_silence", &self.after_greeting_silence),
            ("total_analysis_time", &self.total_analysis_time),
            ("silence_threshold", &self.silence_threshold),
        ];
        for (key, value) in named {
            if let Some(value) = value {
                params
                    .set(key, value)
                    .with_context(|| format!("--{}", key.replace('_', "-")))?;
            }
        }
        for pair in &self.set {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("--set {pair:?}: expected KEY=VALUE"))?;
            params
                .set(key, value)
                .with_context(|| format!("--set {pair}"))?;
        }
        params.validate()?;
        Ok(params)
    }
}

/// Runs `dialer amd`.
pub async fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let params = args.params()?;
    // Reading and classifying is CPU work on local files: keep it off the async workers.
    tokio::task::spawn_blocking(move || match &args.corpus {
        Some(dir) => run_corpus(&args, dir, &params),
        None => run_files(&args, &params),
    })
    .await
    .context("the classifier task failed")?
}

fn run_files(args: &Args, params: &AmdParams) -> anyhow::Result<ExitCode> {
    let channel = args.channel.map_or(Channel::Mix, Channel::Index);
    let mut failed = false;
    for path in &args.files {
        let verdict = match read_wav(path, channel) {
            Ok(samples) => classify(params, &samples)?,
            Err(err) => {
                // One unreadable file is reported and the others still classified.
                eprintln!("error: {err}");
                failed = true;
                continue;
            }
        };
        if args.json {
            let mut object = serde_json::to_value(verdict)?;
            if let Some(map) = object.as_object_mut() {
                map.insert("file".into(), path.display().to_string().into());
            }
            println!("{object}");
        } else {
            let end = verdict
                .greeting_end_ms
                .map_or(String::new(), |end| format!(", greeting ended at {end} ms"));
            println!(
                "{}: {} ({}) at {} ms{end}",
                path.display(),
                verdict.result,
                verdict.cause,
                verdict.decided_at_ms
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn run_corpus(args: &Args, dir: &std::path::Path, params: &AmdParams) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::load(dir)?;
    let samples = corpus.read_all()?;
    let split = args.split.as_deref();
    let ours = CorpusReport::run(params, &corpus, &samples)?.split(split);
    if ours.outcomes.is_empty() {
        let splits: std::collections::BTreeSet<&str> =
            corpus.clips.iter().map(|c| c.split.as_str()).collect();
        anyhow::bail!(
            "no clips in {} for split {:?} (its splits: {})",
            dir.display(),
            split.unwrap_or(""),
            splits.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let baseline = CorpusReport::run(&AmdParams::asterisk(), &corpus, &samples)?.split(split);
    if args.json {
        let summary = |r: &CorpusReport| {
            serde_json::json!({
                "matrix": r.matrix(),
                "human_as_machine_percent": r.percent(media::detect::Truth::Human, media::detect::AmdResult::Machine),
                "machine_as_machine_percent": r.percent(media::detect::Truth::Machine, media::detect::AmdResult::Machine),
                "human_latency_ms": r.human_latencies(),
                "outcomes": r.outcomes,
            })
        };
        let out = serde_json::json!({
            "params": params,
            "detector": summary(&ours),
            "asterisk": summary(&baseline),
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let name = match params.algorithm {
        media::detect::AmdAlgorithm::Adaptive => "adaptive",
        media::detect::AmdAlgorithm::Asterisk => "asterisk",
    };
    let scope = split.unwrap_or("all");
    println!("{} clips ({scope})", ours.outcomes.len());
    print!(
        "{}",
        ours.matrix_beside(
            &baseline,
            &format!("{name} detector"),
            "asterisk app_amd baseline (default parameters)"
        )
    );
    match &args.by {
        Some(columns) => {
            let columns: Vec<&str> = columns.split(',').map(str::trim).collect();
            println!("\n{}", ours.by_condition(&baseline, &columns));
        }
        None => println!("\n{}", ours.by_condition(&baseline, &["kind"])),
    }
    if args.errors {
        println!("misclassified ({name}):");
        for o in ours.errors() {
            println!(
                "  {} ({}, {:?}): {} {} at {} ms",
                o.clip.file,
                o.clip.kind,
                o.clip.truth,
                o.verdict.result,
                o.verdict.cause,
                o.verdict.decided_at_ms
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
