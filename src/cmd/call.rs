//! `dialer call`: one test call through a trunk, printing every step and the outcome. Useful to
//! anyone wiring up a carrier: it shows what the carrier answers, when, and with what media.

use crate::Global;
use anyhow::{Context as _, bail};
use serde_json::json;
use sip::sdp::{Codec, LocalMedia};
use sip::{
    CallEvent, CallerId, Credentials, EndCause, Endpoint, EndpointConfig, InviteResult,
    OutboundCall, TlsClient, Transport, TrunkConfig, Uri,
};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options of `dialer call`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The number to call (E.164 with `--trunk`; national numbers are normalised with the
    /// campaign's default country with `--campaign`).
    pub number: String,
    /// Call through this campaign's trunk, with its caller ID and ring timeout.
    #[arg(long, conflicts_with = "trunk", required_unless_present = "trunk")]
    pub campaign: Option<String>,
    /// Call through this trunk, e.g. `sip:sip.carrier.example:5060;transport=tcp`, or
    /// `sips:sip.carrier.example` (TLS).
    #[arg(long)]
    pub trunk: Option<String>,
    /// PEM file of the CAs a TLS trunk's certificate must chain to (default: the campaign's
    /// `ca_file`, else the system's CA store).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Directory the campaign's `ca_file` is named in (with `--campaign`; default: the current
    /// directory), as `serve --prompts-dir`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub prompts_dir: std::path::PathBuf,
    /// Trunk secrets file the campaign's `username_env`/`password_env` are looked up in before
    /// the environment (with `--campaign`), as `serve --trunk-secrets`.
    #[arg(long, value_name = "FILE", env = "DIALER_TRUNK_SECRETS")]
    pub trunk_secrets: Option<std::path::PathBuf>,
    /// Digest username for the trunk (with `--trunk`).
    #[arg(long, env = "DIALER_TRUNK_USERNAME", requires = "password")]
    pub username: Option<String>,
    /// Digest password for the trunk (with `--trunk`).
    #[arg(long, env = "DIALER_TRUNK_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Caller ID number (E.164); the campaign's by default, else +10000000000.
    #[arg(long)]
    pub caller_id: Option<String>,
    /// Caller ID display name.
    #[arg(long)]
    pub caller_name: Option<String>,
    /// Seconds to let it ring before CANCEL (default: the campaign's, else 25).
    #[arg(long)]
    pub ring_timeout: Option<u64>,
    /// Seconds to stay on the line after the answer before hanging up.
    #[arg(long, default_value_t = 5.0)]
    pub talk: f64,
    /// Local SIP address (UDP, and TCP when the trunk uses TCP).
    #[arg(long, default_value = "0.0.0.0:0")]
    pub bind: SocketAddr,
    /// The address to advertise in Via, Contact and SDP (default: the bound address, else the
    /// interface that routes to the internet).
    #[arg(long)]
    pub advertise: Option<IpAddr>,
    /// Print one JSON object instead of the steps.
    #[arg(long)]
    pub json: bool,
    /// A WAV file (8 kHz mono) to play to the callee once answered; silence otherwise.
    #[arg(long, value_name = "FILE")]
    pub play: Option<std::path::PathBuf>,
}

/// One line of the call's story.
struct Step {
    at: Duration,
    text: String,
    json: serde_json::Value,
}

struct Target {
    trunk: TrunkConfig,
    /// SRTP as the campaign's trunk asks (`--trunk`: off).
    srtp: domain::SrtpPolicy,
    number: String,
    caller_id: String,
    ring_timeout: Duration,
}

async fn target(args: &Args, global: &Global) -> anyhow::Result<Target> {
    let ring_default = args.ring_timeout.map(Duration::from_secs);
    if let Some(uri) = &args.trunk {
        let uri: Uri = uri.parse().with_context(|| format!("--trunk {uri}"))?;
        let mut trunk = TrunkConfig::new(uri, 1);
        if let (Some(username), Some(password)) = (&args.username, &args.password) {
            trunk.credentials = Some(Credentials::new(username, password));
        }
        return Ok(Target {
            trunk,
            srtp: domain::SrtpPolicy::Off,
            number: args.number.trim().to_owned(),
            caller_id: args
                .caller_id
                .clone()
                .unwrap_or_else(|| "+10000000000".into()),
            ring_timeout: ring_default.unwrap_or(Duration::from_secs(25)),
        });
    }
    let Some(name) = &args.campaign else {
        bail!("give --trunk or --campaign");
    };
    let store = super::migrate::open(global).await?;
    let campaign = store.require_campaign(name).await?;
    let spec = &campaign.spec;
    let country = spec.country().context("the campaign's default country")?;
    let number = domain::phone::Normalizer::new(country)
        .normalize(&args.number)
        .map_err(anyhow::Error::msg)?;
    let uri: Uri = spec
        .trunk
        .uri
        .parse()
        .with_context(|| format!("campaign {name}: trunk URI {}", spec.trunk.uri))?;
    let mut trunk = TrunkConfig::new(uri, spec.trunk.cps.max(1));
    trunk.transport = Some(match spec.trunk.transport {
        domain::spec::Transport::Udp => Transport::Udp,
        domain::spec::Transport::Tcp => Transport::Tcp,
        domain::spec::Transport::Tls => Transport::Tls,
    });
    // `--ca-file` wins (see `run`).
    if args.ca_file.is_none()
        && let Some(file) = &spec.trunk.ca_file
    {
        // The same rules as the engine's: the campaign's files stay in the prompts directory.
        let path = engine::confined_path(&args.prompts_dir, "trunk.ca_file", file)
            .with_context(|| format!("campaign {name}"))?;
        trunk.tls = Some(
            TlsClient::from_ca_file(&path)
                .with_context(|| format!("campaign {name}: trunk.ca_file"))?,
        );
    }
    let secrets = match &args.trunk_secrets {
        Some(path) => engine::TrunkSecrets::read(path)?,
        None => engine::TrunkSecrets::default(),
    };
    trunk.credentials = secrets
        .credentials(&spec.trunk)
        .with_context(|| format!("campaign {name}"))?;
    Ok(Target {
        trunk,
        srtp: spec.trunk.srtp,
        number,
        caller_id: args
            .caller_id
            .clone()
            .unwrap_or_else(|| spec.caller_id.clone()),
        ring_timeout: ring_default.unwrap_or(spec.ring_timeout.0),
    })
}

fn outcome_name(outcome: &InviteResult) -> String {
    match outcome {
        InviteResult::Answered => "answered".into(),
        InviteResult::Busy => "busy".into(),
        InviteResult::NoAnswer => "no answer".into(),
        InviteResult::Rejected => "rejected".into(),
        InviteResult::NotFound => "not found".into(),
        InviteResult::Unavailable => "unavailable".into(),
        InviteResult::Cancelled => "cancelled".into(),
        InviteResult::Failed { code, reason } => format!("failed ({code} {reason})"),
    }
}

fn cause_name(cause: EndCause) -> &'static str {
    match cause {
        EndCause::Rejected => "final response",
        EndCause::LocalHangup => "we hung up",
        EndCause::RingTimeout => "ring timeout",
        EndCause::RemoteHangup => "callee hung up",
        EndCause::RemoteCancel => "caller cancelled",
        EndCause::NoResponse => "no response",
        EndCause::NoAck => "no ACK",
        EndCause::SessionExpired => "session expired",
        EndCause::TransportError => "transport error",
        EndCause::TlsRefused => "TLS certificate refused",
    }
}

fn media_json(sdp: &sip::sdp::Sdp) -> serde_json::Value {
    match sdp.remote_media(&[Codec::Pcmu, Codec::Pcma]) {
        Ok(media) => json!({
            "address": media.addr.to_string(),
            "codec": media.codec.name(),
            "payload_type": media.payload_type,
            "telephone_event": media.telephone_event,
            "direction": format!("{:?}", media.direction).to_lowercase(),
        }),
        Err(err) => json!({ "error": err.to_string() }),
    }
}

fn media_text(sdp: &sip::sdp::Sdp) -> String {
    match sdp.remote_media(&[Codec::Pcmu, Codec::Pcma]) {
        Ok(media) => format!("remote audio {} at {}", media.codec.name(), media.addr),
        Err(err) => format!("unusable SDP: {err}"),
    }
}

/// Runs `dialer call`.
pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let mut target = target(&args, global).await?;
    if let Some(file) = &args.ca_file {
        target.trunk.tls = Some(
            TlsClient::from_ca_file(file)
                .with_context(|| format!("--ca-file {}", file.display()))?,
        );
    }
    let transport = target
        .trunk
        .transport
        .or(target.trunk.uri.transport())
        .unwrap_or(Transport::Udp);
    let mut config = EndpointConfig::udp(args.bind);
    if transport == Transport::Tcp {
        config.tcp = vec![args.bind];
    }

    config.advertise = args.advertise;
    let (endpoint, _incoming) = Endpoint::bind(config)
        .await
        .context("cannot open the SIP socket")?;
    let local_ip = endpoint
        .local_addr(Transport::Udp)
        .map(|addr| addr.ip())
        .context("no local address")?;
    // A real RTP leg for the offer, so the carrier's audio has somewhere to go (and is
    // counted), and the callee hears silence or --play's file (SRTP when the trunk says so).
    let prompt = match &args.play {
        Some(file) => Some(
            media::Prompt::from_wav_file(file)
                .with_context(|| format!("--play {}", file.display()))?,
        ),
        None => None,
    };
    let runtime = media::MediaRuntime::new(media::MediaConfig::default());
    let ports = media::PortAllocator::new(
        if args.bind.ip().is_unspecified() {
            args.bind.ip()
        } else {
            local_ip
        },
        0..=0,
    )?;
    let (leg, _leg_events) = runtime
        .open_leg(
            &ports,
            media::LegOptions {
                comfort_silence: true,
                label: "dialer call".into(),
                ..media::LegOptions::default()
            },
        )
        .context("cannot open an RTP leg")?;
    let mut media = LocalMedia::new(SocketAddr::new(local_ip, leg.local_rtp_addr().port()));
    match target.srtp {
        domain::SrtpPolicy::Off => {}
        domain::SrtpPolicy::Optional => {
            media = media.with_srtp(sip::sdes::SrtpMode::Optional);
        }
        domain::SrtpPolicy::Required => {
            media = media.with_srtp(sip::sdes::SrtpMode::Required);
        }
    }
    let local = media.clone();
    let trunk = endpoint.trunk(target.trunk.clone()).await?;

    let started = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let json = args.json;
    let say = |steps: &mut Vec<Step>, text: String, value: serde_json::Value| {
        let at = started.elapsed();
        if !json {
            println!("{:>8.3}s  {text}", at.as_secs_f64());
        }
        steps.push(Step {
            at,
            text,
            json: value,
        });
    };
    let mut call = endpoint
        .dial(
            &trunk,
            OutboundCall {
                number: target.number.clone(),
                caller_id: CallerId {
                    number: target.caller_id.clone(),
                    name: args.caller_name.clone(),
                },
                media,
                ring_timeout: target.ring_timeout,
                headers: Vec::new(),
            },
        )
        .await?;
    say(
        &mut steps,
        format!(
            "INVITE {} via {} ({}, Call-ID {})",
            target.number,
            trunk.uri(),
            trunk.destination().addr,
            call.call_id()
        ),
        json!({"event": "invite", "to": target.number, "destination": trunk.destination().addr.to_string()}),
    );

    let mut remote_media = None;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let end = loop {
        let hangup_timer = async {
            match hangup_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = call.next_event() => match event {
                Some(CallEvent::Progress { code, reason, sdp }) => {
                    let media = sdp.as_ref().map(media_text).map(|m| format!(", early media: {m}")).unwrap_or_default();
                    say(&mut steps, format!("{code} {reason}{media}"),
                        json!({"event": "progress", "code": code, "reason": reason, "early_media": sdp.as_ref().map(media_json)}));
                }
                Some(CallEvent::Answered { sdp }) => {
                    let media = sdp.as_ref().map(media_text).unwrap_or_else(|| "no SDP".into());
                    remote_media = sdp.as_ref().map(media_json);
                    say(&mut steps, format!("200 OK: answered, {media}; ACK sent"),
                        json!({"event": "answered", "media": remote_media}));
                    hangup_at = Some(tokio::time::Instant::now() + Duration::from_secs_f64(args.talk.max(0.0)));
                    match sdp.as_ref().map(|sdp| sip::sdp::answered(&local, sdp)) {
                        Some(Ok(remote)) => {
                            if let Err(err) = leg.set_remote(&engine::leg_media(remote)) {
                                say(&mut steps, format!("media unusable: {err}"), json!({"event": "media_error", "error": err.to_string()}));
                            }
                            if let Some(prompt) = &prompt {
                                leg.play(prompt);
                            }
                        }
                        Some(Err(err)) => {
                            say(&mut steps, format!("answer unusable: {err}; hanging up"), json!({"event": "media_error", "error": err.to_string()}));
                            call.hangup();
                        }
                        None => {}
                    }
                }
                Some(CallEvent::MediaChanged { sdp, .. }) => {
                    say(&mut steps, format!("session changed by the callee: {}", media_text(&sdp)),
                        json!({"event": "media_changed", "media": media_json(&sdp)}));
                }
                Some(CallEvent::Confirmed { .. }) => {}
                Some(CallEvent::Ended(end)) => break Some(end),
                None => break None,
            },
            _ = hangup_timer => {
                hangup_at = None;
                say(&mut steps, format!("BYE after {:.1}s of talk", args.talk), json!({"event": "bye"}));
                call.hangup();
            }
            _ = tokio::signal::ctrl_c() => {
                say(&mut steps, "interrupted: hanging up".into(), json!({"event": "interrupted"}));
                call.hangup();
            }
        }
    };
    let Some(end) = end else {
        bail!("the SIP endpoint stopped before the call ended");
    };
    let duration = started.elapsed();
    let stats = leg.stats();
    leg.close();
    let rtp_packets = stats.packets_received;
    let srtp = stats.srtp.map(|suite| format!("{suite:?}"));
    let outcome = outcome_name(&end.outcome);
    say(
        &mut steps,
        format!(
            "outcome: {outcome}{} ({}), {} RTP packets received",
            end.code
                .map(|code| format!(", SIP {code}"))
                .unwrap_or_default(),
            cause_name(end.cause),
            rtp_packets
        ),
        json!({"event": "ended"}),
    );
    if json {
        let object = json!({
            "number": target.number,
            "trunk": trunk.uri().to_string(),
            "call_id": call.call_id(),
            "outcome": outcome,
            "code": end.code,
            "cause": cause_name(end.cause),
            "duration_ms": duration.as_millis() as u64,
            "rtp_packets": rtp_packets,
            "rtp_sent": stats.packets_sent,
            "srtp": srtp,
            "srtp_dropped": stats.dropped.srtp_auth + stats.dropped.srtp_replay,
            "media": remote_media,
            "steps": steps.iter().map(|step| {
                let mut value = step.json.clone();
                if let Some(object) = value.as_object_mut() {
                    object.insert("at_ms".into(), json!(step.at.as_millis() as u64));
                    object.insert("text".into(), json!(step.text));
                }
                value
            }).collect::<Vec<_>>(),
        });
        println!("{object}");
    }
    endpoint.shutdown();
    Ok(if end.outcome == InviteResult::Answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
