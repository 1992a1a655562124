//! `[lockout]`.

use super::reader::{self, Section};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LockoutConfig {
    pub max_failures: u32,
    pub window: Duration,
    /// `None` = `lock_for = "manual"`: locked until an administrator unlocks.
    pub lock_for: Option<Duration>,
    pub ip_max_failures: u32,
    /// Upstream sign-ins one client address may start per `window` (each keeps a pending
    /// request for ten minutes).
    pub ip_max_sso_starts: u32,
}

pub(super) fn read_lockout(s: &Section) -> LockoutConfig {
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
    let ip_max_sso_starts = s.int("ip_max_sso_starts", 300, 1, 100_000_000) as u32;
    s.finish();
    LockoutConfig {
        max_failures,
        window,
        lock_for,
        ip_max_failures,
        ip_max_sso_starts,
    }
}
