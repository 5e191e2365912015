//! `dialer serve` as a process: a configuration file (listen on port 0, SQLite in a temporary
//! directory, SIP on a free port, a campaigns directory applied at start), the API, metrics
//! and docs answering, flags over the file, PostgreSQL by URL, and SIGTERM stopping it cleanly.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

use api_support::campaign_toml;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `dialer serve` process, killed on drop if still running.
struct Serve {
    child: Child,
    base: String,
    lines: std::sync::mpsc::Receiver<String>,
    /// Stdout before the `listening on` line.
    seen: Vec<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `dialer serve ARGS` and waits for its `listening on` line.
    fn start(args: &[&str], dir: &std::path::Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialer"))
            .args(args)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env("DIALER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("serve.log")).unwrap(),
            ))
            .spawn()
            .expect("dialer serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Serve {
            child,
            base: String::new(),
            lines,
            seen: Vec::new(),
        };
        let mut seen = Vec::new();
        loop {
            match serve.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        serve.base = url.trim().to_owned();
                        break;
                    }
                    seen.push(line);
                }
                Err(_) => panic!(
                    "no `listening on` line; stdout: {seen:?}\nstderr: {}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
                ),
            }
        }
        serve.seen = seen;
        serve
    }

    /// Sends SIGTERM and returns the exit status and the rest of stdout.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
            rest.push(line);
        }
        let status = self.child.wait().unwrap();
        (status, rest)
    }
}

/// Runs `dialer ARGS` in `dir` with `input` on stdin; its stdout, or the test fails with its
/// stderr.
fn dialer(args: &[&str], dir: &std::path::Path, input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dialer runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dialer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The first admin as a user makes it (`dialer user add --role admin`, the password on stdin)
/// and a client sending that admin's token (`dialer token add`).
fn admin_client(database: &[&str], dir: &std::path::Path) -> reqwest::Client {
    let mut add = database.to_vec();
    add.extend(["user", "add", "--role", "admin", "root", "--password-stdin"]);
    let said = dialer(&add, dir, "root-password-1\n");
    assert!(said.contains("user root created (admin"), "{said}");
    let mut token = database.to_vec();
    token.extend(["token", "add", "--user", "root", "--name", "tests"]);
    let secret = dialer(&token, dir, "");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", secret.trim()).parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("serve answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_from_a_config_file_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let campaigns = dir.path().join("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    let trunk = format!("127.0.0.1:{}", testkit::free_udp_port());
    std::fs::write(
        campaigns.join("served.toml"),
        campaign_toml("served", trunk.parse().unwrap()),
    )
    .unwrap();
    std::fs::write(campaigns.join("broken.toml"), "name = \"broken\"\n").unwrap();
    testkit::audio::write_message(&dir.path().join("abandon.wav"), 1.0);
    let config = format!(
        r#"
listen = "127.0.0.1:0"
database_url = "sqlite://{db}?mode=rwc"
node_id = "served-node"
sip_udp = ["127.0.0.1:0"]
rtp_ports = "0-0"
media_threads = 1
media_io = "epoll"
media_priority = "normal"
prompts_dir = "."
campaigns_dir = "campaigns"
shutdown_grace = "2s"
"#,
        db = dir.path().join("serve.db").display()
    );
    std::fs::write(dir.path().join("dialer.toml"), config).unwrap();

    let serve = Serve::start(&["serve", "--config", "dialer.toml"], dir.path());
    // No user yet: serve says how to make one, and the API refuses everything but health.
    assert!(
        serve
            .seen
            .iter()
            .any(|l| l.contains("dialer user add --role admin")),
        "{:?}",
        serve.seen
    );
    let anonymous = reqwest::Client::new();
    let (status, _) = get(&anonymous, &format!("{}/api/v1/campaigns", serve.base)).await;
    assert_eq!(status, 401);
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("serve.db").display()
    );
    let client = admin_client(&["--database-url", &db], dir.path());
    let (status, metrics) = get(&client, &format!("{}/metrics", serve.base)).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("dialer_abandon_rate{campaign=\"served\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("dialer_sip_events_total"), "{metrics}");
    assert!(
        metrics.contains("dialer_media_receive_loop_realtime 0"),
        "{metrics}"
    );
    let (status, doc) = get(&client, &format!("{}/api-docs/openapi.json", serve.base)).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["paths"]["/api/v1/campaigns"]["post"].is_object());
    let (status, _) = get(&anonymous, &format!("{}/swagger-ui/", serve.base)).await;
    assert_eq!(status, 200);
    // The campaigns directory was applied (the broken file reported and skipped); the node id
    // came from the file.
    let (status, health) = get(&client, &format!("{}/healthz", serve.base)).await;
    assert_eq!(status, 200);
    assert!(health.contains("served-node"), "{health}");
    let (_, list) = get(&client, &format!("{}/api/v1/campaigns", serve.base)).await;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["served"]);
    assert!(
        serve.seen.iter().any(|l| l.contains("campaign served")),
        "{:?}",
        serve.seen
    );
    // Running campaigns go on after a restart: start it, then stop the process.
    let response = client
        .post(format!("{}/api/v1/campaigns/served/start", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (status, rest) = serve.terminate();
    assert!(status.success(), "{status:?} {rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("stopped:")), "{rest:?}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("broken.toml"),
        "the refused file is reported: {log}"
    );

    // Flags win over the file; the campaign kept its status across the restart.
    let serve = Serve::start(
        &[
            "serve",
            "--config",
            "dialer.toml",
            "--node-id",
            "flagged",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let (_, health) = get(&client, &format!("{}/healthz", serve.base)).await;
    assert!(health.contains("flagged"), "{health}");
    let (_, one) = get(&client, &format!("{}/api/v1/campaigns/served", serve.base)).await;
    assert!(one.contains("\"status\":\"running\""), "{one}");
    let (status, _) = serve.terminate();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_by_url() {
    let Some(pg) = testkit::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The migrations run as the first admin is made, before serve ever starts.
    let client = admin_client(&["--database-url", pg.url()], dir.path());
    let serve = Serve::start(
        &[
            "--database-url",
            pg.url(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sip",
            "127.0.0.1:0",
            "--rtp-ports",
            "0-0",
        ],
        dir.path(),
    );
    assert!(
        !serve.seen.iter().any(|l| l.contains("no user yet")),
        "{:?}",
        serve.seen
    );
    let (status, metrics) = get(&client, &format!("{}/metrics", serve.base)).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("dialer_calls_in_flight 0"), "{metrics}");
    let (status, agents) = get(&client, &format!("{}/api/v1/agents", serve.base)).await;
    assert_eq!((status, agents.as_str()), (200, "[]"));
    let (status, rest) = serve.terminate();
    assert!(status.success(), "{rest:?}");
    // The migrations ran on the fresh database.
    let store = store::Store::connect(pg.url()).await.unwrap();
    assert!(store.campaigns().await.unwrap().is_empty());
}

/// The challenge `serve` sends to a phone's REGISTER: its `WWW-Authenticate` headers' algorithms
/// in order.
async fn challenge_algorithms(serve: &Serve) -> Vec<String> {
    let line = serve
        .seen
        .iter()
        .find(|l| l.starts_with("dialer serve:"))
        .expect("the start line");
    let sip: std::net::SocketAddr = line
        .split("SIP udp ")
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no SIP address in {line}"));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-digest-1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{sip}>;tag=1\r\nTo: <sip:alice@{sip}>\r\n\
         Call-ID: digest-order-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{me}>\r\n\
         Expires: 60\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(register.as_bytes(), sip).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .expect("an answer to REGISTER")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("SIP/2.0 401"), "{text}");
    text.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .map(|l| {
            let lower = l.to_ascii_lowercase();
            let at = lower.find("algorithm=").expect("an algorithm") + "algorithm=".len();
            l[at..]
                .split([',', ' '])
                .next()
                .unwrap()
                .trim_matches('"')
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_are_challenged_with_md5_alone_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("serve.db").display()
    );
    let base = [
        "serve",
        "--database-url",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
        "--rtp-ports",
        "0-0",
    ];
    // MD5-only phones (baresip, sipp, many hardware phones) give up on a challenge that names
    // an algorithm they do not know: the default offers MD5 alone.
    let serve = Serve::start(&base, dir.path());
    assert_eq!(challenge_algorithms(&serve).await, ["MD5"]);
    serve.terminate();

    // Offered algorithms come preferred first (RFC 8760), from a flag ...
    let mut args = base.to_vec();
    args.extend(["--digest-algorithms", "SHA-256,MD5"]);
    let serve = Serve::start(&args, dir.path());
    assert_eq!(challenge_algorithms(&serve).await, ["SHA-256", "MD5"]);
    serve.terminate();

    // ... or the config file; a bad token is refused with the setting named.
    std::fs::write(
        dir.path().join("digest.toml"),
        "digest_algorithms = [\"MD5\", \"SHA-512\"]\n",
    )
    .unwrap();
    let mut args = base.to_vec();
    args.extend(["--config", "digest.toml"]);
    let out = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(&args)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("digest_algorithms") && stderr.contains("SHA-512"),
        "{stderr}"
    );
}

/// `curl ARGS URL`: the exit code and stdout.
fn curl(args: &[&str], url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_https_and_refuses_plain_http_beyond_loopback() {
    if testkit::program("curl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("serve.db").display()
    );
    let ca = testkit::tls::TestCa::new("dialer test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (cert, key) = ca
        .leaf(&["localhost", "127.0.0.1"])
        .write(dir.path(), "api");
    let base = [
        "serve",
        "--database-url",
        &db,
        "--sip",
        "127.0.0.1:0",
        "--rtp-ports",
        "0-0",
    ];

    // HTTPS with the certificate: a client trusting the test CA gets answers, one that does
    // not is refused by its TLS check, and plain HTTP gets no answer.
    let mut args = base.to_vec();
    args.extend([
        "--listen",
        "127.0.0.1:0",
        "--https-cert",
        cert.to_str().unwrap(),
        "--https-key",
        key.to_str().unwrap(),
    ]);
    let serve = Serve::start(&args, dir.path());
    assert!(
        serve.base.starts_with("https://127.0.0.1:"),
        "{}",
        serve.base
    );
    let cacert = ca_file.to_str().unwrap();
    let (code, health) = curl(&["--cacert", cacert], &format!("{}/healthz", serve.base));
    assert_eq!(code, 0, "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let localhost = serve.base.replace("127.0.0.1", "localhost");
    let (code, campaigns) = curl(
        &["--cacert", cacert],
        &format!("{localhost}/api/v1/campaigns"),
    );
    assert_eq!(code, 0, "{campaigns}");
    let (code, refused) = curl(&[], &format!("{}/healthz", serve.base));
    assert_eq!(code, 60, "an untrusted certificate is refused: {refused}");
    let plain = serve.base.replace("https://", "http://");
    let (code, answer) = curl(&[], &format!("{plain}/healthz"));
    assert_ne!(code, 0, "plain HTTP on the HTTPS port: {answer}");
    assert!(
        serve.seen.iter().any(|l| l.contains("API https://")),
        "{:?}",
        serve.seen
    );
    serve.terminate();

    // Plain HTTP on an address beyond loopback is refused at start with the reason ...
    let mut args = base.to_vec();
    args.extend(["--listen", "0.0.0.0:0"]);
    let out = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(&args)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve the API over plain HTTP on 0.0.0.0:0")
            && stderr.contains("--https-cert")
            && stderr.contains("--insecure-http"),
        "{stderr}"
    );
    // ... unless asked for explicitly.
    args.push("--insecure-http");
    let serve = Serve::start(&args, dir.path());
    let port = serve.base.rsplit(':').next().unwrap().to_owned();
    let (code, health) = curl(&[], &format!("http://127.0.0.1:{port}/healthz"));
    assert_eq!(code, 0, "{health}");
    serve.terminate();
}
