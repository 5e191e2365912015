//! The API tests' harness: a real engine on SQLite or PostgreSQL, the API served on a port of
//! its own, a real HTTP client, and checks that every JSON answer is valid against its schema
//! in the service's OpenAPI document (a JSON Schema validator, not the types that wrote it).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use engine::{Engine, EngineConfig, InProcess};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Which database the engine runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running engine with the API in front of it. Its `http` client sends an admin's API token
/// on every request (the harness's own account); [`Api::client`] makes clients of other roles.
pub struct Api {
    pub engine: Engine,
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// The admin token `http` sends.
    pub token: String,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), api::ApiError>>>,
    _pg: Option<testkit::TempPostgres>,
}

impl Api {
    /// Starts an engine (SIP and RTP on ports from the OS) and the API on 127.0.0.1:0.
    /// `None` when PostgreSQL is wanted and missing (outside CI).
    pub async fn start(db: Db) -> Option<Api> {
        Self::start_with(db, |_, _| {}).await
    }

    /// [`start`](Self::start) with the engine's settings changed by `configure` first (given
    /// the settings and the test's directory): TLS listeners and their certificates, say.
    pub async fn start_with(
        db: Db,
        configure: impl FnOnce(&mut EngineConfig, &std::path::Path),
    ) -> Option<Api> {
        Self::start_serving(db, configure, api::ApiConfig::default()).await
    }

    /// [`start_with`](Self::start_with), the API served with `serving` (upload limits).
    pub async fn start_serving(
        db: Db,
        configure: impl FnOnce(&mut EngineConfig, &std::path::Path),
        serving: api::ApiConfig,
    ) -> Option<Api> {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg) = match db {
            Db::Sqlite => (testkit::sqlite_url(&dir.path().join("dialer.db")), None),
            Db::Postgres => {
                let pg = testkit::postgres().await?;
                (pg.url().to_owned(), Some(pg))
            }
        };
        let store = store::Store::connect(&database_url).await.unwrap();
        store.migrate().await.unwrap();
        let token = admin_token(&store).await;
        testkit::audio::write_message(&dir.path().join("abandon.wav"), 1.5);
        let mut config = engine_config(dir.path());
        configure(&mut config, dir.path());
        let engine = Engine::start(config, store, InProcess::shared())
            .await
            .expect("engine starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(api::serve_with(
            listener,
            engine.clone(),
            serving,
            async move {
                let _ = stopped.await;
            },
        ));
        Some(Api {
            engine,
            base: format!("http://{addr}"),
            addr,
            http: client_with(Some(&token)),
            token,
            dir,
            database_url,
            stop: Some(stop),
            server: Some(server),
            _pg: pg,
        })
    }

    /// A user of `role` named `name` (password `password-{name}`; an agent-role user acts as
    /// the agent `agent`), and an API token of theirs.
    pub async fn user(&self, name: &str, role: store::Role, agent: Option<i64>) -> String {
        let store = self.engine.store();
        let user = store
            .create_user(
                &store::NewUser {
                    username: name.to_owned(),
                    password: format!("password-{name}"),
                    role,
                    agent_id: agent,
                },
                &store::Principal::cli(),
            )
            .await
            .unwrap();
        store
            .create_token(user.id, "tests", role, None, &store::Principal::cli())
            .await
            .unwrap()
            .secret
    }

    /// A client sending this bearer token (`None`: no login at all).
    pub fn client(&self, token: Option<&str>) -> reqwest::Client {
        client_with(token)
    }

    /// A WebSocket handshake request for `path` with the harness's admin token.
    pub fn ws_request(
        &self,
        path: &str,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns the status and the JSON body (Null when empty).
    pub async fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap();
        if text.is_empty() {
            return (status, Value::Null);
        }
        assert!(
            kind.starts_with("application/json"),
            "status {status}: content type `{kind}`, body {text}"
        );
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("status {status}: not JSON ({err}): {text}"));
        if status >= 400 {
            conforms::<api::schema::Problem>(&body);
        }
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(self.http.get(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        self.call(self.http.post(self.url(path))).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(self.http.patch(self.url(path)).json(body)).await
    }

    /// Sends a raw body with a content type.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).body(body);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        self.call(request).await
    }

    /// Applies a campaign from TOML over the API.
    pub async fn apply_toml(&self, toml: &str) -> (u16, Value) {
        self.send_raw(
            reqwest::Method::POST,
            "/api/v1/campaigns",
            "application/toml",
            toml.to_owned(),
        )
        .await
    }

    /// Uploads a CSV as the multipart part `file`.
    pub async fn upload(&self, campaign: &str, file_name: &str, csv: &str) -> (u16, Value) {
        let part = reqwest::multipart::Part::text(csv.to_owned())
            .file_name(file_name.to_owned())
            .mime_str("text/csv")
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        self.call(
            self.http
                .post(self.url(&format!("/api/v1/campaigns/{campaign}/lists")))
                .multipart(form),
        )
        .await
    }

    /// Stops the engine and the API and starts them again on the same database and HTTP
    /// address, as a node's restart does (the engine's default test settings: SIP and RTP on
    /// new ports; `start_with`'s changes and `start_serving`'s API settings are not kept).
    pub async fn restart(&mut self) {
        self.engine.shutdown(Duration::from_secs(2)).await.unwrap();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        let store = store::Store::connect(&self.database_url).await.unwrap();
        let engine = Engine::start(engine_config(self.dir.path()), store, InProcess::shared())
            .await
            .expect("engine restarts");
        // The old listener's socket may linger a moment after the server ends.
        let mut listener = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("the API's address again");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.server = Some(tokio::spawn(api::serve_with(
            listener,
            engine.clone(),
            api::ApiConfig::default(),
            async move {
                let _ = stopped.await;
            },
        )));
        self.stop = Some(stop);
        self.engine = engine;
    }

    /// Stops the API and the engine.
    pub async fn stop(mut self) {
        self.engine.shutdown(Duration::from_secs(2)).await.unwrap();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// The engine's test settings: SIP over UDP and RTP on ports from the OS, prompts and
/// recordings in the test's directory.
fn engine_config(dir: &std::path::Path) -> EngineConfig {
    let mut config = EngineConfig::new("api-node");
    config.sip_udp = vec!["127.0.0.1:0".parse().unwrap()];
    config.rtp_ports = 0..=0;
    config.prompts_dir = dir.to_path_buf();
    config.recordings_dir = dir.join("recordings");
    config
}

/// The harness's admin and its API token, made as `dialer user add` and `dialer token add` do.
async fn admin_token(store: &store::Store) -> String {
    let cli = store::Principal::cli();
    let admin = store
        .create_user(
            &store::NewUser {
                username: "harness-admin".into(),
                password: "harness-admin-password".into(),
                role: store::Role::Admin,
                agent_id: None,
            },
            &cli,
        )
        .await
        .expect("the harness's admin");
    store
        .create_token(admin.id, "harness", store::Role::Admin, None, &cli)
        .await
        .expect("the harness's token")
        .secret
}

/// An HTTP client that sends `token` as its bearer on every request.
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Asserts that `value` is valid against the schema the OpenAPI document gives `T` (by its
/// component name); returns it typed.
#[track_caller]
pub fn conforms<T: DeserializeOwned + utoipa::ToSchema>(value: &Value) -> T {
    valid_as(&T::name(), value);
    typed(value)
}

/// Asserts that `value` is an array whose every item is valid as `T`; returns them typed.
#[track_caller]
pub fn conforms_each<T: DeserializeOwned + utoipa::ToSchema>(value: &Value) -> Vec<T> {
    let items = value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of {}:\n{value:#}", T::name()));
    for item in items {
        valid_as(&T::name(), item);
    }
    typed(value)
}

#[track_caller]
fn typed<T: DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|err| {
        panic!(
            "valid answer unreadable as {}: {err}\n{value:#}",
            std::any::type_name::<T>()
        )
    })
}

/// Asserts that `value` is valid against `#/components/schemas/{name}` of the API's document.
#[track_caller]
pub fn valid_as(name: &str, value: &Value) {
    let validator = validator(name);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|err| format!("{} at `{}`", err, err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "answer is not a valid {name} of the OpenAPI document: {}\n{value:#}",
        errors.join("; ")
    );
}

/// A validator of `#/components/schemas/{name}` of the API's document (compiled once per name).
pub fn validator(name: &str) -> Arc<jsonschema::Validator> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
        OnceLock::new();
    let document = DOCUMENT
        .get_or_init(|| serde_json::to_value(api::openapi()).expect("the document is JSON"));
    let mut cache = VALIDATORS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(name.to_owned())
        .or_insert_with(|| {
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "the OpenAPI document has no schema `{name}`"
            );
            let schema = serde_json::json!({
                "$ref": format!("#/components/schemas/{name}"),
                "components": document["components"],
            });
            Arc::new(
                jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|err| panic!("schema `{name}` does not compile: {err}")),
            )
        })
        .clone()
}

/// Asserts a 4xx JSON problem naming `field` (empty: no field is required).
#[track_caller]
pub fn assert_problem(answer: &(u16, Value), status: u16, field: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body:#}");
    let problem: api::schema::Problem = conforms(body);
    if !field.is_empty() {
        assert!(
            problem.fields.iter().any(|f| f.field == field),
            "expected field `{field}` named in {body:#}"
        );
    }
    assert!(!problem.error.is_empty());
}

/// A campaign file for tests: progressive, calls at any hour, the trunk at `trunk`.
pub fn campaign_toml(name: &str, trunk: SocketAddr) -> String {
    format!(
        r#"
name = "{name}"
default_country = "US"
caller_id = "+12025550123"
ring_timeout = "15s"
abandon_message = "abandon.wav"

[pacing]
mode = "progressive"
ratio = 1.0
max_ratio = 3.0
max_lines = 10

[calling_hours]
default = "00:00-24:00"
override_legal_limits = true

[retry]
max_attempts = 2

[wrap_up]
timeout = "30s"

[trunk]
uri = "sip:{trunk}"
cps = 50
"#
    )
}

/// An address nothing answers on (no campaign of these tests dials without an agent).
pub fn nowhere() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], testkit::free_udp_port()))
}

/// Makes a module `NAME` with two tests, `sqlite` and `postgres`, that run `NAME(Db)` on each.
#[allow(unused_macros)]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Db::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Db::Postgres).await;
            }
        }
    };
}
