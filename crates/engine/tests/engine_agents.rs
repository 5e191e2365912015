//! Agents and the 2-second rule against real peers: with one agent and three lines per agent,
//! most live answers find nobody and are abandoned, each with the message (seen arriving on the
//! carrier's media socket); the agent's pause stops dialling and ready resumes it; the API's
//! hang-up ends the customer call; dispositions reach the contact. And a shutdown in the middle
//! of calls cancels the ringing ones, lets bridged ones finish, releases every lease and hangs
//! up the agents' phones.

mod support;

use std::time::Duration;

use domain::Disposition;
use domain::DispositionKind;
use domain::Outcome;
use engine::AgentState;
use store::AttemptQuery;
use support::{RtpWitness, carrier_calls, create_agents, sipp_agents, sipp_carrier};
use testkit::wait_for;

fn campaign(
    name: &str,
    carrier: std::net::SocketAddr,
    ratio: f64,
    wrap_up: &str,
) -> domain::CampaignSpec {
    let text = format!(
        r#"
name = "{name}"
default_country = "US"
caller_id = "+12025550123"
ring_timeout = "15s"
abandon_message = "abandon.wav"
recording = true

[pacing]
mode = "progressive"
ratio = {ratio}
max_ratio = {ratio}
max_lines = 20

[calling_hours]
default = "00:00-24:00"
override_legal_limits = true

[retry]
max_attempts = 1

[wrap_up]
timeout = "{wrap_up}"

[trunk]
uri = "sip:{carrier}"
cps = 50
"#
    );
    domain::CampaignSpec::from_toml(&text).unwrap()
}

async fn import(store: &store::Store, campaign: i64, numbers: &[String]) {
    let mut csv = String::from("phone,timezone\n");
    for n in numbers {
        csv.push_str(&format!("{n},America/Chicago\n"));
    }
    support::import(store, campaign, csv).await;
}

async fn agent_states(engine: &engine::Engine) -> Vec<AgentState> {
    engine
        .agents()
        .await
        .unwrap()
        .iter()
        .map(|a| a.state)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_many_lines_abandons_with_the_message_and_obeys_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let witness = RtpWitness::watch(carrier.media_port());
    let engine = support::engine(store.clone(), dir.path(), "agents-node").await;
    let (view, _) = engine
        .apply_campaign(&campaign("solo", carrier.addr(), 4.0, "5s"))
        .await
        .unwrap();
    // Every number answers live (fate 1).
    let numbers: Vec<String> = (0..12).map(|i| format!("+1312500{i:03}1")).collect();
    import(&store, view.id, &numbers).await;
    let creds = create_agents(&engine, "solo", 1).await;
    let agent_id = engine.agents().await.unwrap()[0].id;
    let sip = engine.sip_addr(sip::Transport::Udp).unwrap();
    let Some(phones) = sipp_agents(sip, &creds, "solo") else {
        return;
    };
    assert!(
        wait_for(Duration::from_secs(60), || async {
            agent_states(&engine).await == [AgentState::Ready]
        })
        .await,
        "{}",
        phones.diagnostics()
    );

    // Paused: progressive mode places nothing.
    engine.agent_pause(agent_id, "briefing").await.unwrap();
    engine.start_campaign("solo").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            engine.agent(agent_id).await.unwrap().state == AgentState::Paused
        })
        .await
    );
    assert_eq!(
        engine.campaign("solo").await.unwrap().figures.totals.placed,
        0
    );
    let paused = engine.agent(agent_id).await.unwrap();
    assert_eq!(
        (paused.state, paused.pause_reason.as_deref()),
        (AgentState::Paused, Some("briefing"))
    );

    // Ready: four lines go out; one finds the agent, the others are abandoned.
    engine.agent_ready(agent_id).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || async {
            engine.agent(agent_id).await.unwrap().state == AgentState::OnCall
        })
        .await,
        "the agent never got a call\n{}",
        carrier.diagnostics()
    );
    // The supervisor's hang-up ends the customer call; the agent wraps up.
    let on_call = engine.agent(agent_id).await.unwrap();
    let attempt = on_call.attempt_id.expect("the agent's attempt");
    engine.agent_hangup(agent_id).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || async {
            engine.agent(agent_id).await.unwrap().state == AgentState::WrapUp
        })
        .await
    );
    // A disposition ends wrap-up at once.
    let after = engine
        .set_disposition(agent_id, attempt, &Disposition::new(DispositionKind::Sale))
        .await
        .unwrap();
    assert_eq!(after.status, domain::ContactStatus::Done);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            engine.agent(agent_id).await.unwrap().state != AgentState::WrapUp
        })
        .await,
        "the disposition did not end wrap-up"
    );
    // Someone else's attempt is refused by name.
    let err = engine
        .set_disposition(
            agent_id + 1000,
            attempt,
            &Disposition::new(DispositionKind::Sale),
        )
        .await
        .unwrap_err();
    assert!(err.is_client_error(), "{err}");

    assert!(
        wait_for(Duration::from_secs(240), || async {
            let v = engine.campaign("solo").await.unwrap();
            v.figures.totals.placed as usize == numbers.len() && v.figures.calls.in_flight == 0
        })
        .await,
        "{:?}\n{}",
        engine.campaign("solo").await.unwrap().figures,
        carrier.diagnostics()
    );
    let attempts = store
        .attempts(&AttemptQuery {
            campaign_id: Some(view.id),
            limit: 100,
            ..AttemptQuery::default()
        })
        .await
        .unwrap();
    let invites = carrier_calls(&carrier.file("messages.log"));
    let abandoned: Vec<_> = attempts
        .iter()
        .filter(|a| a.outcome == Some(Outcome::Abandoned))
        .collect();
    let connected = attempts
        .iter()
        .filter(|a| a.outcome == Some(Outcome::Connected))
        .count();
    assert!(connected >= 1, "{attempts:#?}");
    assert!(
        abandoned.len() >= 4,
        "with one agent and four lines most live answers are abandoned"
    );
    for a in &abandoned {
        assert_eq!(a.reason, None, "attempt {}: {:?}", a.id, a.reason);
        // No agent: abandoned at greeting end + 2 s (AMD decides 0.8 s after the greeting).
        assert!(a.bridged_at.is_none());
        if let Some(witness) = &witness {
            let call = invites
                .iter()
                .find(|c| c.number == a.e164)
                .expect("carrier saw it");
            let packets = witness.packets_from(call.media_port);
            assert!(
                packets >= 70,
                "{}: {packets} packets of the 1.5 s message",
                a.e164
            );
        }
    }
    let figures = engine.campaign("solo").await.unwrap().figures;
    assert_eq!(figures.totals.abandoned as usize, abandoned.len());
    assert!(figures.abandon.rate > 0.5, "{figures:?}");
    // Logged out, the agent's record says when, and keeps its session's calls and talk.
    let before = engine.agent(agent_id).await.unwrap();
    engine.agent_logout(agent_id).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || async {
            engine.agent(agent_id).await.unwrap().state == AgentState::LoggedOut
        })
        .await
    );
    let after = engine.agent(agent_id).await.unwrap();
    assert!(after.since >= before.since, "{before:?} {after:?}");
    assert_eq!(after.calls, before.calls);
    assert!(after.calls as usize >= connected, "{after:?}");
    assert!(after.talk_secs > 0.0, "{after:?}");
    assert_eq!(after.username, before.username);
    engine.shutdown(Duration::from_secs(2)).await.unwrap();
    assert!(wait_for(Duration::from_secs(10), || async { !phones.running() }).await);

    // The abandon rate over the legal window comes from the stored attempts: a restarted
    // engine steers by the same rate.
    let again = support::engine(store.clone(), dir.path(), "agents-node").await;
    let mut seeded = again.campaign("solo").await.unwrap().figures.abandon;
    for _ in 0..50 {
        if seeded.live_answers > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        seeded = again.campaign("solo").await.unwrap().figures.abandon;
    }
    assert_eq!(
        (seeded.live_answers, seeded.abandons),
        (figures.abandon.live_answers, figures.abandon.abandons),
        "the window after a restart"
    );
    again.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_ringing_calls_lets_bridged_ones_finish_and_releases_leases() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let engine = support::engine(store.clone(), dir.path(), "stop-node").await;
    let (view, _) = engine
        .apply_campaign(&campaign("halt", carrier.addr(), 3.0, "5s"))
        .await
        .unwrap();
    // Two live answers first, then numbers that ring until cancelled (fate 3).
    let mut numbers: Vec<String> = (0..2).map(|i| format!("+1312600{i:03}1")).collect();
    numbers.extend((2..30).map(|i| format!("+1312600{i:03}3")));
    import(&store, view.id, &numbers).await;
    let creds = create_agents(&engine, "halt", 2).await;
    let sip = engine.sip_addr(sip::Transport::Udp).unwrap();
    let Some(phones) = sipp_agents(sip, &creds, "halt") else {
        return;
    };
    assert!(
        wait_for(Duration::from_secs(60), || async {
            agent_states(&engine)
                .await
                .iter()
                .all(|s| *s == AgentState::Ready)
        })
        .await
    );
    engine.start_campaign("halt").await.unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || async {
            let f = engine.campaign("halt").await.unwrap().figures;
            f.calls.bridged >= 1 && f.calls.dialing >= 1
        })
        .await,
        "no bridged call with others ringing\n{}",
        carrier.diagnostics()
    );
    let report = engine.shutdown(Duration::from_secs(20)).await.unwrap();
    assert!(report.cancelled >= 1, "{report:?}");
    assert!(report.finished >= 1, "{report:?}");
    assert_eq!(
        report.cut, 0,
        "bridged calls finish within the grace: {report:?}"
    );
    let attempts = store
        .attempts(&AttemptQuery {
            campaign_id: Some(view.id),
            limit: 100,
            ..AttemptQuery::default()
        })
        .await
        .unwrap();
    for a in &attempts {
        let outcome = a
            .outcome
            .unwrap_or_else(|| panic!("attempt {} left unfinished", a.id));
        if a.e164.ends_with('3') {
            assert_eq!(outcome, Outcome::Failed, "{a:?}");
            assert!(
                a.reason.as_deref().unwrap_or("").contains("cancelled"),
                "{a:?}"
            );
        } else {
            assert!(
                matches!(outcome, Outcome::Connected | Outcome::Abandoned),
                "{a:?}"
            );
        }
    }
    let leased = store
        .contacts(&store::ContactQuery {
            campaign_id: view.id,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.lease_node.is_some())
        .count();
    assert_eq!(leased, 0, "leases left after shutdown");
    // Bridged calls were recorded, and the recordings closed (whole WAV files) before the
    // outcome was written.
    let recorded: Vec<_> = attempts
        .iter()
        .filter(|a| a.outcome == Some(Outcome::Connected))
        .collect();
    assert!(!recorded.is_empty());
    for a in recorded {
        let path = a
            .recording_path
            .as_deref()
            .unwrap_or_else(|| panic!("attempt {} bridged without a recording", a.id));
        let wav = hound::WavReader::open(path).unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(wav.spec().channels, 2, "{path}");
        assert!(wav.duration() > 8000, "{path}: {} samples", wav.duration());
    }
    assert!(
        wait_for(Duration::from_secs(10), || async { !phones.running() }).await,
        "agents' phones not hung up\n{}",
        phones.diagnostics()
    );
}

/// An agent's day across sessions: a first session with a call, logged out over the API, and a
/// second one without. The logged-out agent shows its last session's figures, and its day's:
/// both sessions, the first one's call and talk, both sessions' wait, the first login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_day_sums_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    let engine = support::engine(store.clone(), dir.path(), "day-node").await;
    let (view, _) = engine
        .apply_campaign(&campaign("day", carrier.addr(), 1.0, "1s"))
        .await
        .unwrap();
    import(&store, view.id, &["+13125550001".to_owned()]).await;
    let creds = create_agents(&engine, "day", 1).await;
    let agent_id = engine.agents().await.unwrap()[0].id;
    assert_eq!(engine.agent(agent_id).await.unwrap().today, None);
    let sip = engine.sip_addr(sip::Transport::Udp).unwrap();
    let before = chrono::Utc::now();

    // Session 1: a live callee, who hangs up after talking; wrap-up ends by its timeout.
    let Some(phones) = sipp_agents(sip, &creds, "day") else {
        return;
    };
    let state = || async { engine.agent(agent_id).await.unwrap().state };
    assert!(
        wait_for(Duration::from_secs(30), || async {
            state().await == AgentState::Ready
        })
        .await,
        "{}",
        phones.diagnostics()
    );
    engine.start_campaign("day").await.unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || async {
            let a = engine.agent(agent_id).await.unwrap();
            a.calls == 1 && a.state == AgentState::Ready
        })
        .await,
        "no call came and went: {:?}\n{}",
        engine.agent(agent_id).await.unwrap(),
        carrier.diagnostics()
    );
    let live = engine.agent(agent_id).await.unwrap();
    let today = live.today.clone().expect("today's figures while logged in");
    assert_eq!((today.sessions, today.calls), (1, 1), "{live:?}");
    engine.agent_logout(agent_id).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || async {
            state().await == AgentState::LoggedOut
        })
        .await
    );
    let first = engine.agent(agent_id).await.unwrap();
    let first_day = first.today.clone().expect("the day is kept at logout");
    assert_eq!(
        (first.calls, first_day.sessions, first_day.calls),
        (1, 1, 1)
    );
    assert!(first.talk_secs > 0.0, "{first:?}");
    assert_eq!(first_day.talk_secs, first.talk_secs);
    assert!(first_day.first_login >= before - chrono::Duration::seconds(1));
    drop(phones);

    // Session 2: logs in and out again without a call.
    let Some(phone) = testkit::sipp::Sipp::phone("agent_phone.xml", sip, &creds[0].0, &creds[0].1)
    else {
        return;
    };
    let run = phone.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
    assert!(
        wait_for(Duration::from_secs(20), || async {
            let a = engine.agent(agent_id).await.unwrap();
            a.state == AgentState::LoggedOut && a.today.as_ref().is_some_and(|d| d.sessions == 2)
        })
        .await,
        "{:?}",
        engine.agent(agent_id).await.unwrap()
    );
    let second = engine.agent(agent_id).await.unwrap();
    let day = second.today.clone().unwrap();
    // The last session's own figures, and the day's over both.
    assert_eq!(second.calls, 0, "{second:?}");
    assert_eq!(day.calls, 1, "{second:?}");
    assert_eq!(day.talk_secs, first.talk_secs, "{second:?}");
    assert!(
        (day.wait_secs - (first.wait_secs + second.wait_secs)).abs() < 1e-6,
        "{second:?}"
    );
    assert_eq!(day.first_login, first_day.first_login);
    assert_eq!(
        day.day,
        chrono::Utc::now().date_naive(),
        "the default day is UTC's"
    );
    engine.shutdown(Duration::from_secs(2)).await.unwrap();
}
