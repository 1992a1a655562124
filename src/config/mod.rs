//! Configuration: the TOML file (plus `GATEHOUSE_<SECTION>__<KEY>` environment overrides) is read
//! by [`reader`] into the validated [`Config`] the rest of the code uses. The file format is the
//! stable, public contract; `Config` is free to change with the implementation. Each section
//! has its own file with its types and its reader (`server`, `database`, `secrets`,
//! `session`, `password`, `lockout`; apps in `app`); the small ones are read here.

pub mod app;
pub mod branding;
mod database;
pub mod identity_provider;
mod lockout;
mod mail;
mod password;
pub mod reader;
pub mod secret;
mod secrets;
mod server;
mod session;

use branding::read_branding;
pub use branding::{BrandingConfig, Logo};
pub use database::DatabaseConfig;
use database::read_database;
pub use identity_provider::{
    GroupRole, IdentityProviderConfig, InvitationsConfig, MicrosoftConfig, ProviderKind, Tenant,
};
pub use lockout::LockoutConfig;
use lockout::read_lockout;
use mail::read_mail;
pub use mail::{MailConfig, MailTransport};
pub use password::{PasswordHashingConfig, PasswordPolicyConfig};
use password::{read_hashing, read_policy};
use secrets::read_secrets;
pub use secrets::{MasterKey, SecretsConfig, decode_master_key};
use server::read_server;
pub use server::{ServerConfig, TlsConfig};
pub use session::SessionConfig;
use session::read_session;

use reader::{Problems, Section};
pub use secret::Secret;
use std::path::{Path, PathBuf};
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
    pub mail: MailConfig,
    pub mfa: MfaConfig,
    pub log: LogConfig,
    pub roles: Vec<RoleConfig>,
    pub apps: Vec<app::AppConfig>,
    pub identity_providers: Vec<IdentityProviderConfig>,
    pub invitations: InvitationsConfig,
    pub branding: BrandingConfig,
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

/// A role's seat: `limited` (front office, never counted) or `modify` (counted against an app's
/// modify seats). A user takes `modify` on an app if any of their grants for it is of a role
/// with seat `modify` (`directory::seat_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeatKind {
    Limited,
    Modify,
}

impl SeatKind {
    pub const ALL: [SeatKind; 2] = [SeatKind::Limited, SeatKind::Modify];

    /// The spelling in configuration, the database and the identity headers.
    pub fn parse(s: &str) -> Option<SeatKind> {
        match s {
            "limited" => Some(SeatKind::Limited),
            "modify" => Some(SeatKind::Modify),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeatKind::Limited => "limited",
            SeatKind::Modify => "modify",
        }
    }
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
        Self::load_with(path, false)
    }

    /// `offline`: `check-config --no-secrets`, which checks everything but the secrets'
    /// values (their files and variables are not read, so CI can check a config without them).
    pub fn load_with(path: &Path, offline: bool) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: file.clone(),
            reason: e.kind().to_string(),
        })?;
        Self::from_toml_with(&text, path, std::env::vars(), offline)
    }

    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::from_toml_with(text, path, env, false)
    }

    fn from_toml_with(
        text: &str,
        path: &Path,
        env: impl Iterator<Item = (String, String)>,
        offline: bool,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.clone(),
            reason: syntax_reason(text, &e),
        })?;
        let mut early = Vec::new();
        let overrides = apply_env_overrides(&mut table, env, &mut early);
        let problems = Problems::new(overrides, offline);
        for (name, message) in early {
            problems.push(&name, message);
        }
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

    /// Whether `host` (any case) is the host of one of the apps.
    pub fn is_app_host(&self, host: &str) -> bool {
        self.apps.iter().any(|a| a.host.eq_ignore_ascii_case(host))
    }

    pub fn identity_provider(&self, id: &str) -> Option<&IdentityProviderConfig> {
        self.identity_providers.iter().find(|p| p.id == id)
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

/// Where a TOML syntax error is: line and column, and the line itself — with the value cut
/// off when it looks like a secret (a key, a token, a password, credentials in a URL), since
/// the line may be exactly the secret mistyped.
fn syntax_reason(text: &str, e: &toml::de::Error) -> String {
    let what = e
        .message()
        .lines()
        .next()
        .unwrap_or("syntax error")
        .to_string();
    let Some(span) = e.span() else {
        return what;
    };
    let at = span.start.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..at].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let shown = match line.split_once('=') {
        Some((key, value))
            if value.contains('@')
                || ["secret", "password", "key", "token"]
                    .iter()
                    .any(|w| key.to_ascii_lowercase().contains(w)) =>
        {
            format!("{key}= …")
        }
        _ => line.to_string(),
    };
    format!("line {line_no}, column {column}: {what}\n    {line_no} | {shown}")
}

/// `GATEHOUSE_LOCKOUT__MAX_FAILURES=3` sets `[lockout] max_failures = 3`. Values are read as TOML
/// (numbers, booleans, arrays) and fall back to a plain string; a list may also be given
/// comma-separated (`GATEHOUSE_SERVER__TRUSTED_PROXIES=10.0.0.0/8,192.168.0.0/16`). Variables
/// without `__` (such as `GATEHOUSE_MASTER_KEY`) are not overrides. Returns which variable set
/// which key, so that a problem with the value names the variable.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl Iterator<Item = (String, String)>,
    problems: &mut Vec<(String, String)>,
) -> std::collections::BTreeMap<String, String> {
    let mut set = std::collections::BTreeMap::new();
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
                set.insert(format!("{section}.{key}"), name.clone());
                t.insert(key, parsed);
            }
            _ => problems.push((name, format!("[{section}] is not a table"))),
        }
    }
    set
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
    let mail = read_mail(&root.sub("mail"));
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
    for s in root.array_of_tables("role", "name") {
        let name = s.string("name", "");
        if !valid_name(&name) {
            s.problem("name", "required: 1-64 of a-z, 0-9, '-', '_'");
        }
        let seat = s.string("seat", SeatKind::Limited.as_str());
        if SeatKind::parse(&seat).is_none() {
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
        .array_of_tables("app", "id")
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
    let identity_providers: Vec<IdentityProviderConfig> = root
        .array_of_tables("identity_provider", "id")
        .iter()
        .map(|s| {
            let p = identity_provider::read_provider(s);
            s.finish();
            p
        })
        .collect();
    identity_provider::validate_providers(&identity_providers, &apps, &|k, m| root.problem(k, m));
    let invitations = identity_provider::read_invitations(&root.sub("invitations"));
    let branding = read_branding(&root.sub("branding"));
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
        mail,
        mfa,
        log,
        roles,
        apps,
        identity_providers,
        invitations,
        branding,
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
