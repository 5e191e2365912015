//! What an agent's desktop does during a call, against real peers (sipp as the carrier and as
//! the agent's phone, a raw-socket witness on the carrier's media port): hold (the callee hears
//! the campaign's hold message, looped, and the bridge resumes on unhold), and DTMF sent to the
//! callee as RFC 4733 telephone-events on the payload type its SDP gave, refused (409) to a
//! callee that offered none.

mod support;

use std::time::Duration;

use domain::{Disposition, DispositionKind};
use engine::{AgentState, EngineError};
use support::{RtpWitness, carrier_calls, create_agents, sipp_agents, sipp_carrier};
use testkit::wait_for;

fn campaign(carrier: std::net::SocketAddr) -> domain::CampaignSpec {
    let text = format!(
        r#"
name = "desk"
default_country = "US"
caller_id = "+12025550123"
ring_timeout = "15s"
abandon_message = "abandon.wav"
hold_message = "voicemail.wav"

[pacing]
mode = "progressive"
ratio = 1.0
max_ratio = 1.0
max_lines = 1

[calling_hours]
default = "00:00-24:00"
override_legal_limits = true

[retry]
max_attempts = 1

[wrap_up]
timeout = "60s"

[trunk]
uri = "sip:{carrier}"
cps = 50
"#
    );
    domain::CampaignSpec::from_toml(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_resumes_the_bridge_and_keys_reach_the_callee_as_telephone_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    // Every destination: what counts is what leaves the callee's leg (found by its port).
    let witness = RtpWitness::watch(0);
    let engine = support::engine(store.clone(), dir.path(), "desk-node").await;
    let (view, _) = engine
        .apply_campaign(&campaign(carrier.addr()))
        .await
        .unwrap();
    // First a callee offering telephone-event (fate 9), then one offering none (fate 1).
    let keys_number = "+13125000019";
    let plain_number = "+13125000021";
    support::import(
        &store,
        view.id,
        format!("phone,timezone\n{keys_number},America/Chicago\n{plain_number},America/Chicago\n"),
    )
    .await;
    let creds = create_agents(&engine, "desk", 1).await;
    let agent = engine.agents().await.unwrap()[0].id;
    let sip = engine.sip_addr(sip::Transport::Udp).unwrap();
    let Some(phone) = sipp_agents(sip, &creds, "desk") else {
        return;
    };
    let state = || async { engine.agent(agent).await.unwrap().state };
    assert!(
        wait_for(Duration::from_secs(60), || async {
            state().await == AgentState::Ready
        })
        .await,
        "{}",
        phone.diagnostics()
    );
    // Nothing to hold yet.
    let err = engine.agent_hold(agent).await.unwrap_err();
    assert!(matches!(err, EngineError::AgentState { .. }), "{err}");
    // Bad keys are refused by name before anything else.
    for bad in ["", "12E", &"1".repeat(33)] {
        let err = engine.agent_dtmf(agent, bad).await.unwrap_err();
        assert_eq!(err.fields()[0].field, "digits", "{bad:?}: {err}");
    }

    engine.start_campaign("desk").await.unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || async {
            state().await == AgentState::OnCall
        })
        .await,
        "no call bridged\n{}",
        carrier.diagnostics()
    );
    let attempt = engine.agent(agent).await.unwrap().attempt_id.unwrap();
    // Where the callee's leg sends from (its SDP offer), as the carrier logged it.
    let source = || {
        carrier_calls(&carrier.file("messages.log"))
            .into_iter()
            .find(|c| c.number == keys_number)
            .map(|c| c.media_port)
    };
    assert!(wait_for(Duration::from_secs(10), || async { source().is_some() }).await);
    let port = source().unwrap();
    // Packets the carrier gets from the callee's leg over the next `ms`.
    // (A borrow: a dropped clone of the witness would stop it.)
    let sent_over = |ms: u64| {
        let witness = witness.as_ref();
        async move {
            let w = witness?;
            let before = w.packets_from(port);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Some(w.packets_from(port) - before)
        }
    };

    // Hold: the callee hears the 2 s hold message, over and over.
    let held = engine.agent_hold(agent).await.unwrap();
    assert_eq!(held.state, AgentState::OnCall);
    let again = engine.agent_hold(agent).await.unwrap_err();
    assert!(matches!(again, EngineError::CallRefused { .. }), "{again}");
    let err = engine.agent_dtmf(agent, "1").await.unwrap_err();
    assert!(matches!(err, EngineError::CallRefused { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(first) = sent_over(1000).await {
        assert!(first >= 40, "{first} packets of the hold message in 1 s");
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Past the message's 2 s: it started again.
    if let Some(looped) = sent_over(1000).await {
        assert!(
            looped >= 40,
            "{looped} packets in 1 s after the hold message's end"
        );
    }
    // Unhold: the message stops and the bridge is back (the agent's phone sends no audio,
    // so the callee's leg falls quiet).
    engine.agent_unhold(agent).await.unwrap();
    let err = engine.agent_unhold(agent).await.unwrap_err();
    assert!(matches!(err, EngineError::CallRefused { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(quiet) = sent_over(1000).await {
        assert!(quiet <= 5, "{quiet} packets in 1 s after unhold");
    }
    assert_eq!(state().await, AgentState::OnCall);

    // Keys: RFC 4733 events on payload type 101, as the callee's SDP gave.
    engine.agent_dtmf(agent, "12#").await.unwrap();
    if let Some(w) = &witness {
        assert!(
            wait_for(Duration::from_secs(5), || async {
                w.keys_from(port) == "12#"
            })
            .await,
            "keys seen: {:?} ({} event packets)",
            w.keys_from(port),
            w.event_packets_from(port)
        );
    }

    // The call ends; the next callee offered no telephone-event: keys are refused (409).
    engine.agent_hangup(agent).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || async {
            state().await == AgentState::WrapUp
        })
        .await
    );
    let stored = store.attempt(attempt).await.unwrap();
    assert!(stored.bridged_at.is_some(), "{stored:?}");
    engine
        .set_disposition(agent, attempt, &Disposition::new(DispositionKind::Sale))
        .await
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || async {
            let a = engine.agent(agent).await.unwrap();
            a.state == AgentState::OnCall && a.attempt_id != Some(attempt)
        })
        .await,
        "the second call was not bridged\n{}",
        carrier.diagnostics()
    );
    let err = engine.agent_dtmf(agent, "5").await.unwrap_err();
    assert!(
        matches!(&err, EngineError::CallRefused { reason, .. } if reason.contains("telephone-event")),
        "{err}"
    );
    // This carrier hangs up by itself after 6 s: the agent's hang-up may come second.
    let _ = engine.agent_hangup(agent).await;
    assert!(
        wait_for(Duration::from_secs(20), || async {
            state().await == AgentState::WrapUp
        })
        .await
    );
    // Both calls count like any other: connected, with the agent.
    let figures = engine.campaign("desk").await.unwrap().figures;
    assert_eq!(figures.totals.placed, 2, "{figures:?}");
    engine.shutdown(Duration::from_secs(2)).await.unwrap();
}
