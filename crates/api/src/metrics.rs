//! Prometheus `/metrics`: the engine's own counters (calls by outcome, pacing decisions, SIP
//! events, RTP errors) from the process-wide `metrics` recorder, and figures taken from the
//! engine at each scrape (calls in flight, agents by state, the abandon rate over each
//! campaign's window, the media receive loops' counters), so a scrape is never older than the
//! request.

use domain::Outcome;
use engine::{AgentState, Engine, TrunkRegistrationState};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; later calls
/// return the same handle). `dialer serve` calls it before starting the engine so that no
/// early count is lost; [`crate::router`] calls it too. `None` when another recorder was
/// installed first: `/metrics` then shows only the figures taken at each scrape.
pub fn install() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                describe();
                Some(handle)
            }
            Err(err) => {
                tracing::warn!(%err, "another metrics recorder is installed: /metrics shows the scrape-time figures only");
                None
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!("dialer_calls_total", "Calls ended, by campaign and outcome");
    describe_counter!(
        "dialer_amd_verdicts_total",
        "Answering-machine detector verdicts, by campaign, result and cause"
    );
    describe_gauge!("dialer_calls_in_flight", "Calls not ended yet on this node");
    describe_gauge!(
        "dialer_campaign_calls_in_flight",
        "Calls not ended yet, by campaign and state group"
    );
    describe_gauge!(
        "dialer_agents",
        "Agents by state (every agent, logged out too)"
    );
    describe_gauge!(
        "dialer_campaign_agents",
        "Logged-in agents of a campaign, by state"
    );
    describe_gauge!(
        "dialer_abandon_rate",
        "Abandons / live answers over the campaign's legal window"
    );
    describe_gauge!("dialer_abandon_target", "The campaign's abandon-rate limit");
    describe_gauge!(
        "dialer_abandon_window_live_answers",
        "Live answers in the campaign's abandon window"
    );
    describe_gauge!(
        "dialer_abandon_window_abandons",
        "Abandons in the campaign's abandon window"
    );
    describe_counter!(
        "dialer_pacing_decisions_total",
        "Pacing decisions taken, by campaign"
    );
    describe_gauge!(
        "dialer_pacing_dial_level",
        "Calls in progress per active agent, by campaign"
    );
    describe_gauge!(
        "dialer_pacing_cpu_seconds",
        "CPU time spent in the campaign's pacer"
    );
    describe_gauge!(
        "dialer_agent_occupancy",
        "Share of logged-in agent time talking or in wrap-up, by campaign"
    );
    describe_gauge!(
        "dialer_connect_seconds",
        "Time to an agent of connected calls, by campaign, from the answer or from the greeting's end (the 2-second rule's clock): median and 99th percentile"
    );
    describe_gauge!(
        "dialer_campaign_running",
        "1 while the campaign is running, else 0"
    );
    describe_gauge!(
        "dialer_trunk_registration",
        "1 for the state the campaign's trunk registration is in (not_required, registering, registered, failed, unregistered), 0 for the others"
    );
    describe_gauge!(
        "dialer_trunk_registration_expires_seconds",
        "Seconds the registrar granted the campaign's trunk at its last successful REGISTER"
    );
    describe_gauge!(
        "dialer_trunk_registration_last_refresh_timestamp_seconds",
        "Unix time of the last successful REGISTER of the campaign's trunk"
    );
    describe_gauge!(
        "dialer_trunk_registration_failures",
        "Failed REGISTERs in a row of the campaign's trunk"
    );
    describe_gauge!(
        "dialer_trunk_registration_last_code",
        "Status code of the last failed REGISTER of the campaign's trunk (0 while it succeeds)"
    );
    describe_counter!(
        "dialer_sip_events_total",
        "SIP endpoint counters (messages, parse errors, timeouts, transport errors, ...)"
    );
    describe_counter!(
        "dialer_rtp_dropped_packets_total",
        "RTP packets dropped by reason"
    );
    describe_counter!(
        "dialer_rtp_send_errors_total",
        "RTP packets the socket could not send"
    );
    describe_counter!(
        "dialer_http_requests_total",
        "HTTP requests by method, route and status"
    );
    describe_counter!(
        "dialer_media_buffer_exhaustions_total",
        "Media receive requests ended because the receive loop's buffers ran out (a burst larger than one round)"
    );
    describe_counter!(
        "dialer_media_rearms_deferred_total",
        "Re-arms of such requests put off to a later round, counted each round they waited"
    );
    describe_gauge!(
        "dialer_media_receive_loop_realtime",
        "1 if the media receive loops run at real-time priority (media_priority = \"realtime\")"
    );
    // Error counters exist from the start at zero, so a dashboard's rate() has a series.
    metrics::counter!("dialer_rtp_send_errors_total").increment(0);
    for reason in ["malformed", "stranger", "flood", "unknown_payload_type"] {
        metrics::counter!("dialer_rtp_dropped_packets_total", "reason" => reason).increment(0);
    }
}

const AGENT_STATES: [AgentState; 6] = [
    AgentState::LoggedOut,
    AgentState::Ready,
    AgentState::Reserved,
    AgentState::OnCall,
    AgentState::WrapUp,
    AgentState::Paused,
];

const REGISTRATION_STATES: [TrunkRegistrationState; 5] = [
    TrunkRegistrationState::NotRequired,
    TrunkRegistrationState::Registering,
    TrunkRegistrationState::Registered,
    TrunkRegistrationState::Failed,
    TrunkRegistrationState::Unregistered,
];

const OUTCOMES: [Outcome; 10] = [
    Outcome::Connected,
    Outcome::Abandoned,
    Outcome::MachineHungUp,
    Outcome::MachineMessageLeft,
    Outcome::Busy,
    Outcome::NoAnswer,
    Outcome::Rejected,
    Outcome::InvalidNumber,
    Outcome::Failed,
    Outcome::DoNotCall,
];

/// Sets the scrape-time gauges from `engine`.
async fn refresh(engine: &Engine) -> Result<(), engine::EngineError> {
    use metrics::{counter, gauge};
    for (event, value) in engine.sip_stats().iter() {
        counter!("dialer_sip_events_total", "event" => event).absolute(value);
    }
    let media = engine.media_stats();
    counter!("dialer_media_buffer_exhaustions_total").absolute(media.buffer_exhaustions);
    counter!("dialer_media_rearms_deferred_total").absolute(media.rearms_deferred);
    gauge!("dialer_media_receive_loop_realtime").set(if media.realtime { 1.0 } else { 0.0 });
    let snapshot = engine.snapshot().await?;
    gauge!("dialer_calls_in_flight").set(snapshot.calls.len() as f64);
    for state in AGENT_STATES {
        let n = snapshot.agents.iter().filter(|a| a.state == state).count();
        gauge!("dialer_agents", "state" => state.as_str()).set(n as f64);
    }
    for campaign in &snapshot.campaigns {
        let name = campaign.name.clone();
        let f = &campaign.figures;
        for outcome in OUTCOMES {
            // Registers every outcome's series at zero; the engine counts them up.
            counter!("dialer_calls_total", "campaign" => name.clone(), "outcome" => outcome.as_str())
                .increment(0);
        }
        counter!("dialer_pacing_decisions_total", "campaign" => name.clone()).increment(0);
        gauge!("dialer_campaign_running", "campaign" => name.clone()).set(
            if campaign.status == domain::CampaignStatus::Running {
                1.0
            } else {
                0.0
            },
        );
        gauge!("dialer_abandon_rate", "campaign" => name.clone()).set(f.abandon.rate);
        gauge!("dialer_abandon_target", "campaign" => name.clone()).set(f.abandon.target);
        gauge!("dialer_abandon_window_live_answers", "campaign" => name.clone())
            .set(f.abandon.live_answers as f64);
        gauge!("dialer_abandon_window_abandons", "campaign" => name.clone())
            .set(f.abandon.abandons as f64);
        gauge!("dialer_pacing_dial_level", "campaign" => name.clone()).set(f.pacing.dial_level);
        gauge!("dialer_pacing_cpu_seconds", "campaign" => name.clone()).set(f.pacing.cpu_secs);
        gauge!("dialer_agent_occupancy", "campaign" => name.clone()).set(f.occupancy);
        for (from, quantile, secs) in [
            ("answer", "0.5", f.connect_median_secs),
            ("answer", "0.99", f.connect_p99_secs),
            ("greeting", "0.5", f.greeting_connect_median_secs),
            ("greeting", "0.99", f.greeting_connect_p99_secs),
        ] {
            gauge!("dialer_connect_seconds", "campaign" => name.clone(), "from" => from, "quantile" => quantile)
                .set(secs);
        }
        let trunk = &f.trunk;
        for state in REGISTRATION_STATES {
            gauge!("dialer_trunk_registration", "campaign" => name.clone(), "state" => state.as_str())
                .set(if trunk.registration == state { 1.0 } else { 0.0 });
        }
        gauge!("dialer_trunk_registration_expires_seconds", "campaign" => name.clone())
            .set(trunk.expires_secs.map_or(0.0, f64::from));
        gauge!("dialer_trunk_registration_last_refresh_timestamp_seconds", "campaign" => name.clone())
            .set(trunk.last_refresh.map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0));
        gauge!("dialer_trunk_registration_failures", "campaign" => name.clone())
            .set(f64::from(trunk.failures));
        gauge!("dialer_trunk_registration_last_code", "campaign" => name.clone())
            .set(trunk.code.map_or(0.0, f64::from));
        let calls = &f.calls;
        for (group, n) in [
            ("dialing", calls.dialing),
            ("answered", calls.answered),
            ("waiting", calls.waiting),
            ("bridged", calls.bridged),
            ("other", calls.other),
        ] {
            gauge!("dialer_campaign_calls_in_flight", "campaign" => name.clone(), "state" => group)
                .set(f64::from(n));
        }
        let agents = &f.agents;
        for (state, n) in [
            ("ready", agents.ready),
            ("reserved", agents.reserved),
            ("on_call", agents.on_call),
            ("wrap_up", agents.wrap_up),
            ("paused", agents.paused),
        ] {
            gauge!("dialer_campaign_agents", "campaign" => name.clone(), "state" => state)
                .set(f64::from(n));
        }
    }
    Ok(())
}

/// The Prometheus text of the process's metrics, refreshed from `engine`.
pub(crate) async fn render(engine: &Engine) -> String {
    let handle = install();
    if let Err(err) = refresh(engine).await {
        tracing::warn!(%err, "metrics: engine figures unavailable");
    }
    match handle {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::from("# the Prometheus recorder is not installed in this process\n"),
    }
}
