//! A campaign's definition turned into what the runtime uses: the pacer's settings, the
//! detector's parameters, the messages as decoded prompts, the trunk, wrap-up rules. Every
//! refusal names the campaign field at fault.

use crate::call::CallConfig;
use crate::core::CoreSettings;
use crate::error::{EngineError, Result};
use crate::view::field_error;
use domain::{CampaignSpec, DialMode, Dur, FieldError};
use media::Prompt;
use media::detect::AmdParams;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The pacer's settings for a campaign, or the refused campaign field.
pub(crate) fn pacing_config(
    spec: &CampaignSpec,
    connect_grace: Duration,
) -> std::result::Result<pacing::Config, FieldError> {
    // A stored campaign is read back without its file's checks: the runtime holds to them too.
    if let Some((field, reason)) = spec.pacing.problems().into_iter().next() {
        return Err(field_error(format!("pacing.{field}"), reason));
    }
    let config = pacing::Config {
        settings: spec.pacing.clone(),
        max_cps: Some(f64::from(spec.trunk.cps)),
        connect_grace,
        ..pacing::Config::default()
    };
    config.validate().map_err(|err| {
        let field = match err.setting() {
            "max_cps" => "trunk.cps",
            other => other,
        };
        field_error(field, err.to_string())
    })?;
    Ok(config)
}

fn ms(d: Dur) -> u32 {
    u32::try_from(d.0.as_millis()).unwrap_or(u32::MAX)
}

/// The detector's parameters from the campaign's `[amd]` table (unset ones keep the media
/// crate's tuned defaults).
pub(crate) fn amd_params(amd: &domain::Amd) -> std::result::Result<AmdParams, FieldError> {
    let mut p = AmdParams::default();
    if let Some(d) = amd.initial_silence {
        p.initial_silence_ms = ms(d);
    }
    if let Some(d) = amd.greeting {
        p.greeting_ms = ms(d);
    }
    if let Some(d) = amd.after_greeting_silence {
        p.after_greeting_silence_ms = ms(d);
    }
    if let Some(d) = amd.total_analysis_time {
        p.total_analysis_time_ms = ms(d);
    }
    if let Some(d) = amd.min_word_length {
        p.min_word_length_ms = ms(d);
    }
    if let Some(d) = amd.between_words_silence {
        p.between_words_silence_ms = ms(d);
    }
    if let Some(n) = amd.maximum_words {
        p.maximum_number_of_words = n;
    }
    if let Some(level) = amd.silence_threshold {
        p.silence_threshold = u16::try_from(level).unwrap_or(u16::MAX);
    }
    p.validate()
        .map_err(|err| field_error("amd", err.to_string()))?;
    Ok(p)
}

/// The campaign's recorded messages, decoded.
#[derive(Debug, Default)]
pub(crate) struct Prompts {
    /// Played to abandoned live answers.
    pub(crate) abandon: Option<Prompt>,
    /// Left on machines.
    pub(crate) voicemail: Option<Prompt>,
    /// Played to every live answer in agentless mode.
    pub(crate) agentless: Option<Prompt>,
    /// Played in a loop to a callee on hold.
    pub(crate) hold: Option<Prompt>,
}

fn load_prompt(dir: &Path, field: &'static str, path: &Option<String>) -> Result<Option<Prompt>> {
    let Some(path) = path.as_deref().filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let full = crate::confined_path(dir, field, path)?;
    Prompt::from_wav_file(&full)
        .map(Some)
        .map_err(|err| EngineError::Prompt {
            path: format!("{field} = {path}"),
            reason: format!("{} ({err})", full.display()),
        })
}

/// Everything a campaign's calls need, built once per definition.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The pacer's settings.
    pub(crate) pacing: pacing::Config,
    /// The core's settings.
    pub(crate) core: CoreSettings,
    /// The detector's parameters.
    pub(crate) amd: AmdParams,
    /// Messages.
    pub(crate) prompts: Prompts,
    /// When a callback set by a phone key is due, after the key.
    pub(crate) callback_after: Duration,
}

/// Builds a campaign's runtime settings; every problem is reported with its field.
pub(crate) fn build(spec: &CampaignSpec, config: &crate::EngineConfig) -> Result<Arc<Setup>> {
    let mut errors = Vec::new();
    let pacing = pacing_config(spec, config.connect_grace)
        .map_err(|e| errors.push(e))
        .ok();
    let amd = amd_params(&spec.amd).map_err(|e| errors.push(e)).ok();
    let mut digits = std::collections::HashMap::new();
    for (key, kind) in &spec.wrap_up.digits {
        match key.chars().next() {
            Some(c) if key.len() == 1 => {
                digits.insert(c, *kind);
            }
            _ => errors.push(field_error(
                format!("wrap_up.digits.{key}"),
                "one key per entry",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(EngineError::Invalid(errors));
    }
    let (Some(pacing), Some(amd)) = (pacing, amd) else {
        return Err(EngineError::Invalid(Vec::new()));
    };
    let dir = &config.prompts_dir;
    let prompts = Prompts {
        abandon: load_prompt(dir, "abandon_message", &spec.abandon_message)?,
        voicemail: load_prompt(dir, "amd.message", &spec.amd.message)?,
        agentless: load_prompt(dir, "agentless_message", &spec.agentless_message)?,
        hold: load_prompt(dir, "hold_message", &spec.hold_message)?,
    };
    // The pacer's mode, not the file's: the engine never guesses a message it was not given.
    let agentless = spec.pacing.mode == DialMode::Agentless;
    Ok(Arc::new(Setup {
        core: CoreSettings {
            wrap_up: spec.wrap_up.timeout.0,
            connect_grace: config.connect_grace,
            max_starts: config.max_starts_per_decision,
            digits,
            wrap_up_default: Some(spec.wrap_up.default),
            tick: config.tick,
            call: CallConfig {
                amd: spec.amd.enabled,
                machine_action: spec.amd.machine_action,
                not_sure_action: spec.amd.not_sure_action,
                agentless,
                beep_timeout: config.beep_timeout,
                // Past the detector's own limit (it says NOTSURE by then when it hears anything).
                amd_timeout: Duration::from_millis(u64::from(amd.total_analysis_time_ms) + 1500),
            },
        },
        callback_after: spec.wrap_up.callback_after.0,
        pacing,
        amd,
        prompts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "abandon.wav"
[pacing]
mode = "progressive"
max_lines = 7
[amd]
greeting = "2s"
maximum_words = 4
[trunk]
uri = "sip:127.0.0.1:5060"
cps = 5
"#;

    #[test]
    fn campaign_maps_to_pacer_and_detector_settings() {
        let spec = CampaignSpec::from_toml(SPEC).unwrap();
        let cfg = pacing_config(&spec, Duration::from_secs(2)).unwrap();
        assert_eq!(cfg.settings, spec.pacing);
        assert_eq!(cfg.settings.mode, DialMode::Progressive);
        assert_eq!(cfg.settings.max_lines, 7);
        assert_eq!(cfg.max_cps, Some(5.0));
        assert_eq!(cfg.connect_grace, Duration::from_secs(2));
        let amd = amd_params(&spec.amd).unwrap();
        assert_eq!(amd.greeting_ms, 2000);
        assert_eq!(amd.maximum_number_of_words, 4);
    }

    #[test]
    fn pacer_refusals_name_the_campaign_field() {
        // As a stored campaign would come back: never through the file's checks.
        let mut spec = CampaignSpec::from_toml(SPEC).unwrap();
        spec.pacing.max_ratio = 0.5;
        spec.pacing.ratio = 0.4;
        let err = pacing_config(&spec, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.field, "pacing.max_ratio");
        spec.pacing.max_ratio = 1.5;
        spec.pacing.ratio = 2.0;
        let err = pacing_config(&spec, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.field, "pacing.ratio");
        let spec = CampaignSpec::from_toml(SPEC).unwrap();
        let err = pacing_config(&spec, Duration::from_secs(11)).unwrap_err();
        assert_eq!(err.field, "connect_grace");
    }

    #[test]
    fn missing_message_file_is_named() {
        let spec = CampaignSpec::from_toml(SPEC).unwrap();
        let mut config = crate::EngineConfig::new("n1");
        config.prompts_dir = std::path::PathBuf::from("/nonexistent");
        let err = build(&spec, &config).unwrap_err();
        assert!(
            err.to_string().contains("abandon_message = abandon.wav"),
            "{err}"
        );
    }
}
