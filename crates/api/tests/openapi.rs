//! The OpenAPI document as outside tools read it: every operation and answer described, the
//! document valid for `openapi-spec-validator`, and a client generated from it by
//! `openapi-python-client` that imports and talks to the real API, each answer checked against
//! the schema the document gives for its route and status (`tests/openapi_client.py`).
//!
//! The Python tools are found on `PATH`; when one is missing the test skips with a notice,
//! or fails under CI (`testkit::missing`).

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            found.push((method.clone(), path.clone(), operation));
        }
    }
    found
}

/// Every operation has a unique operationId and a one-line summary; every answer says what it
/// is; every error answer is a `Problem` as JSON.
#[test]
fn every_operation_and_answer_is_described() {
    let doc = serde_json::to_value(api::openapi()).expect("the document serialises");
    let mut ids = std::collections::BTreeSet::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 26, "{} operations", ops.len());
    for (method, path, op) in ops {
        let at = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{at}: no operationId");
        assert!(ids.insert(id.to_owned()), "{at}: operationId `{id}` twice");
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(!summary.is_empty(), "{at}: no summary");
        assert!(
            !summary.contains('\n') && summary.len() <= 100,
            "{at}: the summary is not one short line: {summary:?}"
        );
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{at}: no responses");
        for (status, response) in responses {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                description.len() >= 10,
                "{at} {status}: the answer does not say what it is: {description:?}"
            );
            let code: u16 = status.parse().expect("a numeric status");
            if code >= 400 && path != "/healthz" {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Problem",
                    "{at} {status}: an error answer that is not a Problem"
                );
            }
        }
    }
}

/// Every example campaign file, read by the domain and written back as JSON (what
/// `GET .../spec` answers and `POST /api/v1/campaigns` takes), is valid against the document's
/// `CampaignSpec`; so is a pacing patch against `PacingPatch`.
#[test]
fn campaign_files_are_valid_against_the_document() {
    let spec_schema = support::validator("CampaignSpec");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../campaigns");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("campaigns/") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a campaign file");
        let spec = domain::CampaignSpec::from_toml(&text)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let value = serde_json::to_value(&spec).expect("a spec serialises");
        let errors: Vec<String> = spec_schema
            .iter_errors(&value)
            .map(|e| format!("{e} at `{}`", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 3, "{checked} campaign files");
    let patch = domain::PacingPatch {
        max_ratio: Some(2.5),
        abandon_window: Some(domain::AbandonWindow::Day),
        ..Default::default()
    };
    let value = serde_json::to_value(&patch).expect("a patch serialises");
    support::valid_as("PacingPatch", &value);
    assert!(
        !support::validator("PacingPatch").is_valid(&serde_json::json!({"max_ratio": "x"})),
        "a string ratio passes the document"
    );
}

/// The Python tools, or `None` (skipped, or a failure under CI) when one is missing.
fn python_tools() -> Option<()> {
    for tool in ["python3", "openapi-spec-validator", "openapi-python-client"] {
        testkit::program(tool)?;
    }
    Some(())
}

/// Runs `command`, failing the test with its output when it fails; returns its output (stdout
/// then stderr).
fn run(what: &str, command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: cannot run: {err}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{text}",
        output.status
    );
    text
}

/// An engine on a fresh SQLite database with the API served on a port of its own.
struct Served {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), api::ApiError>>,
    engine: engine::Engine,
    /// An admin's API token, for the client.
    token: String,
}

async fn serve(dir: &Path) -> Served {
    let url = format!("sqlite://{}?mode=rwc", dir.join("dialer.db").display());
    let store = store::Store::connect(&url).await.expect("SQLite opens");
    store.migrate().await.expect("migrations run");
    let cli = store::Principal::cli();
    let admin = store
        .create_user(
            &store::NewUser {
                username: "openapi-admin".into(),
                password: "openapi-admin-password".into(),
                role: store::Role::Admin,
                agent_id: None,
            },
            &cli,
        )
        .await
        .expect("an admin");
    let token = store
        .create_token(admin.id, "openapi", store::Role::Admin, None, &cli)
        .await
        .expect("the admin's token")
        .secret;
    let mut config = engine::EngineConfig::new("openapi-node");
    config.sip_udp = vec!["127.0.0.1:0".parse().expect("an address")];
    config.rtp_ports = 0..=0;
    config.prompts_dir = dir.to_path_buf();
    config.recordings_dir = dir.join("recordings");
    let engine = engine::Engine::start(config, store, engine::InProcess::shared())
        .await
        .expect("the engine starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, engine.clone(), async move {
        let _ = stopped.await;
    }));
    Served {
        base,
        stop,
        server,
        engine,
        token,
    }
}

/// `openapi-spec-validator` finds no error in the document; `openapi-python-client` generates
/// a client from it that imports, and that client's calls to the real API get answers matching
/// the document (requests the client built from the schema are accepted; each answer's status
/// is documented for its route and its body matches that status's schema).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_and_generated_client_accept_the_document() {
    if python_tools().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let doc_path = dir.path().join("openapi.json");
    let doc = serde_json::to_string_pretty(&api::openapi()).expect("the document serialises");
    std::fs::write(&doc_path, doc).expect("the document is written");

    let report = run(
        "openapi-spec-validator",
        Command::new("openapi-spec-validator").arg(&doc_path),
    );
    assert!(report.contains("OK"), "openapi-spec-validator: {report}");

    let client: PathBuf = dir.path().join("dialer_client");
    let report = run(
        "openapi-python-client generate",
        Command::new("openapi-python-client")
            .arg("generate")
            .arg("--path")
            .arg(&doc_path)
            .arg("--meta")
            .arg("none")
            .arg("--output-path")
            .arg(&client),
    );
    // The generator makes no body of `application/toml` (the campaign file as text, which the
    // route takes besides JSON); anything else it could not read is the document's fault.
    let warnings = report.matches("WARNING").count() + report.matches("Unable to parse").count();
    let toml = report
        .matches("Unsupported content type application/toml")
        .count();
    assert_eq!(warnings, toml, "openapi-python-client:\n{report}");
    run(
        "importing the generated client",
        Command::new("python3")
            .arg("-c")
            .arg("import dialer_client, dialer_client.models, dialer_client.api")
            .current_dir(dir.path()),
    );

    let served = serve(dir.path()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi_client.py");
    let mut check = Command::new("python3");
    check
        .arg(&script)
        .arg(&served.base)
        .arg(&doc_path)
        .env("DIALER_TOKEN", &served.token)
        .env("PYTHONPATH", dir.path());
    let report = tokio::task::spawn_blocking(move || run("the generated client", &mut check))
        .await
        .expect("the client check ran");
    eprintln!("{report}");
    assert!(report.contains("checked"), "{report}");

    served
        .engine
        .shutdown(std::time::Duration::from_secs(2))
        .await
        .expect("the engine stops");
    let _ = served.stop.send(());
    served
        .server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
}
