//! A small W3C WebDriver client for the browser tests: Debian's chromedriver driving
//! Debian's Chromium, headless, with no network beyond loopback.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A Chromium session, ended (and chromedriver stopped, by its PID) on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` × `height`.
    pub fn start(width: u32, height: u32) -> Result<Self> {
        snoopy_testkit::require_tool("chromedriver")?;
        snoopy_testkit::require_tool("chromium")?;
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian package chromium-driver)")?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir()?;
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .request("GET", "/status", None)
                .is_ok_and(|v| v["ready"] == true);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The flags that keep Chromium off the network (this machine has none beyond
        // loopback) and runnable as root.
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser.request(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
            }}})),
        )?;
        browser.session = created["sessionId"]
            .as_str()
            .with_context(|| format!("no session id in {created}"))?
            .to_string();
        Ok(browser)
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call()?,
            ("DELETE", _) => self.agent.delete(&url).call()?,
            (_, Some(body)) => self.agent.post(&url).send_json(body)?,
            (_, None) => self.agent.post(&url).send_json(json!({}))?,
        };
        let status = response.status();
        let value: Value = response.body_mut().read_json()?;
        if !status.is_success() {
            bail!("WebDriver {method} {path}: {status}: {}", value["value"]);
        }
        Ok(value["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads a page.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.request(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        )?;
        Ok(())
    }

    /// Runs `script` (a function body: `return …`) in the page and returns its value.
    pub fn eval<T: DeserializeOwned>(&self, script: &str) -> Result<T> {
        let v = self.request(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )?;
        serde_json::from_value(v.clone()).with_context(|| format!("{script} returned {v}"))
    }

    /// Evaluates `script` until it returns `true`; how long that took.
    pub fn wait_until(&self, script: &str, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            if self.eval::<bool>(script).unwrap_or(false) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!("not true after {timeout:?}: {script}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Presses and releases one key (a WebDriver key code, e.g. `\u{E007}` for Enter) in
    /// the focused element.
    pub fn press(&self, key: &str) -> Result<()> {
        self.request(
            "POST",
            &self.session_path("/actions"),
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
                ]}]}),
            ),
        )?;
        Ok(())
    }

    /// Saves a PNG of the window.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let b64: String = serde_json::from_value(self.request(
            "GET",
            &self.session_path("/screenshot"),
            None,
        )?)?;
        let png = decode_base64(&b64)?;
        std::fs::File::create(path)?.write_all(&png)?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &self.session_path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (what WebDriver screenshots are), without a crate for twenty lines.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("not base64: {:?}", c as char),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
