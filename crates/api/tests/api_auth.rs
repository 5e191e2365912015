//! Accounts over real HTTP, on SQLite and PostgreSQL: every route called as every role and
//! without a login (the matrix of docs/api.md, and every operation of the OpenAPI document is
//! in it), token revocation taking effect at once, the login limit, browser sessions and the
//! cross-site checks (a form post, a multipart upload, a WebSocket from a foreign Origin), and a
//! capture of the run's logs with no password, token, session id or digest HA1 (a SIP phone's
//! login and a trunk's registration happen during it) in any line.

#[path = "../../engine/tests/support/peers.rs"]
mod peers;
mod support;

use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use store::Role;
use support::{Api, Db, campaign_toml, conforms, nowhere};
use testkit::sipp::Sipp;
use testkit::wait_for;

/// Every log line of this test binary (all levels the crates emit at debug and above).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// No secret appears in any captured log line.
#[track_caller]
fn assert_logs_clean(secrets: &[String]) {
    let text =
        String::from_utf8_lossy(&logs().lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        !text.is_empty(),
        "nothing was logged: the capture does not work"
    );
    for secret in secrets {
        assert!(!secret.is_empty());
        if let Some(line) = text.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a secret is in the logs: {line}");
        }
    }
}

/// Sends a request and gives the status (the body is read and dropped).
async fn status(request: reqwest::RequestBuilder) -> u16 {
    let response = request.send().await.expect("the API answers");
    let code = response.status().as_u16();
    let _ = response.bytes().await;
    code
}

/// One request of the matrix: the route template, the concrete request, and the status each
/// caller gets (no login, agent, supervisor, manager, admin).
struct Case {
    method: Method,
    template: &'static str,
    path: String,
    body: Body,
    expect: [u16; 5],
}

enum Body {
    None,
    Json(Value),
    Toml(String),
    Csv(&'static str),
}

fn case(
    method: Method,
    template: &'static str,
    path: impl Into<String>,
    body: Body,
    expect: [u16; 5],
) -> Case {
    Case {
        method,
        template,
        path: path.into(),
        body,
        expect,
    }
}

fn toml_without_overrides(name: &str) -> String {
    format!(
        r#"
name = "{name}"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "abandon.wav"

[pacing]
mode = "progressive"
ratio = 1.0

[calling_hours]
default = "09:00-20:00"

[trunk]
uri = "sip:{}"
"#,
        nowhere()
    )
}

/// The trunk secrets file of the matrix's engine (mode 600, as the service requires): the
/// credentials `crates/testkit/sipp/trunk_registrar.xml` accepts.
fn write_trunk_secrets(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("trunk-secrets.toml");
    std::fs::write(
        &path,
        "DIALER_TRUNK_M_USER = \"trunkuser\"\nDIALER_TRUNK_M_PASSWORD = \"trunkpass\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Both kinds of digest secret through the service while its logs are captured: a SIP phone
/// (sipp) logs in as agent `ph` (REGISTER and INVITE checked against the agent's stored HA1,
/// MD5 and SHA-256 offered), and campaign `p`'s trunk registers with its password at a sipp
/// registrar that challenges it. Gives the secrets to look for in the logs, and the peers
/// (kept running to the end of the test). `None`: sipp is missing (outside CI).
async fn sip_logins(api: &Api) -> Option<(Vec<String>, Vec<Sipp>)> {
    let registrar = Sipp::carrier_with("trunk_registrar.xml", "u1", 1, &[], false, 600)?;
    let toml = format!(
        r#"
name = "p"
default_country = "US"
caller_id = "+12025550123"
abandon_message = "abandon.wav"

[pacing]
mode = "progressive"
ratio = 1.0

[calling_hours]
default = "00:00-24:00"
override_legal_limits = true

[trunk]
uri = "sip:{}"
username_env = "DIALER_TRUNK_M_USER"
password_env = "DIALER_TRUNK_M_PASSWORD"
register = true
register_expires = "10m"
registrar = "{}"
"#,
        nowhere(),
        registrar.uri("u1")
    );
    let (code, body) = api.apply_toml(&toml).await;
    assert_eq!(code, 201, "{body:#}");
    let (code, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "ph", "password": "sip-secret-ph", "campaigns": ["p"]}),
        )
        .await;
    assert_eq!(code, 201, "{agent:#}");
    let agent_id = agent["id"].as_i64().unwrap();
    let (code, body) = api.post("/api/v1/campaigns/p/start").await;
    assert_eq!(code, 200, "{body:#}");
    let sip = api.engine.sip_addr(sip::Transport::Udp).unwrap();
    let phone = peers::sipp_agents(sip, &[("ph".into(), "sip-secret-ph".into())], "p")?;
    let ready = wait_for(std::time::Duration::from_secs(60), || async {
        api.get(&format!("/api/v1/agents/{agent_id}")).await.1["state"] == "ready"
    })
    .await;
    assert!(ready, "the phone did not log in\n{}", phone.diagnostics());
    let registered = wait_for(std::time::Duration::from_secs(60), || async {
        api.get("/api/v1/campaigns/p").await.1["figures"]["trunk"]["registration"] == "registered"
    })
    .await;
    assert!(
        registered,
        "the trunk did not register: {:#}\n{}",
        api.get("/api/v1/campaigns/p").await.1["figures"]["trunk"],
        registrar.diagnostics()
    );
    let stored = api
        .engine
        .store()
        .agent_by_username("ph")
        .await
        .unwrap()
        .unwrap();
    let (trunk_md5, trunk_sha256) = store::digest_ha1("trunkuser", "carrier.test", "trunkpass");
    let secrets = vec![
        "sip-secret-ph".to_owned(),
        stored.ha1_md5,
        stored.ha1_sha256,
        "trunkpass".to_owned(),
        trunk_md5,
        trunk_sha256,
    ];
    Some((secrets, vec![phone, registrar]))
}

async fn matrix(db: Db) {
    let _ = logs();
    let Some(api) = Api::start_with(db, |config, dir| {
        config.trunk_secrets = Some(write_trunk_secrets(dir));
    })
    .await
    else {
        return;
    };
    let Some((sip_secrets, _peers)) = sip_logins(&api).await else {
        return;
    };
    let trunk = nowhere();
    assert_eq!(api.apply_toml(&campaign_toml("m", trunk)).await.0, 201);
    let (code, list) = api.upload("m", "m.csv", "phone\n+12125550142\n").await;
    assert_eq!(code, 201, "{list:#}");
    let (_, page) = api.get("/api/v1/campaigns/m/contacts").await;
    let contact = page["items"][0]["id"].as_i64().unwrap();
    let mut agents = Vec::new();
    for name in ["a1", "a2"] {
        let (code, agent) = api
            .post_json(
                "/api/v1/agents",
                &json!({"username": name, "password": format!("sip-secret-{name}"), "campaigns": ["m"]}),
            )
            .await;
        assert_eq!(code, 201, "{agent:#}");
        agents.push(agent["id"].as_i64().unwrap());
    }
    let (a1, a2) = (agents[0], agents[1]);
    let mut tokens = vec![String::new()];
    tokens.push(api.user("ag", Role::Agent, Some(a1)).await);
    tokens.push(api.user("sup", Role::Supervisor, None).await);
    tokens.push(api.user("man", Role::Manager, None).await);
    tokens.push(api.token.clone());
    let clients: Vec<reqwest::Client> = tokens
        .iter()
        .map(|t| api.client((!t.is_empty()).then_some(t.as_str())))
        .collect();
    // Things the matrix deletes or revokes: one per caller that may.
    let store = api.engine.store();
    let cli = store::Principal::cli();
    let victim = store
        .create_user(
            &store::NewUser {
                username: "victim".into(),
                password: "victim-password".into(),
                role: Role::Manager,
                agent_id: None,
            },
            &cli,
        )
        .await
        .unwrap();
    let admin = store.user_by_name("harness-admin").await.unwrap().unwrap();
    let spare = store
        .create_token(admin.id, "spare", Role::Admin, None, &cli)
        .await
        .unwrap();
    let login = store
        .create_user(
            &store::NewUser {
                username: "login-user".into(),
                password: "login-user-password".into(),
                role: Role::Supervisor,
                agent_id: None,
            },
            &cli,
        )
        .await
        .unwrap();
    let _ = login;

    use Method as M;
    let yes = |code: u16| [401, code, code, code, code];
    let staff = |code: u16| [401, 403, code, code, code];
    let managers = |code: u16| [401, 403, 403, code, code];
    let admins = |code: u16| [401, 403, 403, 403, code];
    let other_agent = |code: u16| [401, 403, code, code, code];
    let cases = vec![
        case(M::GET, "/healthz", "/healthz", Body::None, [200; 5]),
        case(
            M::POST,
            "/api/v1/login",
            "/api/v1/login",
            Body::Json(json!({"username": "login-user", "password": "login-user-password"})),
            [200; 5],
        ),
        case(
            M::POST,
            "/api/v1/logout",
            "/api/v1/logout",
            Body::None,
            yes(204),
        ),
        case(M::GET, "/api/v1/me", "/api/v1/me", Body::None, yes(200)),
        case(
            M::GET,
            "/api/v1/tokens",
            "/api/v1/tokens",
            Body::None,
            yes(200),
        ),
        case(
            M::POST,
            "/api/v1/tokens",
            "/api/v1/tokens",
            Body::Json(json!({"name": "matrix"})),
            yes(201),
        ),
        case(
            M::DELETE,
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{}", spare.token.id),
            Body::None,
            [401, 404, 404, 404, 200],
        ),
        case(
            M::GET,
            "/api/v1/snapshot",
            "/api/v1/snapshot",
            Body::None,
            yes(200),
        ),
        // A plain GET is no WebSocket upgrade: 400 once the login is checked.
        case(
            M::GET,
            "/api/v1/events",
            "/api/v1/events",
            Body::None,
            yes(400),
        ),
        case(
            M::GET,
            "/api/v1/agents/{id}",
            format!("/api/v1/agents/{a1}"),
            Body::None,
            yes(200),
        ),
        case(
            M::GET,
            "/api/v1/agents/{id}",
            format!("/api/v1/agents/{a2}"),
            Body::None,
            other_agent(200),
        ),
        // Nobody is on a call: the line is free (no 404) for whoever may see the agent.
        case(
            M::GET,
            "/api/v1/agents/{id}/call",
            format!("/api/v1/agents/{a1}/call"),
            Body::None,
            yes(200),
        ),
        case(
            M::GET,
            "/api/v1/agents/{id}/call",
            format!("/api/v1/agents/{a2}/call"),
            Body::None,
            other_agent(200),
        ),
        // Nobody's phone is up: 409 for whoever may act on the agent.
        case(
            M::POST,
            "/api/v1/agents/{id}/ready",
            format!("/api/v1/agents/{a1}/ready"),
            Body::None,
            yes(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/ready",
            format!("/api/v1/agents/{a2}/ready"),
            Body::None,
            other_agent(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/pause",
            format!("/api/v1/agents/{a2}/pause"),
            Body::Json(json!({"reason": "break"})),
            other_agent(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/logout",
            format!("/api/v1/agents/{a2}/logout"),
            Body::None,
            other_agent(409),
        ),
        // A browser's offer that is not SDP: 422 for whoever may log the agent in.
        case(
            M::POST,
            "/api/v1/agents/{id}/webrtc",
            format!("/api/v1/agents/{a1}/webrtc"),
            Body::Json(json!({"sdp": "not sdp"})),
            yes(422),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/webrtc",
            format!("/api/v1/agents/{a2}/webrtc"),
            Body::Json(json!({"sdp": "not sdp"})),
            other_agent(422),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/hangup",
            format!("/api/v1/agents/{a2}/hangup"),
            Body::None,
            other_agent(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/hold",
            format!("/api/v1/agents/{a2}/hold"),
            Body::None,
            other_agent(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/unhold",
            format!("/api/v1/agents/{a1}/unhold"),
            Body::None,
            yes(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/dtmf",
            format!("/api/v1/agents/{a2}/dtmf"),
            Body::Json(json!({"digits": "12#"})),
            other_agent(409),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/disposition",
            format!("/api/v1/agents/{a2}/disposition"),
            Body::Json(json!({"attempt_id": 999_999, "kind": "sale"})),
            other_agent(404),
        ),
        case(
            M::POST,
            "/api/v1/agents/{id}/disposition",
            format!("/api/v1/agents/{a1}/disposition"),
            Body::Json(json!({"attempt_id": 999_999, "kind": "sale"})),
            yes(404),
        ),
        // An agent learns nothing of calls and contacts not on its line (not even whether
        // they exist).
        case(
            M::GET,
            "/api/v1/attempts/{id}",
            "/api/v1/attempts/999999",
            Body::None,
            other_agent(404),
        ),
        case(
            M::GET,
            "/api/v1/contacts/{id}",
            format!("/api/v1/contacts/{contact}"),
            Body::None,
            other_agent(200),
        ),
        case(
            M::GET,
            "/api/v1/campaigns",
            "/api/v1/campaigns",
            Body::None,
            staff(200),
        ),
        case(
            M::GET,
            "/api/v1/campaigns/{name}",
            "/api/v1/campaigns/m",
            Body::None,
            staff(200),
        ),
        case(
            M::POST,
            "/api/v1/campaigns/{name}/pause",
            "/api/v1/campaigns/m/pause",
            Body::None,
            staff(200),
        ),
        case(
            M::GET,
            "/api/v1/campaigns/{name}/contacts/counts",
            "/api/v1/campaigns/m/contacts/counts",
            Body::None,
            staff(200),
        ),
        case(
            M::GET,
            "/api/v1/agents",
            "/api/v1/agents",
            Body::None,
            staff(200),
        ),
        case(M::GET, "/metrics", "/metrics", Body::None, staff(200)),
        case(
            M::PATCH,
            "/api/v1/campaigns/{name}/pacing",
            "/api/v1/campaigns/m/pacing",
            Body::Json(json!({"ratio": 1.5})),
            staff(200),
        ),
        // A supervisor stays within the manager's bounds.
        case(
            M::PATCH,
            "/api/v1/campaigns/{name}/pacing",
            "/api/v1/campaigns/m/pacing",
            Body::Json(json!({"ratio": 2.9, "max_lines": 10})),
            staff(200),
        ),
        case(
            M::PATCH,
            "/api/v1/campaigns/{name}/pacing",
            "/api/v1/campaigns/m/pacing",
            Body::Json(json!({"max_ratio": 3.0})),
            managers(200),
        ),
        case(
            M::PATCH,
            "/api/v1/campaigns/{name}/pacing",
            "/api/v1/campaigns/m/pacing",
            Body::Json(json!({"max_lines": 11})),
            managers(200),
        ),
        case(
            M::PATCH,
            "/api/v1/campaigns/{name}/pacing",
            "/api/v1/campaigns/m/pacing",
            Body::Json(json!({"override_legal_limits": true})),
            admins(200),
        ),
        case(
            M::POST,
            "/api/v1/campaigns",
            "/api/v1/campaigns",
            Body::Toml(toml_without_overrides("m2")),
            [401, 403, 403, 201, 200],
        ),
        // Re-applying the admin's legal override unchanged is a manager's right; turning one
        // on or changing a trunk is not.
        case(
            M::POST,
            "/api/v1/campaigns",
            "/api/v1/campaigns",
            Body::Toml(campaign_toml("m", trunk)),
            managers(200),
        ),
        case(
            M::POST,
            "/api/v1/campaigns",
            "/api/v1/campaigns",
            Body::Toml(campaign_toml("m3", nowhere())),
            [401, 403, 403, 403, 201],
        ),
        case(
            M::POST,
            "/api/v1/campaigns",
            "/api/v1/campaigns",
            Body::Toml(campaign_toml("m", nowhere())),
            admins(200),
        ),
        case(
            M::GET,
            "/api/v1/campaigns/{name}/spec",
            "/api/v1/campaigns/m/spec",
            Body::None,
            managers(200),
        ),
        case(
            M::POST,
            "/api/v1/campaigns/{name}/start",
            "/api/v1/campaigns/m2/start",
            Body::None,
            managers(200),
        ),
        case(
            M::POST,
            "/api/v1/campaigns/{name}/stop",
            "/api/v1/campaigns/m2/stop",
            Body::None,
            managers(200),
        ),
        case(
            M::POST,
            "/api/v1/campaigns/{name}/lists",
            "/api/v1/campaigns/m2/lists",
            Body::Csv("phone\n+12125550199\n"),
            managers(201),
        ),
        case(
            M::GET,
            "/api/v1/campaigns/{name}/contacts",
            "/api/v1/campaigns/m/contacts",
            Body::None,
            managers(200),
        ),
        case(
            M::GET,
            "/api/v1/campaigns/{name}/attempts",
            "/api/v1/campaigns/m/attempts",
            Body::None,
            managers(200),
        ),
        case(
            M::POST,
            "/api/v1/agents",
            "/api/v1/agents",
            Body::Json(json!({"username": "a3", "password": "sip-secret-a3"})),
            admins(201),
        ),
        case(
            M::GET,
            "/api/v1/users",
            "/api/v1/users",
            Body::None,
            admins(200),
        ),
        case(
            M::POST,
            "/api/v1/users",
            "/api/v1/users",
            Body::Json(
                json!({"username": "newcomer", "password": "newcomer-password", "role": "supervisor"}),
            ),
            admins(201),
        ),
        case(
            M::DELETE,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{}", victim.id),
            Body::None,
            admins(200),
        ),
        case(
            M::GET,
            "/api/v1/audit",
            "/api/v1/audit",
            Body::None,
            admins(200),
        ),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        for (who, client) in clients.iter().enumerate() {
            let url = api.url(&case.path);
            let mut request = client.request(case.method.clone(), &url);
            request = match &case.body {
                Body::None => request,
                Body::Json(body) => request.json(body),
                Body::Toml(text) => request
                    .header("content-type", "application/toml")
                    .body(text.clone()),
                Body::Csv(text) => {
                    let part = reqwest::multipart::Part::text(*text)
                        .file_name("list.csv")
                        .mime_str("text/csv")
                        .unwrap();
                    request.multipart(reqwest::multipart::Form::new().part("file", part))
                }
            };
            let got = status(request).await;
            if got != case.expect[who] {
                failures.push(format!(
                    "{} {} as {}: {got}, expected {}",
                    case.method,
                    case.path,
                    ["nobody", "agent", "supervisor", "manager", "admin"][who],
                    case.expect[who]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the matrix does not hold:\n{}",
        failures.join("\n")
    );

    // Every operation of the document is in the matrix.
    let doc = serde_json::to_value(api::openapi()).unwrap();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = cases
                .iter()
                .any(|c| c.template == path && c.method.as_str().eq_ignore_ascii_case(method));
            if !covered {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes the matrix does not call: {missing:?}"
    );

    // The changes were audited, by whom.
    let (code, audit) = api.get("/api/v1/audit?limit=10000").await;
    assert_eq!(code, 200);
    let page: api::AuditPage = conforms(&audit);
    let actions: Vec<(&str, &str)> = page
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    for wanted in [
        ("user.create", "cli"),
        ("agent.create", "token 1 (harness) of harness-admin"),
        ("campaign.apply", "token 1 (harness) of harness-admin"),
        ("campaign.pacing", "token 3 (tests) of sup"),
        ("campaign.apply", "token 4 (tests) of man"),
        ("user.create", "token 1 (harness) of harness-admin"),
        ("user.delete", "token 1 (harness) of harness-admin"),
        ("token.revoke", "token 1 (harness) of harness-admin"),
        ("campaign.start", "token 4 (tests) of man"),
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted:?} not audited: {actions:?}"
        );
    }
    let all = audit.to_string();
    assert!(!all.contains("sip-secret"), "a password in the audit log");

    let mut secrets = tokens[1..].to_vec();
    secrets.push(spare.secret.clone());
    secrets.extend(
        [
            "sip-secret-a1",
            "login-user-password",
            "newcomer-password",
            "harness-admin-password",
        ]
        .map(String::from),
    );
    secrets.extend(sip_secrets);
    assert_logs_clean(&secrets);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_the_role_on_sqlite() {
    matrix(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_the_role_on_postgres() {
    matrix(Db::Postgres).await;
}

/// The session cookie of a login answer.
fn session_of(response: &reqwest::Response) -> String {
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("dialer_session="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure over plain HTTP: {cookie}"
    );
    cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap()
}

async fn sessions_tokens_and_cross_site_requests(db: Db) {
    let _ = logs();
    let Some(api) = Api::start(db).await else {
        return;
    };
    let trunk = nowhere();
    assert_eq!(api.apply_toml(&campaign_toml("c", trunk)).await.0, 201);
    let manager_token = api.user("boss", Role::Manager, None).await;
    let anon = api.client(None);

    // No login: 401 with a challenge and a Problem.
    let response = anon.get(api.url("/api/v1/campaigns")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    let _: api::schema::Problem = conforms(&body);

    // A wrong password and an unknown name answer alike.
    for (name, password) in [("boss", "not-the-password"), ("nobody", "whatever-it-is")] {
        let (code, body) = api
            .call(
                anon.post(api.url("/api/v1/login"))
                    .json(&json!({"username": name, "password": password})),
            )
            .await;
        assert_eq!(
            (code, body["error"].as_str()),
            (401, Some("wrong username or password"))
        );
    }

    // A login from a page of this service (Origin of the service) gives a session cookie.
    let origin = api.base.clone();
    let response = anon
        .post(api.url("/api/v1/login"))
        .header("origin", &origin)
        .json(&json!({"username": "boss", "password": "password-boss"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = session_of(&response);
    let me: Value = response.json().await.unwrap();
    let me: api::Me = conforms(&me);
    assert_eq!(
        (me.user.username.as_str(), me.role, me.via.as_str()),
        ("boss", Role::Manager, "session")
    );
    let cookie = format!("dialer_session={session}");
    let with_cookie = |method: Method, path: &str| {
        anon.request(method, api.url(path))
            .header("cookie", &cookie)
    };

    assert_eq!(status(with_cookie(Method::GET, "/api/v1/me")).await, 200);
    // Reading from any page is fine (SameSite keeps the cookie home anyway); changing is not.
    let pause = "/api/v1/campaigns/c/pause";
    assert_eq!(
        status(with_cookie(Method::POST, pause).header("origin", "https://evil.example")).await,
        403
    );
    assert_eq!(
        status(with_cookie(Method::POST, pause).header("sec-fetch-site", "cross-site")).await,
        403
    );
    assert_eq!(
        status(with_cookie(Method::POST, pause).header("origin", &origin)).await,
        200
    );
    assert_eq!(
        status(with_cookie(Method::POST, pause)).await,
        200,
        "a program with a cookie and no Origin"
    );
    // The bodies an HTML form sends without a preflight: refused from a foreign page, and
    // without proof of the same origin.
    let toml = campaign_toml("c", trunk);
    let form_post = |origin: Option<&str>| {
        let mut request = with_cookie(Method::POST, "/api/v1/campaigns")
            .header("content-type", "text/plain")
            .body(toml.clone());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request
    };
    assert_eq!(status(form_post(Some("https://evil.example"))).await, 403);
    assert_eq!(status(form_post(None)).await, 403);
    assert_eq!(
        status(form_post(Some(&origin))).await,
        403,
        "a form's type, even from home"
    );
    // Not with a token either: the campaign route takes TOML and JSON types only.
    let (code, _) = api
        .call(
            api.http
                .post(api.url("/api/v1/campaigns"))
                .header("content-type", "text/plain")
                .body(toml.clone()),
        )
        .await;
    assert_eq!(code, 415);
    let applied = with_cookie(Method::POST, "/api/v1/campaigns")
        .header("origin", &origin)
        .header("content-type", "application/toml")
        .body(toml.clone());
    assert_eq!(status(applied).await, 200, "TOML from the own pages");
    let upload = |origin: &str| {
        let part = reqwest::multipart::Part::text("phone\n+12125550142\n")
            .file_name("x.csv")
            .mime_str("text/csv")
            .unwrap();
        with_cookie(Method::POST, "/api/v1/campaigns/c/lists")
            .header("origin", origin)
            .multipart(reqwest::multipart::Form::new().part("file", part))
    };
    assert_eq!(status(upload("https://evil.example")).await, 403);
    let (_, counts) = api.get("/api/v1/campaigns/c/contacts/counts").await;
    assert_eq!(counts["total"], 0, "the refused upload stored nothing");
    assert_eq!(status(upload(&origin)).await, 201);
    // A login form posted from another site.
    let response = anon
        .post(api.url("/api/v1/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=boss&password=password-boss")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());

    // The WebSocket: a foreign Origin is refused whatever the credential; the own one streams.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let ws = |origin: &str, credential: (&'static str, String)| {
        let mut request = format!("ws://{}/api/v1/events", api.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
            .headers_mut()
            .insert(credential.0, credential.1.parse().unwrap());
        request
    };
    for credential in [
        ("cookie", cookie.clone()),
        ("authorization", format!("Bearer {manager_token}")),
    ] {
        match tokio_tungstenite::connect_async(ws("https://evil.example", credential.clone())).await
        {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403)
            }
            other => panic!(
                "a foreign WebSocket was not refused: {:?}",
                other.map(|_| ())
            ),
        }
    }
    let (mut stream, _) = tokio_tungstenite::connect_async(ws(&origin, ("cookie", cookie.clone())))
        .await
        .expect("the own page's WebSocket");
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.to_text().unwrap().contains("\"snapshot\""));
    drop(stream);
    let mut request = format!("ws://{}/api/v1/events", api.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_err(),
        "a WebSocket without a login"
    );

    // Logout ends the session on the server: the same cookie is refused after.
    assert_eq!(
        status(with_cookie(Method::POST, "/api/v1/logout").header("origin", &origin)).await,
        204
    );
    assert_eq!(status(with_cookie(Method::GET, "/api/v1/me")).await, 401);

    // Tokens: shown once, listed without secret, revoked at once.
    let boss = api.client(Some(&manager_token));
    let (code, made) = api
        .call(
            boss.post(api.url("/api/v1/tokens"))
                .json(&json!({"name": "crm", "role": "supervisor"})),
        )
        .await;
    assert_eq!(code, 201, "{made:#}");
    let made: api::CreatedToken = conforms(&made);
    assert_eq!(made.token.role, Role::Supervisor);
    let crm = api.client(Some(&made.secret));
    assert_eq!(status(crm.get(api.url("/api/v1/campaigns"))).await, 200);
    assert_eq!(
        status(crm.get(api.url("/api/v1/campaigns/c/spec"))).await,
        403,
        "a supervisor's token"
    );
    let (code, listed) = api.call(boss.get(api.url("/api/v1/tokens"))).await;
    assert_eq!(code, 200);
    assert!(
        !listed.to_string().contains(&made.secret),
        "a secret listed"
    );
    // A token above its owner's role, and one for someone else, are refused.
    let (code, _) = api
        .call(
            boss.post(api.url("/api/v1/tokens"))
                .json(&json!({"name": "up", "role": "admin"})),
        )
        .await;
    assert_eq!(code, 403);
    let (code, _) = api
        .call(
            boss.post(api.url("/api/v1/tokens"))
                .json(&json!({"name": "theirs", "user": "harness-admin"})),
        )
        .await;
    assert_eq!(code, 403);
    let (code, revoked) = api
        .call(boss.delete(api.url(&format!("/api/v1/tokens/{}", made.token.id))))
        .await;
    assert_eq!(code, 200, "{revoked:#}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        status(crm.get(api.url("/api/v1/campaigns"))).await,
        401,
        "revoked, refused at once"
    );
    // A deleted user's tokens die with it.
    let (_, users) = api.get("/api/v1/users").await;
    let boss_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "boss")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (code, _) = api
        .call(
            api.http
                .delete(api.url(&format!("/api/v1/users/{boss_id}"))),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(status(boss.get(api.url("/api/v1/me"))).await, 401);

    assert_logs_clean(&[session, manager_token, made.secret, "password-boss".into()]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_tokens_and_cross_site_requests_on_sqlite() {
    sessions_tokens_and_cross_site_requests(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_tokens_and_cross_site_requests_on_postgres() {
    sessions_tokens_and_cross_site_requests(Db::Postgres).await;
}

/// Five attempts per account, then 429 with Retry-After, the right password too; other
/// accounts from the same address go on until the address's own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_limited() {
    let _ = logs();
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    api.user("carol", Role::Supervisor, None).await;
    let anon = api.client(None);
    let login = |name: &str, password: &str| {
        anon.post(api.url("/api/v1/login"))
            .json(&json!({"username": name, "password": password}))
    };
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(status(login("carol", "wrong-password")).await, 401);
    }
    let response = login("carol", "password-carol").send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry), "Retry-After {retry}");
    let body: Value = response.json().await.unwrap();
    let _: api::schema::Problem = conforms(&body);
    // The address has 20: 6 used; 14 more on other names, then it is refused too.
    for n in 0..14 {
        assert_eq!(
            status(login(&format!("user{n}"), "wrong-password")).await,
            401,
            "attempt {n}"
        );
    }
    // The address gets one attempt back every 3 s: on a loaded machine the logins above may
    // have taken that long, so that many more may pass before the refusal.
    let refills = started.elapsed().as_secs() / 3;
    let mut refused = false;
    for _ in 0..=refills {
        match status(login("someone-else", "wrong-password")).await {
            429 => {
                refused = true;
                break;
            }
            other => assert_eq!(other, 401),
        }
    }
    assert!(
        refused,
        "the address's 21st attempt (+{refills} refills) was not refused"
    );
    assert_logs_clean(&["password-carol".into()]);
    let _ = std::io::stderr().flush();
    api.stop().await;
}

/// An `Authorization` header of another scheme (`Basic`, as a proxy may add) is no credential:
/// public routes answer as without one, a session cookie still counts, and a route needing a
/// login says only a bearer token or a session is accepted.
async fn other_authorization_schemes(db: Db) {
    let Some(api) = Api::start(db).await else {
        return;
    };
    let _ = api.user("basic", Role::Manager, None).await;
    let anon = api.client(None);
    let basic = "Basic YmFzaWM6cGFzc3dvcmQtYmFzaWM=";
    for path in ["/healthz", "/api-docs/openapi.json"] {
        let response = anon
            .get(api.url(path))
            .header("authorization", basic)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path} with Basic");
    }
    for odd in [
        basic,
        "Bearer",
        "Digest username=\"basic\"",
        "Negotiate abc",
    ] {
        let response = anon
            .post(api.url("/api/v1/login"))
            .header("authorization", odd)
            .json(&json!({"username": "basic", "password": "password-basic"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login with `{odd}`");
        let session = session_of(&response);
        // The session counts although a foreign scheme rides along.
        let (code, me) = api
            .call(
                anon.get(api.url("/api/v1/me"))
                    .header("authorization", odd)
                    .header("cookie", format!("dialer_session={session}")),
            )
            .await;
        assert_eq!(
            (code, me["role"].as_str()),
            (200, Some("manager")),
            "{me:#}"
        );
        // Without it, a protected route is 401 and says what is accepted.
        let response = anon
            .get(api.url("/api/v1/campaigns"))
            .header("authorization", odd)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "`{odd}` on a protected route");
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        let _: api::schema::Problem = conforms(&body);
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("Bearer") && error.contains("session"),
            "{body:#}"
        );
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_authorization_schemes_on_sqlite() {
    other_authorization_schemes(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_authorization_schemes_on_postgres() {
    other_authorization_schemes(Db::Postgres).await;
}
