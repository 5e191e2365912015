//! `dialer lab`: the lab network alone, for a dialer started separately (`dialer serve`, or
//! another dialer altogether): a SIP carrier answering with a configured outcome mix and real
//! audio, and/or agent phones that register, call in, talk and set dispositions. It prints the
//! addresses, a status line every 10 s, and the counters at the end (Ctrl-C or `--minutes`).

use crate::Global;
use anyhow::Context as _;
use lab::{
    AgentBehaviour, AgentConfig, Agents, Bank, BankConfig, Behaviour, Carrier, CarrierConfig, Dist,
    Mix, Override, PausePolicy,
};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options of `dialer lab`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run no carrier (agent phones only).
    #[arg(long)]
    pub no_carrier: bool,
    /// The carrier's SIP address (UDP; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:5070")]
    pub sip: SocketAddr,
    /// Listen on TCP too, at the same address.
    #[arg(long)]
    pub tcp: bool,
    /// Outcome mix of the carrier's calls (weights).
    #[arg(
        long,
        default_value = "human=25,machine=10,busy=10,no-answer=40,sit=5,unavailable=10"
    )]
    pub mix: Mix,
    /// Forces an outcome for numbers: `+1202555*=busy`, `+12025550100=sit` (repeatable; first
    /// match wins). Outcomes: human, machine, busy, no-answer, sit, unavailable.
    #[arg(long = "override", value_name = "PATTERN=OUTCOME")]
    pub overrides: Vec<Override>,
    /// Time from the INVITE to a person's answer.
    #[arg(long, default_value = "lognormal:10.5s:0.3")]
    pub ring_human: Dist,
    /// Time from the INVITE to a machine's answer.
    #[arg(long, default_value = "lognormal:12.5s:0.35")]
    pub ring_machine: Dist,
    /// How long a person talks after the greeting before hanging up.
    #[arg(long, default_value = "lognormal:60s:0.6")]
    pub callee_talk: Dist,
    /// Challenge the dialer's INVITEs for these credentials (`user:password`).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub credentials: Option<String>,
    /// Lab agent phones to start (0: none).
    #[arg(long, default_value_t = 0)]
    pub agents: u32,
    /// The dialer the phones register with and call (`sip:127.0.0.1:5060`; add
    /// `;transport=tcp` for TCP).
    #[arg(long, default_value = "sip:127.0.0.1:5060")]
    pub dialer: String,
    /// Username pattern of the phones (`{n}` is the phone's number).
    #[arg(long, default_value = "agent{n}")]
    pub username: String,
    /// Password pattern of the phones.
    #[arg(long, default_value = "secret{n}")]
    pub password: String,
    /// Number of the first phone.
    #[arg(long, default_value_t = 1)]
    pub first: u32,
    /// Call in to this campaign (`sip:<campaign>@dialer`) instead of `sip:<username>@dialer`.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Agents' talk time: past it the agent ends the call with `#`.
    #[arg(long, default_value = "lognormal:90s:0.6")]
    pub talk: Dist,
    /// Agents' wrap-up, from the end of a call to the disposition key.
    #[arg(long, default_value = "2s..6s")]
    pub wrap: Dist,
    /// Disposition keys' mix (`sale=20,not-interested=55,callback=20,do-not-call=5`).
    #[arg(long)]
    pub dispositions: Option<lab::Dispositions>,
    /// Chance (0-1) that an agent goes quiet for a break after a call (the phone has no way to
    /// tell the dialer; `dialer demo` does it through the engine).
    #[arg(long, default_value_t = 0.0)]
    pub breaks: f64,
    /// Folder of the labelled greeting corpus [default: crates/media/corpus of this source tree].
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Seed of the carrier's and the phones' random draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many minutes (fractions allowed); without it, run until Ctrl-C.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Print the final counters as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    seconds: f64,
    carrier: Option<lab::CarrierCounters>,
    phones: Option<lab::AgentCounters>,
}

/// Runs `dialer lab`.
pub async fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.no_carrier || args.agents > 0,
        "nothing to run: --no-carrier and no --agents"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.breaks),
        "--breaks is a chance between 0 and 1"
    );
    let limit = match args.minutes {
        Some(m) if m.is_finite() && m > 0.0 => Some(Duration::from_secs_f64(m * 60.0)),
        Some(m) => anyhow::bail!("--minutes {m}: give a number of minutes above 0"),
        None => None,
    };
    let mut bank_config = BankConfig::default();
    if let Some(corpus) = &args.corpus {
        bank_config.corpus = corpus.clone();
    }
    let bank = Bank::load(&bank_config).context(
        "cannot load the lab's greetings (run from the source tree, or give --corpus crates/media/corpus)",
    )?;

    // The carrier and the phones share one set of receive loops.
    let media = media::MediaRuntime::default();
    let carrier = if args.no_carrier {
        None
    } else {
        let mut config = CarrierConfig::new(bank.clone());
        config.media = media.clone();
        config.sip = args.sip;
        config.tcp = args.tcp;
        config.planner.mix = args.mix;
        config.planner.overrides = args.overrides.clone();
        config.planner.seed = args.seed;
        config.planner.behaviour = Behaviour {
            ring_human: args.ring_human,
            ring_machine: args.ring_machine,
            talk: args.callee_talk,
            ..Behaviour::default()
        };
        if let Some(credentials) = &args.credentials {
            let (user, password) = credentials
                .split_once(':')
                .context("--credentials: write USER:PASSWORD")?;
            config.credentials = Some((user.to_owned(), password.to_owned()));
        }
        let carrier = Carrier::start(config)
            .await
            .with_context(|| format!("cannot start the lab carrier on {}", args.sip))?;
        println!(
            "lab carrier: {} ({}{}), mix {}",
            carrier.uri(),
            if args.tcp { "udp and tcp" } else { "udp" },
            if args.credentials.is_some() {
                ", digest required"
            } else {
                ""
            },
            args.mix
        );
        Some(carrier)
    };

    let agents = if args.agents > 0 {
        let dialer: sip::Uri = args
            .dialer
            .parse()
            .with_context(|| format!("--dialer {}: not a SIP URI", args.dialer))?;
        let mut template = AgentConfig::new("", "", dialer.clone());
        template.media = media.clone();
        template.target_user = args.campaign.clone();
        template.seed = args.seed;
        let mut behaviour = AgentBehaviour {
            talk: args.talk,
            wrap: args.wrap,
            pause: (args.breaks > 0.0).then_some(PausePolicy {
                chance: args.breaks,
                length: Dist::secs(30.0, 90.0),
            }),
            ..AgentBehaviour::default()
        };
        if let Some(dispositions) = &args.dispositions {
            behaviour.dispositions = dispositions.clone();
        }
        template.behaviour = behaviour;
        let agents = Agents::start(
            &template,
            args.agents,
            args.first,
            &args.username,
            &args.password,
            &bank,
        )
        .await
        .context("cannot start the lab agents")?;
        for phone in agents.phones() {
            println!(
                "lab phone: {} at {} -> {}",
                phone.username(),
                phone.addr(),
                dialer.with_user(args.campaign.as_deref().unwrap_or(phone.username()))
            );
        }
        Some(agents)
    } else {
        None
    };

    let started = Instant::now();
    let stop_at = limit.map(|l| tokio::time::Instant::now() + l);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
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
        let mut line = format!("[{:>5.0} s]", started.elapsed().as_secs_f64());
        if let Some(carrier) = &carrier {
            let c = carrier.counters();
            line.push_str(&format!(
                " carrier: {} calls ({} up), {} answered, {} heard a voice, {} silent, {} messages;",
                c.calls, c.in_progress, c.answered, c.connected, c.silent, c.messages
            ));
        }
        if let Some(agents) = &agents {
            let states: Vec<String> = agents
                .by_state()
                .iter()
                .map(|(state, n)| format!("{n} {}", state.as_str()))
                .collect();
            let c = agents.counters();
            line.push_str(&format!(
                " phones: {}; {} calls taken, {} logins, {} login failures",
                states.join(", "),
                c.calls,
                c.logins,
                c.login_failures + c.registration_failures
            ));
        }
        println!("{line}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let phones = match agents {
        Some(agents) => {
            let counters = agents.counters();
            agents.logout().await;
            Some(counters)
        }
        None => None,
    };
    let carrier_counters = match &carrier {
        Some(carrier) => {
            carrier.shutdown(Duration::from_secs(5)).await;
            Some(carrier.counters())
        }
        None => None,
    };
    let report = Report {
        seconds,
        carrier: carrier_counters,
        phones,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(c) = &report.carrier {
            println!(
                "carrier: {} calls: {} people ({} heard a voice, {} silent), {} machines ({} messages), {} busy, {} unanswered, {} SIT, {} 503; {} cancelled",
                c.calls,
                c.human,
                c.connected,
                c.silent,
                c.machine,
                c.messages,
                c.busy,
                c.no_answer,
                c.sit,
                c.unavailable,
                c.cancelled
            );
        }
        if let Some(c) = &report.phones {
            println!(
                "phones: {} calls taken ({} ended with #), {:.0} s talked, dispositions {:?}",
                c.calls,
                c.agent_hangups,
                c.talk_ms as f64 / 1000.0,
                c.dispositions
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
