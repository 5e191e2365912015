//! sipp as a test peer: the carrier, an agent's phone, a callee, each a child process killed on
//! drop, with its scenario from `crates/testkit/sipp/`.
//!
//! sipp runs in the foreground as a child process (not `-bg`, whose exit code is always 99 and
//! whose bind failures are silent), in a temporary directory of its own that holds the files its
//! scenario reads and the logs it writes. With its message log on, [`SippRun::messages`] turns
//! that log into the wire sequence seen from sipp (`<INVITE` received, `>180` sent), which tests
//! compare exactly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running sipp.
pub struct Sipp {
    child: Mutex<Child>,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    media_port: u16,
}

/// How sipp ended.
pub struct SippRun {
    /// sipp's exit code (0: every call succeeded).
    pub code: Option<i32>,
    /// The wire sequence seen by sipp.
    pub messages: Vec<String>,
    /// sipp's error log and screen, for failure messages.
    pub diagnostics: String,
    /// The whole message log.
    pub log: String,
}

/// The path of a scenario of `crates/testkit/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// One second of a 400 Hz tone in G.711 A-law: what the carrier streams as the callee's voice.
fn write_audio(dir: &Path) {
    let mut samples = Vec::new();
    crate::audio::tone(400.0, 1000, 8000.0, &mut samples);
    let alaw: Vec<u8> = samples.into_iter().map(alaw).collect();
    std::fs::write(dir.join("audio.alaw"), alaw).expect("write audio");
}

/// G.711 A-law encoding (the ITU reference algorithm).
fn alaw(sample: i16) -> u8 {
    let mut value = (sample as i32) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    const SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let Some(segment) = SEGMENT_ENDS.iter().position(|end| value <= *end) else {
        return (0x7F ^ mask) as u8;
    };
    let shift = if segment < 2 { 1 } else { segment as i32 };
    let code = ((segment as i32) << 4) | ((value >> shift) & 0x0F);
    (code ^ mask) as u8
}

fn port_taken(transport: &str, port: u16) -> bool {
    match transport {
        "t1" => std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
        _ => std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
    }
}

/// A base port for sipp's `-mp`: sipp binds four UDP ports from it (audio RTP and RTCP, video
/// RTP and RTCP), so all four must be free, not just the first.
pub fn free_media_base() -> u16 {
    for _ in 0..100 {
        let base = crate::free_udp_port();
        if base > u16::MAX - 4 {
            continue;
        }
        let held: Vec<_> = (base..base + 4)
            .map_while(|port| std::net::UdpSocket::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.len() == 4 {
            return base;
        }
    }
    panic!("no four consecutive free UDP ports on 127.0.0.1")
}

/// How many times sipp is started again when it exits at once (a port taken between our check
/// and its bind by another test running in parallel).
const START_ATTEMPTS: u32 = 5;

/// `args` as owned strings.
pub fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// sipp's arguments for signalling on 127.0.0.1:`port` and media from `media_port`.
pub fn loopback(port: u16, media_port: u16) -> Vec<String> {
    args(&[
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-mp",
        &media_port.to_string(),
    ])
}

impl Sipp {
    /// sipp as the carrier (UAS) with `scenario`, over UDP (`u1`) or TCP (`t1`), exiting after
    /// `calls` calls. `None` when sipp is not installed (outside CI).
    pub fn carrier(scenario: &str, transport: &str, calls: u32, extra: &[&str]) -> Option<Sipp> {
        Sipp::carrier_with(scenario, transport, calls, extra, true, 60)
    }

    /// Like [`carrier`](Self::carrier), for benchmarks: optionally without the message log
    /// (which would slow sipp down), with a global timeout of `timeout_secs`.
    pub fn carrier_with(
        scenario: &str,
        transport: &str,
        calls: u32,
        extra: &[&str],
        trace: bool,
        timeout_secs: u64,
    ) -> Option<Sipp> {
        let program = crate::program("sipp")?;
        let mut attempt = 1;
        loop {
            let port = match transport {
                "t1" => crate::free_tcp_port(),
                _ => crate::free_udp_port(),
            };
            let mut sipp = Sipp::start_carrier(
                &program,
                scenario,
                transport,
                port,
                calls,
                extra,
                trace,
                timeout_secs,
            );
            match sipp.wait_listening(transport, port) {
                Ok(()) => return Some(sipp),
                Err(why) if attempt < START_ATTEMPTS => {
                    eprintln!("sipp ({scenario}) attempt {attempt}: {why}; starting it again");
                    attempt += 1;
                }
                Err(why) => panic!("sipp ({scenario}): {why}"),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_carrier(
        program: &Path,
        scenario_name: &str,
        transport: &str,
        port: u16,
        calls: u32,
        extra: &[&str],
        trace: bool,
        timeout_secs: u64,
    ) -> Sipp {
        let media = free_media_base();
        let dir = tempfile::tempdir().expect("temporary directory");
        write_audio(dir.path());
        let mut args: Vec<String> =
            vec!["-sf".into(), scenario(scenario_name).display().to_string()];
        args.extend(loopback(port, media));
        args.extend([
            "-t".into(),
            transport.into(),
            "-m".into(),
            calls.to_string(),
            "-timeout".into(),
            format!("{timeout_secs}s"),
            "-timeout_error".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Sipp::spawn(program, dir, args, port, media, trace)
    }

    /// sipp as an agent phone (UAC) calling `target`, with `user`/`password`.
    pub fn phone(scenario: &str, target: SocketAddr, user: &str, password: &str) -> Option<Sipp> {
        let program = crate::program("sipp")?;
        let mut attempt = 1;
        loop {
            let port = crate::free_udp_port();
            let mut sipp = Sipp::start_phone(&program, scenario, target, port, user, password);
            // The phone speaks first: once its port is bound it is running its scenario.
            match sipp.wait_listening("u1", port) {
                Ok(()) => return Some(sipp),
                Err(why) if attempt < START_ATTEMPTS => {
                    eprintln!("sipp ({scenario}) attempt {attempt}: {why}; starting it again");
                    attempt += 1;
                }
                Err(why) => panic!("sipp ({scenario}): {why}"),
            }
        }
    }

    fn start_phone(
        program: &Path,
        scenario_name: &str,
        target: SocketAddr,
        port: u16,
        user: &str,
        password: &str,
    ) -> Sipp {
        let media = free_media_base();
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut args: Vec<String> = vec![
            target.to_string(),
            "-sf".into(),
            scenario(scenario_name).display().to_string(),
        ];
        args.extend(loopback(port, media));
        args.extend([
            "-s".into(),
            user.into(),
            "-au".into(),
            user.into(),
            "-ap".into(),
            password.into(),
            "-m".into(),
            "1".into(),
            "-timeout".into(),
            "60s".into(),
            "-timeout_error".into(),
        ]);
        Sipp::spawn(program, dir, args, port, media, true)
    }

    /// sipp with `args` (its scenario, ports and limits), run in `dir`, which holds the files
    /// its scenario reads; `port` and `media_port` are its `-p` and `-mp`. With `trace` it
    /// logs every message to `messages.log`. `None` when sipp is not installed (outside CI).
    pub fn start(
        dir: tempfile::TempDir,
        args: Vec<String>,
        port: u16,
        media_port: u16,
        trace: bool,
    ) -> Option<Sipp> {
        let program = crate::program("sipp")?;
        Some(Sipp::spawn(&program, dir, args, port, media_port, trace))
    }

    fn spawn(
        program: &Path,
        dir: tempfile::TempDir,
        mut args: Vec<String>,
        port: u16,
        media_port: u16,
        trace: bool,
    ) -> Sipp {
        let messages = dir.path().join("messages.log");
        let errors = dir.path().join("errors.log");
        args.extend([
            "-nostdin".into(),
            "-trace_err".into(),
            "-error_file".into(),
            errors.display().to_string(),
        ]);
        if trace {
            args.extend([
                "-trace_msg".into(),
                "-message_file".into(),
                messages.display().to_string(),
            ]);
        }
        let screen = std::fs::File::create(dir.path().join("screen.log")).expect("screen log");
        let child = Command::new(program)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(screen.try_clone().expect("screen log"))
            .stderr(screen)
            .spawn()
            .expect("start sipp");
        Sipp {
            child: Mutex::new(child),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            media_port,
        }
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until sipp holds `port`; an error when it exited because a port it wanted was
    /// taken (to be started again), or is still not listening after 10 s.
    fn wait_listening(&mut self, transport: &str, port: u16) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child().try_wait() {
                let diagnostics = self.diagnostics();
                if diagnostics.contains("Address already in use") {
                    return Err(format!(
                        "exited ({status}), a port was taken: {diagnostics}"
                    ));
                }
                // Any other exit (a phone that already finished, a scenario error) is for
                // the test's own assertions to report.
                return Ok(());
            }
            if port_taken(transport, port) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "not listening on {port} after 10 s: {}",
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where sipp listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// sipp's media port (`-mp`).
    pub fn media_port(&self) -> u16 {
        self.media_port
    }

    /// The trunk URI for this carrier.
    pub fn uri(&self, transport: &str) -> String {
        let suffix = if transport == "t1" {
            ";transport=tcp"
        } else {
            ""
        };
        format!("sip:{}{suffix}", self.addr)
    }

    /// A file of sipp's directory (a log), empty when it is not there.
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Whether sipp is still running.
    pub fn running(&self) -> bool {
        matches!(self.child().try_wait(), Ok(None))
    }

    /// sipp's error log, screen and last messages so far, for failure messages.
    pub fn diagnostics(&self) -> String {
        let screen = self.file("screen.log");
        let tail: String = screen
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        let messages = self.file("messages.log");
        let messages: Vec<&str> = messages.lines().collect();
        let messages = messages[messages.len().saturating_sub(120)..].join("\n");
        format!(
            "errors:\n{}\nscreen (end):\n{tail}\nmessages (end):\n{messages}",
            self.file("errors.log")
        )
    }

    /// Waits for sipp to exit (60 s at most) and reads its logs.
    pub async fn finish(self) -> SippRun {
        self.finish_within(Duration::from_secs(60)).await
    }

    /// Waits for sipp to exit (`limit` at most, then kills it) and reads its logs.
    pub async fn finish_within(self, limit: Duration) -> SippRun {
        let start = Instant::now();
        let code = loop {
            let status = self.child().try_wait();
            match status {
                Ok(Some(status)) => break status.code(),
                Ok(None) if start.elapsed() < limit => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => {
                    let mut child = self.child();
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let log = self.file("messages.log");
        SippRun {
            code,
            messages: wire_sequence(&log),
            diagnostics: self.diagnostics(),
            log,
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `<INVITE`, `>100`... from sipp's message log.
fn wire_sequence(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut direction = None;
    for line in log.lines() {
        if line.contains("message received") {
            direction = Some('<');
            continue;
        }
        if line.contains("message sent") {
            direction = Some('>');
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(dir) = direction.take() {
            let label = match line.strip_prefix("SIP/2.0 ") {
                Some(rest) => rest.split(' ').next().unwrap_or("").to_owned(),
                None => line.split(' ').next().unwrap_or("").to_owned(),
            };
            out.push(format!("{dir}{label}"));
        }
    }
    out
}

impl SippRun {
    /// Asserts sipp succeeded and saw exactly `expected`.
    pub fn assert(&self, expected: &[&str]) {
        let shown: Vec<&String> = self.messages.iter().take(60).collect();
        assert!(
            self.messages == expected,
            "wire sequence seen by sipp differs\nseen:     {shown:?}{}\nexpected: {expected:?}\n{}",
            if self.messages.len() > 60 { " ..." } else { "" },
            self.diagnostics
        );
        assert_eq!(self.code, Some(0), "sipp failed\n{}", self.diagnostics);
    }
}
