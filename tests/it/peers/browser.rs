//! A real browser: Debian's Chromium, driven by `tests/peers/browser/drive.mjs` over the npm
//! packages `playwright-core` (the browser automation) and `axe-core` (the accessibility rules),
//! pinned by the committed `package-lock.json` and installed like the OpenID provider peer
//! ([`super::npm`]).
//!
//! [`Chromium::start`] runs one browser with one context (JavaScript on or off) and talks to the
//! script in JSON lines (its header documents every command): the test says where to go, what
//! to type and what to click, and gets back what the browser saw (URL, status, HTML, text, the
//! navigations on the way, axe's findings), to assert on here. Without Chromium every test that
//! needs it fails saying what to install; so does a missing Node.js or npm.
//!
//! Screenshots go under the cargo target dir, `target/test-artifacts/pages/` ([`artifacts`]),
//! for a person to look at; they are kept after the run.

#![allow(dead_code)]

use serde::Deserialize;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::npm::{Installed, NpmPeer};

const PEER: NpmPeer = NpmPeer {
    folder: "browser",
    title: "the browser tests' driver",
    script: "drive.mjs",
};

/// How long one command may take (a page load with its redirects, or screenshots and two axe
/// runs) before the test fails instead of hanging.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// What someone without Chromium is told.
pub const CHROMIUM_HINT: &str = "the browser tests need Chromium: install the Debian package \
     `chromium` (apt-get install -y chromium) so that `chromium` is on PATH, then run the tests \
     again";

/// The driver, installed on first use.
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
    match INSTALLED.get_or_init(|| PEER.install()) {
        Ok(installed) => installed,
        Err(why) => panic!("{why}"),
    }
}

/// `chromium` in the folders of `path` (a `PATH` value) that runs (`--version`).
pub fn find_chromium(path: &OsStr) -> Result<PathBuf, String> {
    let found = std::env::split_paths(path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{CHROMIUM_HINT} (no `chromium` on PATH)"))?;
    let out = Command::new(&found)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{CHROMIUM_HINT} ({} cannot be run: {e})", found.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{CHROMIUM_HINT} (`{} --version` exited with {})",
            found.display(),
            out.status
        ));
    }
    Ok(found)
}

fn chromium() -> &'static Path {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| find_chromium(&std::env::var_os("PATH").unwrap_or_default()));
    match found {
        Ok(p) => p,
        Err(why) => panic!("{why}"),
    }
}

/// `target/test-artifacts/pages/<sub>`: beside the cargo target dir's `tmp`.
pub fn artifacts(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target dir")
        .join("test-artifacts/pages")
        .join(sub)
}

/// What the browser shows.
#[derive(Debug, Deserialize)]
pub struct Shown {
    pub url: String,
    /// The status of the main frame's last response (after redirects: the page's own).
    pub status: Option<u16>,
    pub title: String,
    pub html: String,
    /// The body's visible text.
    pub text: String,
    /// Every main-frame request since the last `goto` or `click` (redirects included).
    #[serde(default)]
    pub trail: Vec<String>,
}

/// One axe-core finding.
#[derive(Debug, Deserialize, Clone)]
pub struct Violation {
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    pub targets: Vec<String>,
    pub width: u32,
}

impl Violation {
    pub fn grave(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

#[derive(Debug, Deserialize)]
pub struct Snap {
    pub files: Vec<PathBuf>,
    pub violations: Vec<Violation>,
}

/// One Chromium with one browsing context.
pub struct Chromium {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    pub javascript: bool,
    pub version: String,
}

impl Chromium {
    /// Starts the browser (JavaScript on or off); screenshots go to `artifacts`.
    pub fn start(javascript: bool, artifacts: &Path) -> Chromium {
        let chromium = chromium();
        let installed = installed();
        let mut child = Command::new("node")
            .arg(&installed.script)
            .current_dir(&installed.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}",
                    PEER.install_hint(&format!("`node`, which cannot be started ({e})"))
                )
            });
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = collected.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut browser = Chromium {
            child,
            stdin,
            lines,
            stderr,
            javascript,
            version: String::new(),
        };
        let hello = browser.call(json!({
            "chromium": chromium,
            "javascript": javascript,
            "artifacts": artifacts,
        }));
        browser.version = hello["version"].as_str().unwrap_or_default().to_string();
        browser
    }

    /// Sends one line and reads its answer; a refusal, a dead driver or a timeout fails the
    /// test with the driver's stderr.
    fn call(&mut self, command: Value) -> Value {
        let line = format!("{command}\n");
        if let Err(e) = self.stdin.write_all(line.as_bytes()) {
            panic!(
                "the browser driver is gone ({e}); its stderr:\n{}",
                self.stderr()
            );
        }
        let answer = match self.lines.recv_timeout(COMMAND_TIMEOUT) {
            Ok(a) => a,
            Err(RecvTimeoutError::Timeout) => panic!(
                "the browser did not answer {command} within {COMMAND_TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "the browser driver exited while doing {command}; its stderr:\n{}",
                self.stderr()
            ),
        };
        let v: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("the browser driver said {answer:?} ({e})"));
        if v["ok"] != true {
            panic!(
                "the browser refused {command}: {}\nstderr:\n{}",
                v["error"],
                self.stderr()
            );
        }
        v
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn shown(v: Value) -> Shown {
        serde_json::from_value(v).expect("page state")
    }

    /// Opens `url` and waits until it (after redirects) has loaded.
    pub fn goto(&mut self, url: &str) -> Shown {
        Self::shown(self.call(json!({ "cmd": "goto", "url": url })))
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        self.call(json!({ "cmd": "fill", "selector": selector, "value": value }));
    }

    /// Clicks what navigates (a submit button, a link) and waits for the page it leads to;
    /// returns every main-frame request on the way (redirects included).
    pub fn click(&mut self, selector: &str) -> Vec<String> {
        let v = self.call(json!({ "cmd": "click", "selector": selector }));
        serde_json::from_value(v["trail"].clone()).unwrap_or_default()
    }

    /// Clicks what does not navigate (a script's button).
    pub fn click_here(&mut self, selector: &str) {
        self.call(json!({ "cmd": "click", "selector": selector, "navigates": false }));
    }

    pub fn state(&mut self) -> Shown {
        Self::shown(self.call(json!({ "cmd": "state" })))
    }

    pub fn visible(&mut self, selector: &str) -> bool {
        self.call(json!({ "cmd": "visible", "selector": selector }))["visible"] == true
    }

    /// Screenshots at 1280 and 390 px and axe's findings.
    pub fn snap(&mut self, name: &str) -> Snap {
        serde_json::from_value(self.call(json!({ "cmd": "snap", "name": name }))).expect("snap")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"{\"cmd\":\"close\"}\n");
        let _ = self.lines.recv_timeout(Duration::from_secs(10));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
