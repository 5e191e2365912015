//! The HTTP API against a real engine on SQLite and PostgreSQL, with a real HTTP client:
//! campaigns from TOML and JSON through their life, live pacing changes, list uploads with the
//! CLI's per-row report, contacts and attempts pages, agents, the WebSocket stream, metrics,
//! the OpenAPI document, and bad input of every kind answered with a 4xx naming the field.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

use api::schema;
use api_support::{Api, Db, assert_problem, campaign_toml, conforms, conforms_each, nowhere};
use futures::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::wait_for;

const LIST: &str = "first_name,phone,timezone,policy
Ann,(212) 555-0142,,P-1
Bob,312-555-0187,America/Chicago,P-2
Carla,+1 415 555 0123,,P-3
Dup,212.555.0142,,P-4
Bad,12,,P-5
Dev,303.555.0111,Not/AZone,P-6
Eve,+1 646 555 0199,,P-7
";

async fn campaigns_agents_and_lists(db: Db) {
    let Some(api) = Api::start(db).await else {
        return;
    };
    let trunk = nowhere();

    // Created from TOML: 201, paused, with its figures; the same file again changes nothing.
    let toml = campaign_toml("spring", trunk);
    let (status, body) = api.apply_toml(&toml).await;
    assert_eq!(status, 201, "{body:#}");
    let applied: schema::CampaignApplied = conforms(&body);
    assert_eq!(applied.applied, schema::Applied::Created);
    assert_eq!(applied.campaign.status, schema::CampaignStatus::Paused);
    assert_eq!(applied.campaign.mode, schema::DialMode::Progressive);
    let (status, body) = api.apply_toml(&toml).await;
    assert_eq!(status, 200);
    assert_eq!(body["applied"], "unchanged");

    // Created from JSON: the stored definition of the first, renamed, as JSON.
    let (status, spec) = api.get("/api/v1/campaigns/spring/spec").await;
    assert_eq!(status, 200);
    let _: schema::CampaignSpec = conforms(&spec);
    assert_eq!(spec["pacing"]["ratio"], 1.0);
    let mut autumn = spec.clone();
    autumn["name"] = json!("autumn");
    autumn["pacing"]["mode"] = json!("predictive");
    let (status, body) = api.post_json("/api/v1/campaigns", &autumn).await;
    assert_eq!(status, 201, "{body:#}");
    assert_eq!(body["campaign"]["mode"], "predictive");
    // Without a content type, a JSON object is still recognised.
    let (status, body) = api
        .send_raw(Method::POST, "/api/v1/campaigns", "", autumn.to_string())
        .await;
    assert_eq!((status, body["applied"].as_str()), (200, Some("unchanged")));

    let (status, list) = api.get("/api/v1/campaigns").await;
    assert_eq!(status, 200);
    let list: Vec<schema::CampaignView> = conforms_each(&list);
    let mut names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["autumn", "spring"]);

    // Start, pause, stop, start again.
    for (action, status_after) in [
        ("start", "running"),
        ("pause", "paused"),
        ("stop", "stopped"),
        ("start", "running"),
    ] {
        let (status, body) = api
            .post(&format!("/api/v1/campaigns/spring/{action}"))
            .await;
        assert_eq!(status, 200, "{action}: {body:#}");
        let view: schema::CampaignView = conforms(&body);
        assert_eq!(serde_json::to_value(view.status).unwrap(), status_after);
        let (_, got) = api.get("/api/v1/campaigns/spring").await;
        assert_eq!(got["status"], status_after);
    }

    // Live pacing: mode, ratio bounds and abandon target, stored and shown.
    let (status, body) = api
        .patch_json(
            "/api/v1/campaigns/spring/pacing",
            &json!({"mode": "predictive", "min_ratio": 1.2, "max_ratio": 2.5, "abandon_target": 0.02}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    let view: schema::CampaignView = conforms(&body);
    assert_eq!(view.mode, schema::DialMode::Predictive);
    assert_eq!(
        view.figures.abandon.target, 0.02,
        "the answer shows the settings in force"
    );
    assert_eq!(
        view.status,
        schema::CampaignStatus::Running,
        "a pacing change keeps it running"
    );
    let (_, spec) = api.get("/api/v1/campaigns/spring/spec").await;
    assert_eq!(spec["pacing"]["mode"], "predictive");
    assert_eq!(spec["pacing"]["min_ratio"], 1.2);
    assert_eq!(spec["pacing"]["max_ratio"], 2.5);
    assert_eq!(spec["pacing"]["abandon_target"], 0.02);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            api.get("/api/v1/campaigns/spring").await.1["figures"]["abandon"]["target"] == 0.02
        })
        .await,
        "the running campaign's figures show the new target"
    );
    // Refused as a whole, every field named, nothing changed.
    let answer = api
        .patch_json(
            "/api/v1/campaigns/spring/pacing",
            &json!({"abandon_target": 0.2, "min_ratio": 4.0}),
        )
        .await;
    assert_problem(&answer, 422, "abandon_target");
    assert_problem(&answer, 422, "min_ratio");
    let (_, spec) = api.get("/api/v1/campaigns/spring/spec").await;
    assert_eq!(spec["pacing"]["abandon_target"], 0.02);
    assert_problem(
        &api.patch_json(
            "/api/v1/campaigns/spring/pacing",
            &json!({"max_ratio": "lots"}),
        )
        .await,
        422,
        "max_ratio",
    );
    assert_problem(
        &api.patch_json("/api/v1/campaigns/spring/pacing", &json!({"ratoi": 2.0}))
            .await,
        422,
        "ratoi",
    );
    assert_problem(
        &api.patch_json("/api/v1/campaigns/nope/pacing", &json!({"ratio": 2.0}))
            .await,
        404,
        "",
    );
    api.post("/api/v1/campaigns/spring/pause").await;

    // Upload: the same per-row report as `dialer import --json`.
    let (status, report) = api.upload("spring", "spring.csv", LIST).await;
    assert_eq!(status, 201, "{report:#}");
    let summary: schema::ImportSummary = conforms(&report);
    assert_eq!(
        (
            summary.rows,
            summary.imported,
            summary.duplicates,
            summary.rejected
        ),
        (7, 4, 1, 2),
        "{report:#}"
    );
    let lines: Vec<u64> = summary.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [6, 7], "{report:#}");
    // The same file again adds nothing.
    let (_, again) = api.upload("spring", "spring.csv", LIST).await;
    assert_eq!(
        (again["imported"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(5))
    );
    if db == Db::Sqlite {
        // The CLI's report of the same file into another campaign is the same but for the list.
        let file = api.dir.path().join("list.csv");
        std::fs::write(&file, LIST).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialer"))
            .args([
                "--database-url",
                &api.database_url,
                "import",
                "--json",
                "--campaign",
                "autumn",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut ours = report.clone();
        cli["list_id"] = json!(0);
        ours["list_id"] = json!(0);
        assert_eq!(cli, ours, "the API's report differs from the CLI's");
    }

    // Contacts: pages by id, filters.
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(id) => format!("/api/v1/campaigns/spring/contacts?limit=3&after_id={id}"),
            None => "/api/v1/campaigns/spring/contacts?limit=3".to_owned(),
        };
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page:#}");
        let page: schema::ContactPage = conforms(&page);
        seen.extend(page.items.iter().map(|c| c.e164.clone()));
        match page.next_after_id {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "+12125550142",
            "+13125550187",
            "+14155550123",
            "+16465550199"
        ]
    );
    let (_, page) = api
        .get("/api/v1/campaigns/spring/contacts?number_prefix=%2B1312&status=pending")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["extra"]["first_name"], "Bob");
    assert_eq!(page["items"][0]["zones"], json!(["America/Chicago"]));
    let id = page["items"][0]["id"].as_i64().unwrap();
    let (status, contact) = api.get(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(status, 200);
    let _: schema::Contact = conforms(&contact);
    let (_, counts) = api.get("/api/v1/campaigns/spring/contacts/counts").await;
    let counts: schema::ContactCounts = conforms(&counts);
    assert_eq!(counts.total, 4);
    assert_eq!(counts.by_status.get("pending"), Some(&4));
    // Attempts: none yet, a well-formed empty page; filters accepted.
    let (status, page) = api
        .get("/api/v1/campaigns/spring/attempts?outcome=busy&from=2020-01-01T00:00:00Z&limit=10")
        .await;
    assert_eq!(status, 200, "{page:#}");
    let page: schema::AttemptPage = conforms(&page);
    assert!(page.items.is_empty() && page.next_after_id.is_none());
    assert_problem(&api.get("/api/v1/attempts/999999").await, 404, "");
    assert_problem(&api.get("/api/v1/contacts/999999").await, 404, "");

    // Agents.
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "alice", "password": "correct-horse", "campaigns": ["spring"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    let agent: schema::AgentView = conforms(&agent);
    assert_eq!(agent.state, schema::AgentState::LoggedOut);
    assert_eq!(agent.display_name, "alice");
    let (_, all) = api.get("/api/v1/agents").await;
    let all: Vec<schema::AgentView> = conforms_each(&all);
    assert_eq!(all.len(), 1);
    let (status, one) = api.get(&format!("/api/v1/agents/{}", agent.id)).await;
    assert_eq!((status, one["username"].as_str()), (200, Some("alice")));
    assert_problem(
        &api.post_json(
            "/api/v1/agents",
            &json!({"username": "alice", "password": "another-one"}),
        )
        .await,
        409,
        "",
    );
    assert_problem(
        &api.post_json(
            "/api/v1/agents",
            &json!({"username": "bob", "password": "short"}),
        )
        .await,
        422,
        "password",
    );
    assert_problem(
        &api.post_json(
            "/api/v1/agents",
            &json!({"username": "b o b", "password": "long enough"}),
        )
        .await,
        422,
        "username",
    );
    assert_problem(
        &api.post_json(
            "/api/v1/agents",
            &json!({"username": "carol", "password": "long enough", "campaigns": ["spring", "nope"]}),
        )
        .await,
        422,
        "campaigns[1]",
    );
    // Not logged in (no phone leg): state changes are refused, by conflict.
    let ready = api
        .post(&format!("/api/v1/agents/{}/ready", agent.id))
        .await;
    assert_problem(&ready, 409, "");
    assert!(ready.1["error"].as_str().unwrap().contains("not logged in"));
    assert_problem(
        &api.post_json(
            &format!("/api/v1/agents/{}/pause", agent.id),
            &json!({"reason": ""}),
        )
        .await,
        422,
        "reason",
    );
    assert_problem(
        &api.post(&format!("/api/v1/agents/{}/logout", agent.id))
            .await,
        409,
        "",
    );
    assert_problem(&api.post("/api/v1/agents/424242/ready").await, 404, "");
    assert_problem(
        &api.post_json(
            &format!("/api/v1/agents/{}/disposition", agent.id),
            &json!({"attempt_id": 999999, "kind": "sale"}),
        )
        .await,
        404,
        "",
    );
    assert_problem(
        &api.post_json(
            &format!("/api/v1/agents/{}/disposition", agent.id),
            &json!({"attempt_id": 1, "kind": "sale", "callback_at": "2030-01-01T10:00:00Z"}),
        )
        .await,
        422,
        "callback_at",
    );

    let (status, snapshot) = api.get("/api/v1/snapshot").await;
    assert_eq!(status, 200);
    let snapshot: schema::Snapshot = conforms(&snapshot);
    assert_eq!(snapshot.node, "api-node");
    assert_eq!(snapshot.campaigns.len(), 2);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_agents_and_lists_on_sqlite() {
    campaigns_agents_and_lists(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_agents_and_lists_on_postgres() {
    campaigns_agents_and_lists(Db::Postgres).await;
}

/// Bad input of every kind gets a 4xx JSON problem naming the field, and the service stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_naming_the_field() {
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    let toml = campaign_toml("bad", nowhere());
    assert_eq!(api.apply_toml(&toml).await.0, 201);
    let post = Method::POST;

    // Campaign definitions.
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("application/toml", toml.replace("ring_timeout = \"15s\"", "ring_timeout = \"5s\""), 422, "ring_timeout"),
        ("application/toml", toml.replace("max_ratio = 3.0", "max_ratio = \"x\""), 422, "pacing.max_ratio"),
        ("application/toml", toml.replace("cps = 50", "cps = 50\npassword = \"hunter2\""), 422, "trunk.password"),
        ("application/toml", toml.replace("[retry]", "[retyr]"), 422, "retyr"),
        ("application/toml", "name = \n".to_owned(), 400, ""),
        ("application/toml", String::new(), 422, "name"),
        ("application/json", "{\"name\": \"x\"".to_owned(), 400, ""),
        ("application/json", "{\"name\": \"x\", \"default_country\": \"US\", \"caller_id\": \"+12025550123\", \"trunk\": {\"uri\": 5}}".to_owned(), 422, "trunk.uri"),
        ("application/json", "{\"name\": \"x\", \"default_country\": \"ZZ\", \"caller_id\": \"+12025550123\", \"abandon_message\": \"abandon.wav\", \"trunk\": {\"uri\": \"sip:127.0.0.1:5\"}}".to_owned(), 422, "default_country"),
        ("application/json", "[1, 2]".to_owned(), 422, ""),
        ("application/json", "{} trailing".to_owned(), 422, "name"),
        ("application/json", "   ".to_owned(), 400, ""),
        ("application/json", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), 422, ""),
        ("application/json", format!("{{\"name\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000)), 422, "name"),
        ("image/png", "{}".to_owned(), 415, ""),
    ];
    for (kind, body, status, field) in cases {
        let answer = api
            .send_raw(post.clone(), "/api/v1/campaigns", kind, body.clone())
            .await;
        assert!(answer.0 == status, "{kind} {body:.80}: {:#}", answer.1);
        assert_problem(&answer, status, field);
    }
    // Not UTF-8, and too large.
    assert_problem(
        &api.send_raw(
            post.clone(),
            "/api/v1/campaigns",
            "application/toml",
            vec![0xff, 0xfe, 0x00],
        )
        .await,
        400,
        "",
    );
    // Too large: 413, and the connection is closed (the rest of the body is never read), so
    // the client's next request goes on a new one.
    let response = api
        .http
        .request(post.clone(), api.url("/api/v1/campaigns"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("the API answers");
    assert_eq!(
        response.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON problem");
    assert_problem(&(status, body), 413, "");
    // Agents and dispositions: types, unknown fields, missing fields.
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/api/v1/agents",
            json!({"username": 5, "password": "long enough"}),
            422,
            "username",
        ),
        (
            "/api/v1/agents",
            json!({"username": "x", "password": "long enough", "admin": true}),
            422,
            "admin",
        ),
        (
            "/api/v1/agents",
            json!({"password": "long enough"}),
            422,
            "username",
        ),
        (
            "/api/v1/agents",
            json!({"username": "x", "password": "long enough", "campaigns": "bad"}),
            422,
            "campaigns",
        ),
        ("/api/v1/agents/1/pause", json!({"why": "x"}), 422, "why"),
        (
            "/api/v1/agents/1/disposition",
            json!({"attempt_id": "one", "kind": "sale"}),
            422,
            "attempt_id",
        ),
        (
            "/api/v1/agents/1/disposition",
            json!({"attempt_id": 1, "kind": "maybe"}),
            422,
            "kind",
        ),
        (
            "/api/v1/agents/1/disposition",
            json!({"attempt_id": 1, "kind": "callback", "callback_at": "tomorrow"}),
            422,
            "callback_at",
        ),
        (
            "/api/v1/agents/1/disposition",
            json!({"attempt_id": 1, "kind": "callback"}),
            404,
            "",
        ),
        (
            "/api/v1/campaigns/bad/pacing",
            json!({"mode": "turbo"}),
            422,
            "mode",
        ),
        (
            "/api/v1/campaigns/bad/pacing",
            json!({"abandon_window": "1w"}),
            422,
            "abandon_window",
        ),
        (
            "/api/v1/campaigns/bad/pacing",
            json!({"max_lines": -1}),
            422,
            "max_lines",
        ),
        (
            "/api/v1/campaigns/bad/pacing",
            json!({"min_ratio": 3.0, "max_ratio": 2.0}),
            422,
            "min_ratio",
        ),
    ];
    for (path, body, status, field) in cases {
        let method = if path.ends_with("/pacing") {
            Method::PATCH
        } else {
            Method::POST
        };
        let answer = api
            .call(api.http.request(method, api.url(path)).json(&body))
            .await;
        assert!(answer.0 == status, "{path} {body}: {:#}", answer.1);
        assert_problem(&answer, status, field);
    }
    assert_problem(
        &api.send_raw(post.clone(), "/api/v1/agents", "text/plain", "{}")
            .await,
        415,
        "",
    );
    assert_problem(
        &api.send_raw(
            post.clone(),
            "/api/v1/agents/1/pause",
            "application/json",
            "{\"reason\": \"x\"} trailing",
        )
        .await,
        400,
        "",
    );
    // Paths and queries.
    assert_problem(&api.get("/api/v1/agents/abc").await, 400, "id");
    assert_problem(
        &api.get("/api/v1/contacts/99999999999999999999999").await,
        400,
        "id",
    );
    assert_problem(
        &api.get("/api/v1/campaigns/bad/contacts?limit=0").await,
        400,
        "limit",
    );
    assert_problem(
        &api.get("/api/v1/campaigns/bad/contacts?limit=ten").await,
        400,
        "limit",
    );
    assert_problem(
        &api.get("/api/v1/campaigns/bad/contacts?status=happy").await,
        400,
        "status",
    );
    assert_problem(
        &api.get("/api/v1/campaigns/bad/contacts?statuss=pending")
            .await,
        400,
        "statuss",
    );
    assert_problem(
        &api.get("/api/v1/campaigns/bad/attempts?from=yesterday")
            .await,
        400,
        "from",
    );
    assert_problem(&api.get("/api/v1/campaigns/nope/contacts").await, 404, "");
    assert_problem(&api.get("/api/v1/nothing/here").await, 404, "");
    assert_problem(&api.get("/api/v1/events").await, 400, "");
    assert_problem(
        &api.get("/api/v1/events?types=call,gossip").await,
        400,
        "types",
    );
    let wrong_method = api
        .call(api.http.delete(api.url("/api/v1/campaigns")))
        .await;
    assert_eq!(wrong_method.0, 405);
    // Uploads.
    let upload = |form: reqwest::multipart::Form| {
        api.http
            .post(api.url("/api/v1/campaigns/bad/lists"))
            .multipart(form)
    };
    let text = |s: &str| reqwest::multipart::Part::text(s.to_owned());
    assert_problem(
        &api.call(upload(
            reqwest::multipart::Form::new().part("list", text("phone\n1")),
        ))
        .await,
        400,
        "list",
    );
    assert_problem(
        &api.call(upload(
            reqwest::multipart::Form::new()
                .part("delimiter", text(";;"))
                .part("file", text("phone\n")),
        ))
        .await,
        400,
        "delimiter",
    );
    assert_problem(
        &api.call(upload(
            reqwest::multipart::Form::new().part("phone_column", text("phone")),
        ))
        .await,
        400,
        "file",
    );
    assert_problem(
        &api.call(upload(
            reqwest::multipart::Form::new().part("file", text("name,city\nAnn,Paris\n")),
        ))
        .await,
        422,
        "",
    );
    assert_problem(
        &api.send_raw(
            post.clone(),
            "/api/v1/campaigns/bad/lists",
            "text/csv",
            "phone\n+12125550142\n",
        )
        .await,
        400,
        "file",
    );
    assert_problem(
        &api.send_raw(
            post.clone(),
            "/api/v1/campaigns/bad/lists",
            "multipart/form-data; boundary=X",
            "--X\r\nbroken",
        )
        .await,
        400,
        "file",
    );
    assert_problem(
        &api.call(
            api.http
                .post(api.url("/api/v1/campaigns/nope/lists"))
                .multipart(reqwest::multipart::Form::new().part("file", text("phone\n"))),
        )
        .await,
        404,
        "",
    );
    assert_problem(
        &api.get("/api/v1/campaigns/bad/lists?delimiter=x").await,
        405,
        "",
    );

    // Still serving, nothing stored by the refused requests.
    let (status, health) = api.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (_, list) = api.get("/api/v1/campaigns").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, agents) = api.get("/api/v1/agents").await;
    assert_eq!(agents, json!([]));
    api.stop().await;
}

/// The WebSocket stream: a snapshot first, then campaign status changes and figures every
/// second, filtered by campaign and type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_sends_a_snapshot_then_events() {
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    assert_eq!(
        api.apply_toml(&campaign_toml("live", nowhere())).await.0,
        201
    );
    assert_eq!(
        api.apply_toml(&campaign_toml("other", nowhere())).await.0,
        201
    );
    let url = api.ws_request("/api/v1/events?campaign=live&types=campaign");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket");
    let mut next = async || -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("a message within 20 s")
                .expect("stream open")
                .expect("no error");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                let value: Value = serde_json::from_str(&text).unwrap();
                let _: schema::StreamMessage = conforms(&value);
                return value;
            }
        }
    };
    let first = next().await;
    assert_eq!(first["type"], "snapshot");
    let names: Vec<&str> = first["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["live"], "the snapshot is filtered too");

    api.post("/api/v1/campaigns/other/start").await;
    api.post("/api/v1/campaigns/live/start").await;
    // The status change, then figures each second; only `live`'s, only campaign events.
    let mut running = 0;
    for _ in 0..6 {
        let event = next().await;
        assert_eq!(event["type"], "campaign", "{event:#}");
        assert_eq!(event["name"], "live", "{event:#}");
        if event["status"] == "running" {
            running += 1;
        }
    }
    assert!(running >= 3, "figures of the running campaign keep coming");

    // A second client with no filter sees both campaigns, and a pacing change.
    let url = api.ws_request("/api/v1/events");
    let (mut all, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    api.patch_json("/api/v1/campaigns/other/pacing", &json!({"ratio": 2.0}))
        .await;
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(20), all.next())
            .await
            .expect("events keep coming")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "campaign" {
                names.insert(value["name"].as_str().unwrap().to_owned());
            }
        }
    }
    all.send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await
        .unwrap();
    api.stop().await;
}

/// Prometheus metrics name every figure asked for; the OpenAPI document lists every route and
/// Swagger UI is served from the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_openapi() {
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    assert_eq!(
        api.apply_toml(&campaign_toml("metered", nowhere())).await.0,
        201
    );
    api.post("/api/v1/campaigns/metered/start").await;
    let response = api.http.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for wanted in [
        "dialer_calls_total{campaign=\"metered\",outcome=\"connected\"} 0",
        "dialer_calls_total{campaign=\"metered\",outcome=\"abandoned\"} 0",
        "dialer_calls_in_flight ",
        "dialer_agents{state=\"ready\"}",
        "dialer_abandon_rate{campaign=\"metered\"} 0",
        "dialer_abandon_target{campaign=\"metered\"} 0.03",
        "dialer_pacing_decisions_total{campaign=\"metered\"}",
        "dialer_campaign_running{campaign=\"metered\"} 1",
        "dialer_connect_seconds{campaign=\"metered\",from=\"greeting\",quantile=\"0.99\"} 0",
        "dialer_sip_events_total{event=\"parse_errors\"}",
        "dialer_sip_events_total{event=\"transport_errors\"}",
        "dialer_rtp_send_errors_total",
        "dialer_rtp_dropped_packets_total{reason=\"malformed\"}",
        "dialer_media_buffer_exhaustions_total ",
        "dialer_media_rearms_deferred_total ",
        "dialer_media_receive_loop_realtime ",
        "dialer_http_requests_total{method=\"POST\",route=\"/api/v1/campaigns/{name}/start\",status=\"200\"}",
        "# HELP dialer_abandon_rate",
    ] {
        assert!(
            text.contains(wanted),
            "`{wanted}` missing from /metrics:\n{text}"
        );
    }

    let (status, doc) = api.get("/api-docs/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/campaigns", "post"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/campaigns/{name}", "get"),
        ("/api/v1/campaigns/{name}/spec", "get"),
        ("/api/v1/campaigns/{name}/start", "post"),
        ("/api/v1/campaigns/{name}/pause", "post"),
        ("/api/v1/campaigns/{name}/stop", "post"),
        ("/api/v1/campaigns/{name}/pacing", "patch"),
        ("/api/v1/campaigns/{name}/lists", "post"),
        ("/api/v1/campaigns/{name}/contacts", "get"),
        ("/api/v1/campaigns/{name}/contacts/counts", "get"),
        ("/api/v1/campaigns/{name}/attempts", "get"),
        ("/api/v1/contacts/{id}", "get"),
        ("/api/v1/attempts/{id}", "get"),
        ("/api/v1/agents", "post"),
        ("/api/v1/agents", "get"),
        ("/api/v1/agents/{id}", "get"),
        ("/api/v1/agents/{id}/ready", "post"),
        ("/api/v1/agents/{id}/pause", "post"),
        ("/api/v1/agents/{id}/logout", "post"),
        ("/api/v1/agents/{id}/hangup", "post"),
        ("/api/v1/agents/{id}/disposition", "post"),
        ("/api/v1/events", "get"),
        ("/api/v1/snapshot", "get"),
        ("/metrics", "get"),
        ("/healthz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CampaignView",
        "CampaignSpec",
        "Problem",
        "StreamMessage",
        "ImportSummary",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    // The document served is the one the crate builds.
    assert_eq!(doc, serde_json::to_value(api::openapi()).unwrap());

    let response = api.http.get(api.url("/swagger-ui/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html:.300}");
    let response = api
        .http
        .get(api.url("/swagger-ui/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the vendored bundle is served");
    api.stop().await;
}

/// A list over the 1 MiB body limit of other routes streams in whole; an upload that breaks
/// off keeps only the whole chunks committed before the break (5,000 rows each), none of the
/// half-read one, and the same file uploaded again completes the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_stream_and_broken_ones_keep_whole_chunks() {
    use tokio::io::AsyncWriteExt as _;
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    assert_eq!(
        api.apply_toml(&campaign_toml("big", nowhere())).await.0,
        201
    );
    let rows = 60_000;
    let mut csv = String::from("phone,name\n");
    for i in 0..rows {
        csv.push_str(&format!("+1212{:07},customer-{i}\n", 5_000_000 + i));
    }
    assert!(csv.len() > 1024 * 1024, "{} bytes", csv.len());
    let (status, report) = api.upload("big", "big.csv", &csv).await;
    assert_eq!(status, 201, "{report:#}");
    assert_eq!(report["imported"], rows);
    assert_eq!(report["rejected"], 0);

    // A second campaign's upload whose body stops half-way: the connection drops.
    assert_eq!(
        api.apply_toml(&campaign_toml("cut", nowhere())).await.0,
        201
    );
    let boundary = "cutcutcut";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    );
    let full = head.len() + csv.len() + boundary.len() + 8;
    let mut stream = tokio::net::TcpStream::connect(api.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/campaigns/cut/lists HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {full}\r\n\r\n",
                api.addr, api.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&csv.as_bytes()[..csv.len() / 2])
        .await
        .unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stream);
    // What the import had read stays in whole chunks: a multiple of 5,000 rows, no more than
    // the rows sent whole, and no more arrives after the break.
    let sent = csv[..csv.len() / 2].matches('\n').count() as u64 - 1;
    let total = |counts: &serde_json::Value| counts["total"].as_u64().unwrap_or(u64::MAX);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, counts) = api.get("/api/v1/campaigns/cut/contacts/counts").await;
    let kept = total(&counts);
    assert!(
        kept % 5_000 == 0 && kept <= sent,
        "{sent} rows sent whole: {counts:#}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, counts) = api.get("/api/v1/campaigns/cut/contacts/counts").await;
    assert_eq!(total(&counts), kept, "{counts:#}");
    // The whole file again completes it: the kept rows are duplicates, the rest imported.
    let (status, report) = api.upload("cut", "cut.csv", &csv).await;
    assert_eq!(status, 201, "{report:#}");
    assert_eq!(
        (report["imported"].as_u64(), report["duplicates"].as_u64()),
        (Some(rows as u64 - kept), Some(kept)),
        "{report:#}"
    );
    let (status, _) = api.get("/healthz").await;
    assert_eq!(status, 200);
    api.stop().await;
}
