//! `dialer serve`: the dialer service. The engine (SIP, media, campaigns, agents) and the HTTP
//! API on one node, set up from a TOML file and flags (flags win), on SQLite by default or
//! PostgreSQL by URL. Migrations run on start; campaigns in `campaigns_dir` are applied;
//! Ctrl-C or SIGTERM stops dialling, lets calls with agents finish (up to the grace time),
//! gives the leases back and exits.

use crate::Global;
use anyhow::Context as _;
use domain::Dur;
use engine::{Engine, EngineConfig, InProcess, MediaIo, MediaPriority};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The default of the global `--database-url`, which the config file's `database_url` may
/// replace (a URL given by flag or `DATABASE_URL` wins over the file).
const DEFAULT_DATABASE_URL: &str = "sqlite://dialer.db?mode=rwc";

/// Options of `dialer serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// TOML configuration file (see docs/api.md); flags override its values.
    #[arg(long, short = 'c', env = "DIALER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the API, `/metrics` and the docs (default 127.0.0.1:8080; port 0 picks one).
    /// Other than loopback it needs `--https-cert`/`--https-key`, or `--insecure-http`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// PEM file of the certificate chain the API presents over HTTPS (leaf first); with
    /// `--https-key`, the API speaks HTTPS only.
    #[arg(long, value_name = "FILE", requires = "https_key")]
    pub https_cert: Option<PathBuf>,
    /// PEM file of the HTTPS certificate's private key.
    #[arg(long, value_name = "FILE", requires = "https_cert")]
    pub https_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback `--listen` address (behind a proxy that terminates
    /// HTTPS); refused without it, since passwords and contacts' data would cross the network
    /// in clear.
    #[arg(long)]
    pub insecure_http: bool,
    /// Largest list upload, bytes or with a unit (`512MiB`, `1GiB`; default 1GiB): past it the
    /// upload is refused with 413.
    #[arg(long, value_name = "SIZE")]
    pub max_upload: Option<String>,
    /// How long a list upload may send nothing before it is refused with 408 (default 30s).
    #[arg(long, value_name = "DURATION")]
    pub upload_idle_timeout: Option<Dur>,
    /// This node's id, written on leases and attempts (default `node-1`).
    #[arg(long)]
    pub node_id: Option<String>,
    /// UDP address of the SIP endpoint, repeatable (default 127.0.0.1:5060).
    #[arg(long = "sip", value_name = "ADDR")]
    pub sip_udp: Vec<SocketAddr>,
    /// TCP address of the SIP endpoint, repeatable.
    #[arg(long = "sip-tcp", value_name = "ADDR")]
    pub sip_tcp: Vec<SocketAddr>,
    /// TLS address of the SIP endpoint (phones on `sips:`), repeatable; needs `--tls-cert` and
    /// `--tls-key`.
    #[arg(long = "sip-tls", value_name = "ADDR")]
    pub sip_tls: Vec<SocketAddr>,
    /// PEM file of the certificate chain the TLS listener presents (leaf first).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the TLS certificate's private key.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CAs TLS trunks are checked against when their campaign names no
    /// `ca_file` (default: the system's CA store).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Address written into SIP and SDP when listening on 0.0.0.0.
    #[arg(long)]
    pub advertise: Option<IpAddr>,
    /// Address RTP legs bind to (default 127.0.0.1).
    #[arg(long)]
    pub rtp_ip: Option<IpAddr>,
    /// RTP port range `FIRST-LAST` (default 20000-29999; `0-0` lets the OS choose).
    #[arg(long)]
    pub rtp_ports: Option<String>,
    /// Media receive loops (threads reading the RTP sockets), 1-256 (default: one per core, at
    /// most 8).
    #[arg(long, value_name = "N")]
    pub media_threads: Option<usize>,
    /// What the media receive loops wait on: `auto` (io_uring if it works here, else epoll),
    /// `io_uring` or `epoll` (default auto).
    #[arg(long, value_name = "IO")]
    pub media_io: Option<MediaIo>,
    /// Scheduling priority of the media receive loops: `normal` or `realtime` (SCHED_FIFO 10,
    /// needs CAP_SYS_NICE or RLIMIT_RTPRIO; default normal).
    #[arg(long, value_name = "PRIORITY")]
    pub media_priority: Option<MediaPriority>,
    /// Digest realm of agents' phones (default `dialer`; must not change once agents exist).
    #[arg(long)]
    pub realm: Option<String>,
    /// Digest algorithms offered to agents' phones, preferred first, comma-separated (default
    /// `MD5`: many phones give up on a challenge naming an algorithm they do not know).
    #[arg(long, value_delimiter = ',', value_name = "ALGORITHM")]
    pub digest_algorithms: Vec<sip::digest::DigestAlgorithm>,
    /// The DNS server (`IP:PORT`) for carriers' host names (NAPTR, SRV, A/AAAA; default: the
    /// system's resolv.conf).
    #[arg(long, value_name = "ADDR")]
    pub dns_server: Option<SocketAddr>,
    /// Time zone whose midnight ends agents' days (their day's counters), e.g.
    /// `Europe/Paris` (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub agent_day_time_zone: Option<String>,
    /// Base directory of campaigns' message files and trunk CA files, which must stay inside
    /// it (default: the current directory).
    #[arg(long)]
    pub prompts_dir: Option<PathBuf>,
    /// Trunk secrets file: `DIALER_TRUNK_NAME = "value"` lines that campaigns'
    /// `username_env`/`password_env` name (looked up before the environment); refused when
    /// other users may read it.
    #[arg(long, value_name = "FILE")]
    pub trunk_secrets: Option<PathBuf>,
    /// Directory recordings are written to (default `recordings`).
    #[arg(long)]
    pub recordings_dir: Option<PathBuf>,
    /// Directory of campaign files (`*.toml`) applied at start.
    #[arg(long)]
    pub campaigns_dir: Option<PathBuf>,
    /// How long calls with agents may go on after Ctrl-C or SIGTERM before they are hung up.
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<Dur>,
}

/// The configuration file. Relative paths in it are taken from the file's directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// HTTP address.
    pub listen: Option<SocketAddr>,
    /// The API's HTTPS certificate chain (PEM).
    pub https_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub https_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address.
    #[serde(default)]
    pub insecure_http: bool,
    /// Largest list upload (`"1GiB"`, bytes).
    pub max_upload: Option<String>,
    /// Longest silence of a list upload.
    pub upload_idle_timeout: Option<Dur>,
    /// Database URL (a `--database-url` flag or `DATABASE_URL` wins).
    pub database_url: Option<String>,
    /// Node id.
    pub node_id: Option<String>,
    /// SIP UDP addresses.
    #[serde(default)]
    pub sip_udp: Vec<SocketAddr>,
    /// SIP TCP addresses.
    #[serde(default)]
    pub sip_tcp: Vec<SocketAddr>,
    /// SIP TLS addresses.
    #[serde(default)]
    pub sip_tls: Vec<SocketAddr>,
    /// The TLS listener's certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The CAs TLS trunks are checked against by default (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Address advertised in SIP and SDP.
    pub advertise: Option<IpAddr>,
    /// RTP bind address.
    pub rtp_ip: Option<IpAddr>,
    /// RTP port range, `FIRST-LAST`.
    pub rtp_ports: Option<String>,
    /// Media receive loops.
    pub media_threads: Option<usize>,
    /// What the media receive loops wait on.
    pub media_io: Option<MediaIo>,
    /// The media receive loops' priority.
    pub media_priority: Option<MediaPriority>,
    /// Digest realm.
    pub realm: Option<String>,
    /// Digest algorithms offered to phones, preferred first (`["SHA-256", "MD5"]`).
    #[serde(default)]
    pub digest_algorithms: Vec<String>,
    /// SRTP with agents' phones: `"off"`, `"optional"` or `"required"`.
    pub phone_srtp: Option<domain::SrtpPolicy>,
    /// Agree SRTP keys with phones over UDP and TCP too, not only over TLS.
    pub sdes_without_tls: Option<bool>,
    /// DNS server for carriers' host names (`IP:PORT`).
    pub dns_server: Option<SocketAddr>,
    /// Time zone whose midnight ends agents' days (`"Europe/Paris"`).
    pub agent_day_time_zone: Option<String>,
    /// Messages' base directory.
    pub prompts_dir: Option<PathBuf>,
    /// The trunk secrets file.
    pub trunk_secrets: Option<PathBuf>,
    /// Recordings' directory.
    pub recordings_dir: Option<PathBuf>,
    /// Campaign files applied at start.
    pub campaigns_dir: Option<PathBuf>,
    /// Grace time at shutdown.
    pub shutdown_grace: Option<Dur>,
    /// How long a browser agent whose WebRTC leg went down stays logged in (`"60s"`).
    pub webrtc_grace: Option<Dur>,
}

/// Everything `serve` needs, after the file, the flags and the defaults.
#[derive(Debug)]
struct Settings {
    listen: SocketAddr,
    api: api::ApiConfig,
    database_url: String,
    engine: EngineConfig,
    campaigns_dir: Option<PathBuf>,
    grace: Duration,
}

fn parse_ports(text: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (first, last) = text
        .split_once('-')
        .with_context(|| format!("rtp_ports `{text}`: write FIRST-LAST, e.g. 20000-29999"))?;
    let first: u16 = first
        .trim()
        .parse()
        .with_context(|| format!("rtp_ports `{text}`: bad first port"))?;
    let last: u16 = last
        .trim()
        .parse()
        .with_context(|| format!("rtp_ports `{text}`: bad last port"))?;
    anyhow::ensure!(
        first <= last,
        "rtp_ports `{text}`: the first port is above the last"
    );
    Ok(first..=last)
}

/// A size in bytes: `1048576`, `512KiB`, `64MiB`, `1GiB`.
fn parse_size(text: &str) -> anyhow::Result<usize> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let unit = match text[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => anyhow::bail!("max_upload `{text}`: unknown unit `{other}` (B, KiB, MiB or GiB)"),
    };
    let value: usize = text[..digits]
        .parse()
        .with_context(|| format!("max_upload `{text}`: write a number of bytes, e.g. 1GiB"))?;
    let bytes = value
        .checked_mul(unit)
        .with_context(|| format!("max_upload `{text}` is too large"))?;
    anyhow::ensure!(bytes > 0, "max_upload must be above zero");
    Ok(bytes)
}

/// Refuses plain HTTP beyond this machine unless told: agents' passwords, sessions and
/// contacts' personal data would cross the network in clear.
fn check_plain_http(listen: SocketAddr, https: bool, insecure_http: bool) -> anyhow::Result<()> {
    if https || insecure_http || listen.ip().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve the API over plain HTTP on {listen}, which is not a loopback \
         address: passwords and contacts' data would cross the network in clear. Give \
         --https-cert and --https-key (https_cert and https_key in the configuration) to serve \
         HTTPS, or --insecure-http (insecure_http = true) when a proxy in front terminates HTTPS"
    )
}

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let mut config: FileConfig = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid configuration", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for dir in [
        &mut config.prompts_dir,
        &mut config.trunk_secrets,
        &mut config.recordings_dir,
        &mut config.campaigns_dir,
        &mut config.tls_cert,
        &mut config.tls_key,
        &mut config.tls_ca,
        &mut config.https_cert,
        &mut config.https_key,
    ]
    .into_iter()
    .flatten()
    {
        if dir.is_relative() {
            *dir = base.join(&*dir);
        }
    }
    Ok(config)
}

fn settings(args: Args, global: &Global) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    let database_url = match file.database_url {
        Some(url) if global.database_url == DEFAULT_DATABASE_URL => url,
        _ => global.database_url.clone(),
    };
    let node_id = args
        .node_id
        .or(file.node_id)
        .unwrap_or_else(|| "node-1".into());
    let mut engine = EngineConfig::new(node_id);
    let flags_listen =
        !args.sip_udp.is_empty() || !args.sip_tcp.is_empty() || !args.sip_tls.is_empty();
    let sip_udp = if flags_listen {
        args.sip_udp
    } else {
        file.sip_udp
    };
    let sip_tcp = if args.sip_tcp.is_empty() {
        file.sip_tcp
    } else {
        args.sip_tcp
    };
    let sip_tls = if args.sip_tls.is_empty() {
        file.sip_tls
    } else {
        args.sip_tls
    };
    if !sip_udp.is_empty() || !sip_tcp.is_empty() || !sip_tls.is_empty() {
        engine.sip_udp = sip_udp;
        engine.sip_tcp = sip_tcp;
        engine.sip_tls = sip_tls;
    }
    engine.tls_cert = args.tls_cert.or(file.tls_cert);
    engine.tls_key = args.tls_key.or(file.tls_key);
    engine.tls_ca = args.tls_ca.or(file.tls_ca);
    engine.advertise = args.advertise.or(file.advertise);
    if let Some(ip) = args.rtp_ip.or(file.rtp_ip) {
        engine.rtp_ip = ip;
    }
    if let Some(ports) = args.rtp_ports.or(file.rtp_ports) {
        engine.rtp_ports = parse_ports(&ports)?;
    }
    if let Some(threads) = args.media_threads.or(file.media_threads) {
        engine.media.threads = Some(threads);
    }
    if let Some(io) = args.media_io.or(file.media_io) {
        engine.media.io = io;
    }
    if let Some(priority) = args.media_priority.or(file.media_priority) {
        engine.media.priority = priority;
    }
    engine.dns_server = args.dns_server.or(file.dns_server);
    if let Some(policy) = file.phone_srtp {
        engine.phone_srtp = policy;
    }
    if let Some(allow) = file.sdes_without_tls {
        engine.sdes_without_tls = allow;
    }
    if let Some(grace) = file.webrtc_grace {
        engine.webrtc_grace = grace.0;
    }
    if let Some(realm) = args.realm.or(file.realm) {
        engine.realm = realm;
    }
    if !args.digest_algorithms.is_empty() {
        engine.digest_algorithms = args.digest_algorithms;
    } else if !file.digest_algorithms.is_empty() {
        engine.digest_algorithms = file
            .digest_algorithms
            .iter()
            .map(|token| token.parse())
            .collect::<Result<_, _>>()
            .context("digest_algorithms in the configuration")?;
    }
    if let Some(zone) = args.agent_day_time_zone.or(file.agent_day_time_zone) {
        engine.agent_day_time_zone = zone
            .parse::<chrono_tz::Tz>()
            .map_err(|err| anyhow::anyhow!("agent_day_time_zone `{zone}`: {err}"))?;
    }
    if let Some(dir) = args.prompts_dir.or(file.prompts_dir) {
        engine.prompts_dir = dir;
    }
    engine.trunk_secrets = args.trunk_secrets.or(file.trunk_secrets);
    if let Some(dir) = args.recordings_dir.or(file.recordings_dir) {
        engine.recordings_dir = dir;
    }
    engine.validate().map_err(|err| anyhow::anyhow!("{err}"))?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut api = api::ApiConfig::default();
    match (
        args.https_cert.or(file.https_cert),
        args.https_key.or(file.https_key),
    ) {
        (Some(cert), Some(key)) => api.tls = Some(api::tls_config(&cert, &key)?),
        (None, None) => {}
        _ => anyhow::bail!("HTTPS needs both https_cert and https_key"),
    }
    check_plain_http(
        listen,
        api.tls.is_some(),
        args.insecure_http || file.insecure_http,
    )?;
    if let Some(size) = args.max_upload.or(file.max_upload) {
        api.max_upload = parse_size(&size)?;
    }
    if let Some(idle) = args.upload_idle_timeout.or(file.upload_idle_timeout) {
        anyhow::ensure!(!idle.0.is_zero(), "upload_idle_timeout must be above zero");
        api.upload_idle_timeout = idle.0;
    }
    Ok(Settings {
        listen,
        api,
        database_url,
        engine,
        campaigns_dir: args.campaigns_dir.or(file.campaigns_dir),
        grace: args
            .grace
            .or(file.shutdown_grace)
            .unwrap_or(Dur::secs(30))
            .0,
    })
}

/// Applies every `*.toml` of `dir` (by name order); a refused file is reported and skipped.
async fn apply_dir(engine: &Engine, dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the campaigns directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for file in files {
        let result = async {
            let text = std::fs::read_to_string(&file)?;
            let spec = api::spec_from_toml(&text).map_err(|f| {
                let fields: Vec<String> = f
                    .problem
                    .fields
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.reason))
                    .collect();
                anyhow::anyhow!("{} ({})", f.problem.error, fields.join("; "))
            })?;
            let (view, applied) = engine.apply_campaign(&spec).await?;
            anyhow::Ok((view, applied))
        }
        .await;
        match result {
            Ok((view, applied)) => {
                println!(
                    "campaign {} {applied:?} from {} ({})",
                    view.name,
                    file.display(),
                    view.status
                );
            }
            Err(err) => {
                eprintln!(
                    "warning: campaign file {} not applied: {err:#}",
                    file.display()
                );
            }
        }
    }
    Ok(())
}

/// Ctrl-C and SIGTERM, caught from the moment this is made (a signal before the first wait
/// is not lost and does not kill the process).
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(%err, "signals cannot be caught; Ctrl-C only");
                    None
                }
            };
            Signals { streams }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `dialer serve`.
pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let settings = settings(args, global)?;
    let mut signals = Signals::new();
    // Bound first, so a port in use fails before anything else starts.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let api_addr = listener.local_addr()?;
    let mut open_global = global.clone();
    open_global.database_url = settings.database_url.clone();
    let store = super::migrate::open(&open_global).await?;
    if store.user_count().await? == 0 {
        // Every API route but /healthz needs a login: say how to make the first one.
        println!(
            "no user yet: create the first admin with `dialer user add --role admin NAME` \
             (the password is asked for; --password-stdin reads it from a pipe), then log in at \
             POST /api/v1/login or make a token with `dialer token add --user NAME`"
        );
        tracing::warn!("no user exists: the API refuses every request but /healthz");
    }
    api::metrics::install();
    let engine = Engine::start(settings.engine.clone(), store, InProcess::shared())
        .await
        .context("cannot start the engine")?;
    if let Some(dir) = &settings.campaigns_dir {
        apply_dir(&engine, dir).await?;
    }

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheme = if settings.api.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut server = tokio::spawn(api::serve_with(
        listener,
        engine.clone(),
        settings.api.clone(),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let sip = [
        sip::Transport::Udp,
        sip::Transport::Tcp,
        sip::Transport::Tls,
    ]
    .into_iter()
    .filter_map(|t| {
        engine
            .sip_addr(t)
            .map(|a| format!("{t:?} {a}").to_lowercase())
    })
    .collect::<Vec<_>>()
    .join(", ");
    println!(
        "dialer serve: node {}, SIP {sip}, API {scheme}://{api_addr}/api/v1 (docs {scheme}://{api_addr}/swagger-ui/, metrics {scheme}://{api_addr}/metrics)",
        engine.node_id()
    );
    println!("listening on {scheme}://{api_addr}");

    tokio::select! {
        () = signals.next() => {}
        result = &mut server => {
            // The HTTP server stopped by itself: an accept error. Stop the engine cleanly anyway.
            let err = match result {
                Ok(Ok(())) => anyhow::anyhow!("the HTTP server stopped"),
                Ok(Err(err)) => anyhow::Error::from(err),
                Err(err) => anyhow::Error::from(err),
            };
            let _ = engine.shutdown(settings.grace).await;
            return Err(err);
        }
    }
    println!(
        "stopping: no new calls; calls with agents may finish within {}s (Ctrl-C again to quit at once)",
        settings.grace.as_secs()
    );
    // The API stays up while calls drain (agents still set dispositions; /healthz says 503).
    let report = tokio::select! {
        report = engine.shutdown(settings.grace) => report.context("engine shutdown")?,
        () = signals.next() => {
            eprintln!("second signal: exiting without waiting for calls");
            return Ok(ExitCode::from(130));
        }
    };
    let _ = stop_http.send(());
    // Requests in progress get a moment; event streams close at once.
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(err))) => tracing::warn!(%err, "HTTP server"),
        Err(_) => tracing::warn!("HTTP requests still running at exit"),
        _ => {}
    }
    println!(
        "stopped: {} unanswered calls cancelled, {} finished, {} cut at the grace time, {} leases released",
        report.cancelled, report.finished, report.cut, report.leases_released
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        for bad in ["", "0", "1GB", "x", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_stays_on_loopback_unless_told() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let err = check_plain_http(any, false, false).unwrap_err().to_string();
        assert!(err.contains("refusing to serve the API over plain HTTP on 0.0.0.0:8080"));
        assert!(err.contains("--insecure-http"), "{err}");
        check_plain_http(any, true, false).unwrap();
        check_plain_http(any, false, true).unwrap();
        check_plain_http("127.0.0.1:0".parse().unwrap(), false, false).unwrap();
        check_plain_http("[::1]:8080".parse().unwrap(), false, false).unwrap();
        assert!(check_plain_http("192.0.2.7:80".parse().unwrap(), false, false).is_err());
    }
}
