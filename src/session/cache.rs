//! Server-side sessions behind an opaque cookie.
//!
//! The cookie holds 256 random bits; the database keeps only their SHA-256, so a copy of the
//! database yields no usable cookie. A moka cache in front of the store answers the hot path
//! without a query; revocations evict from it at once (and on every instance through
//! `revocation`). Idle time is tracked in memory and written back at most once a minute.

use crate::config::SessionConfig;
use crate::crypto;
use crate::store::{self, SessionRow, Stamp, Store};
use moka::future::Cache;
use smallvec::SmallVec;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

/// Sessions that have not finished signing in (second factor, enrolment, password change) live
/// at most this long.
pub const PENDING_TTL: i64 = 10 * 60;
/// How often `last_seen_at` is written back for an active session.
const TOUCH_EVERY: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    PasswordChange,
    Mfa,
    MfaEnroll,
    Active,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PasswordChange => "password_change",
            Stage::Mfa => "mfa",
            Stage::MfaEnroll => "mfa_enroll",
            Stage::Active => "active",
        }
    }
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "password_change" => Stage::PasswordChange,
            "mfa" => Stage::Mfa,
            "mfa_enroll" => Stage::MfaEnroll,
            "active" => Stage::Active,
            _ => return None,
        })
    }
}

/// What the hot path needs to know about a session.
///
/// One of these is held per live session, so it is kept compact: ids as 16 bytes, the
/// authentication methods as one comma-joined string, the idle-time stamps as 32-bit Unix
/// seconds, room for one app inline; what only signing out needs (the session it was handed
/// off from) stays in the database.
pub struct Session {
    pub id: Uuid,
    /// SHA-256 of the cookie value (the database keeps its hex).
    pub digest: [u8; 32],
    pub user_id: Uuid,
    pub stage: Stage,
    /// Authentication methods (`amr`: `pwd`, `otp`, `sso:<provider>`), comma-joined.
    amr: Box<str>,
    pub expires_at: i64,
    /// Made on an app host by a handoff: valid on that host only (see `fits`).
    host: Option<Box<str>>,
    last_seen: Stamp,
    last_written: Stamp,
    /// What the proxy derived for this session, per app (identity headers, assertion, seat).
    /// Kept here so that it dies with the session and with every invalidation of it.
    pub apps: std::sync::Mutex<AppsOfSession>,
}

/// A session's access per app index: most sessions use one app, held without a heap block.
pub type AppsOfSession = SmallVec<[(usize, Arc<super::AppAccess>); 1]>;

impl Session {
    /// The hex SHA-256 of the cookie value, as the database keeps it.
    pub fn token_hash(&self) -> String {
        crypto::hex(&self.digest)
    }

    /// Whether this session counts on a request for `host`: a session made on an app host by
    /// a handoff counts there only (its cookie is host-only; presented anywhere else it was
    /// carried there by hand), the gateway's own everywhere its cookie may reach.
    pub fn fits(&self, host: &str) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
    }

    /// The authentication methods, in the order they were used.
    pub fn amr(&self) -> Vec<String> {
        self.amr
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// `None` for a row that cannot be a session of ours (unknown stage, ids that are not
    /// UUIDs): it is then treated as no session at all.
    fn from_row(row: SessionRow) -> Option<Session> {
        Some(Session {
            digest: crypto::digest_from_hex(&row.token_hash)?,
            stage: Stage::parse(&row.stage)?,
            amr: row.amr.into_boxed_str(),
            id: Uuid::parse_str(&row.id).ok()?,
            user_id: Uuid::parse_str(&row.user_id).ok()?,
            expires_at: row.expires_at,
            host: row.host.map(String::into_boxed_str),
            last_seen: Stamp::new(row.last_seen_at),
            last_written: Stamp::new(row.last_seen_at),
            apps: Default::default(),
        })
    }
}

/// The session cache's key: the first 8 bytes of the cookie's SHA-256 (the whole digest is
/// compared on every hit, see `Sessions::cached`).
fn cache_key(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub stage: Stage,
    pub amr: &'a [String],
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// A session on an app host, handed off from this (id, absolute expiry) session, and
    /// that host.
    pub parent: Option<(&'a str, i64, &'a str)>,
    /// Signed in through an upstream provider.
    pub upstream: Option<Upstream<'a>>,
}

/// What a session keeps of the upstream sign-in it came from.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    /// The provider's id.
    pub provider: &'a str,
    /// Its refresh token, sealed under the master key, when it granted one (revalidation).
    pub refresh_token: Option<&'a str>,
    /// The ID token's `sub` and `sid` (back-channel logout names the session by them).
    pub subject: &'a str,
    pub sid: Option<&'a str>,
}

pub struct Sessions {
    cfg: SessionConfig,
    /// Keyed by `cache_key`: an 8-byte key keeps each entry smaller than the 32-byte digest.
    cache: Cache<u64, Arc<Session>>,
    /// Bumped by every invalidation (see `load`).
    epoch: std::sync::atomic::AtomicU64,
}

impl Sessions {
    pub fn new(cfg: SessionConfig) -> Sessions {
        Sessions {
            cache: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(15 * 60))
                .build(),
            epoch: Default::default(),
            cfg,
        }
    }

    /// Creates a session and returns the cookie value (the only place it ever exists in clear).
    pub async fn create(
        &self,
        store: &Store,
        s: NewSession<'_>,
    ) -> store::Result<(String, Arc<Session>)> {
        let token = crypto::random_token();
        let now = store::now();
        let ttl = if s.stage == Stage::Active {
            self.cfg.absolute_timeout.as_secs() as i64
        } else {
            PENDING_TTL
        };
        let row = SessionRow {
            id: uuid::Uuid::now_v7().to_string(),
            token_hash: crypto::sha256_hex(token.as_bytes()),
            user_id: s.user_id.to_string(),
            stage: s.stage.as_str().to_string(),
            amr: s.amr.join(","),
            ip: s.ip.to_string(),
            user_agent: s.user_agent.chars().take(256).collect(),
            created_at: now,
            last_seen_at: now,
            expires_at: match s.parent {
                Some((_, parent_expiry, _)) => parent_expiry.min(now + ttl),
                None => now + ttl,
            },
            revoked_at: None,
            parent_id: s.parent.map(|(id, _, _)| id.to_string()),
            host: s.parent.map(|(_, _, host)| host.to_ascii_lowercase()),
            upstream_provider: s.upstream.map(|u| u.provider.to_string()),
            upstream_refresh_token: s.upstream.and_then(|u| u.refresh_token.map(str::to_string)),
            upstream_subject: s.upstream.map(|u| u.subject.to_string()),
            upstream_sid: s.upstream.and_then(|u| u.sid.map(str::to_string)),
        };
        store.insert_session(&row).await?;
        let session = Arc::new(Session::from_row(row).expect("stage is valid"));
        self.cache
            .insert(cache_key(&session.digest), session.clone())
            .await;
        Ok((token, session))
    }

    /// The live session behind a cookie value, or `None` (unknown, revoked, idle or expired).
    pub async fn lookup(&self, store: &Store, token: &str) -> store::Result<Option<Arc<Session>>> {
        if token.len() != 43 {
            return Ok(None);
        }
        let digest = crypto::sha256(token.as_bytes());
        let now = store::now();
        let mut session = match self.cached(&digest).await {
            Some(s) => s,
            None => match self.load(store, &digest, now).await? {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        if now >= session.expires_at {
            self.cache.invalidate(&cache_key(&digest)).await;
            return Ok(None);
        }
        if !self.idle(&session, now) {
            self.seen(store, &session, now).await?;
            return Ok(Some(session));
        }
        {
            // Another instance may have seen the session more recently: ask the database
            // before ending it.
            self.cache.invalidate(&cache_key(&digest)).await;
            session = match self.load(store, &digest, now).await? {
                Some(s) if !self.idle(&s, now) => s,
                _ => {
                    self.cache.invalidate(&cache_key(&digest)).await;
                    return Ok(None);
                }
            };
        }
        self.seen(store, &session, now).await?;
        Ok(Some(session))
    }

    /// Records a request of a live session: idle time in memory, in the database once a minute.
    async fn seen(&self, store: &Store, session: &Session, now: i64) -> store::Result<()> {
        // Written only when the second changes: every request of a session on every core
        // would otherwise write the same cache line.
        if session.last_seen.get() != now {
            session.last_seen.set(now);
        }
        if now - session.last_written.get() >= TOUCH_EVERY {
            session.last_written.set(now);
            store.touch_session(&session.id.to_string(), now).await?;
        }
        Ok(())
    }

    /// Counts every invalidation so far: a session held since the count last read is still
    /// valid as long as the count has not moved (and it has neither expired nor idled out).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// For a session a caller already holds from `lookup` (when `epoch` has not moved since):
    /// `false` when it expired or idled out (the caller then asks `lookup` again), otherwise
    /// records the request like `lookup` does.
    pub async fn still_live(
        &self,
        store: &Store,
        session: &Session,
        now: i64,
    ) -> store::Result<bool> {
        if now >= session.expires_at || self.idle(session, now) {
            return Ok(false);
        }
        self.seen(store, session, now).await?;
        Ok(true)
    }

    /// The cached session whose cookie has this digest (the cache key is only part of it).
    async fn cached(&self, digest: &[u8; 32]) -> Option<Arc<Session>> {
        self.cache
            .get(&cache_key(digest))
            .await
            .filter(|s| s.digest == *digest)
    }

    fn idle(&self, s: &Session, now: i64) -> bool {
        let limit = if s.stage == Stage::Active {
            self.cfg.idle_timeout.as_secs() as i64
        } else {
            PENDING_TTL
        };
        now - s.last_seen.get() > limit
    }

    async fn load(
        &self,
        store: &Store,
        digest: &[u8; 32],
        now: i64,
    ) -> store::Result<Option<Arc<Session>>> {
        let hash = &crypto::hex(digest);
        // An invalidation that lands between our read and our insert must not leave a stale
        // entry behind: re-read when the epoch moved meanwhile.
        for _ in 0..3 {
            let epoch = self.epoch.load(Ordering::SeqCst);
            let Some(row) = store.session_by_token_hash(hash, now).await? else {
                return Ok(None);
            };
            let Some(s) = Session::from_row(row) else {
                return Ok(None);
            };
            let s = Arc::new(s);
            if self.epoch.load(Ordering::SeqCst) == epoch {
                self.cache.insert(cache_key(digest), s.clone()).await;
                if self.epoch.load(Ordering::SeqCst) == epoch {
                    return Ok(Some(s));
                }
                self.cache.invalidate(&cache_key(digest)).await;
            }
        }
        // Invalidations keep racing: answer from the database alone, without caching.
        Ok(store
            .session_by_token_hash(hash, now)
            .await?
            .and_then(Session::from_row)
            .map(Arc::new))
    }

    pub async fn forget_token_hash(&self, hash: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(digest) = crypto::digest_from_hex(hash) {
            // Whatever holds the key goes: a session under the same key with another digest
            // (one in 2^64) is merely loaded again.
            self.cache.invalidate(&cache_key(&digest)).await;
        }
    }

    pub async fn forget_user(&self, user_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        // A user id that is not a UUID has no session here (`Session::from_row`).
        let Ok(user_id) = Uuid::parse_str(user_id) else {
            return;
        };
        // A walk over the cache (rare: a person's roles changed or they were removed) rather
        // than moka's invalidation closures, which cost every entry an allocation more.
        let theirs: Vec<u64> = self
            .cache
            .iter()
            .filter(|(_, s)| s.user_id == user_id)
            .map(|(k, _)| *k)
            .collect();
        for key in theirs {
            self.cache.invalidate(&key).await;
        }
    }

    /// How many sessions the cache holds, after its pending bookkeeping (a scrape's figure).
    pub async fn cached_count(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }
}

/// The session cache clears what every invalidation names (see `revocation::Bus`).
impl crate::revocation::Subscriber for Sessions {
    fn apply<'a>(
        &'a self,
        what: &'a crate::revocation::Invalidate,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match what {
                crate::revocation::Invalidate::Session(h) => self.forget_token_hash(h).await,
                crate::revocation::Invalidate::User(u) => self.forget_user(u).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig {
            cookie_name: "gatehouse_session".into(),
            effective_cookie_name: "gatehouse_session".into(),
            idle_timeout: Duration::from_secs(3600),
            absolute_timeout: Duration::from_secs(12 * 3600),
            cookie_domain: None,
        }
    }

    fn row(digest: [u8; 32]) -> SessionRow {
        SessionRow {
            id: uuid::Uuid::now_v7().to_string(),
            token_hash: crypto::hex(&digest),
            user_id: uuid::Uuid::now_v7().to_string(),
            stage: "active".into(),
            amr: "pwd,otp".into(),
            ip: String::new(),
            user_agent: String::new(),
            created_at: 0,
            last_seen_at: 1_700_000_000,
            expires_at: i64::MAX,
            revoked_at: None,
            parent_id: None,
            host: None,
            upstream_provider: None,
            upstream_refresh_token: None,
            upstream_subject: None,
            upstream_sid: None,
        }
    }

    fn session_with(digest: [u8; 32]) -> Arc<Session> {
        Arc::new(Session::from_row(row(digest)).expect("a valid row"))
    }

    #[tokio::test]
    async fn a_cookie_sharing_the_cache_key_never_gets_another_session() {
        let sessions = Sessions::new(config());
        let ours = [7u8; 32];
        let mut other = ours;
        other[31] ^= 1;
        assert_eq!(cache_key(&ours), cache_key(&other));
        let s = session_with(ours);
        sessions.cache.insert(cache_key(&ours), s.clone()).await;
        assert!(sessions.cached(&other).await.is_none());
        assert!(Arc::ptr_eq(&sessions.cached(&ours).await.unwrap(), &s));
        sessions.forget_token_hash(&crypto::hex(&ours)).await;
        assert!(sessions.cached(&ours).await.is_none());
    }

    #[tokio::test]
    async fn forgetting_a_user_evicts_only_their_sessions() {
        let sessions = Sessions::new(config());
        let (a, b) = (session_with([1; 32]), session_with([2; 32]));
        for s in [&a, &b] {
            sessions.cache.insert(cache_key(&s.digest), s.clone()).await;
        }
        let epoch = sessions.epoch();
        sessions.forget_user(&a.user_id.to_string()).await;
        assert!(sessions.epoch() > epoch);
        assert!(sessions.cached(&a.digest).await.is_none());
        assert!(sessions.cached(&b.digest).await.is_some());
    }

    #[test]
    fn rows_that_are_not_ours_are_no_session() {
        let mut row = row([3; 32]);
        row.id = "not-a-uuid".into();
        assert!(Session::from_row(row.clone()).is_none());
        row.id = uuid::Uuid::now_v7().to_string();
        let mut foreign_user = row.clone();
        foreign_user.user_id = "u1".into();
        assert!(Session::from_row(foreign_user).is_none());
        let s = Session::from_row(row).expect("valid");
        assert_eq!(s.amr(), vec!["pwd".to_string(), "otp".to_string()]);
    }
}
