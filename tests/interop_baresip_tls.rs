//! SIP over TLS against a peer nobody here wrote: Debian's baresip (TLS from libre and OpenSSL).
//! As an agent's phone it logs in to the engine's TLS listener, which presents a certificate
//! from a test CA that the phone is given as `sip_cafile`. As a carrier (auto answer, its own
//! certificate) it takes a call `dialer call` places through a campaign's `transport = "tls"`
//! trunk, with audio. A carrier certificate for another name, or from a CA the trunk does not
//! trust, is refused with the reason, and no INVITE reaches the carrier.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

mod phones;

use api_support::{Api, Db, campaign_toml, nowhere};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;
use testkit::tls::TestCa;
use testkit::wait_for;

/// A baresip process, killed on drop.
struct Baresip {
    child: Child,
    log: PathBuf,
}

impl Baresip {
    fn trace(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts baresip with `config` (lines after the modules) and `accounts` in `dir`, SIP trace on.
fn baresip(
    program: &Path,
    dir: &Path,
    config: &str,
    accounts: &str,
    command: Option<&str>,
) -> Baresip {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module stdio.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             audio_player aufile,/dev/null\n\
             audio_alert aufile,/dev/null\n\
             net_interface lo\n\
             {config}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("accounts"), accounts).unwrap();
    let child = phones::spawn_baresip(program, dir, command);
    Baresip {
        child,
        log: dir.join("baresip.log"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_logs_in_as_an_agent_over_tls() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let ca = TestCa::new("dialer test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let Some(api) = Api::start_with(Db::Sqlite, |config, dir| {
        let (cert, key) = leaf.write(dir, "dialer");
        config.sip_tls = vec!["127.0.0.1:0".parse().unwrap()];
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
    })
    .await
    else {
        return;
    };
    let (status, body) = api.apply_toml(&campaign_toml("interop", nowhere())).await;
    assert!(status == 200 || status == 201, "{body:#}");
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "tlsagent", "display_name": "TLS Agent", "password": "tls-secret-1", "campaigns": ["interop"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    let agent_id = agent["id"].as_i64().unwrap();
    let sip = api
        .engine
        .sip_addr(sip::Transport::Tls)
        .expect("the engine listens on TLS");
    let ca_file = ca.write(api.dir.path(), "ca.pem");
    let tone = api.dir.path().join("tone.wav");
    testkit::audio::write_tone(&tone, 440.0, 1.0, 6000.0);
    let port = testkit::free_phone_port();
    // The phone's account and call both name the TLS listener; the engine's UDP port is
    // elsewhere, so nothing but TLS can reach it.
    let phone = baresip(
        &program,
        &api.dir.path().join("baresip"),
        &format!(
            "sip_listen 127.0.0.1:{port}\nsip_cafile {}\naudio_source aufile,{}\n",
            ca_file.display(),
            tone.display()
        ),
        &format!(
            "<sip:tlsagent@{sip};transport=tls>;auth_user=tlsagent;auth_pass=tls-secret-1;\
             regint=0;audio_codecs=pcmu,pcma\n"
        ),
        Some(&format!("/dial sip:interop@{sip};transport=tls")),
    );
    let state =
        || async { api.get(&format!("/api/v1/agents/{agent_id}")).await.1["state"].clone() };
    let logged_in = wait_for(Duration::from_secs(20), || async {
        state().await == "ready"
    })
    .await;
    assert!(
        logged_in,
        "baresip did not log in over TLS: agent {}\n{}",
        state().await,
        phone.trace()
    );
    let trace = phone.trace();
    assert!(trace.contains("SIP/2.0/TLS"), "{trace}");
    assert!(trace.contains("401"), "digest over TLS: {trace}");
    drop(phone);
    api.stop().await;
}

async fn dialer(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .env("DIALER_LOG", "warn")
        .output()
        .await
        .expect("run dialer")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A carrier: baresip answering every call to +12025550123 at once, with a tone, over TLS
/// with a certificate for `names` from `ca`.
async fn carrier(program: &Path, dir: &Path, ca: &TestCa, names: &[&str]) -> (Baresip, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let pem = ca.leaf(names).write_combined(dir, "carrier.pem");
    let tone = dir.join("tone.wav");
    testkit::audio::write_tone(&tone, 440.0, 2.0, 6000.0);
    let port = testkit::free_phone_port();
    let carrier = baresip(
        program,
        dir,
        &format!(
            "sip_listen 127.0.0.1:{port}\nsip_certificate {}\naudio_source aufile,{}\n",
            pem.display(),
            tone.display()
        ),
        "<sip:+12025550123@localhost>;regint=0;answermode=auto;audio_codecs=pcmu,pcma\n",
        None,
    );
    let tls = port + 1;
    let listening = wait_for(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", tls))
            .await
            .is_ok()
    })
    .await;
    assert!(
        listening,
        "baresip is not listening for TLS\n{}",
        carrier.trace()
    );
    (carrier, tls)
}

/// A campaign on a TLS trunk to `localhost:port` checked against `ca_file` (in `dir`, the
/// prompts directory `call` is given), applied to a fresh database; returns the database URL.
async fn tls_campaign(dir: &Path, port: u16, ca_file: &Path) -> String {
    let ca_file = ca_file
        .strip_prefix(dir)
        .expect("the CA file is in the prompts directory");
    let database = testkit::sqlite_url(&dir.join("dialer.db"));
    let campaign = dir.join("tls-call.toml");
    std::fs::write(
        &campaign,
        format!(
            "name = \"tls-call\"\ndefault_country = \"US\"\ncaller_id = \"+12025550100\"\n\
             ring_timeout = \"20s\"\nabandon_message = \"prompts/abandon.wav\"\n\n\
             [trunk]\nuri = \"sip:localhost:{port}\"\ntransport = \"tls\"\n\
             ca_file = \"{}\"\ncps = 5\n",
            ca_file.display()
        ),
    )
    .unwrap();
    let applied = dialer(&[
        "--database-url",
        &database,
        "campaign",
        "apply",
        campaign.to_str().unwrap(),
    ])
    .await;
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    database
}

async fn call(database: &str, prompts: &Path) -> (serde_json::Value, String) {
    let out = dialer(&[
        "--database-url",
        database,
        "call",
        "--prompts-dir",
        prompts.to_str().unwrap(),
        "(202) 555-0123",
        "--campaign",
        "tls-call",
        "--bind",
        "127.0.0.1:0",
        "--talk",
        "2",
        "--json",
    ])
    .await;
    let stdout = text(&out.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("one JSON object: {stdout}{}", text(&out.stderr)));
    (report, text(&out.stderr))
}

#[tokio::test]
async fn the_dialer_calls_a_tls_carrier_through_a_campaign_trunk() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("carrier CA");
    let (carrier, port) = carrier(&program, &dir.path().join("carrier"), &ca, &["localhost"]).await;
    let database = tls_campaign(dir.path(), port, &ca.write(dir.path(), "carrier-ca.pem")).await;
    let (report, stderr) = call(&database, dir.path()).await;
    let trace = carrier.trace();
    assert_eq!(
        report["outcome"], "answered",
        "{report:#}\n{stderr}\n{trace}"
    );
    assert_eq!(report["code"], 200);
    assert_eq!(report["cause"], "we hung up", "{report:#}");
    // Two seconds of the carrier's tone at 50 packets a second.
    assert!(
        report["rtp_packets"].as_u64().unwrap_or(0) > 50,
        "{report:#}\n{trace}"
    );
    assert!(trace.contains("SIP/2.0/TLS"), "{trace}");
    assert!(
        trace.contains("INVITE sips:") || trace.contains("INVITE sip:"),
        "{trace}"
    );
}

#[tokio::test]
async fn a_carrier_certificate_for_another_name_or_ca_is_refused_before_any_invite() {
    let Some(program) = testkit::program("baresip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("carrier CA");
    // The carrier's certificate names another host than the trunk's URI.
    let (wrong_name, port) = carrier(
        &program,
        &dir.path().join("carrier"),
        &ca,
        &["sip.carrier.example"],
    )
    .await;
    let database = tls_campaign(dir.path(), port, &ca.write(dir.path(), "carrier-ca.pem")).await;
    let (report, stderr) = call(&database, dir.path()).await;
    let outcome = report["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("failed (503") && outcome.contains("TLS with localhost"),
        "{report:#}\n{stderr}"
    );
    assert!(outcome.contains("not valid for name"), "{outcome}");
    assert!(stderr.contains("TLS connection refused"), "{stderr}");
    let trace = wrong_name.trace();
    assert!(
        !trace.contains("INVITE"),
        "an INVITE reached the carrier:\n{trace}"
    );
    drop(wrong_name);

    // The right name, but from a CA the trunk does not trust.
    let (untrusted, port) =
        carrier(&program, &dir.path().join("carrier2"), &ca, &["localhost"]).await;
    let other = TestCa::new("someone else's CA");
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let database = tls_campaign(&other_dir, port, &other.write(&other_dir, "ca.pem")).await;
    let (report, stderr) = call(&database, &other_dir).await;
    let outcome = report["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("failed (503") && outcome.contains("UnknownIssuer"),
        "{report:#}\n{stderr}"
    );
    let trace = untrusted.trace();
    assert!(
        !trace.contains("INVITE"),
        "an INVITE reached the carrier:\n{trace}"
    );
}
