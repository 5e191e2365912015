//! A second SIP stack nobody here wrote as an agent's phone: pyVoIP 2.0.0a4 (pure Python SIP
//! and RTP, `pip install pyVoIP==2.0.0a4`), driven by `tests/phones/pyvoip_agent.py`, against the
//! engine with the default settings.
//!
//! - It registers and logs in by calling the dialer (MD5 digest with `qop=auth`).
//! - It takes a bridged call from a sipp carrier: it hears the callee's words (what pyVoIP
//!   decoded matches the clip the carrier sent) and its microphone reaches the call (the
//!   dialer's stereo recording holds its tone on the agent's channel).
//! - It logs out by hanging up.
//!
//! pyVoIP 2.0.0a4 gets three things wrong that the script mends on the phone's side (a new Via
//! branch for the INVITE answering the challenge; a BYE with the dialer's To tag and the next
//! CSeq): `docs/agent-phones.md`, "pyVoIP". The Python that runs it is `python3`, or the one
//! named by `DIALER_TEST_PYVOIP_PYTHON`.

#[path = "../crates/api/tests/support/mod.rs"]
mod api_support;

mod phones;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;
use testkit::wait_for;

/// The pyVoIP release the script is written for.
const PYVOIP_VERSION: &str = "2.0.0a4";

/// A Python that imports pyVoIP 2.0.0a4, or `None` (skipped, or a failure under CI).
fn python() -> Option<PathBuf> {
    let python = match std::env::var_os("DIALER_TEST_PYVOIP_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => testkit::program("python3")?,
    };
    let version = Command::new(&python)
        .args(["-c", "import pyVoIP; print(pyVoIP.__version__)"])
        .output();
    match version {
        Ok(out) if out.status.success() => {
            let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if found != PYVOIP_VERSION {
                testkit::missing(
                    "pyVoIP",
                    &format!(
                        "{} has pyVoIP {found}, not {PYVOIP_VERSION}",
                        python.display()
                    ),
                );
                return None;
            }
            Some(python)
        }
        Ok(out) => {
            testkit::missing(
                "pyVoIP",
                &format!(
                    "{} cannot import it (pip install pyVoIP=={PYVOIP_VERSION}): {}",
                    python.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            None
        }
        Err(err) => {
            testkit::missing("pyVoIP", &format!("{}: {err}", python.display()));
            None
        }
    }
}

/// The pyVoIP phone, killed on drop.
struct PyVoip {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
}

impl PyVoip {
    /// Starts the script: `user`/`password` at the engine's SIP address `sip`, calling `target`.
    fn start(
        python: &Path,
        dir: &Path,
        sip: SocketAddr,
        user: &str,
        password: &str,
        target: &str,
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let script = testkit::workspace_dir().join("tests/phones/pyvoip_agent.py");
        // pyVoIP picks its RTP port at random from a range: four ports found free together.
        let rtp = testkit::sipp::free_media_base();
        let log = std::fs::File::create(dir.join("phone.log")).unwrap();
        // Unbuffered, so that its log (read while it runs) is up to date.
        let mut child = Command::new(python)
            .arg("-u")
            .arg(&script)
            .args(["--server", &sip.ip().to_string()])
            .args(["--port", &sip.port().to_string()])
            .args(["--user", user, "--password", password, "--target", target])
            .args(["--bind-port", &testkit::free_udp_port().to_string()])
            .args(["--rtp-low", &rtp.to_string()])
            .args(["--rtp-high", &(rtp + 3).to_string()])
            .args(["--mic-hz", &phones::MIC_HZ.to_string()])
            .arg("--heard")
            .arg(dir.join("heard.u8"))
            .arg("--debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take();
        PyVoip {
            child,
            stdin,
            dir: dir.to_path_buf(),
        }
    }

    /// Asks it to hang up.
    fn hang_up(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"hangup\n");
        }
    }

    /// Its log so far (pyVoIP's debug output: every SIP message).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("phone.log")).unwrap_or_default()
    }

    /// What it heard: pyVoIP's decoded audio (8-bit unsigned) as 16-bit samples.
    fn heard(&self) -> Vec<i16> {
        std::fs::read(self.dir.join("heard.u8"))
            .unwrap_or_default()
            .into_iter()
            .map(|b| (i16::from(b) - 128) << 8)
            .collect()
    }

    /// Waits for the script to end by itself.
    async fn exited(&mut self) -> bool {
        wait_for(Duration::from_secs(10), || {
            let done = matches!(self.child.try_wait(), Ok(Some(_)));
            async move { done }
        })
        .await
    }
}

impl Drop for PyVoip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyvoip_logs_in_takes_a_bridged_call_hears_it_speaks_and_logs_out() {
    let Some(python) = python() else {
        return;
    };
    let Some(setup) = phones::bridged("pyagent", "py-secret-1").await else {
        return;
    };
    let (api, agent_id) = (&setup.api, setup.agent);
    let mut phone = PyVoip::start(
        &python,
        &api.dir.path().join("pyvoip"),
        setup.sip,
        "pyagent",
        "py-secret-1",
        "interop",
    );
    phones::expect_state(api, agent_id, "ready", 20, || phone.log()).await;
    // It answered the challenge with MD5 and qop=auth.
    let trace = phone.log();
    assert!(trace.contains("SIP/2.0 401"), "{trace}");
    assert!(trace.contains("qop=auth,cnonce="), "{trace}");

    // The carrier's callee is bridged to the phone, talks, falls silent and hangs up.
    setup.call_until_wrap_up(|| phone.log()).await;
    let phones::Bridged {
        words,
        carrier,
        api,
        ..
    } = setup;

    // Hanging up in wrap-up logs out (pyVoIP sends no RFC 4733 keys).
    phone.hang_up();
    phones::expect_state(&api, agent_id, "logged_out", 20, || phone.log()).await;
    assert!(phone.exited().await, "{}", phone.log());
    let run = carrier.finish_within(Duration::from_secs(5)).await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);

    // It heard the callee's words.
    let heard = phone.heard();
    let (at, similarity) = phones::assert_heard(&heard, &words, &phone.log());
    let (share, frames) = phones::assert_microphone_reached(&api).await;
    eprintln!(
        "pyVoIP: words heard at {:.2} s, similarity {similarity:.3}; microphone tone {:.0}% of \
         {frames} frames",
        at as f64 / 8000.0,
        share * 100.0
    );
    api.stop().await;
}
