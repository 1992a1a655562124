//! What the proxy keeps for the life of the server: the route table, the upstream pools, each
//! app's identity header names and strip set, the gateway's cookie names, the assertions held.
//! It holds the shared [`Core`] and derefs to it, so the proxy's code reads `proxy.store`,
//! `proxy.config` and `proxy.routes` alike.

use super::forward::Upstreams;
use super::headers::{encode_value, put_encoded};
use super::routes;
use crate::config::app::ALL_PRESET_NAMES;
use crate::core::Core;
use crate::session::{AppAccess, KeptAssertions};
use crate::web::request::sent_host;
use axum::http::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

/// Signed assertions kept in memory at most (≈ 0.7 KB each).
const KEPT_ASSERTIONS: usize = 10_000;

pub struct Proxy {
    pub core: Arc<Core>,
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
    pub kept_assertions: KeptAssertions,
    /// Denied requests are audited at most once a minute per user, app and reason.
    pub(super) denied_audited: moka::sync::Cache<(String, usize, crate::directory::DenyReason), ()>,
}

/// The header names an app receives the identity under.
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

    /// Every identity header but the assertion, with its value, in this order: user, email,
    /// name, roles, the organization's slug (only for a member), seat. Both proxy paths and forward-auth
    /// take their headers from here (`write_lines`, `headers`), so they send the same ones.
    fn pairs<'a>(
        &'a self,
        access: &'a AppAccess,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a str)> {
        let org = access.org().map(|slug| (&self.org, slug));
        [
            (&self.user, access.user_id()),
            (&self.email, access.email()),
            (&self.name, access.name()),
            (&self.roles, access.roles_text()),
        ]
        .into_iter()
        .chain(org)
        .chain([(&self.seat, access.seat.as_str())])
    }

    /// The identity headers except the assertion, as they go on the wire (`name: value\r\n`
    /// each), appended to `out`.
    pub fn write_lines(&self, access: &AppAccess, out: &mut Vec<u8>) {
        for (name, value) in self.pairs(access) {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            put_encoded(out, value);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The identity headers except the assertion (for the hyper path and forward-auth).
    pub fn headers(&self, access: &AppAccess) -> Vec<(HeaderName, HeaderValue)> {
        self.pairs(access)
            .map(|(n, v)| (n.clone(), encode_value(v)))
            .collect()
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

impl std::ops::Deref for Proxy {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Proxy {
    /// `gateway_cookies`: the names of the gateway's own cookies (see the field).
    pub fn new(core: Arc<Core>, gateway_cookies: Vec<String>) -> Proxy {
        let config = &core.config;
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
            kept_assertions: KeptAssertions::new(KEPT_ASSERTIONS),
            denied_audited: moka::sync::Cache::builder()
                .time_to_live(Duration::from_secs(60))
                .max_capacity(100_000)
                .build(),
            core,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::SeatKind;

    #[test]
    fn wire_lines_say_what_the_headers_say() {
        let names = IdentityNames::new(&crate::config::app::preset("oauth2-proxy").unwrap());
        for org in ["", "acme"] {
            let a = AppAccess::new(
                ["u-1", "zoë@example.com", "Zoë 100%", org, "admin,modify"],
                SeatKind::Modify,
                None,
            );
            let mut lines = Vec::new();
            names.write_lines(&a, &mut lines);
            let mut expected = Vec::new();
            for (n, v) in names.headers(&a) {
                expected.extend_from_slice(format!("{}: ", n.as_str()).as_bytes());
                expected.extend_from_slice(v.as_bytes());
                expected.extend_from_slice(b"\r\n");
            }
            assert_eq!(
                String::from_utf8(lines).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            // The organization's header is sent for a member only.
            let sent: Vec<String> = names
                .headers(&a)
                .iter()
                .map(|(n, _)| n.as_str().to_string())
                .collect();
            let want = [
                "x-forwarded-user",
                "x-forwarded-email",
                "x-forwarded-preferred-username",
                "x-forwarded-groups",
            ]
            .into_iter()
            .chain((!org.is_empty()).then_some("x-gatehouse-org"))
            .chain(["x-gatehouse-seat"]);
            assert_eq!(sent, want.collect::<Vec<_>>(), "org {org:?}");
        }
        assert_eq!(
            encode_value("Zoë 100%").to_str().unwrap(),
            "Zo%C3%AB 100%25"
        );
    }
}
