//! The upstream OpenID provider peer: `tests/peers/oidc/provider.mjs` over the npm package
//! `oidc-provider` (8.x, the last major whose supported runtimes include Node.js 20; 9.x warns
//! "Unsupported runtime" below Node.js 22), pinned by the committed `package-lock.json`.
//!
//! - [`installed`] runs `npm ci` once per machine and lockfile (see [`super::npm`]), into
//!   `$CARGO_TARGET_TMPDIR/peers/oidc-<lockfile hash>/`; afterwards no test needs the
//!   registry. Without Node.js ≥ 20 or npm every test that needs the peer fails with what to
//!   install.
//! - [`OidcPeer::start`] runs the provider on a free loopback port with a [`PeerConfig`] and
//!   waits for its `READY <issuer>` line (a provider that dies first fails the test with its
//!   stderr); dropping the peer kills it.
//! - [`PeerBrowser`] drives the provider's login and consent pages over plain HTTP (its own
//!   cookie jar, no redirect followed by itself) as a chosen account, and hands back the final
//!   redirect to the client's `redirect_uri` ([`AuthResponse`]: `code`, `state`, `iss`, or
//!   `error`).
//! - [`OidcPeer::rotate_keys`]: `POST /__rotate` on the provider, which from then on signs with
//!   a new key (new `kid`) under the same issuer and port, keeping its sessions, codes and
//!   refresh tokens. (A restart on the same port would lose them, and another process could take
//!   the port in between.)

#![allow(dead_code)]

mod client;
pub use client::*;

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::harness::{TempDir, free_port};

use super::npm::{Installed, NpmPeer};

/// The committed peer: package.json, package-lock.json, .npmrc, provider.mjs.
const PEER: NpmPeer = NpmPeer {
    folder: "oidc",
    title: "the OpenID provider peer",
    script: "provider.mjs",
};

fn install_hint(what: &str) -> String {
    PEER.install_hint(what)
}

/// Node.js at `program`, at least version 20.
pub fn check_node(program: &str) -> Result<(), String> {
    PEER.check_node(program)
}

/// `version` (what `program --version` printed) is Node.js 20 or later.
pub fn node_new_enough(program: &str, version: &str) -> Result<(), String> {
    PEER.node_new_enough(program, version)
}

/// The peer, installed on first use (then reused by every test process until the lockfile
/// changes).
pub fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
    match INSTALLED.get_or_init(|| PEER.install()) {
        Ok(installed) => installed,
        Err(why) => panic!("{why}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration (the JSON `provider.mjs` reads; its header documents every key).

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    /// Where the provider posts logout tokens (its ID tokens then carry `sid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

impl PeerClient {
    /// A confidential client (HTTP Basic at the token endpoint) with one redirect URI.
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> PeerClient {
        PeerClient {
            client_id: client_id.to_string(),
            client_secret: Some(client_secret.to_string()),
            redirect_uris: vec![redirect_uri.to_string()],
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            backchannel_logout_uri: None,
        }
    }

    /// The same client, with a back-channel logout URI.
    pub fn backchannel(mut self, uri: &str) -> PeerClient {
        self.backchannel_logout_uri = Some(uri.to_string());
        self
    }
}

/// The claims of an account whose email is verified; add `hd` or any other claim to the object.
pub fn account(sub: &str, email: &str, name: &str) -> Value {
    serde_json::json!({ "sub": sub, "email": email, "email_verified": true, "name": name })
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerConfig {
    pub clients: Vec<PeerClient>,
    /// Login name (what [`PeerBrowser::sign_in`] types) → claims.
    pub accounts: BTreeMap<String, Value>,
    /// RFC 9207 `iss` in authorization responses, and advertised in discovery.
    pub iss_parameter: bool,
    /// A refresh token with every code exchange.
    pub refresh_tokens: bool,
    /// Authorization requests without an S256 `code_challenge` are refused.
    pub pkce_required: bool,
    /// `"RS256"` (default) or `"ES256"`.
    pub signing_alg: String,
    /// Provider events on stderr (shown when a test fails through [`OidcPeer::logs`]).
    pub verbose: bool,
    /// A path after the issuer's origin (`/tenant/a`), as multi-tenant providers have.
    #[serde(skip)]
    pub issuer_path: String,
}

impl PeerConfig {
    /// One client, no accounts yet; `iss` on, PKCE required, no refresh tokens, RS256.
    pub fn new(client: PeerClient) -> PeerConfig {
        PeerConfig {
            clients: vec![client],
            accounts: BTreeMap::new(),
            iss_parameter: true,
            refresh_tokens: false,
            pkce_required: true,
            signing_alg: "RS256".to_string(),
            verbose: false,
            issuer_path: String::new(),
        }
    }

    pub fn account(mut self, login: &str, claims: Value) -> PeerConfig {
        self.accounts.insert(login.to_string(), claims);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The running provider.

pub struct OidcPeer {
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    pub issuer: String,
    pub config: PeerConfig,
    child: Child,
    output: Arc<Mutex<String>>,
    _dir: TempDir,
}

/// What the provider prints when its port is taken (exit code 3).
const PORT_IN_USE: &str = "PORT_IN_USE";

impl OidcPeer {
    /// Starts the provider and waits until it is ready; panics with its output otherwise.
    pub fn start(config: &PeerConfig) -> OidcPeer {
        Self::try_start(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`start`](Self::start), but a provider that refuses its configuration or dies is
    /// an `Err` with its output. A port taken between [`free_port`] and the provider's bind is
    /// tried again on another.
    pub fn try_start(config: &PeerConfig) -> Result<OidcPeer, String> {
        let installed = installed();
        const ATTEMPTS: usize = 5;
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Self::spawn(installed, config)? {
                Some(peer) => return Ok(peer),
                None => last = "port taken".to_string(),
            }
        }
        Err(format!(
            "the OpenID provider found its port taken {ATTEMPTS} times: {last}"
        ))
    }

    /// `Ok(None)` when the port was taken.
    fn spawn(installed: &Installed, config: &PeerConfig) -> Result<Option<OidcPeer>, String> {
        let port = free_port();
        let origin = format!("http://127.0.0.1:{port}");
        let issuer = format!("{origin}{}", config.issuer_path);
        let mut json = serde_json::to_value(config).unwrap();
        json["port"] = port.into();
        json["issuer"] = issuer.clone().into();
        let scratch = TempDir::new();
        let config_path = scratch.path("peer.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        let mut child = Command::new("node")
            .arg(&installed.script)
            .arg(&config_path)
            .current_dir(&installed.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| install_hint(&format!("`node`, which cannot be started ({e})")))?;
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = output.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            }));
        }
        let ready = format!("READY {issuer}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if output.lock().unwrap().lines().any(|l| l == ready) {
                break;
            }
            if let Some(status) = child.try_wait().expect("wait for the provider") {
                for r in readers {
                    let _ = r.join();
                }
                let out = output.lock().unwrap().clone();
                if status.code() == Some(3) && out.contains(PORT_IN_USE) {
                    return Ok(None);
                }
                return Err(format!(
                    "the OpenID provider peer exited ({status}) before it was ready; its output:\n{out}"
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = output.lock().unwrap().clone();
                return Err(format!(
                    "the OpenID provider peer was not ready within 30 s; its output:\n{out}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(OidcPeer {
            port,
            origin,
            issuer,
            config: config.clone(),
            child,
            output,
            _dir: scratch,
        }))
    }

    /// Everything the provider printed (stdout and stderr).
    pub fn logs(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Makes the provider sign with a new key from now on; returns its `kid` and the `kid`s
    /// the JWKS now publishes (the previous ones too when `keep_previous`).
    pub async fn rotate_keys(&self, keep_previous: bool) -> Rotation {
        let r = reqwest::Client::new()
            .post(format!("{}/__rotate", self.origin))
            .json(&serde_json::json!({ "keep_previous": keep_previous }))
            .send()
            .await
            .expect("POST /__rotate");
        assert_eq!(r.status(), 200, "rotation refused; logs:\n{}", self.logs());
        let v: Value = r.json().await.unwrap();
        Rotation {
            kid: v["kid"].as_str().unwrap().to_string(),
            kids: v["kids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect(),
        }
    }

    /// Disables the account `login` at the provider: its refresh tokens stop working
    /// (`invalid_grant`).
    pub async fn disable(&self, login: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/__disable", self.origin))
            .json(&serde_json::json!({ "login": login }))
            .send()
            .await
            .expect("POST /__disable");
        assert_eq!(r.status(), 200, "disable refused; logs:\n{}", self.logs());
    }

    /// A fresh browser (no provider session) for this provider.
    pub fn browser(&self) -> PeerBrowser {
        PeerBrowser::new(self)
    }
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Rotation {
    pub kid: String,
    pub kids: Vec<String>,
}
