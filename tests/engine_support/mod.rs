//! The engine's end-to-end tests' peers: sipp as the carrier and as agents' phones, an RTP
//! witness that sees what reaches the carrier's media socket, the campaign, the contacts and
//! the recorded messages.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{Engine, EngineConfig, InProcess};
use media::Codec;
use media::detect::{Channel, read_wav};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the carrier does with a number ending in this digit (see `tests/sipp/engine_carrier.xml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    Live = 1,
    Busy = 2,
    NoAnswer = 3,
    Failure = 4,
    Machine = 5,
    NotFound = 6,
    Sit = 7,
    Declined = 8,
}

impl Fate {
    pub fn of(number: &str) -> Fate {
        match number.chars().last() {
            Some('1') => Fate::Live,
            Some('2') => Fate::Busy,
            Some('3') => Fate::NoAnswer,
            Some('5') => Fate::Machine,
            Some('6') => Fate::NotFound,
            Some('7') => Fate::Sit,
            Some('8') => Fate::Declined,
            _ => Fate::Failure,
        }
    }
}

/// A child process killed on drop, with its working directory.
pub struct Sipp {
    child: Mutex<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub media_port: u16,
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn ulaw(samples: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; samples.len()];
    Codec::Pcmu.encode(samples, &mut out);
    out
}

fn clip(name: &str) -> Vec<i16> {
    read_wav(
        &repo().join("crates/media/corpus/clips").join(name),
        Channel::Mix,
    )
    .unwrap_or_else(|err| panic!("corpus clip {name}: {err}"))
}

fn tone(freq: f64, ms: u32, out: &mut Vec<i16>) {
    let n = ms as usize * 8;
    let start = out.len();
    out.extend((0..n).map(|i| {
        ((start + i) as f64 * freq * 2.0 * std::f64::consts::PI / 8000.0).sin() as f32 * 8000.0
    } as i16));
}

/// A vacant-code special information tone (985.2 Hz 380 ms, 1370.6 Hz 274 ms, 1776.7 Hz 380
/// ms), then silence: what a network plays before "the number you have dialled...".
pub fn sit_tone() -> Vec<i16> {
    let mut s = vec![0i16; 1600];
    tone(985.2, 380, &mut s);
    tone(1370.6, 274, &mut s);
    tone(1776.7, 380, &mut s);
    s.extend(vec![0i16; 8000]);
    s
}

impl Sipp {
    fn spawn(args: &[String], dir: tempfile::TempDir, port: u16, media_port: u16) -> Option<Sipp> {
        let sipp = testkit::program("sipp")?;
        let screen = std::fs::File::create(dir.path().join("screen.log")).unwrap();
        let child = Command::new(sipp)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(screen.try_clone().unwrap())
            .stderr(screen)
            .spawn()
            .expect("start sipp");
        Some(Sipp {
            child: Mutex::new(child),
            dir,
            port,
            media_port,
        })
    }

    /// sipp as the carrier: answers every INVITE by the fate of the dialled number.
    pub fn carrier() -> Option<Sipp> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("human.ulaw"),
            ulaw(&clip("human_hello_001.wav")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("machine.ulaw"),
            ulaw(&clip("machine_long_greeting_131.wav")),
        )
        .unwrap();
        std::fs::write(dir.path().join("sit.ulaw"), ulaw(&sit_tone())).unwrap();
        let port = testkit::free_udp_port();
        let media_port = testkit::free_udp_port();
        let args: Vec<String> = [
            "-sf",
            &repo()
                .join("tests/sipp/engine_carrier.xml")
                .display()
                .to_string(),
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-mp",
            &media_port.to_string(),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            "messages.log",
            "-trace_err",
            "-error_file",
            "errors.log",
            "-timeout",
            "900s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Sipp::spawn(&args, dir, port, media_port)
    }

    /// sipp as the agents' phones, one call each: registers and calls `campaign` at `engine`.
    pub fn agents(engine: SocketAddr, agents: &[(String, String)], campaign: &str) -> Option<Sipp> {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("SEQUENTIAL\n");
        for (user, password) in agents {
            // sipp expands a keyword held in a field, not fields inside the keyword.
            csv.push_str(&format!(
                "{user};{password};{campaign};[authentication username={user} password={password}]\n"
            ));
        }
        std::fs::write(dir.path().join("agents.csv"), csv).unwrap();
        let port = testkit::free_udp_port();
        let media_port = testkit::free_udp_port();
        let args: Vec<String> = [
            engine.to_string().as_str(),
            "-sf",
            &repo()
                .join("tests/sipp/engine_agent.xml")
                .display()
                .to_string(),
            "-inf",
            "agents.csv",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-mp",
            &media_port.to_string(),
            "-m",
            &agents.len().to_string(),
            "-l",
            &agents.len().to_string(),
            "-r",
            "20",
            "-nostdin",
            "-trace_err",
            "-error_file",
            "errors.log",
            "-timeout",
            "900s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Sipp::spawn(&args, dir, port, media_port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// sipp's screen and error log, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- screen ---\n{}\n--- errors ---\n{}",
            tail(&self.file("screen.log"), 3000),
            tail(&self.file("errors.log"), 3000)
        )
    }

    /// Whether sipp is still running.
    pub fn running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(child.try_wait(), Ok(None))
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    &s[start..]
}

/// One INVITE the carrier received.
#[derive(Debug, Clone)]
pub struct CarrierCall {
    pub number: String,
    pub call_id: String,
    /// Where the dialer's leg receives RTP (its SDP offer): the source of what it sends.
    pub media_port: u16,
}

/// The INVITEs in sipp's message log (retransmissions counted once).
pub fn carrier_calls(log: &str) -> Vec<CarrierCall> {
    let mut seen = std::collections::HashSet::new();
    let mut calls = Vec::new();
    for block in log.split("message received") {
        let Some(start) = block.find("INVITE sip:") else {
            continue;
        };
        let msg = &block[start..];
        let first = msg.lines().next().unwrap_or_default();
        let number = first
            .trim_start_matches("INVITE sip:")
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        let header = |name: &str| {
            msg.lines()
                .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
                .map(|l| l[name.len() + 1..].trim().to_owned())
                .unwrap_or_default()
        };
        let call_id = header("call-id");
        let media_port = msg
            .lines()
            .find_map(|l| l.trim().strip_prefix("m=audio "))
            .and_then(|m| m.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if seen.insert(call_id.clone()) {
            calls.push(CarrierCall {
                number,
                call_id,
                media_port,
            });
        }
    }
    calls
}

/// Counts the RTP packets arriving at a UDP port of 127.0.0.1, by source port, as the kernel
/// delivers them (a raw socket: needs CAP_NET_RAW). It sees what reached the carrier's media
/// socket whatever sipp does with it.
#[derive(Clone)]
pub struct RtpWitness {
    counts: Arc<Mutex<HashMap<u16, u64>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RtpWitness {
    /// Starts watching `port`; `None` (with a loud notice) without the privilege.
    pub fn watch(port: u16) -> Option<RtpWitness> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)) {
            Ok(s) => s,
            Err(err) => {
                testkit::missing("raw socket (CAP_NET_RAW)", &err.to_string());
                return None;
            }
        };
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // It sees every UDP datagram of the machine: a deep buffer, so a loaded machine's
        // bursts are not dropped before this thread reads them.
        let _ = socket.set_recv_buffer_size(4 << 20);
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 2048];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(n) = (&socket).read(&mut buf) else {
                    continue;
                };
                let data = &buf[..n];
                let ihl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
                if data.len() < ihl + 8 + 12 {
                    continue;
                }
                let udp = &data[ihl..];
                let src = u16::from_be_bytes([udp[0], udp[1]]);
                let dst = u16::from_be_bytes([udp[2], udp[3]]);
                let rtp = &udp[8..];
                // RTP version 2, audio payload types (not RTCP).
                if dst == port && rtp[0] >> 6 == 2 && !(192..=223).contains(&rtp[1]) {
                    *c.lock().unwrap().entry(src).or_default() += 1;
                }
            }
        });
        Some(RtpWitness { counts, stop })
    }

    /// Packets seen from `source_port`.
    pub fn packets_from(&self, source_port: u16) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(&source_port)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for RtpWitness {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A WAV file of `secs` seconds of a 600 Hz tone at `path` (a recorded message).
pub fn write_message(path: &Path, secs: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut samples = Vec::new();
    tone(600.0, (secs * 1000.0) as u32, &mut samples);
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// Logs to the test's output with `RUST_LOG` (e.g. `RUST_LOG=engine=debug,sip=debug`).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// An engine on loopback (SIP on a free UDP port, RTP ports from the OS), messages in `dir`.
pub async fn engine(store: store::Store, dir: &Path, node: &str) -> Engine {
    trace();
    write_message(&dir.join("abandon.wav"), 1.5);
    write_message(&dir.join("voicemail.wav"), 2.0);
    let mut config = EngineConfig::new(node);
    config.sip_udp = vec!["127.0.0.1:0".parse().unwrap()];
    config.rtp_ports = 0..=0;
    config.prompts_dir = dir.to_path_buf();
    config.recordings_dir = dir.join("recordings");
    Engine::start(config, store, InProcess::shared())
        .await
        .expect("engine starts")
}

/// A fresh SQLite store in `dir`.
pub async fn sqlite(dir: &Path) -> store::Store {
    let url = format!("sqlite://{}?mode=rwc", dir.join("dialer.db").display());
    let store = store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Creates `n` agents of `campaign` (`{campaign}-agent{i}`); returns their SIP credentials.
pub async fn create_agents(engine: &Engine, campaign: &str, n: usize) -> Vec<(String, String)> {
    let mut creds = Vec::new();
    for i in 0..n {
        let username = format!("{campaign}-agent{i}");
        let password = format!("secret-{i}-pass");
        engine
            .create_agent(&engine::AgentSpec {
                username: username.clone(),
                display_name: format!("Agent {i}"),
                password: password.clone(),
                campaigns: vec![campaign.to_owned()],
            })
            .await
            .unwrap();
        creds.push((username, password));
    }
    creds
}

/// Imports a call list (CSV text) into a campaign with the default options.
pub async fn import(store: &store::Store, campaign_id: i64, csv: String) -> store::ImportSummary {
    store
        .import_csv(
            campaign_id,
            std::io::Cursor::new(csv),
            &store::ImportOptions::default(),
        )
        .await
        .unwrap()
}

/// Waits until `check` is true, polling every 200 ms, for at most `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
