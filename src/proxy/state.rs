//! What the proxy keeps for the life of the server: the route table, the upstream pools, each
//! app's identity header names and strip set, the gateway's cookie names, the assertions held.

use super::access;
use super::forward::Upstreams;
use super::request::sent_host;
use super::routes;
use crate::config::app::ALL_PRESET_NAMES;
use axum::http::HeaderName;
use std::time::Duration;

/// Signed assertions kept in memory at most (≈ 0.7 KB each).
const KEPT_ASSERTIONS: usize = 10_000;

pub struct Proxy {
    pub routes: routes::Routes,
    pub upstreams: Upstreams,
    /// Per app: its identity header names, parsed once.
    pub names: Vec<IdentityNames>,
    /// Per app: every identity header name to remove from incoming requests.
    pub strip: Vec<Vec<HeaderName>>,
    /// The gateway's own cookies (session, CSRF, handoff state): never passed to an upstream,
    /// never set by one.
    pub gateway_cookies: Vec<String>,
    /// Which sessions × apps hold a signed assertion in memory (bounded).
    pub kept_assertions: access::KeptAssertions,
    /// Denied requests are audited at most once a minute per user, app and reason.
    pub(super) denied_audited: moka::sync::Cache<(String, usize, crate::directory::DenyReason), ()>,
}

/// The header names an app receives the identity under (`org` is not sent yet).
pub struct IdentityNames {
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub roles: HeaderName,
    pub org: HeaderName,
    pub seat: HeaderName,
    pub assertion: HeaderName,
}

impl IdentityNames {
    /// The headers that say who the user is, in the order user, email, name, roles, seat.
    pub fn identity(&self) -> [&HeaderName; 5] {
        [&self.user, &self.email, &self.name, &self.roles, &self.seat]
    }

    pub fn new(h: &crate::config::app::HeaderNames) -> IdentityNames {
        let n = |s: &str| HeaderName::from_bytes(s.as_bytes()).expect("validated in config");
        IdentityNames {
            user: n(&h.user),
            email: n(&h.email),
            name: n(&h.name),
            roles: n(&h.roles),
            org: n(&h.org),
            seat: n(&h.seat),
            assertion: n(&h.assertion),
        }
    }

    fn all(&self) -> [&HeaderName; 7] {
        [
            &self.user,
            &self.email,
            &self.name,
            &self.roles,
            &self.org,
            &self.seat,
            &self.assertion,
        ]
    }
}

impl Proxy {
    pub fn new(config: &crate::config::Config, gateway_cookies: Vec<String>) -> Proxy {
        let names: Vec<IdentityNames> = config
            .apps
            .iter()
            .map(|a| IdentityNames::new(&a.headers))
            .collect();
        let strip = names
            .iter()
            .map(|own| {
                let mut strip: Vec<HeaderName> = ALL_PRESET_NAMES
                    .iter()
                    .map(|n| HeaderName::from_static(n))
                    .collect();
                for n in own.all() {
                    if !strip.contains(n) {
                        strip.push(n.clone());
                    }
                }
                strip
            })
            .collect();
        Proxy {
            routes: routes::Routes::new(&config.apps),
            upstreams: Upstreams::new(&config.apps, config.server.workers),
            names,
            strip,
            gateway_cookies,
            kept_assertions: access::KeptAssertions::new(KEPT_ASSERTIONS),
            denied_audited: moka::sync::Cache::builder()
                .time_to_live(Duration::from_secs(60))
                .max_capacity(100_000)
                .build(),
        }
    }
}

impl Proxy {
    /// The app a request is for, if any (its target already canonical, see
    /// `web::request::admit`). Runs before the gateway's own routing.
    pub fn route<B>(
        &self,
        req: &axum::http::Request<B>,
    ) -> Result<Option<usize>, routes::Ambiguous> {
        self.routes
            .route(sent_host(req.uri(), req.headers()), req.uri().path())
    }
}
