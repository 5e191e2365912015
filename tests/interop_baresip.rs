//! A softphone nobody here wrote as an agent's phone: Debian's baresip logs in to the engine
//! with the default settings (it gives up on a challenge that names any algorithm it does not
//! know, so it logs in only while MD5 alone is offered), is ready, and logs out by hanging up.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

use api_support::{Api, Db, campaign_toml, nowhere};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::wait_for;

/// A baresip process, killed on drop.
struct Baresip(Child);

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_logs_in_as_an_agent_with_the_default_settings() {
    let Some(baresip) = testkit::program("baresip") else {
        return;
    };
    let Some(api) = Api::start(Db::Sqlite).await else {
        return;
    };
    let (status, body) = api.apply_toml(&campaign_toml("interop", nowhere())).await;
    assert!(status == 200 || status == 201, "{body:#}");
    let (status, agent) = api
        .post_json(
            "/api/v1/agents",
            &json!({"username": "bareagent", "display_name": "Bare Agent", "password": "bare-secret-1", "campaigns": ["interop"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent:#}");
    let agent_id = agent["id"].as_i64().unwrap();
    let sip = api
        .engine
        .sip_addr(sip::Transport::Udp)
        .expect("the engine listens on UDP");

    let config = api.dir.path().join("baresip");
    std::fs::create_dir_all(&config).unwrap();
    let tone = api.dir.path().join("tone.wav");
    // One second of a 440 Hz tone: the phone's microphone.
    testkit::audio::write_tone(&tone, 440.0, 1.0, 6000.0);
    let port = testkit::free_udp_port();
    std::fs::write(
        config.join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module stdio.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             sip_listen 127.0.0.1:{port}\n\
             audio_source aufile,{tone}\n\
             audio_player aufile,/dev/null\n\
             audio_alert aufile,/dev/null\n\
             net_interface lo\n",
            tone = tone.display()
        ),
    )
    .unwrap();
    std::fs::write(
        config.join("accounts"),
        format!(
            "<sip:bareagent@{sip}>;auth_user=bareagent;auth_pass=bare-secret-1;regint=0;\
             audio_codecs=pcmu,pcma\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(api.dir.path().join("baresip.log")).unwrap();
    let child = Command::new(baresip)
        .args(["-f", config.to_str().unwrap(), "-n", "127.0.0.1", "-s"])
        .args(["-e", &format!("/dial sip:interop@{sip}")])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("baresip starts");
    let mut phone = Baresip(child);
    let state =
        || async { api.get(&format!("/api/v1/agents/{agent_id}")).await.1["state"].clone() };
    let logged_in = wait_for(Duration::from_secs(20), || async {
        state().await == "ready"
    })
    .await;
    let trace = || std::fs::read_to_string(api.dir.path().join("baresip.log")).unwrap_or_default();
    assert!(
        logged_in,
        "baresip did not log in: agent {}\n{}",
        state().await,
        trace()
    );
    // It answered the challenge with MD5, the one algorithm offered.
    let trace_now = trace();
    assert!(trace_now.contains("401"), "{trace_now}");
    assert!(
        !trace_now.to_ascii_lowercase().contains("algorithm=sha-256"),
        "{trace_now}"
    );
    // Hanging up logs the agent out.
    let _ = phone.0.kill();
    let _ = phone.0.wait();
    let (status, _) = api.post(&format!("/api/v1/agents/{agent_id}/logout")).await;
    assert!(status == 200 || status == 409 || status == 404, "{status}");
    assert!(
        wait_for(Duration::from_secs(40), || async {
            state().await == "logged_out"
        })
        .await,
        "agent {}",
        state().await
    );
    api.stop().await;
}
