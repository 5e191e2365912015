//! A campaign's definition: what a campaign file (TOML) or an API body (JSON) says.
//!
//! Everything here is plain data. [`CampaignSpec::validate`] refuses bad values with the field's
//! name and the reason; the pacer takes the `[pacing]` section as it is, and the engine maps the
//! others to the media crate's own types.

use crate::error::{Error, FieldError};
use crate::hours::CallingHours;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written as `25s`, `1500ms`, `15m`, `2h`, `1d` or `1h30m` (a bare number is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// A duration of whole seconds.
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// A duration of milliseconds.
    pub const fn millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// The value in milliseconds (saturating).
    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut rest = ms;
        for (size, unit) in units {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Ok(Self::secs(secs));
        }
        let mut total_ms: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "`{s}` is not a duration (write e.g. 25s, 1500ms, 15m, 2h, 1d)"
                ));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{s}`: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let scale = match rest[..unit_len].trim() {
                "ms" => 1,
                "s" => 1_000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                other => {
                    return Err(format!(
                        "`{s}`: unknown unit `{other}` (use ms, s, m, h or d)"
                    ));
                }
            };
            rest = &rest[unit_len..];
            total_ms = value
                .checked_mul(scale)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(|| format!("`{s}`: duration too large"))?;
        }
        Ok(Self::millis(total_ms))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Secs(secs) => Ok(Self::secs(secs)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How the campaign decides how many calls to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DialMode {
    /// The agent sees the next contact and starts the call.
    Preview,
    /// Lines = idle agents x `pacing.ratio`.
    Progressive,
    /// The pacer chooses the number of lines, keeping abandons under the target.
    #[default]
    Predictive,
    /// No agents: a recorded message to every answered call, bounded by `pacing.max_lines`.
    Agentless,
}

/// The regulator's window over which the abandon rate is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AbandonWindow {
    /// 24 hours (UK, Ofcom).
    Day,
    /// 30 days (US, FTC Telemarketing Sales Rule).
    #[default]
    ThirtyDays,
}

impl AbandonWindow {
    /// The window's length.
    pub fn duration(self) -> Duration {
        match self {
            Self::Day => Duration::from_secs(86_400),
            Self::ThirtyDays => Duration::from_secs(30 * 86_400),
        }
    }
}

impl Serialize for AbandonWindow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            Self::Day => "24h",
            Self::ThirtyDays => "30d",
        })
    }
}

impl<'de> Deserialize<'de> for AbandonWindow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim() {
            "24h" | "1d" | "day" => Ok(Self::Day),
            "30d" | "720h" | "30 days" => Ok(Self::ThirtyDays),
            other => Err(serde::de::Error::custom(format!(
                "abandon window `{other}` must be \"24h\" (UK) or \"30d\" (US)"
            ))),
        }
    }
}

/// Pacing limits the supervisor can tune while the campaign runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Pacing {
    /// Dial mode.
    pub mode: DialMode,
    /// Lines per idle agent in progressive mode, and the predictive pacer's starting ratio.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.1, maximum = 20.0))]
    pub ratio: f64,
    /// Checked (0.1-20, at most `max_ratio`) and stored, but no mode reads it: the predictive
    /// pacer's lowest level is progressive 1:1, which it falls back to on its own.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.1, maximum = 20.0))]
    pub min_ratio: f64,
    /// Highest lines-per-agent ratio the predictive pacer may use.
    #[cfg_attr(feature = "openapi", schema(minimum = 1.0, maximum = 20.0))]
    pub max_ratio: f64,
    /// Highest share of live answers that may be abandoned over the window (0.03 = 3%).
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, exclusive_maximum = 1.0))]
    pub abandon_target: f64,
    /// Window of the abandon rate: 24 h or 30 days.
    pub abandon_window: AbandonWindow,
    /// Most calls in progress at once for this campaign.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    pub max_lines: u32,
    /// Fewest logged-in agents for predictive mode; below it the engine paces progressively.
    pub min_agents: u32,
    /// Allows an abandon target above 3% (against US and UK rules): never on by default.
    pub override_legal_limits: bool,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            mode: DialMode::Predictive,
            ratio: 1.0,
            min_ratio: 1.0,
            max_ratio: 3.0,
            abandon_target: 0.03,
            abandon_window: AbandonWindow::ThirtyDays,
            max_lines: 100,
            min_agents: 3,
            override_legal_limits: false,
        }
    }
}

/// What to do when answering-machine detection says MACHINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum MachineAction {
    /// Hang up at once.
    #[default]
    HangUp,
    /// Wait for the beep and play `amd.message`.
    LeaveMessage,
}

/// What to do when answering-machine detection is not sure (NOTSURE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum NotSureAction {
    /// Treat it as a person: connect it to an agent.
    #[default]
    Agent,
    /// Hang up, as on a machine (if it was a person, that is an abandoned call).
    HangUp,
}

/// Answering-machine detection; the optional parameters use Asterisk `AMD()` terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Amd {
    /// Whether answered calls are classified before an agent gets them.
    pub enabled: bool,
    /// What to do with a machine.
    pub machine_action: MachineAction,
    /// What to do when the detector is not sure.
    pub not_sure_action: NotSureAction,
    /// Recorded message left on machines (needed with `leave-message`).
    pub message: Option<String>,
    /// Longest silence before the greeting starts (Asterisk `initialSilence`).
    pub initial_silence: Option<Dur>,
    /// Longest greeting a human gives (Asterisk `greeting`).
    pub greeting: Option<Dur>,
    /// Silence after the greeting that means a human waits for us (`afterGreetingSilence`).
    pub after_greeting_silence: Option<Dur>,
    /// Longest time spent deciding (`totalAnalysisTime`).
    pub total_analysis_time: Option<Dur>,
    /// Shortest sound that counts as a word (`minimumWordLength`).
    pub min_word_length: Option<Dur>,
    /// Shortest silence between two words (`betweenWordsSilence`).
    pub between_words_silence: Option<Dur>,
    /// Words after which the greeting is a machine's (`maximumNumberOfWords`).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 20))]
    pub maximum_words: Option<u32>,
    /// Mean absolute sample level below which audio is silence (`silenceThreshold`, 0..32767).
    pub silence_threshold: Option<u32>,
}

impl Default for Amd {
    fn default() -> Self {
        Self {
            enabled: true,
            machine_action: MachineAction::HangUp,
            not_sure_action: NotSureAction::Agent,
            message: None,
            initial_silence: None,
            greeting: None,
            after_greeting_silence: None,
            total_analysis_time: None,
            min_word_length: None,
            between_words_silence: None,
            maximum_words: None,
            silence_threshold: None,
        }
    }
}

/// When to try a contact again after one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    /// Wait before the next attempt.
    pub delay: Dur,
    /// Attempts after which this outcome ends the contact (defaults to `retry.max_attempts`).
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl RetryRule {
    const fn after(delay: Dur) -> Self {
        Self {
            delay,
            max_attempts: None,
        }
    }
}

/// Retry rules per outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Most attempts per contact, whatever the outcomes.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_attempts: u32,
    /// After a busy signal.
    pub busy: RetryRule,
    /// After ringing out (the ring timeout) unanswered.
    pub no_answer: RetryRule,
    /// After an answering machine (hung up on; a left message ends the contact).
    pub machine: RetryRule,
    /// After a network or carrier failure (5xx, timeouts).
    pub failed: RetryRule,
    /// After the callee declined or was unavailable (403, 480, 603, ...).
    pub rejected: RetryRule,
    /// After we abandoned a live answer (no agent in time).
    pub abandoned: RetryRule,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            busy: RetryRule::after(Dur::secs(15 * 60)),
            no_answer: RetryRule::after(Dur::secs(2 * 3600)),
            machine: RetryRule::after(Dur::secs(4 * 3600)),
            failed: RetryRule::after(Dur::secs(30 * 60)),
            rejected: RetryRule::after(Dur::secs(3600)),
            abandoned: RetryRule::after(Dur::secs(3600)),
        }
    }
}

/// What agents do after a call: the wrap-up time, its default disposition, and the phone keys
/// that set a disposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct WrapUp {
    /// Time after a call before the agent is made ready again without a disposition.
    pub timeout: Dur,
    /// Disposition recorded when the wrap-up time runs out.
    pub default: crate::DispositionKind,
    /// Phone key (`"1"` to `"9"`, `"0"`, `"*"`) pressed during wrap-up -> disposition.
    pub digits: std::collections::BTreeMap<String, crate::DispositionKind>,
    /// When a callback set by a key is due (the API sets any time).
    pub callback_after: Dur,
}

impl Default for WrapUp {
    fn default() -> Self {
        use crate::DispositionKind as K;
        Self {
            timeout: Dur::secs(30),
            default: K::Other,
            digits: [
                ("1", K::Sale),
                ("2", K::NotInterested),
                ("3", K::Callback),
                ("9", K::DoNotCall),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            callback_after: Dur::secs(3600),
        }
    }
}

/// SIP transport to the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (RFC 3261 default).
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS (what a `sips:` URI asks for); port 5061 unless the URI gives one.
    Tls,
}

/// The prefix every trunk secret's name carries: credentials come only from variables of this
/// namespace (or the same names in the service's trunk secrets file), never from any other
/// variable of the service's environment (`DATABASE_URL`, `HOME`).
pub const TRUNK_SECRET_PREFIX: &str = "DIALER_TRUNK_";

/// Whether a leg's media is SRTP (keys exchanged in the SDP, SDES: RFC 4568).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only; an offer that requires SRTP (RTP/SAVP) is refused with 488.
    #[default]
    Off,
    /// SRTP when the peer offers or accepts it, plain RTP otherwise.
    Optional,
    /// SRTP or no call: a plain offer is refused with 488, a plain answer ends the call.
    Required,
}

impl SrtpPolicy {
    /// Whether SRTP may be used at all.
    pub fn enabled(self) -> bool {
        self != SrtpPolicy::Off
    }
}

/// The carrier trunk calls go out through. Credentials are names of trunk secrets
/// (`DIALER_TRUNK_*`), read from the service's trunk secrets file or its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// SIP URI of the carrier's proxy, e.g. `sip:sip.carrier.example:5060`.
    #[cfg_attr(feature = "openapi", schema(example = "sip:sip.carrier.example:5060"))]
    pub uri: String,
    /// Transport.
    #[serde(default)]
    pub transport: Transport,
    /// With TLS: a PEM file of the CAs the carrier's certificate must chain to (a carrier with a
    /// private CA; relative to the prompts directory and confined to it), instead of the
    /// system's CA store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Name of the trunk secret (`DIALER_TRUNK_*`) holding the digest username (none: the trunk
    /// needs no auth).
    #[serde(default)]
    pub username_env: Option<String>,
    /// Name of the trunk secret (`DIALER_TRUNK_*`) holding the digest password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Most new calls per second the carrier accepts.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    #[serde(default = "default_cps")]
    pub cps: u32,
    /// Whether the carrier wants the trunk registered (REGISTER with digest, refreshed before
    /// it expires). No call goes out while a required registration is not held.
    #[serde(default, skip_serializing_if = "is_false")]
    pub register: bool,
    /// The registration time asked for (the registrar may grant less).
    #[serde(default = "default_register_expires")]
    pub register_expires: Dur,
    /// The registrar's URI; the trunk's URI when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "sip:registrar.carrier.example"))]
    pub registrar: Option<String>,
    /// The user of the address of record registered (`sip:USER@registrar-host`); the digest
    /// username (from `username_env`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_user: Option<String>,
    /// An outbound proxy every request goes through (RFC 3261 8.1.2: a `Route` to it, the
    /// Request-URI still the carrier's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(example = "sip:proxy.carrier.example:5060")
    )]
    pub outbound_proxy: Option<String>,
    /// SRTP on the calls' media: `off` (default), `optional` or `required`. Its keys travel in
    /// the SDP, so it needs `transport = "tls"` unless `sdes_without_tls` is set.
    #[serde(default, skip_serializing_if = "is_off")]
    pub srtp: SrtpPolicy,
    /// Exchange SRTP keys over UDP or TCP too, where anyone on the path can read them (a
    /// carrier on a private link). Off by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sdes_without_tls: bool,
}

fn is_off(policy: &SrtpPolicy) -> bool {
    *policy == SrtpPolicy::Off
}

fn default_cps() -> u32 {
    10
}

fn default_register_expires() -> Dur {
    Dur::secs(3600)
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A campaign as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "spring-renewals",
            min_length = 1,
            max_length = 100,
            pattern = "^[A-Za-z0-9._-]+$"
        )
    )]
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ISO 3166 country used for numbers written without a country code (`US`, `GB`, ...).
    #[cfg_attr(feature = "openapi", schema(example = "US"))]
    pub default_country: String,
    /// Number presented to callees, in E.164.
    #[cfg_attr(feature = "openapi", schema(example = "+12025550143"))]
    pub caller_id: String,
    /// Ringing time before giving up as no answer (default 25 s, never below 15 s).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout: Dur,
    /// Whether calls are recorded (stereo, callee and agent).
    #[serde(default)]
    pub recording: bool,
    /// Short recorded message played to an abandoned live answer, naming the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_message: Option<String>,
    /// Message played to every answered call in agentless mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agentless_message: Option<String>,
    /// Played over and over to a callee an agent puts on hold (music or a message); without
    /// one the callee hears silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_message: Option<String>,
    /// Pacing limits.
    #[serde(default)]
    pub pacing: Pacing,
    /// Answering-machine detection.
    #[serde(default)]
    pub amd: Amd,
    /// Calling hours in the callee's local time, per weekday.
    #[serde(default)]
    pub calling_hours: CallingHours,
    /// Retry rules per outcome.
    #[serde(default)]
    pub retry: Retry,
    /// Agents' wrap-up after a call.
    #[serde(default)]
    pub wrap_up: WrapUp,
    /// The carrier trunk.
    pub trunk: Trunk,
    /// The agents' call script, shown at the bridge with `{{placeholder}}`s filled from the
    /// contact (built-ins: `phone`, `name`, `agent_name`, `agent_username`, `campaign`,
    /// `time_zone`; list columns named in `script_columns`). Plain text, never HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "Hello {{first_name}}, this is {{agent_name}} calling about your renewal."
        )
    )]
    pub script: Option<String>,
    /// List columns (as in the CSV header) the script's placeholders may name besides the
    /// built-ins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script_columns: Vec<String>,
}

fn default_ring_timeout() -> Dur {
    Dur::secs(25)
}

/// The shortest ring timeout allowed: about four rings (the rules never give up sooner).
pub const MIN_RING_TIMEOUT: Dur = Dur::secs(15);

impl CampaignSpec {
    /// Reads and validates a campaign file's TOML.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        // Inline credentials are refused by name, before serde's generic "unknown field".
        if let Ok(value) = text.parse::<toml::Table>()
            && let Some(trunk) = value.get("trunk").and_then(|t| t.as_table())
        {
            for key in ["password", "username", "secret"] {
                if trunk.contains_key(key) {
                    return Err(Error::InvalidSpec(vec![FieldError::new(
                        format!("trunk.{key}"),
                        format!(
                            "credentials are never written in the campaign file; set \
                             {key}_env to the name of a trunk secret ({TRUNK_SECRET_PREFIX}...) \
                             holding it"
                        )
                        .replace("secret_env", "password_env"),
                    )]));
                }
            }
        }
        let spec: Self = toml::from_str(text).map_err(|err| {
            Error::InvalidSpec(vec![FieldError::new("", err.to_string().trim().to_owned())])
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads and validates a campaign as JSON (API bodies, stored specs).
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let spec: Self = serde_json::from_str(text)
            .map_err(|err| Error::InvalidSpec(vec![FieldError::new("", err.to_string())]))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The country id `phonenumber` uses for national numbers.
    pub fn country(&self) -> Result<phonenumber::country::Id, Error> {
        parse_country(&self.default_country)
            .map_err(|reason| Error::InvalidSpec(vec![FieldError::new("default_country", reason)]))
    }

    /// The retry rule for an outcome that may be retried, if any.
    pub fn retry_rule(&self, outcome: crate::Outcome) -> Option<RetryRule> {
        use crate::Outcome as O;
        let rule = match outcome {
            O::Busy => self.retry.busy,
            O::NoAnswer => self.retry.no_answer,
            O::MachineHungUp => self.retry.machine,
            O::Failed => self.retry.failed,
            O::Rejected => self.retry.rejected,
            O::Abandoned => self.retry.abandoned,
            O::Connected | O::MachineMessageLeft | O::InvalidNumber | O::DoNotCall => {
                return None;
            }
        };
        Some(rule)
    }

    /// The caller id in E.164, as the trunk must present it: a national form (`020 7946 0018`)
    /// is read in the campaign's `default_country`. `None` when it is no valid number, which
    /// [`CampaignSpec::validate`] reports.
    pub fn caller_id_e164(&self) -> Option<String> {
        let country = parse_country(&self.default_country).ok()?;
        let number = phonenumber::parse(Some(country), &self.caller_id).ok()?;
        number
            .is_valid()
            .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    }

    /// Every file the campaign names, with its field: messages and the trunk's CA file, all
    /// relative to the prompts directory.
    pub fn file_paths(&self) -> Vec<(&'static str, &str)> {
        [
            ("abandon_message", &self.abandon_message),
            ("agentless_message", &self.agentless_message),
            ("hold_message", &self.hold_message),
            ("amd.message", &self.amd.message),
            ("trunk.ca_file", &self.trunk.ca_file),
        ]
        .into_iter()
        .filter_map(|(field, value)| {
            value
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (field, v))
        })
        .collect()
    }

    /// Checks every value; all problems are reported at once, each with its field.
    pub fn validate(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, reason: String| errors.push(FieldError::new(field, reason));

        if self.name.is_empty() || self.name.len() > 100 {
            bad("name", "must be 1 to 100 characters".into());
        } else if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            bad(
                "name",
                format!(
                    "`{}` may hold only letters, digits, `-`, `_` and `.`",
                    self.name
                ),
            );
        }
        let country = parse_country(&self.default_country);
        if let Err(reason) = &country {
            bad("default_country", reason.clone());
        }
        match phonenumber::parse(country.ok(), &self.caller_id) {
            Ok(number) if number.is_valid() => {}
            Ok(_) => bad(
                "caller_id",
                format!("`{}` is not a valid phone number", self.caller_id),
            ),
            Err(err) => bad(
                "caller_id",
                format!("`{}` is not a phone number ({err})", self.caller_id),
            ),
        }
        if self.ring_timeout < MIN_RING_TIMEOUT {
            bad(
                "ring_timeout",
                format!(
                    "{} is below the 15s minimum (about four rings; callees must have time to answer)",
                    self.ring_timeout
                ),
            );
        } else if self.ring_timeout > Dur::secs(120) {
            bad(
                "ring_timeout",
                format!("{} is above the 120s maximum", self.ring_timeout),
            );
        }
        let agentless = self.pacing.mode == DialMode::Agentless;
        if agentless && blank(&self.agentless_message) {
            bad(
                "agentless_message",
                "agentless mode needs the message file played to answered calls".into(),
            );
        }
        if matches!(
            self.pacing.mode,
            DialMode::Progressive | DialMode::Predictive
        ) && blank(&self.abandon_message)
        {
            bad(
                "abandon_message",
                "progressive and predictive modes need the recorded message played to abandoned \
                 calls (the law asks for one naming the caller)"
                    .into(),
            );
        }

        for (field, reason) in self.pacing.problems() {
            bad(&format!("pacing.{field}"), reason);
        }

        let amd = &self.amd;
        if amd.machine_action == MachineAction::LeaveMessage && blank(&amd.message) {
            bad(
                "amd.message",
                "machine_action = \"leave-message\" needs the message file to leave".into(),
            );
        }
        if amd.machine_action == MachineAction::LeaveMessage && !amd.enabled {
            bad(
                "amd.machine_action",
                "leaving a message on machines needs amd.enabled = true".into(),
            );
        }
        for (field, value, max) in [
            ("amd.initial_silence", amd.initial_silence, 10_000),
            ("amd.greeting", amd.greeting, 10_000),
            (
                "amd.after_greeting_silence",
                amd.after_greeting_silence,
                5_000,
            ),
            ("amd.total_analysis_time", amd.total_analysis_time, 30_000),
            ("amd.min_word_length", amd.min_word_length, 2_000),
            (
                "amd.between_words_silence",
                amd.between_words_silence,
                2_000,
            ),
        ] {
            if let Some(value) = value
                && (value.0.is_zero() || value.0.as_millis() > max)
            {
                bad(field, format!("{value} must be between 1ms and {max}ms"));
            }
        }
        if let Some(words) = amd.maximum_words
            && !(1..=20).contains(&words)
        {
            bad("amd.maximum_words", format!("{words} must be 1 to 20"));
        }
        if let Some(level) = amd.silence_threshold
            && !(1..=32_767).contains(&level)
        {
            bad(
                "amd.silence_threshold",
                format!("{level} must be 1 to 32767 (mean absolute sample)"),
            );
        }

        for (field, reason) in self.calling_hours.problems() {
            bad(&format!("calling_hours.{field}"), reason);
        }

        let r = &self.retry;
        if r.max_attempts == 0 || r.max_attempts > 100 {
            bad(
                "retry.max_attempts",
                format!("{} must be between 1 and 100", r.max_attempts),
            );
        }
        for (name, rule) in [
            ("busy", r.busy),
            ("no_answer", r.no_answer),
            ("machine", r.machine),
            ("failed", r.failed),
            ("rejected", r.rejected),
            ("abandoned", r.abandoned),
        ] {
            if rule.delay < Dur::secs(60) {
                bad(
                    &format!("retry.{name}.delay"),
                    format!("{} is below 1 minute", rule.delay),
                );
            }
            if rule.max_attempts == Some(0) {
                bad(
                    &format!("retry.{name}.max_attempts"),
                    "must be at least 1".into(),
                );
            }
        }

        let w = &self.wrap_up;
        if w.timeout < Dur::secs(1) || w.timeout > Dur::secs(3600) {
            bad(
                "wrap_up.timeout",
                format!("{} must be between 1s and 1h", w.timeout),
            );
        }
        for key in w.digits.keys() {
            if !matches!(
                key.as_str(),
                "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "*"
            ) {
                bad(
                    &format!("wrap_up.digits.{key}"),
                    "keys are \"0\" to \"9\" or \"*\" (\"#\" ends the call)".into(),
                );
            }
        }
        if w.callback_after < Dur::secs(60) {
            bad(
                "wrap_up.callback_after",
                format!("{} is below 1 minute", w.callback_after),
            );
        }

        let t = &self.trunk;
        if !(t.uri.starts_with("sip:") || t.uri.starts_with("sips:")) || t.uri.len() < 5 {
            bad(
                "trunk.uri",
                format!("`{}` is not a SIP URI (write sip:host[:port])", t.uri),
            );
        }
        if t.uri.starts_with("sips:") && t.transport != Transport::Tls {
            bad(
                "trunk.transport",
                "a sips: URI is reached over TLS only: write transport = \"tls\"".into(),
            );
        }
        if t.ca_file.is_some() && t.transport != Transport::Tls {
            bad(
                "trunk.ca_file",
                "a CA file is for a TLS trunk: write transport = \"tls\"".into(),
            );
        }
        if t.srtp.enabled() && t.transport != Transport::Tls && !t.sdes_without_tls {
            bad(
                "trunk.srtp",
                format!(
                    "SRTP keys travel in the SDP, readable by anyone on the path without TLS: \
                     write transport = \"tls\" (or sdes_without_tls = true to send them over {} \
                     anyway)",
                    match t.transport {
                        Transport::Udp => "UDP",
                        Transport::Tcp => "TCP",
                        Transport::Tls => "TLS",
                    }
                ),
            );
        }
        if t.ca_file.as_deref().is_some_and(|f| f.trim().is_empty()) {
            bad("trunk.ca_file", "the CA file's path is empty".into());
        }
        for (field, path) in self.file_paths() {
            if let Err(reason) = check_relative_path(path) {
                bad(field, reason);
            }
        }
        for (field, value) in [
            ("trunk.username_env", &t.username_env),
            ("trunk.password_env", &t.password_env),
        ] {
            if let Some(name) = value
                && let Err(reason) = check_trunk_secret_name(name)
            {
                bad(field, reason);
            }
        }
        if t.username_env.is_some() != t.password_env.is_some() {
            bad(
                "trunk.password_env",
                "give both username_env and password_env, or neither".into(),
            );
        }
        for (field, value) in [
            ("trunk.registrar", &t.registrar),
            ("trunk.outbound_proxy", &t.outbound_proxy),
        ] {
            if let Some(uri) = value
                && (!(uri.starts_with("sip:") || uri.starts_with("sips:")) || uri.len() < 5)
            {
                bad(
                    field,
                    format!("`{uri}` is not a SIP URI (write sip:host[:port])"),
                );
            }
        }
        if let Some(user) = &t.register_user
            && (user.is_empty()
                || user.len() > 64
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()&=$,;?/".contains(c)))
        {
            bad(
                "trunk.register_user",
                format!("`{user}` is not a SIP user part (1 to 64 letters, digits, + - _ .)"),
            );
        }
        if t.register {
            if t.username_env.is_none() {
                bad(
                    "trunk.register",
                    "registration needs credentials: set username_env and password_env".into(),
                );
            }
            let expires = t.register_expires.0;
            if expires < Duration::from_secs(60) || expires > Duration::from_secs(86_400) {
                bad(
                    "trunk.register_expires",
                    format!(
                        "{} must be between 1 minute and 24 hours",
                        t.register_expires
                    ),
                );
            }
        }
        for (i, column) in self.script_columns.iter().enumerate() {
            if column.trim().is_empty() || column.len() > 100 || column.contains(['{', '}']) {
                bad(
                    &format!("script_columns[{i}]"),
                    format!("`{column}` is not a column name (1 to 100 characters, no braces)"),
                );
            }
        }
        if let Some(script) = &self.script {
            for reason in crate::script::problems(script, &self.script_columns) {
                bad("script", reason);
            }
        }
        if t.cps == 0 || t.cps > 1000 {
            bad(
                "trunk.cps",
                format!("{} must be between 1 and 1000 calls per second", t.cps),
            );
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidSpec(errors))
        }
    }
}

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// Checks a trunk secret's name: [`TRUNK_SECRET_PREFIX`] then letters, digits and `_`.
///
/// The name alone decides, never whether such a variable exists, so the refusal says nothing
/// about the service's environment.
pub fn check_trunk_secret_name(name: &str) -> Result<(), String> {
    let rest = name.strip_prefix(TRUNK_SECRET_PREFIX).unwrap_or_default();
    if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not a trunk secret: credentials come only from names starting with \
         {TRUNK_SECRET_PREFIX} followed by letters, digits or _ (an environment variable of the \
         service or a key of its trunk secrets file)"
    ))
}

/// Checks a file name of the campaign (a message, a CA file) before it meets the file system:
/// relative, below the prompts directory. Symbolic links are the engine's to check, where the
/// directory is known.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    use std::path::{Component, Path};
    let outside = "files are named relative to the prompts directory and stay inside it";
    if path.contains('\0') {
        return Err(format!("`{}` holds a NUL byte", path.escape_debug()));
    }
    // Both separators, whatever the platform the file was written on.
    if path.starts_with('/') || path.starts_with('\\') || Path::new(path).has_root() {
        return Err(format!("`{path}` is an absolute path: {outside}"));
    }
    if path.as_bytes().get(1) == Some(&b':') {
        return Err(format!("`{path}` names a drive: {outside}"));
    }
    let parent = path.split(['/', '\\']).any(|part| part == "..")
        || Path::new(path)
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
    if parent {
        return Err(format!("`{path}` climbs out with `..`: {outside}"));
    }
    Ok(())
}

/// Parses an ISO 3166 alpha-2 country (`US`, `gb`) as `phonenumber` knows it.
pub fn parse_country(code: &str) -> Result<phonenumber::country::Id, String> {
    phonenumber::country::Id::from_str(&code.trim().to_ascii_uppercase())
        .map_err(|_| format!("`{code}` is not an ISO 3166 country code (e.g. US, GB, FR)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const MINIMAL: &str = r#"
name = "t"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "prompts/abandon.wav"
[trunk]
uri = "sip:127.0.0.1:5060"
"#;

    #[test]
    fn a_script_names_known_fields_only() {
        let with = |extra: &str| CampaignSpec::from_toml(&format!("{extra}\n{MINIMAL}"));
        let spec = with(
            "script = '''\nHello {{first_name}}, {{agent_name}} here.\n'''\nscript_columns = [\"first_name\"]",
        )
        .unwrap();
        assert!(spec.script.as_deref().unwrap().contains("{{first_name}}"));
        let Err(Error::InvalidSpec(errors)) = with("script = \"Hi {{plan}}\"") else {
            panic!("an unknown placeholder was taken");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "script");
        assert!(
            errors[0].reason.contains("`{{plan}}`"),
            "{}",
            errors[0].reason
        );
        let Err(Error::InvalidSpec(errors)) = with("script_columns = [\"\"]") else {
            panic!("an empty column was taken");
        };
        assert_eq!(errors[0].field, "script_columns[0]");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!("25s".parse::<Dur>().unwrap(), Dur::secs(25));
        assert_eq!("1h30m".parse::<Dur>().unwrap(), Dur::secs(5400));
        assert_eq!("1500ms".parse::<Dur>().unwrap(), Dur::millis(1500));
        assert_eq!("90".parse::<Dur>().unwrap(), Dur::secs(90));
        assert!("5 parsecs".parse::<Dur>().is_err());
        assert!("".parse::<Dur>().is_err());
        assert_eq!(Dur::secs(5400).to_string(), "1h30m");
        assert_eq!(Dur::millis(1500).to_string(), "1500ms");
    }

    #[test]
    fn defaults_follow_the_rules() {
        let spec = CampaignSpec::from_toml(MINIMAL).unwrap();
        assert_eq!(spec.ring_timeout, Dur::secs(25));
        assert_eq!(spec.pacing.abandon_target, 0.03);
        assert_eq!(spec.pacing.abandon_window, AbandonWindow::ThirtyDays);
        assert_eq!(spec.retry.max_attempts, 3);
        // JSON round trip is lossless: the database stores the spec as JSON.
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(CampaignSpec::from_json(&json).unwrap(), spec);
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::InvalidSpec(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn a_national_caller_id_is_dialled_in_e164() {
        let text = MINIMAL
            .replace("default_country = \"US\"", "default_country = \"GB\"")
            .replace("+12025550123", "020 7946 0018");
        let spec = CampaignSpec::from_toml(&text).unwrap();
        assert_eq!(spec.caller_id_e164().as_deref(), Some("+442079460018"));
        let spec = CampaignSpec::from_toml(MINIMAL).unwrap();
        assert_eq!(spec.caller_id_e164().as_deref(), Some("+12025550123"));
    }

    #[test]
    fn short_ring_timeout_is_refused_by_name() {
        let text = MINIMAL.replace("[trunk]", "ring_timeout = \"10s\"\n[trunk]");
        let err = CampaignSpec::from_toml(&text).unwrap_err();
        assert!(
            err.to_string()
                .contains("ring_timeout: 10s is below the 15s minimum")
        );
    }

    #[test]
    fn every_bad_field_is_listed() {
        let text = r#"
name = "bad name!"
default_country = "ZZ"
caller_id = "12"
ring_timeout = "14s"
[pacing]
min_ratio = 3.0
max_ratio = 2.0
abandon_target = 0.05
[amd]
machine_action = "leave-message"
[calling_hours]
sat = "22:00-07:00"
[retry]
max_attempts = 0
busy = { delay = "10s" }
[trunk]
uri = "http://x"
username_env = "bad-name"
cps = 0
"#;
        let got = fields(CampaignSpec::from_toml(text).unwrap_err());
        for want in [
            "name",
            "default_country",
            "caller_id",
            "ring_timeout",
            "abandon_message",
            "pacing.min_ratio",
            "pacing.abandon_target",
            "amd.message",
            "calling_hours.sat",
            "retry.max_attempts",
            "retry.busy.delay",
            "trunk.uri",
            "trunk.username_env",
            "trunk.password_env",
            "trunk.cps",
        ] {
            assert!(got.iter().any(|f| f == want), "{want} missing from {got:?}");
        }
    }

    #[test]
    fn sips_trunks_are_tls_trunks() {
        let tls = MINIMAL.replace(
            "[trunk]",
            "[trunk]\ntransport = \"tls\"\nca_file = \"carrier-ca.pem\"",
        );
        let tls = tls.replacen("uri = \"sip:", "uri = \"sips:", 1);
        let spec = CampaignSpec::from_toml(&tls).unwrap();
        assert_eq!(spec.trunk.transport, Transport::Tls);
        assert_eq!(spec.trunk.ca_file.as_deref(), Some("carrier-ca.pem"));
        let udp = MINIMAL
            .replacen("uri = \"sip:", "uri = \"sips:", 1)
            .replace("[trunk]", "[trunk]\nca_file = \"ca.pem\"");
        let got = fields(CampaignSpec::from_toml(&udp).unwrap_err());
        assert_eq!(got, vec!["trunk.transport", "trunk.ca_file"]);
    }

    #[test]
    fn srtp_needs_tls_unless_told_otherwise() {
        let tls = MINIMAL.replace(
            "[trunk]",
            "[trunk]\ntransport = \"tls\"\nsrtp = \"required\"",
        );
        let spec = CampaignSpec::from_toml(&tls).unwrap();
        assert_eq!(spec.trunk.srtp, SrtpPolicy::Required);
        assert!(!spec.trunk.sdes_without_tls);
        let udp = MINIMAL.replace("[trunk]", "[trunk]\nsrtp = \"optional\"");
        let err = CampaignSpec::from_toml(&udp).unwrap_err();
        assert!(format!("{err:?}").contains("write transport"), "{err:?}");
        assert_eq!(fields(err), vec!["trunk.srtp"]);
        let told = MINIMAL.replace(
            "[trunk]",
            "[trunk]\nsrtp = \"optional\"\nsdes_without_tls = true",
        );
        assert_eq!(
            CampaignSpec::from_toml(&told).unwrap().trunk.srtp,
            SrtpPolicy::Optional
        );
        let typo = MINIMAL.replace("[trunk]", "[trunk]\nsrtp = \"mandatory\"");
        assert!(CampaignSpec::from_toml(&typo).is_err());
        // Off is the default and is not written back.
        let spec = CampaignSpec::from_toml(MINIMAL).unwrap();
        assert_eq!(spec.trunk.srtp, SrtpPolicy::Off);
        assert!(!serde_json::to_string(&spec).unwrap().contains("srtp"));
    }

    #[test]
    fn the_example_campaign_files_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../campaigns");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                CampaignSpec::from_toml(&text)
                    .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
                seen += 1;
            }
        }
        assert!(
            seen >= 3,
            "example campaigns missing from {}",
            dir.display()
        );
    }

    #[test]
    fn a_ratio_above_max_ratio_is_refused_by_name() {
        // Rules the pacer relies on: a ratio within its cap, a cap of one call per agent or more.
        let text = MINIMAL.replace("[trunk]", "[pacing]\nratio = 2.0\nmax_ratio = 1.5\n[trunk]");
        let err = CampaignSpec::from_toml(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid campaign: pacing.ratio: 2 is above pacing.max_ratio (1.5)"
        );
        let text = MINIMAL.replace(
            "[trunk]",
            "[pacing]\nmax_ratio = 0.5\nmin_ratio = 0.5\nratio = 0.5\n[trunk]",
        );
        assert_eq!(
            fields(CampaignSpec::from_toml(&text).unwrap_err()),
            vec!["pacing.max_ratio"]
        );
    }

    #[test]
    fn wrap_up_defaults_and_bad_keys() {
        let spec = CampaignSpec::from_toml(MINIMAL).unwrap();
        assert_eq!(spec.wrap_up.timeout, Dur::secs(30));
        assert_eq!(
            spec.wrap_up.digits.get("9"),
            Some(&crate::DispositionKind::DoNotCall)
        );
        let text = MINIMAL.replace(
            "[trunk]",
            "[wrap_up]\ntimeout = \"2h\"\ndigits = { \"#\" = \"sale\" }\n[trunk]",
        );
        let got = fields(CampaignSpec::from_toml(&text).unwrap_err());
        assert_eq!(got, vec!["wrap_up.timeout", "wrap_up.digits.#"]);
    }

    #[test]
    fn inline_password_is_refused() {
        let text = MINIMAL.replace("[trunk]", "[trunk]\npassword = \"hunter2\"");
        let err = CampaignSpec::from_toml(&text).unwrap_err();
        assert_eq!(fields(err), vec!["trunk.password"]);
    }

    #[test]
    fn trunk_credentials_come_only_from_trunk_secrets() {
        let with = |user: &str, pass: &str| {
            MINIMAL.replace(
                "[trunk]",
                &format!("[trunk]\nusername_env = \"{user}\"\npassword_env = \"{pass}\""),
            )
        };
        let spec =
            CampaignSpec::from_toml(&with("DIALER_TRUNK_USER", "DIALER_TRUNK_PASS_2")).unwrap();
        assert_eq!(
            spec.trunk.password_env.as_deref(),
            Some("DIALER_TRUNK_PASS_2")
        );
        // Names outside the namespace are refused for their name: the same words whether the
        // variable is set here (PATH, HOME) or not, and its value never appears.
        for name in [
            "DATABASE_URL",
            "PATH",
            "HOME",
            "NO_SUCH_VARIABLE_X",
            "DIALER_TRUNK_",
            "dialer_trunk_user",
            "DIALER_TRUNK_A-B",
        ] {
            let err = CampaignSpec::from_toml(&with(name, "DIALER_TRUNK_P")).unwrap_err();
            let text = err.to_string();
            assert_eq!(fields(err), vec!["trunk.username_env"], "{name}");
            let expected = format!(
                "invalid campaign: trunk.username_env: `{name}` is not a trunk secret: \
                 credentials come only from names starting with DIALER_TRUNK_ followed by \
                 letters, digits or _ (an environment variable of the service or a key of its \
                 trunk secrets file)"
            );
            assert_eq!(text, expected);
        }
    }

    #[test]
    fn file_paths_stay_in_the_prompts_directory() {
        let base = MINIMAL.replace("abandon_message = \"prompts/abandon.wav\"\n", "");
        for (line, field) in [
            ("abandon_message = \"/etc/passwd\"", "abandon_message"),
            ("abandon_message = \"../secret.wav\"", "abandon_message"),
            ("abandon_message = \"a/../../b.wav\"", "abandon_message"),
            (
                "abandon_message = \"a\\\\..\\\\..\\\\b.wav\"",
                "abandon_message",
            ),
            ("abandon_message = \"C:/x.wav\"", "abandon_message"),
            ("agentless_message = \"/tmp/x.wav\"", "agentless_message"),
        ] {
            let text = base.replace("[trunk]", &format!("{line}\n[trunk]"));
            let err = CampaignSpec::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("{field}: `")), "{line}: {err}");
        }
        let text = base.replace(
            "[trunk]",
            "abandon_message = \"a.wav\"\n[amd]\nmachine_action = \"leave-message\"\n\
             message = \"/var/vm.wav\"\n[trunk]\ntransport = \"tls\"\nca_file = \"../ca.pem\"",
        );
        let err = CampaignSpec::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("is an absolute path"), "{err}");
        assert!(err.to_string().contains("climbs out with `..`"), "{err}");
        assert_eq!(fields(err), vec!["amd.message", "trunk.ca_file"]);
        // Below the directory, with `.` or subfolders, is fine.
        let text = base.replace(
            "[trunk]",
            "abandon_message = \"./en/abandon..wav\"\n[trunk]",
        );
        CampaignSpec::from_toml(&text).unwrap();
    }

    #[test]
    fn not_sure_goes_to_an_agent_unless_the_campaign_says_hang_up() {
        let spec = CampaignSpec::from_toml(MINIMAL).unwrap();
        assert_eq!(spec.amd.not_sure_action, NotSureAction::Agent);
        let text = MINIMAL.replace("[trunk]", "[amd]\nnot_sure_action = \"hang-up\"\n[trunk]");
        let spec = CampaignSpec::from_toml(&text).unwrap();
        assert_eq!(spec.amd.not_sure_action, NotSureAction::HangUp);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(CampaignSpec::from_json(&json).unwrap(), spec);
        let text = MINIMAL.replace("[trunk]", "[amd]\nnot_sure_action = \"guess\"\n[trunk]");
        let err = CampaignSpec::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("guess"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = MINIMAL.replace("[trunk]", "ring_timeuot = 20\n[trunk]");
        let err = CampaignSpec::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("ring_timeuot"), "{err}");
    }
}
