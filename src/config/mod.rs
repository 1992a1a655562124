//! Configuration: the TOML file (plus `GATEHOUSE_<SECTION>__<KEY>` environment overrides) is read
//! by [`reader`] into the validated [`Config`] the rest of the code uses. The file format is the
//! stable, public contract; `Config` is free to change with the implementation.

pub mod app;
pub mod reader;
pub mod secret;

use base64::Engine;
use reader::{Problems, Section};
pub use secret::Secret;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub const DEFAULT_PATH: &str = "config/gatehouse.toml";

#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub secrets: SecretsConfig,
    pub session: SessionConfig,
    pub password_policy: PasswordPolicyConfig,
    pub password_hashing: PasswordHashingConfig,
    pub lockout: LockoutConfig,
    pub mfa: MfaConfig,
    pub log: LogConfig,
    pub roles: Vec<RoleConfig>,
    pub apps: Vec<app::AppConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Url,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Who may read `/metrics` (the client address, as `trusted_proxies` decide it).
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Serving threads, each with its own runtime and listening socket (`workers = 0`, the
    /// default: one per CPU).
    pub workers: usize,
    /// `[server.tls]`: serve HTTPS directly (checked at load: the files parse and fit).
    pub tls: Option<TlsConfig>,
}

#[derive(Clone)]
pub struct TlsConfig {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub rustls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret<String>,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub enum MasterKey {
    Loaded(Secret<Vec<u8>>),
    /// `master_key_file` names a file that does not exist yet and `create_if_missing = true`:
    /// `serve` and `migrate` create it (dev convenience), `check-config` only reports it.
    CreateAt(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SecretsConfig {
    pub master_key: MasterKey,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub cookie_name: String,
    /// The cookie's name as sent: `__Host-` + `cookie_name` over https without a shared cookie
    /// domain (derived once here, read on every request).
    pub effective_cookie_name: String,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub cookie_domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PasswordPolicyConfig {
    pub min_length: usize,
    pub max_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub reject_common: bool,
}

#[derive(Debug, Clone)]
pub struct PasswordHashingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait, so sign-in bursts never take every core.
    pub max_concurrent: usize,
}

#[derive(Debug, Clone)]
pub struct LockoutConfig {
    pub max_failures: u32,
    pub window: Duration,
    /// `None` = `lock_for = "manual"`: locked until an administrator unlocks.
    pub lock_for: Option<Duration>,
    pub ip_max_failures: u32,
}

#[derive(Debug, Clone)]
pub struct MfaConfig {
    pub issuer: String,
    pub required_for_roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct RoleConfig {
    pub name: String,
    pub seat: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the configuration file: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: not valid TOML: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { file: String, problems: Vec<String> },
}

impl ConfigError {
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { problems, .. } => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}

impl Config {
    /// Reads, overrides from the environment, and validates. Every problem is reported at once.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: file.clone(),
            reason: e.kind().to_string(),
        })?;
        Self::from_toml(&text, path, std::env::vars())
    }

    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.clone(),
            // toml's message quotes the offending line, which may hold a secret: keep only
            // the first line (the position and kind of error).
            reason: e
                .message()
                .lines()
                .next()
                .unwrap_or("syntax error")
                .to_string()
                + &e.span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default(),
        })?;
        let problems = Problems::default();
        apply_env_overrides(&mut table, env, &problems);
        let root = Section::new("", Some(&table), &problems);
        let config = read(&root, path);
        root.finish();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                file,
                problems: problems.into_vec(),
            })
        }
    }

    pub fn public_host(&self) -> String {
        host_of(&self.server.public_url)
    }

    pub fn public_is_https(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }

    /// `__Host-` cookies are bound to one host over https: the strongest cookie a browser has.
    pub fn session_cookie_name(&self) -> &str {
        &self.session.effective_cookie_name
    }
}

/// `GATEHOUSE_LOCKOUT__MAX_FAILURES=3` sets `[lockout] max_failures = 3`. Values are read as TOML
/// (numbers, booleans, arrays) and fall back to a plain string. Variables without `__` (such as
/// `GATEHOUSE_MASTER_KEY`) are not overrides.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl Iterator<Item = (String, String)>,
    problems: &Problems,
) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("GATEHOUSE_") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        if section.is_empty() || key.is_empty() {
            continue;
        }
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        match table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(t) => {
                t.insert(key, parsed);
            }
            _ => problems.push(&name, format!("[{section}] is not a table")),
        }
    }
}

fn read(root: &Section, path: &Path) -> Config {
    let _ = path;
    let server = read_server(&root.sub("server"));
    let database = read_database(&root.sub("database"));
    let secrets = read_secrets(&root.sub("secrets"));
    let session = read_session(&root.sub("session"), server.public_url.scheme() == "https");
    let password_policy = read_policy(&root.sub("password_policy"));
    let password_hashing = read_hashing(&root.sub("password_hashing"));
    let lockout = read_lockout(&root.sub("lockout"));
    let mfa = {
        let s = root.sub("mfa");
        let m = MfaConfig {
            issuer: s.string("issuer", "Gatehouse"),
            required_for_roles: if s.raw("required_for_roles").is_some() {
                s.strings("required_for_roles")
            } else {
                vec!["admin".to_string()]
            },
        };
        if m.issuer.contains(':') || m.issuer.is_empty() {
            s.problem(
                "issuer",
                "must be non-empty and contain no ':' (RFC 6238 key URI)",
            );
        }
        s.finish();
        m
    };
    let log = {
        let s = root.sub("log");
        let format = match s.string("format", "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                s.problem("format", "must be \"text\" or \"json\"");
                LogFormat::Text
            }
        };
        let level = s.string("level", "info");
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            s.problem(
                "level",
                "not a log filter (e.g. \"info\" or \"gatehouse=debug,info\")",
            );
        }
        s.finish();
        LogConfig { format, level }
    };
    let mut roles = Vec::new();
    for s in root.array_of_tables("role") {
        let name = s.string("name", "");
        if !valid_name(&name) {
            s.problem("name", "required: 1-64 of a-z, 0-9, '-', '_'");
        }
        let seat = s.string("seat", crate::directory::SeatKind::Limited.as_str());
        if crate::directory::SeatKind::parse(&seat).is_none() {
            s.problem("seat", "must be \"limited\" or \"modify\"");
        }
        roles.push(RoleConfig {
            name,
            seat,
            description: s.string("description", ""),
        });
        s.finish();
    }
    let apps: Vec<app::AppConfig> = root
        .array_of_tables("app")
        .iter()
        .map(|s| {
            let a = app::read_app(s);
            s.finish();
            a
        })
        .collect();
    app::validate_routes(&apps, &host_of(&server.public_url), &|k, m| {
        root.problem(k, m)
    });
    for role in &mfa.required_for_roles {
        if !valid_name(role) {
            root.problem(
                "mfa.required_for_roles",
                "role names are 1-64 of a-z, 0-9, '-', '_'",
            );
        }
    }
    Config {
        file: path.to_path_buf(),
        server,
        database,
        secrets,
        session,
        password_policy,
        password_hashing,
        lockout,
        mfa,
        log,
        roles,
        apps,
    }
}

/// `host[:port]` as a client sends it for this URL (default ports omitted).
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn read_server(s: &Section) -> ServerConfig {
    let listen = s.string("listen", "127.0.0.1:8080");
    let listen = listen.parse().unwrap_or_else(|_| {
        s.problem("listen", "not a socket address (e.g. \"127.0.0.1:8080\")");
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let public = s.string("public_url", "http://localhost:8080");
    let public_url = match Url::parse(&public) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            if u.path() != "/" || u.query().is_some() {
                s.problem(
                    "public_url",
                    "must be an origin without a path (e.g. \"https://login.example.com\")",
                );
            }
            u
        }
        _ => {
            s.problem("public_url", "must be an http:// or https:// URL");
            Url::parse("http://localhost:8080").expect("valid")
        }
    };
    let trusted_proxies = networks(s, "trusted_proxies", &[]);
    let metrics_allow = networks(s, "metrics_allow", &["127.0.0.0/8", "::1/128"]);
    let shutdown_grace = s.duration("shutdown_grace", "20s");
    let workers = match s.int("workers", 0, 0, 256) {
        0 => crate::web::server::default_workers(),
        n => n as usize,
    };
    let tls = s.raw("tls").is_some().then(|| s.sub("tls")).and_then(|t| {
        let (cert, key) = (t.string("cert", ""), t.string("key", ""));
        t.finish();
        if cert.is_empty() || key.is_empty() {
            for (k, v) in [("cert", &cert), ("key", &key)] {
                if v.is_empty() {
                    t.problem(k, "required: a PEM file path");
                }
            }
            return None;
        }
        let (cert, key) = (
            std::path::PathBuf::from(cert),
            std::path::PathBuf::from(key),
        );
        match crate::web::tls::server_config(&cert, &key) {
            Ok(rustls) => Some(TlsConfig { cert, key, rustls }),
            Err((k, message)) => {
                t.problem(k, message);
                None
            }
        }
    });
    s.finish();
    ServerConfig {
        listen,
        public_url,
        trusted_proxies,
        metrics_allow,
        shutdown_grace,
        workers,
        tls,
    }
}

/// A list of IP addresses or CIDRs under `key` (`default` when the key is absent).
fn networks(s: &Section, key: &str, default: &[&str]) -> Vec<ipnet::IpNet> {
    let given = if s.raw(key).is_some() {
        s.strings(key)
    } else {
        default.iter().map(|d| d.to_string()).collect()
    };
    let mut nets = Vec::new();
    for (i, cidr) in given.iter().enumerate() {
        match cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(net) => nets.push(net),
            Err(_) => s.problem(&format!("{key}[{i}]"), "not an IP address or CIDR"),
        }
    }
    nets
}

fn read_database(s: &Section) -> DatabaseConfig {
    let url = s
        .secret("url")
        .unwrap_or_else(|| Secret::new("sqlite://data/gatehouse.db".to_string()));
    let u = url.expose();
    if !(u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        s.problem("url", "must start with sqlite: or postgres://");
    }
    let max_connections = s.int("max_connections", 10, 1, 1000) as u32;
    s.finish();
    DatabaseConfig {
        url,
        max_connections,
    }
}

/// Base64 (standard or URL-safe, padded or not) of at least 32 random bytes.
pub fn decode_master_key(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
        .filter(|k| k.len() >= 32)
}

fn read_secrets(s: &Section) -> SecretsConfig {
    const HINT: &str = "must be at least 32 random bytes, base64-encoded (generate one with `openssl rand -base64 32`)";
    let create = s.bool("create_if_missing", false);
    let file = s
        .table_has("master_key_file")
        .then(|| s.opt_string("master_key_file"))
        .flatten();
    let master_key = match &file {
        Some(path) if create && !Path::new(path).exists() => {
            // still let `secret` check that only one source is given
            let _ = s.opt_string("master_key");
            let _ = s.opt_string("master_key_env");
            MasterKey::CreateAt(PathBuf::from(path))
        }
        _ => match s.secret("master_key") {
            Some(v) => match decode_master_key(v.expose()) {
                Some(k) => MasterKey::Loaded(Secret::new(k)),
                None => {
                    s.problem("master_key", HINT);
                    MasterKey::Loaded(Secret::new(vec![0; 32]))
                }
            },
            None => {
                s.problem(
                    "master_key",
                    "required: set master_key_env (e.g. \"GATEHOUSE_MASTER_KEY\") or master_key_file",
                );
                MasterKey::Loaded(Secret::new(vec![0; 32]))
            }
        },
    };
    s.finish();
    SecretsConfig { master_key }
}

fn read_session(s: &Section, https: bool) -> SessionConfig {
    let cookie_name = s.string("cookie_name", "gatehouse_session");
    if cookie_name.is_empty()
        || !cookie_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.problem("cookie_name", "use letters, digits, '_' and '-' only");
    }
    let idle_timeout = s.duration("idle_timeout", "8h");
    let absolute_timeout = s.duration("absolute_timeout", "24h");
    if idle_timeout > absolute_timeout {
        s.problem("idle_timeout", "must not exceed session.absolute_timeout");
    }
    let cookie_domain = s.string("cookie_domain", "");
    s.finish();
    let cookie_domain = (!cookie_domain.is_empty()).then_some(cookie_domain);
    SessionConfig {
        effective_cookie_name: if https && cookie_domain.is_none() {
            format!("__Host-{cookie_name}")
        } else {
            cookie_name.clone()
        },
        cookie_name,
        idle_timeout,
        absolute_timeout,
        cookie_domain,
    }
}

fn read_policy(s: &Section) -> PasswordPolicyConfig {
    let p = PasswordPolicyConfig {
        min_length: s.int("min_length", 12, 8, 128) as usize,
        max_length: s.int("max_length", 128, 64, 4096) as usize,
        require_uppercase: s.bool("require_uppercase", true),
        require_lowercase: s.bool("require_lowercase", true),
        require_digit: s.bool("require_digit", true),
        require_symbol: s.bool("require_symbol", false),
        reject_common: s.bool("reject_common", true),
    };
    if p.min_length > p.max_length {
        s.problem("min_length", "must not exceed password_policy.max_length");
    }
    s.finish();
    p
}

fn read_hashing(s: &Section) -> PasswordHashingConfig {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let p = PasswordHashingConfig {
        memory_kib: s.int("memory_kib", 19456, 8 * 1024, 4 * 1024 * 1024) as u32,
        iterations: s.int("iterations", 2, 1, 100) as u32,
        parallelism: s.int("parallelism", 1, 1, 64) as u32,
        max_concurrent: s.int(
            "max_concurrent",
            cores.saturating_sub(1).max(1) as u64,
            1,
            1024,
        ) as usize,
    };
    s.finish();
    p
}

fn read_lockout(s: &Section) -> LockoutConfig {
    let max_failures = s.int("max_failures", 5, 1, 1000) as u32;
    let window = s.duration("window", "15m");
    let lock_for = match s.opt_string("lock_for").as_deref() {
        Some("manual") => None,
        Some(other) => Some(reader::parse_duration(other).unwrap_or_else(|| {
            s.problem(
                "lock_for",
                "must be a duration (e.g. \"30m\") or \"manual\"",
            );
            Duration::from_secs(1800)
        })),
        None => Some(Duration::from_secs(1800)),
    };
    let ip_max_failures = s.int("ip_max_failures", 50, 1, 1_000_000) as u32;
    s.finish();
    LockoutConfig {
        max_failures,
        window,
        lock_for,
        ip_max_failures,
    }
}

impl Section<'_> {
    fn table_has(&self, k: &str) -> bool {
        self.raw(k).is_some()
    }
}

/// The apps of a config made of `apps` (TOML `[[app]]` tables) and nothing else of note.
#[cfg(test)]
pub fn test_apps(apps: &str) -> Vec<app::AppConfig> {
    let text = format!(
        "[secrets]\nmaster_key = \"dGVzdC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE=\"\n\n{apps}"
    );
    match Config::from_toml(&text, Path::new("test.toml"), std::iter::empty()) {
        Ok(c) => c.apps,
        Err(e) => panic!("{e}"),
    }
}
