//! One proxied request through hyper (HTTP/2, HTTP/1.0, chunked bodies, upgrades, `https://`
//! upstreams; the fast path is `relay`): session, access decision, refusals, the identity
//! stamped after the client's headers are cleaned, then forwarding.

use super::access::{self, Decision};
use super::forward::{self, Hop, gateway_error};
use super::headers;
use crate::audit::{self, Actor};
use crate::auth::{active_session, login_url, original_url};
use crate::directory::DenyReason;
use crate::metrics::Outcome;
use crate::proxy::Proxy;
use crate::session::AppAccess;
use crate::web::client::client_ip;
use crate::web::request::{accepts_html, forwarded_host, sent_host};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Not signed in: a browser navigation goes to sign-in (and comes back to this exact URL);
/// anything else gets a 401 it can act on.
fn unauthenticated(
    proxy: &Proxy,
    host: &str,
    method: &Method,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Response {
    let login = login_url(proxy, &original_url(proxy, host, uri));
    if (method == Method::GET || method == Method::HEAD) && accepts_html(headers) {
        let mut r = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&login) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Outcome::Unauthenticated.mark(r);
    }
    Outcome::Unauthenticated.mark(crate::error::json_body(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error": "unauthorized", "message": "Sign in first.", "login_url": login }),
    ))
}

pub async fn audit_denied(
    proxy: &Proxy,
    idx: usize,
    access: &AppAccess,
    reason: DenyReason,
    path: &str,
    ip: &str,
) {
    let key = (access.user_id().to_string(), idx, reason);
    if proxy.denied_audited.contains_key(&key) {
        return;
    }
    proxy.denied_audited.insert(key, ());
    audit::record(
        &proxy.store,
        audit::Event {
            action: "proxy.denied",
            outcome: "denied",
            actor: &Actor::user(access.user_id(), access.email()),
            target: &proxy.config.apps[idx].id,
            target_user_id: Some(access.user_id()),
            ip,
            details: serde_json::json!({ "reason": reason.as_str(), "path": path }),
        },
    )
    .await;
}

pub fn forbidden(wants_html: bool, reason: DenyReason) -> Response {
    let message = match reason {
        DenyReason::BackOffice => {
            "This part of the application is for staff with modify rights only."
        }
        DenyReason::PathRule => "Your role does not give access to this part of the application.",
        DenyReason::NoRole => {
            "Your account has no access to this application. Ask an administrator for a role."
        }
        DenyReason::OrganizationMember => {
            "This application is not open to members of partner organizations."
        }
        DenyReason::OrganizationNotAllowed => {
            "This application is not open to members of your organization."
        }
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
    proxy: &Proxy,
    idx: usize,
    headers: &mut HeaderMap,
    access: &Arc<AppAccess>,
    session: &crate::session::Session,
) {
    for (n, v) in proxy.names[idx].headers(access) {
        headers.insert(n, v);
    }
    headers.insert(
        proxy.names[idx].assertion.clone(),
        access::assertion(proxy, access, &proxy.config.apps[idx], session),
    );
}

/// One request for app `idx` (see `Proxy::route`) from `peer`, counted by its outcome.
pub async fn handle(
    proxy: Arc<Proxy>,
    idx: usize,
    peer: SocketAddr,
    req: axum::http::Request<axum::body::Body>,
) -> Response {
    let r = answer(&proxy, idx, peer, req).await;
    proxy.metrics.proxy.count(idx, Outcome::of(&r));
    r
}

async fn answer(
    proxy: &Arc<Proxy>,
    idx: usize,
    peer: SocketAddr,
    mut req: axum::http::Request<axum::body::Body>,
) -> Response {
    let app = &proxy.config.apps[idx];
    // Owned: the request is changed and sent on while the host is still needed.
    let host = forwarded_host(sent_host(req.uri(), req.headers())).into_owned();
    let host_str = host.as_str();
    let peer = peer.ip();
    let trusted = &proxy.config.server.trusted_proxies;
    let peer_trusted = trusted.iter().any(|n| n.contains(&peer));
    let ip = client_ip(
        peer,
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        trusted,
    );
    let wants_html = accepts_html(req.headers());
    let session = match active_session(proxy, req.headers(), host_str).await {
        Ok(s) => s,
        Err(e) => return Outcome::Error.mark(e.into_response()),
    };
    let Some(session) = session else {
        return unauthenticated(proxy, host_str, req.method(), req.headers(), req.uri());
    };
    let access = match access::decide(proxy, &session, idx, req.uri().path()).await {
        Err(e) => return Outcome::Error.mark(e.into_response()),
        Ok(None) => {
            return unauthenticated(proxy, host_str, req.method(), req.headers(), req.uri());
        }
        Ok(Some(Decision::Deny { reason, access })) => {
            let path = req.uri().path();
            audit_denied(proxy, idx, &access, reason, path, &ip.to_string()).await;
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
    headers::clean_request(headers, &proxy.strip[idx], peer_trusted);
    stamp_identity(proxy, idx, headers, &access, &session);
    headers::strip_cookies(headers, &proxy.gateway_cookies);
    let proto = proxy.config.server.public_url.scheme();
    let hop = Hop {
        client_ip: ip,
        peer_trusted,
        proto,
        host: &host,
    };
    let gateway_cookies = &proxy.gateway_cookies;
    forward::forward(
        &proxy.upstreams,
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
