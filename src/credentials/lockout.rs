//! Where lockout is decided.
//!
//! Per account: `[lockout] max_failures` failed attempts within `window` lock the account for
//! `lock_for` (or until an administrator unlocks). An attempt *takes a slot before* the password
//! is checked, in one atomic UPDATE, so any number of parallel guesses gets at most
//! `max_failures` verifications; a correct password gives its slot back.
//!
//! Per client IP: `ip_max_failures` failures per window, counted in memory, stop further
//! attempts from that address whatever account they aim at; and `ip_max_sso_starts` upstream
//! sign-ins started per window (each leaves a pending request in the database for a while),
//! so that one address cannot fill the table.
//!
//! The caller answers every refusal the same way ("wrong email or password"), so a locked
//! account is indistinguishable from a wrong password or an unknown address.

use crate::config::LockoutConfig;
pub use crate::directory::is_locked;
use crate::store::{self, Store};
use moka::sync::Cache;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// `locked_until` for `lock_for = "manual"`.
pub const LOCKED_UNTIL_ADMIN: i64 = i64::MAX;

pub struct Lockout {
    cfg: LockoutConfig,
    ip_failures: Cache<IpAddr, Arc<AtomicU32>>,
    ip_sso_starts: Cache<IpAddr, Arc<AtomicU32>>,
}

pub enum Slot {
    /// The attempt may check the password; `count` slots are now taken in this window.
    Taken { count: i64 },
    /// Locked, or every slot taken by attempts in flight.
    Refused,
}

impl Lockout {
    pub fn new(cfg: LockoutConfig) -> Lockout {
        Lockout {
            ip_failures: Cache::builder()
                .time_to_live(cfg.window)
                .max_capacity(100_000)
                .build(),
            ip_sso_starts: Cache::builder()
                .time_to_live(cfg.window)
                .max_capacity(100_000)
                .build(),
            cfg,
        }
    }

    pub fn ip_blocked(&self, ip: IpAddr) -> bool {
        self.ip_failures
            .get(&ip)
            .is_some_and(|n| n.load(Ordering::Relaxed) >= self.cfg.ip_max_failures)
    }

    /// Counts an upstream sign-in started from `ip`; `false` once the address has started
    /// `ip_max_sso_starts` within the window.
    pub fn sso_start(&self, ip: IpAddr) -> bool {
        let n = self
            .ip_sso_starts
            .get_with(ip, || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
        n < self.cfg.ip_max_sso_starts
    }

    /// How long a refused address waits at most (the window).
    pub fn window_secs(&self) -> u64 {
        self.cfg.window.as_secs().max(1)
    }

    pub fn record_ip_failure(&self, ip: IpAddr) {
        self.ip_failures
            .get_with(ip, || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub async fn take_slot(&self, store: &Store, user_id: &str) -> store::Result<Slot> {
        let now = store::now();
        let window_start = now - self.cfg.window.as_secs() as i64;
        Ok(
            match store
                .take_attempt(user_id, now, window_start, self.cfg.max_failures as i64)
                .await?
            {
                Some(count) => Slot::Taken { count },
                None => Slot::Refused,
            },
        )
    }

    /// After a failed verification: locks the account when this failure used the last slot.
    /// Returns true when this call locked it.
    pub async fn failed(&self, store: &Store, user_id: &str, count: i64) -> store::Result<bool> {
        if count < self.cfg.max_failures as i64 {
            return Ok(false);
        }
        let now = store::now();
        let until = match self.cfg.lock_for {
            Some(d) => now.saturating_add(d.as_secs() as i64),
            None => LOCKED_UNTIL_ADMIN,
        };
        store.lock_user(user_id, until, now).await
    }

    pub async fn succeeded(&self, store: &Store, user_id: &str) -> store::Result<()> {
        store.clear_failures(user_id).await
    }
}
