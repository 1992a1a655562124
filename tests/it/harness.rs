//! Test harness: a throwaway database, the real server as a child process, a cookie-keeping
//! HTTP client, and TOTP helpers.

#![allow(dead_code)]

use base64::Engine;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
/// A valid master key for tests (base64 of 32 bytes).
pub const MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE=";

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A scratch folder removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique("gatehouse-test-"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test's own database. With `GATEHOUSE_TEST_DATABASE_URL` (an admin URL of a PostgreSQL
/// server) a uniquely named database is created and dropped; an unreachable server fails the
/// test — it never silently falls back to SQLite.
pub struct TestDb {
    pub url: String,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn new(dir: &TempDir) -> TestDb {
        match std::env::var("GATEHOUSE_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let name = unique("gh_test_");
                run_pg(&admin, &format!("CREATE DATABASE {name}"));
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(admin.clone());
                TestDb {
                    url: format!("{base}/{name}"),
                    pg: Some((admin, name)),
                }
            }
            _ => TestDb {
                url: format!("sqlite://{}", dir.path("gatehouse.db").display()),
                pg: None,
            },
        }
    }
    /// Another server's database, shared (not dropped by this one).
    pub fn shared(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            pg: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

fn run_pg(admin: &str, sql: &str) {
    let admin = admin.to_string();
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("GATEHOUSE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .expect("admin SQL");
        })
    })
    .join()
    .expect("postgres admin thread");
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            let _ = std::panic::catch_unwind(|| {
                run_pg(
                    admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
            });
        }
    }
}

/// A loopback port nobody listens on right now (bound and released, so another test may take
/// it before the server does: [`Server::start_with`] then tries another).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the server prints when its address is taken (`src/web/server.rs`, `ALREADY_SERVED`).
pub const ALREADY_SERVING: &str = "another process is already serving it";

/// The config every test server starts from; `extra` is appended (later keys win per section
/// only if the section is not repeated, so tests pass whole sections they change).
pub fn base_config(port: u16, db: &TestDb, sections: &str) -> String {
    base_config_public(port, port, db, sections)
}

/// [`base_config`] with the public URL on `public_port` (another instance's, for several
/// instances behind one name).
pub fn base_config_public(port: u16, public_port: u16, db: &TestDb, sections: &str) -> String {
    let mut s = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{public_port}\"\nshutdown_grace = \"2s\"\n\n\
         [database]\nurl = \"{}\"\nmax_connections = 8\n\n\
         [secrets]\nmaster_key_env = \"GATEHOUSE_TEST_MASTER_KEY\"\n\n\
         [log]\nformat = \"json\"\nlevel = \"info\"\n\n",
        db.url
    );
    // Tests use cheap hashing so that brute-force tests stay fast; production defaults are
    // checked by the unit tests and the benchmark.
    if !sections.contains("[password_hashing]") {
        s.push_str("[password_hashing]\nmemory_kib = 8192\niterations = 1\nparallelism = 1\nmax_concurrent = 2\n\n");
    }
    s.push_str(sections);
    s
}

/// The proxy tests' `crm` app: under `/crm/` on the gateway's own host, relayed to `upstream`
/// (answer within `timeout`), for modify and limited users, `/crm/admin/*` back office.
pub fn crm_app(upstream: &str, timeout: &str) -> String {
    format!(
        r#"
[[app]]
id = "crm"
host = "127.0.0.1:{{PORT}}"
path_prefix = "/crm/"
upstream = "{upstream}"
allow_roles = ["modify", "limited"]
timeout = "{timeout}"
[[app.rule]]
path = "/crm/admin/*"
back_office = true
"#
    )
}

/// Creates a user with `roles` (password `GOOD_PASSWORD`) and signs them in.
pub async fn signed_in(server: &Server, email: &str, roles: &[&str]) -> Browser {
    server.create_user(email, GOOD_PASSWORD, roles);
    let mut b = server.browser();
    let r = b.login(email, GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "sign-in of {email}: {}", r.body);
    b
}

pub struct Server {
    /// Serves HTTPS (`[server.tls]`): readiness is read from the log, not a plain GET.
    pub tls: bool,
    pub port: u16,
    pub base: String,
    pub config_path: PathBuf,
    pub dir: TempDir,
    pub db: TestDb,
    child: Child,
    logs: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    env: Vec<(String, String)>,
}

#[derive(Default)]
pub struct Options {
    /// TOML appended to the base config; `{PORT}` is replaced by the server's port (here and
    /// in `env` values).
    pub sections: String,
    pub env: Vec<(String, String)>,
    /// Listen on this port instead of a free one (when a peer started first must know the
    /// gateway's address, such as an OpenID provider's registered redirect URI). Not retried
    /// on another port: a taken port fails the test.
    pub port: Option<u16>,
    /// Use this database (another server's `db.url`) instead of a fresh one.
    pub database_url: Option<String>,
    /// `public_url` on this port instead of the server's own (a second instance of the first).
    pub public_port: Option<u16>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Options::default())
    }

    /// Starts the server on a free port and waits until it serves. Another test may take that
    /// port between [`free_port`] and the server's bind: the server then refuses to start
    /// ([`ALREADY_SERVING`]) and this tries again on another port, with a fresh folder and
    /// database. (Listening on port 0 would avoid the race, but the config's `public_url`, and
    /// the apps' hosts in many tests, must name the port before the server starts.)
    pub fn start_with(opts: Options) -> Server {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let mut server = Self::spawn(&opts);
            match server.wait_healthy() {
                Ok(()) => return server,
                Err(logs) if attempt == ATTEMPTS || opts.port.is_some() => panic!(
                    "gatehouse found its port taken {ATTEMPTS} times in a row; last logs:\n{logs}"
                ),
                Err(_) => continue,
            }
        }
        unreachable!()
    }

    fn spawn(opts: &Options) -> Server {
        let dir = TempDir::new();
        let db = match &opts.database_url {
            Some(url) => TestDb::shared(url),
            None => TestDb::new(&dir),
        };
        let port = opts.port.unwrap_or_else(free_port);
        let config_path = dir.path("gatehouse.toml");
        // `{PORT}` in the sections stands for the server's own port (for app hosts on it).
        let sections = opts.sections.replace("{PORT}", &port.to_string());
        let public_port = opts.public_port.unwrap_or(port);
        std::fs::write(
            &config_path,
            base_config_public(port, public_port, &db, &sections),
        )
        .unwrap();
        let mut env = vec![(
            "GATEHOUSE_TEST_MASTER_KEY".to_string(),
            MASTER_KEY.to_string(),
        )];
        env.extend(
            opts.env
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("{PORT}", &port.to_string()))),
        );
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&config_path).arg("serve");
        cmd.current_dir(&dir.0)
            .envs(env.iter().cloned())
            .env_remove("GATEHOUSE_LOG");
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("start gatehouse");
        let logs = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = logs.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            }));
        }
        let tls = sections.contains("[server.tls]");
        Server {
            tls,
            port,
            base: format!("http://127.0.0.1:{port}"),
            config_path,
            dir,
            db,
            child,
            logs,
            readers,
            env,
        }
    }

    /// Waits until this server serves: its own log says `gatehouse listening` on its address,
    /// and (without TLS) `GET /healthz` answers 200 — so a stranger on the port cannot pass for
    /// it. `Err(logs)` when the server refused to start because the port is taken; any other
    /// exit, or no readiness within 60 s, panics at once with the logs.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for gatehouse") {
                // The exit closed its pipes: the readers have the last lines once they end.
                for r in std::mem::take(&mut self.readers) {
                    let _ = r.join();
                }
                let logs = self.logs();
                if !status.success() && logs.contains(ALREADY_SERVING) {
                    return Err(logs);
                }
                panic!("gatehouse exited ({status}) before serving; logs:\n{logs}");
            }
            if self.announced_listening() && (self.tls || self.answers_health()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!("gatehouse did not become healthy; logs:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server logged `gatehouse listening` with `addr` its own address.
    fn announced_listening(&self) -> bool {
        let addr = format!("127.0.0.1:{}", self.port);
        self.logs().lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                v["message"] == "gatehouse listening" && v["addr"].as_str() == Some(addr.as_str())
            })
        })
    }

    fn answers_health(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
    }

    /// The server process id (for reading its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The one-time setup link printed at first start.
    pub fn setup_link(&self) -> String {
        let logs = self.logs();
        for line in logs.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(link) = v.get("setup_link").and_then(|l| l.as_str())
            {
                return link.to_string();
            }
        }
        panic!("no setup link in logs:\n{logs}");
    }

    /// Runs `gatehouse admin ARGS…` against this server's config and database.
    pub fn admin(&self, args: &[&str]) -> Output {
        self.admin_stdin(args, None)
    }

    /// `gatehouse ARGS…` with this server's config, folder and environment, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config_path).args(args);
        cmd.current_dir(&self.dir.0)
            .envs(self.env.iter().cloned())
            .env_remove("GATEHOUSE_LOG");
        cmd
    }

    pub fn admin_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(&["admin"]);
        cmd.args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run gatehouse admin");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `admin …` that must succeed; returns stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "gatehouse admin {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates an active user with a password (and roles like "admin" or "limited@crm").
    pub fn create_user(&self, email: &str, password: &str, roles: &[&str]) {
        let mut args = vec!["user", "create", "--email", email, "--password-stdin"];
        for r in roles {
            args.push("--role");
            args.push(r);
        }
        let out = self.admin_stdin(&args, Some(&format!("{password}\n")));
        assert!(
            out.status.success(),
            "user create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub fn stop(mut self) -> String {
        unsafe_sigterm(self.child.id());
        let _ = self.child.wait();
        self.logs()
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal browser: keeps cookies, never follows redirects (tests look at each hop).
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    /// The hidden CSRF token of the page's form.
    pub fn csrf(&self) -> String {
        field_value(&self.body, "csrf")
            .unwrap_or_else(|| panic!("no csrf field in:\n{}", self.body))
    }
}

/// The `value` of `<input name="NAME" value="…">` in a page.
pub fn field_value(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')? + start;
    Some(
        body[start..end]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser for another host name that resolves to the server's loopback address (an app
    /// on its own host). It keeps its own cookies, as a real browser keeps host-only cookies.
    pub fn for_host(server: &Server, host: &str) -> Browser {
        Browser {
            base: format!("http://{host}:{}", server.port),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .resolve(host, ([127, 0, 0, 1], server.port).into())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    /// The `Cookie` header this browser sends.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let body = r.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut req = self
            .client
            .get(self.url(path))
            .header("accept", "text/html");
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    /// A GET as an API client sends it (`Accept: application/json`), with the cookies.
    pub async fn get_json(&mut self, path: &str) -> Page {
        let mut req = self
            .client
            .get(self.url(path))
            .header("accept", "application/json");
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.client.post(self.url(path)).form(form);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    /// GETs a form page and posts it with its CSRF token.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let page = self.get(path).await;
        let csrf = page.csrf();
        let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        fields.extend_from_slice(form);
        let action = path.split('?').next().unwrap().to_string();
        self.post(&action, &fields).await
    }

    /// Password step of sign-in; returns the response to the POST.
    pub async fn login(&mut self, email: &str, password: &str) -> Page {
        self.submit("/login", &[("email", email), ("password", password)])
            .await
    }
}

/// The current TOTP code for a base32 secret (as an authenticator app would show it).
pub fn totp_code(secret_b32: &str) -> String {
    totp_code_at(
        secret_b32,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

pub fn totp_code_at(secret_b32: &str, t: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build_noncompliant();
    totp.generate(t).to_string()
}

/// The secret shown on the enrolment page.
pub fn enrolment_secret(body: &str) -> String {
    let start = body
        .find("<code id=\"secret\">")
        .expect("secret on enrolment page")
        + "<code id=\"secret\">".len();
    let end = body[start..].find('<').unwrap() + start;
    body[start..end].to_string()
}

pub fn recovery_codes(body: &str) -> Vec<String> {
    body.split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect()
}

/// A password that satisfies the default policy.
pub const GOOD_PASSWORD: &str = "Vq8#zL2m!pR4wX";

/// The id of the user with this email (`admin user show`).
pub fn user_id(server: &Server, email: &str) -> String {
    let out = server.admin_ok(&["--json", "user", "show", "--email", email]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["id"].as_str().expect("user id").to_string()
}

/// Verifies a compact ES256 JWS against a JWKS document; returns the claims.
pub fn verify_es256(jws: &str, jwks: &serde_json::Value) -> Result<serde_json::Value, String> {
    let parts: Vec<&str> = jws.split('.').collect();
    if parts.len() != 3 {
        return Err("not a compact JWS".into());
    }
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or("kid not published")?;
    if key["kty"] != "EC" || key["crv"] != "P-256" {
        return Err(format!("key type {key}"));
    }
    let mut point = vec![4u8];
    point.extend(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap(),
    );
    point.extend(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key["y"].as_str().unwrap())
            .unwrap(),
    );
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| e.to_string())?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .map_err(|_| "bad signature".to_string())?;
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())
}

/// The value of query parameter `name` in `url` (absolute, or a path, resolved against a dummy
/// origin), percent-decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("http://origin.invalid").and_then(|base| base.join(url)))
        .ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Hops 3 and 4 of a cross-host sign-in (the handoff): `location` is where hop 2 (the sign-in
/// at the gateway) sent the browser, the app host's `/.gatehouse/login?rd=…`. `app` (a
/// [`Browser::for_host`], or any browser whose `base` is the app's origin) opens it and must get
/// a `303` that sets the host-only `gatehouse_handoff` cookie and sends it to the gateway's
/// `/.gatehouse/handoff` with the same token as `state`; `gateway` (signed in at the gateway,
/// `base` the gateway's origin) opens that and must be sent to the app host's
/// `/.gatehouse/callback?code=…` with the same `rd`. Returns that callback URL, not yet opened.
pub async fn handoff_callback(gateway: &mut Browser, app: &mut Browser, location: &str) -> String {
    let app_origin = app.base.clone();
    let app_host = app_origin
        .split_once("://")
        .map(|(_, h)| h.to_string())
        .unwrap_or_default();
    assert!(
        location.starts_with(&format!("{app_origin}/.gatehouse/login?")),
        "hop 2 must send the browser to {app_origin}/.gatehouse/login, it went to {location:?}"
    );
    let rd = query_param(location, "rd")
        .unwrap_or_else(|| panic!("hop 2 location without rd: {location}"));

    // Hop 3: the app host remembers this browser in a cookie and sends it to the gateway.
    let r = app.get(location).await;
    assert_eq!(
        r.status,
        303,
        "hop 3 ({location}): Location {:?}, body {}",
        r.location(),
        r.body
    );
    let set = r.set_cookies();
    let cookie = set
        .iter()
        .find(|c| c.starts_with("gatehouse_handoff="))
        .unwrap_or_else(|| panic!("hop 3 set no gatehouse_handoff cookie: {set:?}"));
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("gatehouse_handoff=")
        .to_string();
    assert_eq!(token.len(), 43, "handoff token: {cookie}");
    let flags: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    for want in ["httponly", "path=/.gatehouse/", "samesite=lax"] {
        assert!(
            flags.iter().any(|f| f == want),
            "handoff cookie lacks {want}: {cookie}"
        );
    }
    assert!(
        !flags.iter().any(|f| f.starts_with("domain=")),
        "handoff cookie must be host-only: {cookie}"
    );
    let to_gateway = r.location();
    assert!(
        to_gateway.starts_with(&format!("{}/.gatehouse/handoff?", gateway.base)),
        "hop 3 must send the browser to {}/.gatehouse/handoff, it went to {to_gateway:?}",
        gateway.base
    );
    assert_eq!(
        query_param(&to_gateway, "host").as_deref(),
        Some(app_host.as_str()),
        "hop 3 Location: {to_gateway}"
    );
    assert_eq!(
        query_param(&to_gateway, "state").as_deref(),
        Some(token.as_str()),
        "hop 3 Location: {to_gateway}"
    );
    assert_eq!(
        query_param(&to_gateway, "rd").as_deref(),
        Some(rd.as_str()),
        "hop 3 Location: {to_gateway}"
    );

    // Hop 4: the gateway, where the browser is signed in, issues the code.
    let r = gateway.get(&to_gateway).await;
    assert_eq!(
        r.status,
        303,
        "hop 4 ({to_gateway}): Location {:?}, body {}",
        r.location(),
        r.body
    );
    let callback = r.location();
    assert!(
        callback.starts_with(&format!("{app_origin}/.gatehouse/callback?code=")),
        "hop 4 must send the browser to {app_origin}/.gatehouse/callback, it went to {callback:?}"
    );
    let code = query_param(&callback, "code").unwrap_or_default();
    assert_eq!(code.len(), 43, "callback code in {callback}");
    assert_eq!(
        query_param(&callback, "rd").as_deref(),
        Some(rd.as_str()),
        "hop 4 Location: {callback}"
    );
    callback
}

/// Hops 3 to 5 of a cross-host sign-in: [`handoff_callback`], then the callback opened in the
/// `app` browser (with the handoff cookie hop 3 gave it). Returns the callback's answer, for the
/// caller to judge (`303` to the `rd` path with a session cookie, or `400`/`409`).
pub async fn follow_handoff(gateway: &mut Browser, app: &mut Browser, location: String) -> Page {
    let callback = handoff_callback(gateway, app, &location).await;
    app.get(&callback).await
}
