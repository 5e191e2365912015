//! What the engine's end-to-end tests and its load bench share: the peers in sipp (`peers`), an
//! RTP witness that sees what reaches the carrier's media socket, an engine on loopback, its
//! store, agents and contacts.

#![allow(dead_code)]

mod peers;

pub use peers::*;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{Engine, EngineConfig, InProcess};

/// One telephone-event packet: (event, end bit, RTP timestamp).
type EventPacket = (u8, bool, u32);

/// Counts the RTP packets arriving at a UDP port of 127.0.0.1, by source port, as the kernel
/// delivers them (a raw socket: needs CAP_NET_RAW). It sees what reached the carrier's media
/// socket whatever sipp does with it.
#[derive(Clone)]
pub struct RtpWitness {
    counts: Arc<Mutex<HashMap<u16, u64>>>,
    /// RFC 4733 telephone-events (payload type 101) by source port: (event, end bit, RTP
    /// timestamp) of each packet.
    events: Arc<Mutex<HashMap<u16, Vec<EventPacket>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RtpWitness {
    /// Starts watching `port` (0: every port); `None` (with a loud notice) without the
    /// privilege.
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
        let events = Arc::new(Mutex::new(HashMap::new()));
        let (c, s, e) = (counts.clone(), stop.clone(), events.clone());
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
                if (port == 0 || dst == port) && rtp[0] >> 6 == 2 && !(192..=223).contains(&rtp[1])
                {
                    *c.lock().unwrap().entry(src).or_default() += 1;
                    if rtp[1] & 0x7f == 101 && rtp.len() >= 16 {
                        let ts = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
                        e.lock().unwrap().entry(src).or_insert_with(Vec::new).push((
                            rtp[12],
                            rtp[13] & 0x80 != 0,
                            ts,
                        ));
                    }
                }
            }
        });
        Some(RtpWitness {
            counts,
            events,
            stop,
        })
    }

    /// The DTMF keys sent from `source_port` as RFC 4733 events (payload type 101): one per
    /// event timestamp that ended (its end packets are sent three times).
    pub fn keys_from(&self, source_port: u16) -> String {
        let events = self.events.lock().unwrap();
        let mut keys = String::new();
        let mut done = std::collections::HashSet::new();
        for &(event, end, ts) in events.get(&source_port).map(Vec::as_slice).unwrap_or(&[]) {
            if end && done.insert(ts) {
                keys.push(match event {
                    0..=9 => char::from(b'0' + event),
                    10 => '*',
                    11 => '#',
                    12..=15 => char::from(b'A' + event - 12),
                    _ => '?',
                });
            }
        }
        keys
    }

    /// Telephone-event packets seen from `source_port`.
    pub fn event_packets_from(&self, source_port: u16) -> usize {
        self.events
            .lock()
            .unwrap()
            .get(&source_port)
            .map_or(0, Vec::len)
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
    testkit::audio::write_message(&dir.join("abandon.wav"), 1.5);
    testkit::audio::write_message(&dir.join("voicemail.wav"), 2.0);
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
    let store = store::Store::connect(&testkit::sqlite_url(&dir.join("dialer.db")))
        .await
        .unwrap();
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
                digest_algorithms: None,
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
