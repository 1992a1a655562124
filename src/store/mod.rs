//! Every SQL statement of Gatehouse, one file per table group. Queries are written once in the
//! dialect both SQLite and PostgreSQL accept (`$1` parameters, `RETURNING`, BIGINT times) and run
//! through sqlx's `Any` driver; only the migrations differ per backend.

mod addresses;
mod audit;
mod invalidations;
mod invitations;
mod keys;
mod mail;
mod orgs;
mod roles;
mod scim;
mod scim_groups;
mod seats;
mod sessions;
mod sso;
mod tokens;
mod upstream_sessions;
mod users;

pub use addresses::Clash;
pub use audit::{AuditFilter, AuditRow};
pub use invalidations::{Invalidation, InvalidationListener, Signal};
pub use invitations::{InvitationRow, PendingLink};
pub use keys::SigningKeyRow;
pub use mail::MailRow;
pub use orgs::{HeldRows, MemberRow, OrgData, OrgRow, Saved};
pub use roles::{GrantRow, RoleRow};
pub use scim::{ScimColumn, ScimCond, ScimOp, ScimUserData, ScimUserRow};
pub use scim_groups::ScimGroupRow;
pub use seats::{SeatGrant, SeatRow, UsageRow};
pub use sessions::SessionRow;
pub use sso::{IdentityRow, OrgsOfAddress, SsoStateRow};
pub use tokens::ApiTokenRow;
pub use upstream_sessions::DueSession;
pub use users::{NewUser, UserRow};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL's URL, for the notification listener's own connection (a secret: it may
    /// hold a password; `Store` has no `Debug`).
    listen_url: Option<std::sync::Arc<str>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    /// An address, domain or slug that belongs to someone else (named).
    #[error("{0}")]
    Clash(Clash),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be opened or reached; the message names where and why (never the
    /// URL's password).
    #[error("{0}")]
    Connect(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A unique-constraint violation becomes `Conflict`; everything else stays a database error.
fn conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Db(e),
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A moment in Unix seconds, held in 32 bits (good until 2106), for the per-session stamps
/// the hot path keeps in memory (idle time, seat confirmations): half the size of an `i64`.
#[derive(Default)]
pub struct Stamp(std::sync::atomic::AtomicU32);

impl Stamp {
    pub fn new(t: i64) -> Stamp {
        Stamp(std::sync::atomic::AtomicU32::new(Self::bits(t)))
    }
    fn bits(t: i64) -> u32 {
        t.clamp(0, u32::MAX.into()) as u32
    }
    pub fn get(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed).into()
    }
    pub fn set(&self, t: i64) {
        self.0
            .store(Self::bits(t), std::sync::atomic::Ordering::Relaxed)
    }
    /// Sets `t` and returns the moment held before.
    pub fn replace(&self, t: i64) -> i64 {
        self.0
            .swap(Self::bits(t), std::sync::atomic::Ordering::Relaxed)
            .into()
    }
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connects (creating the SQLite file and its folder when needed, readable by the owner
    /// only: the database holds password hashes and sealed secrets). The URL is a secret (it
    /// may hold a password): it never appears in an error, which names the host and the cause.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let file = path.split('?').next().unwrap_or("");
            if file != ":memory:" && !file.is_empty() {
                private_sqlite_file(std::path::Path::new(file))?;
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut u = format!("sqlite://{path}");
            if !path.contains("mode=") {
                u.push(sep);
                u.push_str("mode=rwc");
            }
            (u, Backend::Sqlite)
        } else {
            // One connection first, so that a failure says why (refused, unknown host,
            // authentication) instead of the pool's eventual "timed out".
            let r = tokio::time::timeout(
                Duration::from_secs(10),
                <sqlx::AnyConnection as sqlx::Connection>::connect(url),
            )
            .await;
            let cause = match r {
                Ok(Ok(conn)) => {
                    let _ = sqlx::Connection::close(conn).await;
                    None
                }
                Ok(Err(e)) => Some(redact_connect_error(&e)),
                Err(_) => Some("no answer within 10 s".to_string()),
            };
            if let Some(cause) = cause {
                return Err(StoreError::Connect(format!(
                    "cannot connect to the database at {} ({cause})",
                    server_of(url)
                )));
            }
            (url.to_string(), Backend::Postgres)
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the writer; foreign keys are off by default in
            // SQLite; busy_timeout makes concurrent writers wait instead of failing.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    // 256 KiB of page cache per connection (SQLite's default is 2 MiB): the hot
                    // path does not read the database, and the OS caches the file anyway.
                    conn.execute("PRAGMA cache_size = -256").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await.map_err(|e| {
            // sqlx's connection errors can echo the URL: keep only the cause.
            StoreError::Connect(format!(
                "cannot connect to the database ({})",
                redact_connect_error(&e)
            ))
        })?;
        let listen_url = (backend == Backend::Postgres).then(|| std::sync::Arc::from(url.as_str()));
        Ok(Store {
            pool,
            backend,
            listen_url,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(&self.pool).await?,
            Backend::Postgres => MIGRATE_POSTGRES.run(&self.pool).await?,
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the SQLite file's folder (0700) and the file itself (0600) when they do not exist;
/// SQLite gives its `-wal` and `-shm` files the database file's mode. An existing file readable
/// by others is left as it is, with a warning.
fn private_sqlite_file(file: &std::path::Path) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        StoreError::Connect(format!(
            "cannot create the database {what} {}: {}",
            file.display(),
            e.kind()
        ))
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(|e| fail("folder for", e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(m) = std::fs::metadata(file) {
                let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions());
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %file.display(), mode = format!("{:o}", mode & 0o777), "the database file is readable by other users; it holds password hashes: chmod 600 it (and its -wal and -shm files)");
                }
            }
            Ok(())
        }
        Err(e) => Err(fail("file", e)),
    }
}

/// `host:port` of a database URL, never its user or password.
fn server_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432)
        ),
        Err(_) => "the configured URL (unreadable)".into(),
    }
}

fn redact_connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: is the server running and listening there?".into()
        }
        // Name resolution failures come as I/O errors whose text is the resolver's.
        sqlx::Error::Io(io) if io.to_string().contains("lookup") => {
            format!("unknown host: {io}")
        }
        sqlx::Error::Io(io) => format!("network error: {io}"),
        sqlx::Error::Tls(_) => "TLS error".into(),
        // The server's own message ("database \"x\" does not exist") holds no credential.
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("28P01" | "28000")) => {
            format!("authentication failed: {}", d.message())
        }
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Configuration(_) => "invalid database URL".into(),
        _ => "connection failed".into(),
    }
}
