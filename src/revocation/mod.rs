//! Ending access everywhere: cache invalidations travel through the database to every running
//! instance (and to the one that made the change, at once). Each instance reads the
//! `invalidations` table and records how far it has applied them, so a writer — the admin CLI
//! in another process, say — can wait until every live instance has acted before it reports
//! success. On PostgreSQL a `NOTIFY` tells every instance at once that a row was added (it
//! then reads the table; a sweep every second catches anything missed); without
//! notifications — SQLite, or while the listening connection is down and being made again
//! after a database restart — the table is polled five times a second.
//!
//! Whatever holds state that an invalidation must clear subscribes to the `Bus` (the session
//! cache now; issued tokens, access caches and outgoing back-channel logouts as they come):
//! an invalidation, made here or read from the table, is dispatched once, to every subscriber.

use crate::store::{self, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the table is read when no notifications arrive (SQLite, or the listener down).
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often it is read anyway while notifications arrive.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The wait before making the listener again after its connection failed.
const RELISTEN_AFTER: Duration = Duration::from_millis(500);
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
    /// How the invalidations table spells it.
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Invalidate::Session(h) => ("session", h),
            Invalidate::User(u) => ("user", u),
        }
    }

    /// A row of the invalidations table read back (`None` for a kind this version does not
    /// know, written by a newer instance).
    fn parse(kind: &str, key: &str) -> Option<Invalidate> {
        match kind {
            "session" => Some(Invalidate::Session(key.to_string())),
            "user" => Some(Invalidate::User(key.to_string())),
            _ => None,
        }
    }
}

/// A holder of state that invalidations clear.
pub trait Subscriber: Send + Sync {
    fn apply<'a>(&'a self, what: &'a Invalidate) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// Every subscriber of this instance, to which each invalidation is dispatched once.
#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Vec<Arc<dyn Subscriber>>,
}

impl Bus {
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Bus {
        Bus { subscribers }
    }

    /// Applies `what` here, to every subscriber.
    pub async fn apply(&self, what: &Invalidate) {
        for s in &self.subscribers {
            s.apply(what).await;
        }
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
    bus: Bus,
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
    let wake = Arc::new(Notify::new());
    let listening = Arc::new(AtomicBool::new(false));
    let listener = tokio::spawn(listen(
        store.clone(),
        wake.clone(),
        listening.clone(),
        stop.clone(),
    ));
    loop {
        match store.invalidations_after(cursor).await {
            Ok(items) => {
                for inv in &items {
                    match Invalidate::parse(&inv.kind, &inv.key) {
                        Some(what) => bus.apply(&what).await,
                        None => {
                            tracing::warn!(kind = %inv.kind, "unknown invalidation kind ignored")
                        }
                    }
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
        let wait = if listening.load(Ordering::Relaxed) {
            SWEEP_EVERY
        } else {
            POLL_EVERY
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    listener.abort();
    let _ = store.remove_instance(&instance_id).await;
}

/// Keeps a connection listening for invalidation notifications (PostgreSQL), waking the
/// follower at each; `listening` says whether one is up. A lost connection (a database
/// restart, say) wakes the follower to read what it may have missed, and is made again and
/// re-subscribed; meanwhile the follower polls.
async fn listen(
    store: Store,
    wake: Arc<Notify>,
    listening: Arc<AtomicBool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut lost_before = false;
    loop {
        match store.listen_invalidations().await {
            Ok(None) => return,
            Ok(Some(mut l)) => {
                listening.store(true, Ordering::Relaxed);
                if lost_before {
                    tracing::info!("invalidation notifications resumed");
                } else {
                    tracing::info!("invalidation notifications on");
                }
                // Whatever was published while no one listened.
                wake.notify_one();
                loop {
                    let signal = tokio::select! {
                        s = l.next() => s,
                        _ = stop.changed() => return,
                    };
                    match signal {
                        store::Signal::Notified => wake.notify_one(),
                        store::Signal::Lost(cause) => {
                            listening.store(false, Ordering::Relaxed);
                            tracing::warn!(%cause, "invalidation notifications lost; polling until they resume");
                            wake.notify_one();
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                listening.store(false, Ordering::Relaxed);
                if !lost_before {
                    tracing::warn!(error = %e, "no invalidation notifications; polling");
                }
            }
        }
        lost_before = true;
        tokio::select! {
            _ = tokio::time::sleep(RELISTEN_AFTER) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Subscriber for Recorder {
        fn apply<'a>(
            &'a self,
            what: &'a Invalidate,
        ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
            Box::pin(async move {
                let (kind, key) = what.parts();
                self.0.lock().unwrap().push(format!("{kind}:{key}"));
            })
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_each_invalidation_once() {
        let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let bus = Bus::new(vec![a.clone(), b.clone()]);
        bus.apply(&Invalidate::User("u1".into())).await;
        bus.apply(&Invalidate::Session("h1".into())).await;
        for r in [&a, &b] {
            assert_eq!(*r.0.lock().unwrap(), ["user:u1", "session:h1"]);
        }
    }

    #[test]
    fn table_rows_read_back_as_what_was_written() {
        for what in [
            Invalidate::User("u".into()),
            Invalidate::Session("h".into()),
        ] {
            let (kind, key) = what.parts();
            let back = Invalidate::parse(kind, key).unwrap();
            assert_eq!(back.parts(), (kind, key));
        }
        assert!(Invalidate::parse("token", "x").is_none());
    }
}
