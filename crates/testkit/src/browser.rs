//! A real browser for the tests of the pages: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, through `fantoccini`), with a fake microphone that plays a WAV file.
//!
//! ```no_run
//! # async fn t() {
//! use testkit::browser::{Browser, BrowserOptions};
//! let Some(browser) = Browser::start(BrowserOptions::default()).await else { return };
//! browser.goto("http://127.0.0.1:8080/agent").await;
//! let title = browser.eval("return document.title", vec![]).await;
//! browser.screenshot("docs/agent-ready.png").await;
//! browser.close().await;
//! # }
//! ```

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Which browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian's Chromium under chromedriver (a WAV file can be its microphone).
    Chromium,
    /// Firefox ESR under geckodriver (its fake microphone is a tone of its own: `fake_mic` is
    /// not used).
    Firefox,
}

/// How to start the browser.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// Which browser.
    pub kind: Kind,
    /// A WAV file the fake microphone plays in a loop (16-bit PCM; any rate). `None`: a beep.
    pub fake_mic: Option<PathBuf>,
    /// Whether the page's request for the microphone is granted (false: refused, as a user who
    /// clicks "Block").
    pub allow_mic: bool,
    /// Accept the service's self-signed test certificate.
    pub ignore_certificate_errors: bool,
    /// The window's size in CSS pixels (screenshots have this size).
    pub window: (u32, u32),
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            kind: Kind::Chromium,
            fake_mic: None,
            allow_mic: true,
            ignore_certificate_errors: true,
            window: (1280, 860),
        }
    }
}

/// A headless Chromium session; the driver process dies with it.
pub struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `DIALER_CHROMIUM` or Debian's names.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DIALER_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| find_on_path(name))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// Starts the driver on a free port and a headless browser under it. `None` (after a loud
    /// skip notice, or a panic under CI) when the browser or its driver is not installed.
    pub async fn start(options: BrowserOptions) -> Option<Browser> {
        match options.kind {
            Kind::Chromium => Self::chromium(options).await,
            Kind::Firefox => Self::firefox(options).await,
        }
    }

    async fn chromium(options: BrowserOptions) -> Option<Browser> {
        let Some(chrome) = chromium() else {
            crate::missing("chromium", "not found on PATH (apt-get install chromium)");
            return None;
        };
        let Some(driver_bin) = find_on_path("chromedriver") else {
            crate::missing(
                "chromedriver",
                "not found on PATH (apt-get install chromium-driver)",
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("temporary browser profile");
        let port = crate::free_tcp_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut args = vec![
            "--headless=new".to_string(),
            // Tests run as root in containers, where Chromium's sandbox cannot start.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--use-fake-device-for-media-stream".into(),
            // The fake microphone's file is read by the audio service: in the browser's own
            // process it can open any path the test gives.
            "--disable-features=AudioServiceOutOfProcess".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            format!("--window-size={},{}", options.window.0, options.window.1),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if options.allow_mic {
            args.push("--use-fake-ui-for-media-stream".into());
        } else {
            args.push("--deny-permission-prompts".into());
        }
        if let Some(wav) = &options.fake_mic {
            args.push(format!(
                "--use-file-for-fake-audio-capture={}",
                wav.display()
            ));
        }
        if options.ignore_certificate_errors {
            args.push("--ignore-certificate-errors".into());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chrome, "args": args}),
        );
        capabilities.insert("acceptInsecureCerts".into(), json!(true));
        Some(Self::connect(driver, port, capabilities, profile).await)
    }

    async fn firefox(options: BrowserOptions) -> Option<Browser> {
        let Some(firefox) = ["firefox-esr", "firefox"]
            .iter()
            .find_map(|name| find_on_path(name))
        else {
            crate::missing("firefox", "not found on PATH (apt-get install firefox-esr)");
            return None;
        };
        let Some(driver_bin) = find_on_path("geckodriver") else {
            crate::missing(
                "geckodriver",
                "not found on PATH (cargo install geckodriver)",
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("temporary browser profile");
        let port = crate::free_tcp_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            // Each session's Marionette port from the OS, so that tests run in parallel.
            .arg("--marionette-port=0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("geckodriver starts");
        let mut prefs = serde_json::Map::new();
        prefs.insert("media.navigator.streams.fake".into(), json!(true));
        prefs.insert("media.autoplay.default".into(), json!(0));
        prefs.insert("media.autoplay.block-webaudio".into(), json!(false));
        if options.allow_mic {
            prefs.insert("media.navigator.permission.disabled".into(), json!(true));
        } else {
            prefs.insert("permissions.default.microphone".into(), json!(2));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("firefox"));
        capabilities.insert(
            "moz:firefoxOptions".into(),
            json!({
                "binary": firefox,
                "args": ["-headless", format!("--window-size={},{}", options.window.0, options.window.1)],
                "prefs": prefs,
            }),
        );
        capabilities.insert(
            "acceptInsecureCerts".into(),
            json!(options.ignore_certificate_errors),
        );
        Some(Self::connect(driver, port, capabilities, profile).await)
    }

    async fn connect(
        mut driver: Child,
        port: u16,
        capabilities: serde_json::Map<String, Value>,
        profile: tempfile::TempDir,
    ) -> Browser {
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(hyper_util_connector())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = driver.try_wait() {
                        panic!("the browser's driver exited at start ({status}): {err}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("cannot start the browser under its driver: {err}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The WebDriver client, for what the helpers here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens a URL and waits for its load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("cannot open {url}: {err}"));
    }

    /// Runs a script's body (`return ...` gives the value; `arguments[i]` are `args`).
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Runs an async script: the body awaits what it likes and its value is the script's value
    /// (it is wrapped in an async function; `args` are its `arguments`).
    pub async fn eval_async(&self, body: &str, args: Vec<Value>) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];\n\
             const args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);\n\
             (async function() {{ {body} }}).apply(null, args)\n\
               .then(v => done({{ok: v === undefined ? null : v}}), e => done({{err: String(e && e.stack || e)}}));"
        );
        let out = self
            .client
            .execute_async(&script, args)
            .await
            .unwrap_or_else(|err| panic!("async script failed: {err}\n{body}"));
        match out.get("err") {
            Some(err) => panic!("async script threw: {err}\n{body}"),
            None => out.get("ok").cloned().unwrap_or(Value::Null),
        }
    }

    /// Polls `condition` (a JS expression) until it is truthy, returning its value; panics
    /// with `what` after `timeout`.
    pub async fn wait_for(&self, condition: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        let script = format!("try {{ return ({condition}); }} catch (e) {{ return null; }}");
        loop {
            let value = self.eval(&script, vec![]).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let text = self.text("body").await.unwrap_or_default();
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({condition}); the page says:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the first element a CSS selector finds.
    pub async fn text(&self, selector: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(selector)).await.ok()?;
        element.text().await.ok()
    }

    /// Clicks the first element a CSS selector finds.
    pub async fn click(&self, selector: &str) {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|err| panic!("no element {selector}: {err}"))
            .click()
            .await
            .unwrap_or_else(|err| panic!("cannot click {selector}: {err}"));
    }

    /// Types into the first element a CSS selector finds (after clearing it).
    pub async fn fill(&self, selector: &str, text: &str) {
        let element = self
            .client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|err| panic!("no element {selector}: {err}"));
        element
            .clear()
            .await
            .unwrap_or_else(|err| panic!("cannot clear {selector}: {err}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("cannot type into {selector}: {err}"));
    }

    /// Presses and releases a key on the page, as a person's keyboard does (WebDriver
    /// actions: the page's key handlers see real key events wherever the focus is).
    pub async fn press(&self, key: char) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|err| panic!("cannot press {key:?}: {err}"));
    }

    /// Saves a PNG of the window.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|err| panic!("screenshot failed: {err}"));
        if let Some(dir) = path.as_ref().parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path.as_ref(), png)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.as_ref().display()));
    }

    /// Ends the browser session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

fn hyper_util_connector() -> hyper_util::client::legacy::connect::HttpConnector {
    hyper_util::client::legacy::connect::HttpConnector::new()
}
