//! Ending access everywhere: cache invalidations travel through the database to every running
//! instance (and to the one that made the change, at once). Each instance polls the
//! `invalidations` table a few times a second and records how far it has applied them, so a
//! writer — the admin CLI in another process, say — can wait until every live instance has
//! acted before it reports success.

use crate::auth::session::Sessions;
use crate::store::{self, Store};
use std::sync::Arc;
use std::time::Duration;

pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// An instance whose heartbeat is older than this is considered gone.
const ALIVE_WITHIN: i64 = 15;
const HEARTBEAT_EVERY: i64 = 5;

#[derive(Debug, Clone)]
pub enum Invalidate {
    /// One session, by the SHA-256 of its cookie value.
    Session(String),
    /// Every session and cached fact of a user (revocation, block, role change, ...).
    User(String),
}

impl Invalidate {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Invalidate::Session(h) => ("session", h),
            Invalidate::User(u) => ("user", u),
        }
    }
}

pub async fn apply(sessions: &Sessions, kind: &str, key: &str) {
    match kind {
        "session" => sessions.forget_token_hash(key).await,
        "user" => sessions.forget_user(key).await,
        other => tracing::warn!(kind = other, "unknown invalidation kind ignored"),
    }
}

/// Records the invalidation for all instances; returns its sequence number.
pub async fn publish(store: &Store, what: &Invalidate) -> store::Result<i64> {
    let (kind, key) = what.parts();
    store.publish_invalidation(kind, key, store::now()).await
}

/// Waits (at most `timeout`) until every live instance has applied invalidation `id`. Returns
/// the number of instances still behind (0 = confirmed everywhere).
pub async fn await_instances(store: &Store, id: i64, timeout: Duration) -> store::Result<i64> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let behind = store
            .instances_behind(id, store::now() - ALIVE_WITHIN)
            .await?;
        if behind == 0 || tokio::time::Instant::now() >= deadline {
            return Ok(behind);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The per-instance follower: applies new invalidations and heartbeats its cursor.
pub async fn follow(
    store: Store,
    sessions: Arc<Sessions>,
    instance_id: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut cursor = match store.latest_invalidation().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read invalidations; starting from zero");
            0
        }
    };
    let mut last_beat = 0;
    let mut last_prune = store::now();
    loop {
        match store.invalidations_after(cursor).await {
            Ok(items) => {
                for inv in &items {
                    apply(&sessions, &inv.kind, &inv.key).await;
                    cursor = inv.id;
                }
                let now = store::now();
                if !items.is_empty() || now - last_beat >= HEARTBEAT_EVERY {
                    if let Err(e) = store.heartbeat_instance(&instance_id, cursor, now).await {
                        tracing::warn!(error = %e, "instance heartbeat failed");
                    }
                    last_beat = now;
                }
                if now - last_prune > 3600 {
                    let _ = store.prune_invalidations(now - 86_400).await;
                    last_prune = now;
                }
            }
            Err(e) => tracing::warn!(error = %e, "polling invalidations failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = store.remove_instance(&instance_id).await;
}
