//! Every SQL statement of Gatehouse, one file per table group. Queries are written once in the
//! dialect both SQLite and PostgreSQL accept (`$1` parameters, `RETURNING`, BIGINT times) and run
//! through sqlx's `Any` driver; only the migrations differ per backend.

mod addresses;
mod audit;
mod invalidations;
mod keys;
mod orgs;
mod roles;
mod seats;
mod sessions;
mod tokens;
mod users;

pub use addresses::Clash;
pub use audit::{AuditFilter, AuditRow};
pub use invalidations::Invalidation;
pub use keys::SigningKeyRow;
pub use orgs::{HeldRows, MemberRow, OrgData, OrgRow, Saved};
pub use roles::{GrantRow, RoleRow};
pub use seats::{SeatGrant, SeatRow, UsageRow};
pub use sessions::SessionRow;
pub use tokens::ApiTokenRow;
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
    /// Connects (creating the SQLite file and its folder when needed). The URL is a secret (it
    /// may hold a password): it never appears in the error.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let file = path.split('?').next().unwrap_or("");
            let dir = std::path::Path::new(file).parent();
            if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty() && file != ":memory:") {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Db(sqlx::Error::Configuration(
                        format!("cannot create the database folder: {}", e.kind()).into(),
                    ))
                })?;
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut u = format!("sqlite://{path}");
            if !path.contains("mode=") {
                u.push(sep);
                u.push_str("mode=rwc");
            }
            (u, Backend::Sqlite)
        } else {
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
            // sqlx's connection errors can echo the URL: keep only the kind.
            StoreError::Db(sqlx::Error::Configuration(
                format!(
                    "cannot connect to the database ({})",
                    redact_connect_error(&e)
                )
                .into(),
            ))
        })?;
        Ok(Store { pool, backend })
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

fn redact_connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("network or file error: {}", io.kind()),
        sqlx::Error::Tls(_) => "TLS error".into(),
        // The server's own message ("database \"x\" does not exist") holds no credential.
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Configuration(_) => "invalid database URL".into(),
        _ => "connection failed".into(),
    }
}
