//! The identity-aware reverse proxy: the route table, the access decision, identity headers
//! and the signed assertion, forwarding, forward-auth (`/.gatehouse/verify`), and the handoff
//! that signs a browser in on an app's own host.

pub mod access;
pub mod forward;
pub mod handoff;
pub mod headers;
pub mod relay;
pub mod routes;
pub mod target;
pub mod verify;
pub mod whoami;

use crate::app::{AppState, Core};
use crate::audit::{self, Actor};
use crate::config::app::ALL_PRESET_NAMES;
use crate::metrics::Outcome;
use crate::web::client::client_ip;
use access::{AppAccess, Decision};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use forward::{Hop, Upstreams, gateway_error};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Signed assertions kept in memory at most (≈ 0.7 KB each).
const KEPT_ASSERTIONS: usize = 10_000;

pub struct Proxy {
    pub routes: routes::Routes,
    pub upstreams: Upstreams,
    /// Per app: its identity header names, parsed once.
    pub names: Vec<IdentityNames>,
    /// Per app: every identity header name to remove from incoming requests.
    strip: Vec<Vec<HeaderName>>,
    /// The gateway's own cookies (session, CSRF, handoff state): never passed to an upstream,
    /// never set by one.
    pub gateway_cookies: Vec<String>,
    /// Which sessions × apps hold a signed assertion in memory (bounded).
    pub kept_assertions: access::KeptAssertions,
    /// Denied requests are audited at most once a minute per user, app and reason.
    denied_audited: moka::sync::Cache<(String, usize, &'static str), ()>,
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

    fn new(h: &crate::config::app::HeaderNames) -> IdentityNames {
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

/// The host the client addressed (HTTP/2 `:authority` or HTTP/1 `Host`), lowercased.
pub fn request_host(uri: &axum::http::Uri, headers: &HeaderMap) -> String {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .is_some_and(|v| accept_has_html(v.as_bytes()))
}

/// An `Accept` value that lists `text/html` (a browser navigation).
pub fn accept_has_html(accept: &[u8]) -> bool {
    accept.windows(9).any(|w| w == b"text/html")
}

/// The `Host` the client sent, lowercased, for `X-Forwarded-Host` and `Forwarded`. A request
/// routed to an app names one of the configured hosts (`Routes::lookup`), so it is plain ASCII;
/// no copy unless it came in upper case.
pub fn forwarded_host(sent: &str) -> std::borrow::Cow<'_, str> {
    if sent.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(sent.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(sent)
    }
}

/// The host as the client sent it (HTTP/2 `:authority` or HTTP/1 `Host`), not lowercased.
fn sent_host<'a>(uri: &'a axum::http::Uri, headers: &'a HeaderMap) -> &'a str {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
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

/// The URL the browser asked for, as it will be after sign-in.
pub fn original_url(core: &Core, host: &str, uri: &axum::http::Uri) -> String {
    format!(
        "{}://{host}{}",
        core.config.server.public_url.scheme(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    )
}

pub fn login_url(core: &Core, rd: &str) -> String {
    core.public_url(&format!(
        "/login?rd={}",
        url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
    ))
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Not signed in: a browser navigation goes to sign-in (and comes back to this exact URL);
/// anything else gets a 401 it can act on.
fn unauthenticated(
    core: &Core,
    host: &str,
    method: &Method,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Response {
    let login = login_url(core, &original_url(core, host, uri));
    if (method == Method::GET || method == Method::HEAD) && accepts_html(headers) {
        let mut r = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&login) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Outcome::Unauthenticated.mark(r);
    }
    Outcome::Unauthenticated.mark(json_response(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error": "unauthorized", "message": "Sign in first.", "login_url": login }),
    ))
}

pub async fn audit_denied(
    core: &Core,
    idx: usize,
    access: &AppAccess,
    reason: &'static str,
    path: &str,
    ip: &str,
) {
    let key = (access.user_id().to_string(), idx, reason);
    if core.proxy.denied_audited.contains_key(&key) {
        return;
    }
    core.proxy.denied_audited.insert(key, ());
    audit::record(
        &core.store,
        audit::Event {
            action: "proxy.denied",
            outcome: "denied",
            actor: &Actor::user(access.user_id(), access.email()),
            target: &core.config.apps[idx].id,
            target_user_id: Some(access.user_id()),
            ip,
            details: serde_json::json!({ "reason": reason, "path": path }),
        },
    )
    .await;
}

pub fn forbidden(wants_html: bool, reason: &str) -> Response {
    let message = match reason {
        "back_office" => "This part of the application is for staff with modify rights only.",
        "path_rule" => "Your role does not give access to this part of the application.",
        _ => "Your account has no access to this application. Ask an administrator for a role.",
    };
    Outcome::Denied.mark(gateway_error(StatusCode::FORBIDDEN, wants_html, message))
}

pub fn seats_full(frees_at: i64, licensed: u32, wants_html: bool) -> Response {
    let wait = (frees_at - crate::store::now()).max(1);
    let message = format!(
        "All {licensed} licences are in use. A licence frees up when a modify user has been inactive for a while — the next one by {} (in about {} minute(s)). Try again then.",
        audit::format_time(frees_at),
        (wait + 59) / 60
    );
    let mut r = gateway_error(StatusCode::SERVICE_UNAVAILABLE, wants_html, &message);
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Outcome::SeatsFull.mark(r)
}

/// Adds the identity headers and the assertion (any client copies are already gone, see
/// `headers::clean_request`).
pub fn stamp_identity(
    core: &Core,
    idx: usize,
    headers: &mut HeaderMap,
    access: &Arc<AppAccess>,
    session: &crate::auth::session::Session,
) {
    for (n, v) in access.headers(&core.proxy.names[idx]) {
        headers.insert(n, v);
    }
    headers.insert(
        core.proxy.names[idx].assertion.clone(),
        access.assertion(core, &core.config.apps[idx], session),
    );
}

/// One request for app `idx` (see `Proxy::route`) from `peer`, counted by its outcome.
pub async fn handle(
    core: AppState,
    idx: usize,
    peer: SocketAddr,
    req: axum::http::Request<axum::body::Body>,
) -> Response {
    let r = answer(&core, idx, peer, req).await;
    core.metrics.proxy.count(idx, Outcome::of(&r));
    r
}

async fn answer(
    core: &AppState,
    idx: usize,
    peer: SocketAddr,
    mut req: axum::http::Request<axum::body::Body>,
) -> Response {
    let app = &core.config.apps[idx];
    // Owned: the request is changed and sent on while the host is still needed.
    let host = forwarded_host(sent_host(req.uri(), req.headers())).into_owned();
    let host_str = host.as_str();
    let peer = peer.ip();
    let trusted = &core.config.server.trusted_proxies;
    let peer_trusted = trusted.iter().any(|n| n.contains(&peer));
    let ip = client_ip(
        peer,
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        trusted,
    );
    let wants_html = accepts_html(req.headers());
    let session = match active_session(core, req.headers(), host_str).await {
        Ok(s) => s,
        Err(e) => return Outcome::Error.mark(e.into_response()),
    };
    let Some(session) = session else {
        return unauthenticated(core, host_str, req.method(), req.headers(), req.uri());
    };
    let access = match access::decide(core, &session, idx, req.uri().path()).await {
        Err(e) => return Outcome::Error.mark(e.into_response()),
        Ok(None) => {
            return unauthenticated(core, host_str, req.method(), req.headers(), req.uri());
        }
        Ok(Some(Decision::Deny { reason, access })) => {
            let path = req.uri().path();
            audit_denied(core, idx, &access, reason, path, &ip.to_string()).await;
            return forbidden(wants_html, reason);
        }
        Ok(Some(Decision::SeatsFull { frees_at, licensed })) => {
            return seats_full(frees_at, licensed, wants_html);
        }
        Ok(Some(Decision::Allow(access))) => access,
    };
    // The client's headers are cleaned before the gateway's are added, so nothing the client
    // sends (not even a `Connection` naming them) can remove the gateway's own.
    let upgrade = forward::take_upgrade(&mut req);
    let headers = req.headers_mut();
    headers::clean_request(headers, &core.proxy.strip[idx], peer_trusted);
    stamp_identity(core, idx, headers, &access, &session);
    headers::strip_cookies(headers, &core.proxy.gateway_cookies);
    let proto = core.config.server.public_url.scheme();
    let hop = Hop {
        client_ip: ip,
        peer_trusted,
        proto,
        host: &host,
    };
    let gateway_cookies = &core.proxy.gateway_cookies;
    forward::forward(
        &core.proxy.upstreams,
        idx,
        app,
        req,
        upgrade,
        &hop,
        gateway_cookies,
        wants_html,
    )
    .await
}

/// The fully signed-in session behind the request's cookie, for a request to `host` (a
/// session still at a sign-in step does not pass the proxy; one made for another app host
/// does not count here).
pub async fn active_session(
    core: &Core,
    headers: &HeaderMap,
    host: &str,
) -> Result<Option<Arc<crate::auth::session::Session>>, crate::error::AppError> {
    Ok(crate::auth::current_session_on(core, headers, host)
        .await?
        .filter(|s| s.stage == crate::auth::session::Stage::Active))
}

/// `/.well-known/jwks.json`: the keys that verify assertions.
pub async fn get_jwks(State(core): State<AppState>) -> Response {
    let mut r = json_response(StatusCode::OK, core.signer.jwks().clone());
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

pub type SharedAccess = Arc<AppAccess>;
