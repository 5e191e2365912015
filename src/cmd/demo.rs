//! `dialer demo`: the whole dialer against the lab, on loopback, in one command. It starts the
//! engine (as `dialer serve` does, with the HTTP API), the lab carrier and N lab agent phones,
//! applies the example campaign `campaigns/demo.toml` with its list `campaigns/demo.csv` (topped
//! up with generated fictional numbers), runs it with a live terminal view until Ctrl-C or
//! `--minutes`, and prints a summary (`--json` too).
//!
//! Everything the dialer sees is real: SIP and RTP over loopback, the carrier's greetings from
//! the media corpus, agents' phones that register with digest, call in, talk and press keys.

use crate::Global;
use anyhow::Context as _;
use engine::{
    AgentSpec, CampaignView, Engine, EngineConfig, EngineError, InProcess, ShutdownReport,
};
use lab::{
    AgentBehaviour, AgentConfig, AgentCounters, AgentHooks, Agents, Bank, BankConfig, Carrier,
    CarrierConfig, CarrierCounters, Dist, Mix, PausePolicy,
};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The example campaign, built in so that the demo runs from any directory.
const DEMO_TOML: &str = include_str!("../../campaigns/demo.toml");
/// Its call list.
const DEMO_CSV: &str = include_str!("../../campaigns/demo.csv");
/// The default of the global `--database-url` (see `main.rs`): left alone, the demo uses a
/// temporary SQLite file instead of the `dialer.db` of the current directory.
const DEFAULT_DATABASE_URL: &str = "sqlite://dialer.db?mode=rwc";
/// Area codes of the generated contacts (several time zones, all fictional 555 numbers).
const AREAS: [(&str, &str); 10] = [
    ("212", "New York"),
    ("312", "Chicago"),
    ("303", "Denver"),
    ("415", "San Francisco"),
    ("206", "Seattle"),
    ("305", "Miami"),
    ("617", "Boston"),
    ("713", "Houston"),
    ("602", "Phoenix"),
    ("808", "Honolulu"),
];

/// Options of `dialer demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lab agent phones logged in to the campaign.
    #[arg(long, default_value_t = 10)]
    pub agents: u32,
    /// Stop after this many minutes (fractions allowed, e.g. 0.5); without it, run until Ctrl-C.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Print the summary as JSON (the live view goes to stderr, a line every 10 s).
    #[arg(long)]
    pub json: bool,
    /// Campaign file [default: the built-in campaigns/demo.toml]; its trunk is pointed at the
    /// lab carrier.
    #[arg(long, value_name = "FILE.toml")]
    pub campaign: Option<PathBuf>,
    /// Call list (CSV) [default: the built-in campaigns/demo.csv].
    #[arg(long, value_name = "FILE.csv")]
    pub list: Option<PathBuf>,
    /// Contacts in the campaign: the list is topped up with generated fictional numbers to this
    /// many [default: 1000, or 120 per agent if more].
    #[arg(long)]
    pub contacts: Option<u32>,
    /// The lab carrier's outcome mix (weights).
    #[arg(
        long,
        default_value = "human=25,machine=10,busy=10,no-answer=40,sit=5,unavailable=10"
    )]
    pub mix: Mix,
    /// Agents' talk time: past it the agent ends the call with `#` (`45s`, `20s..60s`,
    /// `lognormal:60s:0.6`).
    #[arg(long, default_value = "lognormal:40s:0.5")]
    pub talk: Dist,
    /// How long the lab's callees would talk (they hang up past it, if the agent did not).
    #[arg(long, default_value = "lognormal:120s:0.5")]
    pub callee_talk: Dist,
    /// Agents' wrap-up, from the end of a call to the disposition key.
    #[arg(long, default_value = "2s..6s")]
    pub wrap: Dist,
    /// Chance (0-1) that an agent takes a break after a call.
    #[arg(long, default_value_t = 0.0)]
    pub breaks: f64,
    /// Length of a break.
    #[arg(long, default_value = "30s..90s")]
    pub break_length: Dist,
    /// HTTP address of the API [default: 127.0.0.1:8080, or any free port if it is taken].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Folder of the labelled greeting corpus [default: crates/media/corpus of this source tree].
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Seed of the lab carrier and agents.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long calls with agents may go on at the end before they are hung up.
    #[arg(long, default_value = "10s")]
    pub grace: domain::Dur,
    /// Print a line every few seconds instead of redrawing the screen.
    #[arg(long)]
    pub plain: bool,
}

/// What the demo did, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Summary {
    campaign: String,
    agents: u32,
    seconds: f64,
    api: String,
    database: String,
    /// Contacts this run added to the campaign (none when an earlier run on the same database
    /// already had them).
    contacts_added: u64,
    /// Engine figures at the end of the run (before the shutdown).
    calls: engine::CallTotals,
    abandon: engine::AbandonView,
    occupancy: f64,
    mean_wait_secs: f64,
    connect_median_secs: f64,
    connect_p99_secs: f64,
    greeting_connect_median_secs: f64,
    greeting_connect_p99_secs: f64,
    pacing: engine::PacingView,
    /// The lab carrier's own count of what it did.
    carrier: CarrierCounters,
    /// The lab phones' own count of what they did.
    phones: AgentCounters,
    /// Mean talk time of the lab phones' finished calls, seconds.
    mean_talk_secs: f64,
    shutdown: ShutdownReport,
}

/// The demo's own accounts: an admin for the console, the user of the lab agent `agent1`, and
/// `desk1`, an agent with no lab phone for a person at the agent desktop; each with a fresh
/// random password (set anew when an earlier demo made them).
async fn demo_logins(
    engine: &Engine,
    agent1: Option<i64>,
    desk1: Option<i64>,
) -> anyhow::Result<Vec<(&'static str, String, String)>> {
    let store = engine.store();
    let cli = store::Principal::cli();
    let mut logins = Vec::new();
    let wanted = [
        ("the console", "demo-admin", store::Role::Admin, None),
        ("an agent", "agent1", store::Role::Agent, agent1),
        ("the agent desktop", "desk1", store::Role::Agent, desk1),
    ];
    for (who, name, role, agent_id) in wanted {
        if role == store::Role::Agent && agent_id.is_none() {
            continue;
        }
        let password = store::random_password();
        match store.user_by_name(name).await? {
            Some(user) => store.set_user_password(user.id, &password, &cli).await?,
            None => {
                store
                    .create_user(
                        &store::NewUser {
                            username: name.into(),
                            password: password.clone(),
                            role,
                            agent_id,
                        },
                        &cli,
                    )
                    .await
                    .with_context(|| format!("cannot create the demo's user {name}"))?;
            }
        }
        logins.push((who, name.to_owned(), password));
    }
    Ok(logins)
}

/// Tells the engine about a lab agent's breaks, as an agent desktop's pause button would.
struct PauseButton {
    engine: Engine,
    ids: HashMap<String, i64>,
    runtime: tokio::runtime::Handle,
}

impl AgentHooks for PauseButton {
    fn paused(&self, username: &str, reason: &str) {
        if let Some(&id) = self.ids.get(username) {
            let (engine, reason) = (self.engine.clone(), reason.to_owned());
            self.runtime.spawn(async move {
                if let Err(err) = engine.agent_pause(id, &reason).await {
                    tracing::debug!(%err, agent = id, "pause refused");
                }
            });
        }
    }

    fn resumed(&self, username: &str) {
        if let Some(&id) = self.ids.get(username) {
            let engine = self.engine.clone();
            self.runtime.spawn(async move {
                if let Err(err) = engine.agent_ready(id).await {
                    tracing::debug!(%err, agent = id, "ready refused");
                }
            });
        }
    }
}

/// A folder of the demo's own, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The campaign to run, with its messages resolved and its trunk pointed at `carrier`.
fn campaign_spec(
    args: &Args,
    prompts: &Path,
    carrier: &Carrier,
) -> anyhow::Result<domain::CampaignSpec> {
    let (text, base) = match &args.campaign {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.parent().map(Path::to_path_buf),
        ),
        None => (DEMO_TOML.to_owned(), None),
    };
    let mut spec = domain::CampaignSpec::from_toml(&text).map_err(|err| {
        anyhow::anyhow!(
            "{} is not a valid campaign: {err}",
            args.campaign
                .as_ref()
                .map_or("the built-in demo campaign".into(), |p| p
                    .display()
                    .to_string())
        )
    })?;
    spec.trunk.uri = carrier.uri().to_string();
    spec.trunk.transport = domain::Transport::Udp;
    spec.trunk.username_env = None;
    spec.trunk.password_env = None;
    // A message found next to the campaign file is played; otherwise the lab's own recording.
    let resolve = |field: &mut Option<String>, fallback: &[u8]| -> anyhow::Result<()> {
        let Some(path) = field.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Ok(());
        };
        let name = Path::new(path).file_name().map_or_else(
            || "message.wav".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let written = prompts.join(&name);
        // The engine plays files of its prompts folder only: one found next to the campaign
        // file is copied there.
        if let Some(found) = base.as_ref().map(|b| b.join(path)).filter(|p| p.is_file()) {
            std::fs::copy(&found, &written).with_context(|| {
                format!("cannot copy {} to {}", found.display(), written.display())
            })?;
        } else {
            std::fs::write(&written, fallback)
                .with_context(|| format!("cannot write {}", written.display()))?;
        }
        // Relative to the engine's prompts folder, which stays put: a campaign kept in a
        // database finds its messages again on the next run.
        *field = Some(name);
        Ok(())
    };
    resolve(&mut spec.abandon_message, lab::ABANDON_MESSAGE_WAV)?;
    resolve(&mut spec.agentless_message, lab::ABANDON_MESSAGE_WAV)?;
    resolve(&mut spec.amd.message, lab::VOICEMAIL_MESSAGE_WAV)?;
    Ok(spec)
}

/// Where the lab's messages are written for the engine (the same folder on every run).
fn prompts_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("dialer-demo-prompts");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Generated rows with the demo list's columns: fictional 555 numbers in several zones.
fn generated_rows(count: u64) -> String {
    let mut csv = String::from("first_name,last_name,phone,city,policy\n");
    for i in 0..count {
        let (area, city) = AREAS[(i % AREAS.len() as u64) as usize];
        // 555-0100..0199 is the demo list's; generated numbers start above it.
        let line = 200 + i / AREAS.len() as u64;
        csv.push_str(&format!(
            "Lab,Contact {i},+1 {area} 555 {line:04},{city},G-{}\n",
            100_000 + i
        ));
    }
    csv
}

async fn import(
    engine: &Engine,
    campaign_id: i64,
    args: &Args,
    agents: u32,
) -> anyhow::Result<u64> {
    let list = match &args.list {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => DEMO_CSV.as_bytes().to_vec(),
    };
    let options = store::ImportOptions {
        list_name: "demo".into(),
        ..store::ImportOptions::default()
    };
    let first = engine
        .store()
        .import_csv(campaign_id, std::io::Cursor::new(list), &options)
        .await
        .context("cannot import the call list")?;
    let wanted = u64::from(args.contacts.unwrap_or(1000.max(120 * agents)));
    let mut total = first.imported;
    let extra = wanted.saturating_sub(first.rows);
    if extra > 0 {
        let options = store::ImportOptions {
            list_name: "demo-generated".into(),
            ..store::ImportOptions::default()
        };
        let more = engine
            .store()
            .import_csv(
                campaign_id,
                std::io::Cursor::new(generated_rows(extra).into_bytes()),
                &options,
            )
            .await
            .context("cannot import the generated contacts")?;
        total += more.imported;
    }
    Ok(total)
}

/// Binds the API: the address given, else 8080, else any free port.
async fn bind_api(listen: Option<SocketAddr>) -> anyhow::Result<tokio::net::TcpListener> {
    match listen {
        Some(addr) => tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}")),
        None => match tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await {
            Ok(listener) => Ok(listener),
            Err(_) => Ok(tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?),
        },
    }
}

/// A value's name as serialised (`predictive`, `30d`).
fn name_of(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// What the terminal shows, one screen.
struct View<'a> {
    campaign: &'a CampaignView,
    carrier: &'a CarrierCounters,
    phones: &'a AgentCounters,
    agents: u32,
    elapsed: Duration,
    limit: Option<Duration>,
    api: &'a str,
    trunk: &'a str,
}

impl View<'_> {
    fn screen(&self) -> String {
        let f = &self.campaign.figures;
        let (a, c, t, ab, p) = (&f.agents, &f.calls, &f.totals, &f.abandon, &f.pacing);
        let limit = self.limit.map_or_else(
            || "Ctrl-C to stop".into(),
            |l| format!("of {}, Ctrl-C to stop", clock(l)),
        );
        let mut out = String::new();
        out.push_str(&format!(
            "dialer demo · campaign {} ({}, {}) · {} lab agents · {} {}\n",
            self.campaign.name,
            self.campaign.status,
            name_of(&self.campaign.mode),
            self.agents,
            clock(self.elapsed),
            limit
        ));
        out.push_str(&format!(
            "API {}/api/v1 (docs {}/swagger-ui/) · lab carrier {}\n\n",
            self.api, self.api, self.trunk
        ));
        out.push_str(&format!(
            "agents    logged in {:>4}  ready {:>4}  on call {:>4}  wrap-up {:>4}  paused {:>4}\n",
            a.logged_in,
            a.ready + a.reserved,
            a.on_call,
            a.wrap_up,
            a.paused
        ));
        out.push_str(&format!(
            "in flight {:>4}  dialing {:>4}  AMD {:>4}  waiting {:>4}  bridged {:>4}  other {:>4}\n",
            c.in_flight, c.dialing, c.answered, c.waiting, c.bridged, c.other
        ));
        out.push_str(&format!(
            "placed    {:>6}  answers {:>5}  live {:>5}  connected {:>5}  abandoned {:>4}\n",
            t.placed, t.answered, t.live, t.connected, t.abandoned
        ));
        out.push_str(&format!(
            "machines  {:>6}  messages {:>4}  busy {:>5}  no answer {:>5}  invalid {:>5}  failed/rejected {:>4}\n",
            t.machines,
            t.messages_left,
            t.busy,
            t.no_answer,
            t.invalid,
            t.failed + t.rejected
        ));
        out.push_str(&format!(
            "occupancy {:>6}  wait between calls {:.1} s  answer->agent median {:.2} s, p99 {:.2} s  greeting->agent median {:.2} s, p99 {:.2} s\n",
            pct(f.occupancy),
            f.mean_wait_secs,
            f.connect_median_secs,
            f.connect_p99_secs,
            f.greeting_connect_median_secs,
            f.greeting_connect_p99_secs
        ));
        out.push_str(&format!(
            "abandons  {:>6}  ({} of {} live answers over the {} window; target {})\n",
            pct(ab.rate),
            ab.abandons,
            ab.live_answers,
            name_of(&ab.window),
            pct(ab.target)
        ));
        out.push_str(&format!(
            "pacer     {} · dial level {:.2} · answer rate {} · talk {:.0} s · {} decisions, {:.3} s CPU\n",
            p.reason.as_deref().unwrap_or("-"),
            p.dial_level,
            pct(p.answer_rate),
            p.talk_mean_secs,
            p.decisions,
            p.cpu_secs
        ));
        let k = self.carrier;
        out.push_str(&format!(
            "lab       carrier: {} calls, {} up; {} people ({} heard an agent or message, {} silent), {} machines ({} messages)\n",
            k.calls, k.in_progress, k.human, k.connected, k.silent, k.machine, k.messages
        ));
        let ph = self.phones;
        out.push_str(&format!(
            "          phones: {} calls taken, {} ended with #, {} by the caller, {} dispositions, {} breaks\n",
            ph.calls,
            ph.agent_hangups,
            ph.caller_hangups,
            ph.dispositions.values().sum::<u64>(),
            ph.pauses
        ));
        out
    }

    fn line(&self) -> String {
        let f = &self.campaign.figures;
        format!(
            "[{}] agents {}/{} on call · in flight {} · placed {} answers {} machines {} connected {} abandoned {} · occupancy {} · abandon rate {} · greeting->agent p50 {:.2}s p99 {:.2}s",
            clock(self.elapsed),
            f.agents.on_call,
            f.agents.logged_in,
            f.calls.in_flight,
            f.totals.placed,
            f.totals.answered,
            f.totals.machines,
            f.totals.connected,
            f.totals.abandoned,
            pct(f.occupancy),
            pct(f.abandon.rate),
            f.greeting_connect_median_secs,
            f.greeting_connect_p99_secs
        )
    }
}

/// The database URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// Runs `dialer demo`.
pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=2000).contains(&args.agents),
        "--agents must be between 1 and 2000"
    );
    let limit = match args.minutes {
        Some(m) if m.is_finite() && m > 0.0 && m <= 7.0 * 24.0 * 60.0 => {
            Some(Duration::from_secs_f64(m * 60.0))
        }
        Some(m) => anyhow::bail!("--minutes {m}: give a number of minutes above 0 (0.5 is 30 s)"),
        None => None,
    };
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.breaks),
        "--breaks is a chance between 0 and 1"
    );
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "dialer-demo-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    )));
    std::fs::create_dir_all(&scratch.0)
        .with_context(|| format!("cannot create {}", scratch.0.display()))?;
    let mut db = global.clone();
    let temporary = global.database_url == DEFAULT_DATABASE_URL;
    if temporary {
        db.database_url = format!("sqlite://{}?mode=rwc", scratch.0.join("demo.db").display());
    }
    let database = if temporary {
        "temporary SQLite (deleted at exit; give --database-url to keep it)".to_owned()
    } else {
        redacted(&db.database_url)
    };

    // The lab's sounds: greetings from the corpus, the lab's sentences.
    let mut bank_config = BankConfig::default();
    if let Some(corpus) = &args.corpus {
        bank_config.corpus = corpus.clone();
    }
    let bank = Bank::load(&bank_config).context(
        "cannot load the lab's greetings (run from the source tree, or give --corpus crates/media/corpus)",
    )?;
    let mut carrier_config = CarrierConfig::new(bank.clone());
    carrier_config.planner.mix = args.mix;
    carrier_config.planner.seed = args.seed;
    carrier_config.planner.behaviour.talk = args.callee_talk;
    let carrier = Carrier::start(carrier_config)
        .await
        .context("cannot start the lab carrier")?;

    let listener = bind_api(args.listen).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let store = super::migrate::open(&db).await?;
    api::metrics::install();
    let mut config = EngineConfig::new("demo");
    config.sip_udp = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.rtp_ports = 0..=0;
    config.prompts_dir = prompts_dir()?;
    config.recordings_dir = scratch.0.join("recordings");
    let engine = Engine::start(config, store, InProcess::shared())
        .await
        .context("cannot start the engine")?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, engine.clone(), async move {
        let _ = http_stopped.await;
    }));

    let result = demo(&args, &engine, &carrier, &bank, limit, &api, &database).await;
    let _ = stop_http.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    carrier.shutdown(Duration::from_secs(2)).await;
    let summary = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    drop(scratch);
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
async fn demo(
    args: &Args,
    engine: &Engine,
    carrier: &Carrier,
    bank: &Bank,
    limit: Option<Duration>,
    api: &str,
    database: &str,
) -> anyhow::Result<Summary> {
    let spec = campaign_spec(args, &prompts_dir()?, carrier)?;
    let name = spec.name.clone();
    let (view, _) = engine
        .apply_campaign(&spec)
        .await
        .context("the campaign was refused")?;
    let contacts = import(engine, view.id, args, args.agents).await?;

    // Agent accounts (kept from an earlier demo on the same database), then their phones.
    let mut ids = HashMap::new();
    for n in 1..=args.agents {
        let username = format!("agent{n}");
        let spec = AgentSpec {
            username: username.clone(),
            display_name: format!("Lab agent {n}"),
            password: format!("lab-secret-{n}"),
            campaigns: vec![name.clone()],
            digest_algorithms: None,
        };
        match engine.create_agent(&spec).await {
            Ok(agent) => {
                ids.insert(username, agent.id);
            }
            Err(EngineError::Store(store::Error::AgentExists(_))) => {}
            Err(err) => return Err(err).context("cannot create the lab agents"),
        }
    }
    // An agent with no lab phone, for a person: it logs in from the agent desktop (/agent/).
    let desk = AgentSpec {
        username: "desk1".into(),
        display_name: "Desk agent".into(),
        password: store::random_password(),
        campaigns: vec![name.clone()],
        digest_algorithms: None,
    };
    match engine.create_agent(&desk).await {
        Ok(_) | Err(EngineError::Store(store::Error::AgentExists(_))) => {}
        Err(err) => return Err(err).context("cannot create the desk agent"),
    }
    for agent in engine.agents().await? {
        ids.entry(agent.username.clone()).or_insert(agent.id);
    }
    let logins = demo_logins(
        engine,
        ids.get("agent1").copied(),
        ids.get("desk1").copied(),
    )
    .await?;
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    for (who, user, password) in &logins {
        if *who == "the agent desktop" {
            say(format!(
                "login for {who}: {user} / {password} (open {api}/agent/ in a browser)"
            ));
        } else {
            say(format!(
                "login for {who}: {user} / {password} (POST {api}/api/v1/login)"
            ));
        }
    }
    let dialer_addr = engine
        .sip_addr(sip::Transport::Udp)
        .context("the engine has no UDP SIP address")?;
    let mut template = AgentConfig::new("", "", sip::Uri::from_addr(None, dialer_addr));
    // The phones share the carrier's receive loops (the engine has its own).
    template.media = carrier.media().clone();
    template.target_user = Some(name.clone());
    template.seed = args.seed;
    template.behaviour = AgentBehaviour {
        talk: args.talk,
        wrap: args.wrap,
        pause: (args.breaks > 0.0).then_some(PausePolicy {
            chance: args.breaks,
            length: args.break_length,
        }),
        ..AgentBehaviour::default()
    };
    template.hooks = Some(Arc::new(PauseButton {
        engine: engine.clone(),
        ids,
        runtime: tokio::runtime::Handle::current(),
    }));
    let agents = Agents::start(
        &template,
        args.agents,
        1,
        "agent{n}",
        "lab-secret-{n}",
        bank,
    )
    .await
    .context("cannot start the lab agents")?;

    // Give the phones a moment to log in, so that the pacer starts with its agents.
    let login_deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < login_deadline {
        let logged_in = engine.campaign(&name).await?.figures.agents.logged_in;
        if logged_in >= args.agents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    engine
        .start_campaign(&name)
        .await
        .context("cannot start the campaign")?;

    let started = Instant::now();
    let trunk = carrier.uri().to_string();
    let tty = !args.json && !args.plain && std::io::stdout().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else if args.json {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(5)
    };
    if !tty && !args.json {
        println!(
            "dialer demo: campaign {name}, {} lab agents, {contacts} contacts added, API {api}/api/v1, lab carrier {trunk}, database {database}",
            args.agents
        );
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_print = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let stop_at = limit.map(|l| tokio::time::Instant::now() + l);
    loop {
        let until_stop = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {}
            () = until_stop => break,
            _ = &mut ctrl_c => break,
        }
        if last_print.elapsed() + Duration::from_millis(50) < every {
            continue;
        }
        last_print = Instant::now();
        let campaign = engine.campaign(&name).await?;
        let view = View {
            campaign: &campaign,
            carrier: &carrier.counters(),
            phones: &agents.counters(),
            agents: args.agents,
            elapsed: started.elapsed(),
            limit,
            api,
            trunk: &trunk,
        };
        if tty {
            // Home, draw, clear what is left of the previous screen.
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[H\x1b[2J{}", view.screen());
            let _ = out.flush();
        } else if args.json {
            eprintln!("{}", view.line());
        } else {
            println!("{}", view.line());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let end = engine.campaign(&name).await?;
    let carrier_counters = carrier.counters();
    let phones = agents.counters();
    if !args.json {
        println!(
            "\nstopping: no new calls; calls with agents may finish within {:.0} s",
            args.grace.0.as_secs_f64()
        );
    }
    let shutdown = tokio::select! {
        report = engine.shutdown(args.grace.0) => report.context("engine shutdown")?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("second Ctrl-C: not waiting for calls");
            ShutdownReport::default()
        }
    };
    agents.logout().await;
    let f = end.figures;
    Ok(Summary {
        campaign: name,
        agents: args.agents,
        seconds,
        api: format!("{api}/api/v1"),
        database: database.to_owned(),
        contacts_added: contacts,
        calls: f.totals,
        abandon: f.abandon,
        occupancy: f.occupancy,
        mean_wait_secs: f.mean_wait_secs,
        connect_median_secs: f.connect_median_secs,
        connect_p99_secs: f.connect_p99_secs,
        greeting_connect_median_secs: f.greeting_connect_median_secs,
        greeting_connect_p99_secs: f.greeting_connect_p99_secs,
        pacing: f.pacing,
        mean_talk_secs: match phones.agent_hangups + phones.caller_hangups {
            0 => 0.0,
            ended => phones.talk_ms as f64 / 1000.0 / ended as f64,
        },
        carrier: carrier_counters,
        phones,
        shutdown,
    })
}

fn print_summary(s: &Summary) {
    let c = &s.calls;
    println!(
        "\ndialer demo: {} lab agents for {} on campaign {} ({} contacts added)",
        s.agents,
        clock(Duration::from_secs_f64(s.seconds)),
        s.campaign,
        s.contacts_added
    );
    println!(
        "calls     placed {}, answered {} (live {}, machines {}), connected to agents {}, abandoned {}",
        c.placed, c.answered, c.live, c.machines, c.connected, c.abandoned
    );
    println!(
        "          messages left {}, busy {}, no answer {}, invalid {}, rejected {}, failed {}, skipped {}",
        c.messages_left, c.busy, c.no_answer, c.invalid, c.rejected, c.failed, c.skipped
    );
    println!(
        "agents    occupancy {}, mean wait between calls {:.1} s, mean talk {:.1} s",
        pct(s.occupancy),
        s.mean_wait_secs,
        s.mean_talk_secs
    );
    println!(
        "abandons  {} ({} of {} live answers; target {})",
        pct(s.abandon.rate),
        s.abandon.abandons,
        s.abandon.live_answers,
        pct(s.abandon.target)
    );
    println!(
        "connect   greeting->agent median {:.2} s, p99 {:.2} s (the 2-second rule's clock); answer->agent median {:.2} s, p99 {:.2} s",
        s.greeting_connect_median_secs,
        s.greeting_connect_p99_secs,
        s.connect_median_secs,
        s.connect_p99_secs
    );
    println!(
        "pacer     {} decisions, {:.3} s CPU, last dial level {:.2}",
        s.pacing.decisions, s.pacing.cpu_secs, s.pacing.dial_level
    );
    println!(
        "lab       carrier took {} calls ({} people, {} machines, {} busy, {} unanswered, {} SIT, {} 503); {} silent calls",
        s.carrier.calls,
        s.carrier.human,
        s.carrier.machine,
        s.carrier.busy,
        s.carrier.no_answer,
        s.carrier.sit,
        s.carrier.unavailable,
        s.carrier.silent
    );
    println!(
        "shutdown  {} cancelled, {} finished, {} cut at the grace time, {} leases released",
        s.shutdown.cancelled, s.shutdown.finished, s.shutdown.cut, s.shutdown.leases_released
    );
    println!("database  {}", s.database);
}
