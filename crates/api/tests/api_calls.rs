//! One agent's session driven through the HTTP API against real peers, on PostgreSQL: sipp as
//! the carrier and as the agent's phone. The campaign and its list come in over the API; the
//! agent pauses and becomes ready over the API; the WebSocket stream shows the call from
//! dialling to bridged to ended and the agent's states; the supervisor's hang-up and the
//! agent's callback disposition go through the API and reach the contact; the metrics count
//! the connected call and the detector's verdicts, which the campaign's totals carry too.

#[path = "../../engine/tests/support/peers.rs"]
mod peers;
mod support;

use api::schema;
use futures::StreamExt as _;
use peers::{sipp_agents, sipp_carrier};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Api, Db, campaign_toml, conforms};
use testkit::wait_for;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_session_over_the_api_with_sipp_on_postgres() {
    let Some(api) = Api::start(Db::Postgres).await else {
        return;
    };
    let Some(carrier) = sipp_carrier() else {
        return;
    };

    let (status, body) = api.apply_toml(&campaign_toml("e2e", carrier.addr())).await;
    assert_eq!(status, 201, "{body:#}");
    // Every number answers live (the carrier's fate 1).
    let csv = "phone,timezone\n+13125550101,America/Chicago\n+13125550111,America/Chicago\n+13125550121,America/Chicago\n";
    let (status, report) = api.upload("e2e", "e2e.csv", csv).await;
    assert_eq!(
        (status, report["imported"].as_u64()),
        (201, Some(3)),
        "{report:#}"
    );
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "e2eagent", "display_name": "Agent E", "password": "pw-e2e-agent", "campaigns": ["e2e"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    let agent_id = agent["id"].as_i64().unwrap();

    let (mut ws, _) =
        tokio_tungstenite::connect_async(api.ws_request("/api/v1/events?campaign=e2e"))
            .await
            .expect("WebSocket");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = events.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(text) = msg {
                let value: Value = serde_json::from_str(&text).unwrap();
                let _: schema::StreamMessage = conforms(&value);
                sink.lock().unwrap().push(value);
            }
        }
    });
    let seen = |pred: &dyn Fn(&Value) -> bool| events.lock().unwrap().iter().any(pred);

    // The phone logs in: the agent is ready, and the stream says so.
    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    let creds = vec![("e2eagent".to_owned(), "pw-e2e-agent".to_owned())];
    let Some(phone) = sipp_agents(sip, &creds, "e2e") else {
        return;
    };
    let agent_state = |state: &'static str| {
        let api = &api;
        move || async move { api.get(&format!("/api/v1/agents/{agent_id}")).await.1["state"] == state }
    };
    assert!(
        wait_for(Duration::from_secs(60), agent_state("ready")).await,
        "the phone did not log in\n{}",
        phone.diagnostics()
    );
    // Paused over the API: the campaign starts but dials nobody.
    let (status, paused) = api
        .post_json(
            &format!("/api/v1/agents/{agent_id}/pause"),
            &json!({"reason": "briefing"}),
        )
        .await;
    assert_eq!(status, 200, "{paused:#}");
    let paused: schema::AgentView = conforms(&paused);
    assert_eq!(paused.state, schema::AgentState::Paused);
    assert_eq!(paused.pause_reason.as_deref(), Some("briefing"));
    assert_eq!(api.post("/api/v1/campaigns/e2e/start").await.0, 200);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            seen(&|e| e["type"] == "agent" && e["state"] == "paused")
                && seen(&|e| e["type"] == "campaign" && e["status"] == "running")
        })
        .await,
        "{:#?}",
        events.lock().unwrap()
    );
    assert!(
        !seen(&|e| e["type"] == "call"),
        "a paused agent's campaign dialled"
    );

    // Ready over the API: a call goes out and is bridged to the agent.
    assert_eq!(
        api.post(&format!("/api/v1/agents/{agent_id}/ready"))
            .await
            .0,
        200
    );
    assert!(
        wait_for(Duration::from_secs(60), || async {
            seen(&|e| e["type"] == "call" && e["state"] == "bridged" && e["agent_id"] == agent_id)
        })
        .await,
        "no bridged call on the stream\n{}",
        carrier.diagnostics()
    );
    // No more calls after this one; then the supervisor hangs the customer up (the carrier may
    // have done it first: the agent is then in wrap-up already).
    assert_eq!(api.post("/api/v1/campaigns/e2e/pause").await.0, 200);
    let (status, body) = api.post(&format!("/api/v1/agents/{agent_id}/hangup")).await;
    assert!(status == 200 || status == 409, "{status} {body:#}");
    assert!(wait_for(Duration::from_secs(20), agent_state("wrap_up")).await);
    let (_, agent) = api.get(&format!("/api/v1/agents/{agent_id}")).await;
    let attempt = agent["attempt_id"]
        .as_i64()
        .expect("the attempt being wrapped up");

    // A personal callback in two hours.
    let at = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, after) = api
        .post_json(
            &format!("/api/v1/agents/{agent_id}/disposition"),
            &json!({"attempt_id": attempt, "kind": "callback", "callback_at": at, "callback_personal": true, "note": "after lunch"}),
        )
        .await;
    assert_eq!(status, 200, "{after:#}");
    let after: schema::ContactAfter = conforms(&after);
    assert_eq!(after.status, schema::ContactStatus::Callback);
    let due = after.next_attempt_at.expect("a due time");
    assert!((due - at).num_seconds().abs() <= 1, "{due} vs {at}");
    assert!(wait_for(Duration::from_secs(10), agent_state("ready")).await);
    // Someone else's disposition of it is refused.
    let (status, _) = api
        .post_json(
            &format!("/api/v1/agents/{}/disposition", agent_id + 1),
            &json!({"attempt_id": attempt, "kind": "sale"}),
        )
        .await;
    assert_eq!(status, 409);

    // The records: the contact waits for its callback; the attempt was connected to the agent.
    let (_, page) = api
        .get("/api/v1/campaigns/e2e/contacts?status=callback")
        .await;
    let page: schema::ContactPage = conforms(&page);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, after.contact_id);
    let (_, attempts) = api
        .get(&format!(
            "/api/v1/campaigns/e2e/attempts?contact_id={}",
            after.contact_id
        ))
        .await;
    let attempts: schema::AttemptPage = conforms(&attempts);
    let a = &attempts.items[0];
    assert_eq!(
        (a.id, a.outcome, a.agent_id),
        (attempt, Some(schema::Outcome::Connected), Some(agent_id))
    );
    assert!(a.bridged_at.is_some() && a.answered_at.is_some());
    let (status, one) = api.get(&format!("/api/v1/attempts/{attempt}")).await;
    assert_eq!((status, one["id"].as_i64()), (200, Some(attempt)));

    // The stream told the call's whole life, ending connected.
    assert!(
        wait_for(Duration::from_secs(10), || async {
            seen(&|e| e["type"] == "call" && e["attempt_id"] == attempt && e["state"] == "ended")
        })
        .await
    );
    let states: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "call" && e["attempt_id"] == attempt)
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("dialing"),
        "{states:?}"
    );
    assert!(states.iter().any(|s| s == "answered"), "{states:?}");
    assert_eq!(
        states.last().map(String::as_str),
        Some("ended"),
        "{states:?}"
    );
    assert!(seen(&|e| e["type"] == "call"
        && e["attempt_id"] == attempt
        && e["state"] == "ended"
        && e["outcome"] == "connected"));
    assert!(seen(&|e| e["type"] == "agent"
        && e["id"] == agent_id
        && e["state"] == "on_call"));
    assert!(seen(&|e| e["type"] == "agent"
        && e["id"] == agent_id
        && e["state"] == "wrap_up"));

    let metrics = api
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dialer_calls_total{campaign=\"e2e\",outcome=\"connected\"} 1"),
        "{metrics}"
    );
    // The detector's verdicts are counted by result and cause, and in the campaign's totals:
    // every number answers live, so none is MACHINE.
    let verdicts: Vec<(&str, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("dialer_amd_verdicts_total{campaign=\"e2e\","))
        .filter_map(|l| {
            let (labels, n) = l.rsplit_once(' ')?;
            Some((labels, n.parse().ok()?))
        })
        .collect();
    assert!(
        verdicts
            .iter()
            .any(|(l, n)| l.starts_with("result=\"HUMAN\"") && *n >= 1.0),
        "{metrics}"
    );
    assert!(
        !verdicts
            .iter()
            .any(|(l, _)| l.starts_with("result=\"MACHINE\"")),
        "{metrics}"
    );
    let amd_totals = || async {
        let totals = &api.get("/api/v1/campaigns/e2e").await.1["figures"]["totals"];
        totals["amd_human"].as_u64().unwrap_or(0) >= 1 && totals["amd_machine"] == 0
    };
    assert!(
        wait_for(Duration::from_secs(5), amd_totals).await,
        "{:#}",
        api.get("/api/v1/campaigns/e2e").await.1
    );

    // Logged out over the API: the phone's leg is hung up.
    let (status, out) = api.post(&format!("/api/v1/agents/{agent_id}/logout")).await;
    assert_eq!(status, 200, "{out:#}");
    assert!(wait_for(Duration::from_secs(10), agent_state("logged_out")).await);
    let hung_up = || {
        let gone = !phone.running();
        async move { gone }
    };
    assert!(
        wait_for(Duration::from_secs(15), hung_up).await,
        "the phone's leg stayed up"
    );
    reader.abort();
    api.stop().await;
}
