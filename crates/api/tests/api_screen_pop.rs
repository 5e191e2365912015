//! The screen pop over real HTTP, on SQLite and PostgreSQL, against real peers (sipp as the
//! carrier and as the agent's phone): a campaign with a script, a list with extra columns, a
//! contact with an earlier call and its disposition. At the bridge the agent's `agent` event
//! carries the attempt id, and `GET /api/v1/agents/{id}/call` gives the contact's card, the
//! earlier call and the script filled in, the same in wrap-up, and `{"call": null}` after.

#[path = "../../engine/tests/support/peers.rs"]
mod peers;
#[macro_use]
mod support;

use api::schema;
use futures::StreamExt as _;
use peers::{sipp_agents, sipp_carrier};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Api, Db, campaign_toml, conforms};
use testkit::wait_for;
use tokio_tungstenite::tungstenite::Message;

on_both!(the_call_on_an_agents_line_pops_its_card_and_script);

async fn the_call_on_an_agents_line_pops_its_card_and_script(db: Db) {
    let Some(api) = Api::start(db).await else {
        return;
    };
    let Some(carrier) = sipp_carrier() else {
        return;
    };
    // The script names built-ins and declared list columns; its values are plain text.
    let toml = campaign_toml("pop", carrier.addr()).replacen(
        "abandon_message = \"abandon.wav\"\n",
        "abandon_message = \"abandon.wav\"\nscript_columns = [\"first_name\", \"plan\"]\n\
         script = '''\nHello {{first_name}}, {{agent_name}} here about your {{plan}} plan.\n\
         We have {{phone}} ({{time_zone}}).\n'''\n",
        1,
    );
    let (status, body) = api.apply_toml(&toml).await;
    assert_eq!(status, 201, "{body:#}");
    // An unknown placeholder is refused with the field named.
    let bad = toml.replacen("{{plan}}", "{{plna}}", 1);
    let (status, body) = api.apply_toml(&bad).await;
    assert_eq!(status, 422, "{body:#}");
    assert_eq!(body["fields"][0]["field"], "script", "{body:#}");

    let csv = "phone,timezone,first_name,last_name,plan\n+13125550101,America/Chicago,Ann,O'Neil <b>,Gold\n";
    let (status, report) = api.upload("pop", "pop.csv", csv).await;
    assert_eq!(report["imported"].as_u64(), Some(1), "{status} {report:#}");
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "popagent", "display_name": "Pat Agent", "password": "pw-pop-agent", "campaigns": ["pop"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    let agent_id = agent["id"].as_i64().unwrap();

    // An earlier call to the contact: busy, then a callback with a note, due in a second.
    let store = api.engine.store();
    let contact_id = store
        .contacts(&store::ContactQuery {
            campaign_id: store.require_campaign("pop").await.unwrap().id,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .id;
    let earlier = store
        .start_attempt(
            contact_id,
            "seed",
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    store
        .finish_attempt(
            earlier,
            &store::Finish {
                outcome: domain::Outcome::Busy,
                sip_code: Some(486),
                reason: None,
                ended_at: chrono::Utc::now() - chrono::Duration::minutes(59),
            },
        )
        .await
        .unwrap();
    store
        .set_disposition(
            earlier,
            None,
            &domain::Disposition {
                kind: domain::DispositionKind::Callback,
                note: Some("call after <5pm>".into()),
                callback_at: Some(chrono::Utc::now() + chrono::Duration::seconds(1)),
                callback_personal: false,
            },
        )
        .await
        .unwrap();

    // Nothing on the line yet: null, not 404.
    let (status, line) = api.get(&format!("/api/v1/agents/{agent_id}/call")).await;
    assert_eq!((status, &line), (200, &json!({"call": null})));
    let _: schema::AgentLine = conforms(&line);

    let (mut ws, _) =
        tokio_tungstenite::connect_async(api.ws_request("/api/v1/events?types=agent"))
            .await
            .expect("WebSocket");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = events.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(text) = msg {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&text).unwrap());
            }
        }
    });

    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    let creds = vec![("popagent".to_owned(), "pw-pop-agent".to_owned())];
    let Some(phone) = sipp_agents(sip, &creds, "pop") else {
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
    assert_eq!(api.post("/api/v1/campaigns/pop/start").await.0, 200);

    // At the bridge the agent's event carries the attempt: the cue to fetch the card.
    let on_call = || {
        events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "agent" && e["id"] == agent_id && e["state"] == "on_call")
            .and_then(|e| e["attempt_id"].as_i64())
    };
    assert!(
        wait_for(Duration::from_secs(60), || async { on_call().is_some() }).await,
        "no on_call event\n{}",
        carrier.diagnostics()
    );
    let attempt = on_call().unwrap();
    assert_ne!(attempt, earlier);

    let check = |line: &Value, state: &str| {
        let typed: schema::AgentLine = conforms(line);
        let call = typed.call.expect("a call on the line");
        assert_eq!(call.attempt_id, attempt);
        assert_eq!(call.campaign, "pop");
        assert_eq!(serde_json::to_value(call.state).unwrap(), state);
        assert!(call.bridged_at.is_some() && call.answered_at.is_some());
        let card = &call.contact;
        assert_eq!(card.id, contact_id);
        assert_eq!(card.name.as_deref(), Some("Ann O'Neil <b>"));
        assert_eq!(card.number, "+13125550101");
        assert_eq!(card.time_zones, vec!["America/Chicago".to_owned()]);
        assert_eq!(card.fields["plan"], "Gold");
        assert_eq!(card.fields["first_name"], "Ann");
        assert_eq!(call.history.len(), 1, "{line:#}");
        let past = &call.history[0];
        assert_eq!(past.attempt_id, earlier);
        assert_eq!(past.outcome, Some(schema::Outcome::Busy));
        assert_eq!(past.disposition.as_deref(), Some("callback"));
        assert_eq!(past.note.as_deref(), Some("call after <5pm>"));
        assert_eq!(
            call.script.as_deref(),
            Some(
                "Hello Ann, Pat Agent here about your Gold plan.\n\
                 We have +13125550101 (America/Chicago).\n"
            )
        );
    };
    let (status, line) = api.get(&format!("/api/v1/agents/{agent_id}/call")).await;
    assert_eq!(status, 200, "{line:#}");
    // The carrier may hang up at any moment: on the call or already wrapping it up.
    let state = line["call"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(state == "on_call" || state == "wrap_up", "{line:#}");
    check(&line, &state);

    // An agent-role login sees its own line, and not another agent's.
    let token = api
        .user("pop-user", store::Role::Agent, Some(agent_id))
        .await;
    let own = support::client_with(Some(&token));
    let (status, mine) = api
        .call(own.get(api.url(&format!("/api/v1/agents/{agent_id}/call"))))
        .await;
    assert_eq!(status, 200, "{mine:#}");
    assert_eq!(mine["call"]["attempt_id"].as_i64(), Some(attempt));
    let (status, _) = api
        .call(own.get(api.url(&format!("/api/v1/agents/{}/call", agent_id + 1))))
        .await;
    assert_eq!(status, 403);

    // In wrap-up the card stays, until the disposition frees the line.
    assert_eq!(api.post("/api/v1/campaigns/pop/pause").await.0, 200);
    let (status, body) = api.post(&format!("/api/v1/agents/{agent_id}/hangup")).await;
    assert!(status == 200 || status == 409, "{status} {body:#}");
    assert!(wait_for(Duration::from_secs(20), agent_state("wrap_up")).await);
    let (_, line) = api.get(&format!("/api/v1/agents/{agent_id}/call")).await;
    check(&line, "wrap_up");
    let (status, after) = api
        .post_json(
            &format!("/api/v1/agents/{agent_id}/disposition"),
            &json!({"attempt_id": attempt, "kind": "sale", "note": "gold renewed"}),
        )
        .await;
    assert_eq!(status, 200, "{after:#}");
    assert!(wait_for(Duration::from_secs(10), agent_state("ready")).await);
    let (status, line) = api.get(&format!("/api/v1/agents/{agent_id}/call")).await;
    assert_eq!((status, &line), (200, &json!({"call": null})));

    reader.abort();
    drop(phone);
    api.stop().await;
}
