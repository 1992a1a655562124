//! Forward-auth: `GET /.gatehouse/verify` for nginx `auth_request`, Traefik `ForwardAuth` and
//! Caddy `forward_auth`. The original request is described by `X-Original-URL`, or by
//! `X-Forwarded-Proto`/`-Host`/`-Uri` (Traefik, Caddy), or `X-Original-URI` + `Host` (nginx).
//! Answers 200 with the identity headers, 401 (or 302 to sign-in with `?redirect=1`), or 403.
//!
//! Those descriptions are only believed from `[server] trusted_proxies`: anyone else asking is
//! refused (403), since a client that reaches this endpoint directly could describe any
//! request it likes. Proxies also pass the client's own headers on to this call, and each sets
//! only some of these (Traefik and Caddy the `X-Forwarded-*` ones, nginx whatever its snippet
//! names), so when the request is described more than once every description must agree, or
//! the answer is `400`: otherwise a client could add an `X-Original-URL` naming a path it may
//! use while asking the proxy for one it may not, or an `X-Forwarded-Host` naming a more
//! permissive app than the `Host` its proxy set. `Host` describes the original request when it
//! names an app host (nginx's `proxy_set_header Host $host`); a proxy that calls the gateway
//! by the gateway's own address sends no description in it. The paths are compared, and the
//! app chosen, in their canonical form (`proxy::target`), as for proxied requests.

use super::access::Decision;
use super::target;
use crate::metrics::Outcome;
use crate::proxy::Proxy;
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    redirect: Option<String>,
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// A header that describes the original request: present at most once (repeated with another
/// value, it is one description too many).
fn described<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, &'static str> {
    let first = h(headers, name);
    if headers
        .get_all(name)
        .iter()
        .any(|v| Some(v.as_bytes()) != first.map(str::as_bytes))
    {
        return Err("A header describing the original request is repeated with different values.");
    }
    Ok(first)
}

/// The request being checked.
#[derive(Debug, PartialEq)]
struct Original {
    /// From `X-Original-URL` or `X-Forwarded-Proto`, when given.
    scheme: Option<String>,
    host: String,
    /// Canonical (`proxy::target::canonical`).
    path_and_query: String,
}

/// A host for comparison: lowercased, without the default port of either scheme.
fn host_key(host: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    match h.strip_suffix(":80").or_else(|| h.strip_suffix(":443")) {
        Some(bare) => bare.to_string(),
        None => h,
    }
}

fn path_of(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or("/")
}

/// The original request as the headers describe it. `is_app_host` tells whether `Host` names
/// an app host (and so describes the original request rather than the gateway's address).
fn original(
    headers: &HeaderMap,
    is_app_host: impl Fn(&str) -> bool,
) -> Result<Original, &'static str> {
    let mut scheme = None;
    // Every description of the host, and of the path (and query), most precise first.
    let mut hosts: Vec<String> = Vec::new();
    let mut uris: Vec<String> = Vec::new();
    if let Some(u) = described(headers, "x-original-url")? {
        if u.starts_with('/') {
            uris.push(u.to_string());
        } else {
            // No backslash or user part: the host and the path are then read the same way
            // by the URL parser and by the split below.
            let url = url::Url::parse(u)
                .ok()
                .filter(|p| !u.contains('\\') && p.username().is_empty() && p.password().is_none())
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or("X-Original-URL is neither an http(s) URL nor a path.")?;
            scheme = Some(url.scheme().to_string());
            hosts.push(crate::config::host_of(&url));
            // The path as sent (the URL parser would have resolved dot segments already).
            let after_host = u.splitn(4, '/').nth(3).unwrap_or("");
            uris.push(format!("/{after_host}"));
        }
    }
    if let Some(fh) = described(headers, "x-forwarded-host")? {
        hosts.push(fh.trim().to_ascii_lowercase());
    }
    if let Some(host) = h(headers, "host").map(str::to_ascii_lowercase)
        && (is_app_host(&host) || hosts.is_empty())
    {
        hosts.push(host);
    }
    if let Some(p) = described(headers, "x-forwarded-proto")?
        && scheme.is_none()
        && (p == "http" || p == "https")
    {
        scheme = Some(p.to_string());
    }
    for name in ["x-forwarded-uri", "x-original-uri"] {
        if let Some(u) = described(headers, name)? {
            uris.push(u.to_string());
        }
    }
    let Some(host) = hosts.first() else {
        return Err(
            "The original request's host is missing (send X-Original-URL or X-Forwarded-Host).",
        );
    };
    if hosts.iter().any(|h| host_key(h) != host_key(host)) {
        return Err("The original request is described with different hosts.");
    }
    if uris.is_empty() {
        return Err(
            "The original request's path is missing (send X-Original-URL, X-Forwarded-Uri or X-Original-URI).",
        );
    }
    let mut canonical: Vec<String> = Vec::with_capacity(uris.len());
    for u in &uris {
        match target::canonical(u) {
            Ok(c) => canonical.push(c.into_owned()),
            Err(why) => return Err(why.message()),
        }
    }
    let path = path_of(&canonical[0]);
    if canonical.iter().any(|c| path_of(c) != path) {
        return Err("The original request is described with different paths.");
    }
    Ok(Original {
        scheme,
        host: host.clone(),
        path_and_query: canonical.swap_remove(0),
    })
}

fn status(code: StatusCode, message: &str) -> Response {
    crate::error::json(code, message)
}

fn json(code: StatusCode, body: serde_json::Value) -> Response {
    crate::error::json_body(code, body)
}

/// The caller is one of `[server] trusted_proxies` (an unknown peer never is).
fn from_trusted_proxy(proxy: &Proxy, peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|p| (proxy.config.server.trusted_proxies.iter()).any(|n| n.contains(&p.ip())))
}

pub async fn get_verify(
    State(proxy): State<Arc<Proxy>>,
    client: ClientInfo,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(q): Query<VerifyQuery>,
) -> Response {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if !from_trusted_proxy(&proxy, peer) {
        tracing::warn!(peer = ?peer.map(|p| p.ip()), "forward-auth asked by a peer outside server.trusted_proxies");
        return status(
            StatusCode::FORBIDDEN,
            "Forward-auth answers only the proxies listed in server.trusted_proxies.",
        );
    }
    let orig = match original(&headers, |h| proxy.routes.is_app_host(h)) {
        Ok(o) => o,
        Err(message) => return status(StatusCode::BAD_REQUEST, message),
    };
    let (host, pq) = (&orig.host, &orig.path_and_query);
    let path = path_of(pq).to_string();
    let idx = match proxy.routes.route(host, &path) {
        Ok(Some(idx)) => idx,
        Ok(None) => {
            return status(
                StatusCode::FORBIDDEN,
                "No app is configured for this host and path.",
            );
        }
        Err(super::routes::Ambiguous) => {
            return status(
                StatusCode::BAD_REQUEST,
                "The original request's path reads differently to different servers (case, ;parameters or trailing dots).",
            );
        }
    };
    let scheme = orig
        .scheme
        .as_deref()
        .unwrap_or(proxy.config.server.public_url.scheme());
    let unauthenticated = || {
        let login = crate::auth::login_url(&proxy, &format!("{scheme}://{host}{pq}"));
        let redirect = q
            .redirect
            .as_deref()
            .is_some_and(|r| r == "1" || r == "true");
        let mut r = if redirect {
            StatusCode::FOUND.into_response()
        } else {
            // The sign-in URL also travels with the 401 (body and `Location`), so that a proxy
            // can send browsers there itself (nginx: `auth_request_set … $upstream_http_location`).
            json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({ "error": "unauthorized", "message": "Sign in first.", "login_url": login }),
            )
        };
        if let Ok(v) = HeaderValue::from_str(&login) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    let (outcome, r) = match crate::auth::active_session(&proxy, &headers, host).await {
        Err(e) => (Outcome::Error, e.into_response()),
        Ok(None) => (Outcome::Unauthenticated, unauthenticated()),
        Ok(Some(session)) => match super::access::decide(&proxy, &session, idx, &path).await {
            Err(e) => (Outcome::Error, e.into_response()),
            Ok(None) => (Outcome::Unauthenticated, unauthenticated()),
            Ok(Some(Decision::Deny { reason, access })) => {
                let ip = client.ip.to_string();
                super::audit_denied(&proxy, idx, &access, reason, &path, &ip).await;
                let message = "Your account has no access to this resource.";
                (Outcome::Denied, status(StatusCode::FORBIDDEN, message))
            }
            Ok(Some(Decision::SeatsFull { licensed, .. })) => {
                let message = format!("All {licensed} licences are in use.");
                (Outcome::SeatsFull, status(StatusCode::FORBIDDEN, &message))
            }
            Ok(Some(Decision::Allow(access))) => {
                let mut r = StatusCode::OK.into_response();
                super::stamp_identity(&proxy, idx, r.headers_mut(), &access, &session);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                (Outcome::Allowed, r)
            }
        },
    };
    // Counted apart from proxied requests (`gatehouse_verify_requests_total`).
    proxy.metrics.verify.count(idx, outcome);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original_of(h: &HeaderMap) -> Result<Original, &'static str> {
        original(h, |host| {
            host == "crm.example.com" || host == "wiki.example.com"
        })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn each_proxy_style_describes_the_request() {
        let o = original_of(&headers(&[
            ("host", "gatehouse:8080"),
            ("x-original-url", "https://CRM.example.com/a/b?x=1&y=2"),
        ]))
        .unwrap();
        assert_eq!(o.scheme.as_deref(), Some("https"));
        assert_eq!(o.host, "crm.example.com");
        assert_eq!(o.path_and_query, "/a/b?x=1&y=2");
        let o = original_of(&headers(&[
            ("host", "gatehouse:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "crm.example.com"),
            ("x-forwarded-uri", "/admin/x"),
        ]))
        .unwrap();
        assert_eq!(
            (
                o.scheme.as_deref(),
                o.host.as_str(),
                o.path_and_query.as_str()
            ),
            (Some("https"), "crm.example.com", "/admin/x")
        );
        let o = original_of(&headers(&[
            ("host", "crm.example.com"),
            ("x-original-uri", "/p?q=1"),
        ]))
        .unwrap();
        assert_eq!(
            (o.host.as_str(), o.path_and_query.as_str()),
            ("crm.example.com", "/p?q=1")
        );
    }

    #[test]
    fn descriptions_that_disagree_are_refused() {
        // Traefik and Caddy set X-Forwarded-Uri/-Host but pass a client's X-Original-URL on.
        assert!(
            original_of(&headers(&[
                ("x-forwarded-host", "crm.example.com"),
                ("x-forwarded-uri", "/admin/x"),
                ("x-original-url", "https://crm.example.com/public"),
            ]))
            .is_err()
        );
        assert!(
            original_of(&headers(&[
                ("x-forwarded-host", "crm.example.com"),
                ("x-forwarded-uri", "/admin/x"),
                ("x-original-url", "https://other.example.com/admin/x"),
            ]))
            .is_err()
        );
        // An nginx snippet that sets X-Original-URI, with a client-sent X-Forwarded-Uri.
        assert!(
            original_of(&headers(&[
                ("x-forwarded-host", "crm.example.com"),
                ("x-original-uri", "/admin/x"),
                ("x-forwarded-uri", "/public"),
            ]))
            .is_err()
        );
        // The same path spelled differently is the same request.
        assert!(
            original_of(&headers(&[
                (
                    "x-original-url",
                    "http://crm.example.com:80/a%20b/../c?x=\"1\""
                ),
                ("x-forwarded-host", "crm.example.com"),
                ("x-forwarded-uri", "/a b/../c?x=\"1\""),
            ]))
            .is_ok()
        );
        // A header repeated with another value is a second description.
        assert!(
            original_of(&headers(&[
                ("x-forwarded-host", "crm.example.com"),
                ("x-forwarded-host", "other.example.com"),
                ("x-forwarded-uri", "/a"),
            ]))
            .is_err()
        );
        // No path at all is not taken to mean "/".
        assert!(original_of(&headers(&[("x-forwarded-host", "crm.example.com")])).is_err());
        assert!(original_of(&headers(&[("x-original-url", "javascript:alert(1)")])).is_err());
    }
}
