//! `/metrics`: Prometheus text for the addresses in `server.metrics_allow` (loopback by default).
//!
//! The proxy counts each request's outcome in counters of its own serving worker (one writer
//! each, on cache lines of their own: no shared line is written per request); a scrape adds
//! them up and hands them, with gauges read at that moment (cached sessions, seats held), to
//! the `metrics` recorder, whose Prometheus exporter renders the text. Audit events are counted
//! through the `metrics` facade as they are recorded.

use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// How the gateway dealt with one request for an app.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Sent to the upstream, which answered (whatever its status).
    Forwarded,
    /// No usable session: sent to sign-in (302) or refused with 401.
    Unauthenticated,
    /// Signed in but not allowed (403).
    Denied,
    /// `seat_overflow = "refuse"` and every licence in use.
    SeatsFull,
    /// The upstream could not be reached or broke the protocol (502).
    UpstreamUnreachable,
    /// The upstream did not answer within the app's timeout (504).
    UpstreamTimeout,
    /// The gateway failed (e.g. its database).
    Error,
    /// Forward-auth only: the front proxy may forward the request. Stays last (`OUTCOMES`).
    Allowed,
}

impl Outcome {
    /// The outcomes `gatehouse_proxy_requests_total` reports.
    pub const PROXIED: [Outcome; 7] = [
        Outcome::Forwarded,
        Outcome::Unauthenticated,
        Outcome::Denied,
        Outcome::SeatsFull,
        Outcome::UpstreamUnreachable,
        Outcome::UpstreamTimeout,
        Outcome::Error,
    ];
    /// The outcomes `gatehouse_verify_requests_total` reports.
    pub const VERIFIED: [Outcome; 5] = [
        Outcome::Allowed,
        Outcome::Unauthenticated,
        Outcome::Denied,
        Outcome::SeatsFull,
        Outcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Denied => "denied",
            Outcome::SeatsFull => "seats_full",
            Outcome::UpstreamUnreachable => "upstream_unreachable",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::Error => "error",
            Outcome::Allowed => "allowed",
        }
    }

    /// The outcome a response of the gateway's own carries (see `mark`); an upstream's answer
    /// carries none.
    pub fn of(r: &Response) -> Outcome {
        r.extensions()
            .get::<Outcome>()
            .copied()
            .unwrap_or(Outcome::Forwarded)
    }

    /// Marks a response the gateway made instead of the upstream (never sent on the wire).
    pub fn mark(self, mut r: Response) -> Response {
        r.extensions_mut().insert(self);
        r
    }
}

/// Counters per app: one per outcome (`Allowed` is the last).
const OUTCOMES: usize = Outcome::Allowed as usize + 1;

/// Eight counters on one cache line.
#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; 8]);

/// Per serving worker (and one slot for every other thread), per app, per outcome.
pub struct AppCounters {
    apps: usize,
    slots: Box<[Box<[Line]>]>,
}

impl AppCounters {
    pub fn new(apps: usize, workers: usize) -> AppCounters {
        let lines = (apps * OUTCOMES).div_ceil(8).max(1);
        AppCounters {
            apps,
            slots: (0..=workers)
                .map(|_| (0..lines).map(|_| Line::default()).collect())
                .collect(),
        }
    }

    fn cell(&self, slot: usize, idx: usize, outcome: Outcome) -> Option<&AtomicU64> {
        let i = idx * OUTCOMES + outcome as usize;
        if idx >= self.apps {
            return None;
        }
        Some(&self.slots.get(slot)?[i / 8].0[i % 8])
    }

    /// Counts one request for app `idx`, on the calling worker's own counters.
    pub fn count(&self, idx: usize, outcome: Outcome) {
        let slot = crate::server::worker_slot();
        if let Some(c) = self
            .cell(slot, idx, outcome)
            .or_else(|| self.cell(0, idx, outcome))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The total over every worker.
    pub fn total(&self, idx: usize, outcome: Outcome) -> u64 {
        (0..self.slots.len())
            .filter_map(|s| self.cell(s, idx, outcome))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// The gateway's metrics: the proxy's and forward-auth's counters and, in `serve`, the
/// installed recorder.
pub struct Metrics {
    pub proxy: AppCounters,
    pub verify: AppCounters,
    pub(crate) handle: OnceLock<PrometheusHandle>,
    pub(crate) started: i64,
}

impl Metrics {
    pub fn new(apps: usize, workers: usize) -> Metrics {
        Metrics {
            proxy: AppCounters::new(apps, workers),
            verify: AppCounters::new(apps, workers),
            handle: OnceLock::new(),
            started: crate::store::now(),
        }
    }

    /// Installs the process-wide Prometheus recorder (once, by `serve`). Without it, nothing
    /// is recorded and `/metrics` answers 503 (the admin CLI never installs one).
    pub fn install(&self) -> Result<(), String> {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
        describe();
        let _ = self.handle.set(handle);
        Ok(())
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "gatehouse_proxy_requests_total",
        "Requests for each app, by how the gateway dealt with them"
    );
    describe_counter!(
        "gatehouse_verify_requests_total",
        "Forward-auth (/.gatehouse/verify) answers for each app, by outcome"
    );
    describe_counter!(
        "gatehouse_audit_events_total",
        "Audit events recorded by this instance, by action and outcome"
    );
    describe_counter!(
        "gatehouse_deprovisioning_total",
        "Deprovisioning steps taken by this instance, by source (scim, backchannel, \
         revalidation, administrator) and step (sessions ended, users deactivated, ...)"
    );
    describe_counter!(
        "gatehouse_admin_deprovisioning_total",
        "Deprovisioning by administrators at the command line, by step (users blocked or \
         deleted, sessions ended), for the whole installation (read from the database)"
    );
    describe_gauge!(
        "gatehouse_sessions_cached",
        "Sessions held in this instance's cache"
    );
    describe_gauge!(
        "gatehouse_seats_in_use",
        "Modify seats held now, for apps with modify_seats"
    );
    describe_gauge!(
        "gatehouse_seats_licensed",
        "The licensed modify seats (modify_seats) of each app"
    );
    describe_gauge!(
        "gatehouse_build_info",
        "Always 1; the version is in the label"
    );
    describe_gauge!(
        "gatehouse_start_time_seconds",
        "When this instance started, in Unix seconds"
    );
}

/// Counts a deprovisioning step: `source` is what asked for it (`scim`, `backchannel`,
/// `revalidation`, `administrator`), `step` what was done (`sessions_ended`, `refused`, ...).
pub fn deprovisioning(source: &'static str, step: &'static str, n: u64) {
    ::metrics::counter!("gatehouse_deprovisioning_total", "source" => source, "step" => step)
        .increment(n);
}

/// Whether the client (its address as `trusted_proxies` decide it) is in `metrics_allow`; an
/// unknown peer never is.
pub fn may_read(
    server: &crate::config::ServerConfig,
    peer: Option<std::net::IpAddr>,
    xff: Option<&str>,
) -> bool {
    let Some(peer) = peer else {
        return false;
    };
    let ip = crate::web::client::client_ip(peer, xff, &server.trusted_proxies);
    server.metrics_allow.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    #[test]
    fn each_app_and_outcome_has_its_own_counter_summed_over_workers() {
        let c = AppCounters::new(3, 2);
        c.count(0, Outcome::Forwarded);
        c.count(2, Outcome::Error);
        c.count(2, Outcome::Error);
        // An app index that does not exist counts nowhere.
        c.count(3, Outcome::Forwarded);
        for idx in 0..3 {
            for o in Outcome::PROXIED.into_iter().chain(Outcome::VERIFIED) {
                let want = match (idx, o) {
                    (0, Outcome::Forwarded) => 1,
                    (2, Outcome::Error) => 2,
                    _ => 0,
                };
                assert_eq!(c.total(idx, o), want, "app {idx}, {o:?}");
            }
        }
        assert_eq!(c.total(3, Outcome::Forwarded), 0);
    }

    #[test]
    fn only_allowed_clients_read_metrics_and_an_unknown_peer_never() {
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        let server = crate::config::ServerConfig {
            listen: "127.0.0.1:8080".parse().unwrap(),
            public_url: url::Url::parse("http://localhost:8080").unwrap(),
            trusted_proxies: vec![net("192.0.2.1/32")],
            metrics_allow: vec![net("127.0.0.0/8"), net("10.0.0.0/8")],
            shutdown_grace: std::time::Duration::from_secs(1),
            workers: 1,
            tls: None,
        };
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(may_read(&server, ip("127.0.0.1"), None));
        assert!(!may_read(&server, None, None));
        assert!(!may_read(&server, None, Some("127.0.0.1")));
        // An untrusted client's own X-Forwarded-For is not believed.
        assert!(!may_read(&server, ip("203.0.113.9"), Some("10.1.2.3")));
        // A trusted proxy's is.
        assert!(may_read(&server, ip("192.0.2.1"), Some("10.1.2.3")));
        assert!(!may_read(&server, ip("192.0.2.1"), Some("203.0.113.9")));
        assert!(!may_read(&server, ip("192.0.2.1"), None));
    }

    #[test]
    fn gateway_responses_carry_their_outcome_and_upstream_ones_none() {
        let r = Outcome::Denied.mark(StatusCode::FORBIDDEN.into_response());
        assert_eq!(Outcome::of(&r), Outcome::Denied);
        assert_eq!(
            Outcome::of(&StatusCode::FORBIDDEN.into_response()),
            Outcome::Forwarded
        );
    }
}
