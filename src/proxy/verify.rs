//! Forward-auth: `GET /.gatehouse/verify` for nginx `auth_request`, Traefik `ForwardAuth` and
//! Caddy `forward_auth`. The original request is described by `X-Original-URL`, or by
//! `X-Forwarded-Proto`/`-Host`/`-Uri` (Traefik, Caddy), or `X-Original-URI` + `Host` (nginx).
//! Answers 200 with the identity headers, 401 (or 302 to sign-in with `?redirect=1`), or 403.

use super::access::Decision;
use crate::app::{AppState, Core};
use crate::web::ClientInfo;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

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

/// (host, path-and-query) of the request being checked.
fn original(core: &Core, headers: &HeaderMap) -> Option<(String, String)> {
    if let Some(u) = h(headers, "x-original-url") {
        if let Ok(url) = url::Url::parse(u) {
            let pq = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            return Some((crate::config::host_of(&url), pq));
        }
        if u.starts_with('/') {
            let host = h(headers, "x-forwarded-host").or(h(headers, "host"))?;
            return Some((host.to_ascii_lowercase(), u.to_string()));
        }
    }
    let host = h(headers, "x-forwarded-host").or(h(headers, "host"))?;
    let uri = h(headers, "x-forwarded-uri")
        .or(h(headers, "x-original-uri"))
        .unwrap_or("/");
    let _ = core;
    Some((host.to_ascii_lowercase(), uri.to_string()))
}

fn status(code: StatusCode, message: &str) -> Response {
    let mut r = (
        code,
        serde_json::json!({ "error": code.canonical_reason(), "message": message }).to_string(),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn get_verify(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Response {
    let Some((host, pq)) = original(&core, &headers) else {
        return status(
            StatusCode::BAD_REQUEST,
            "The original request's host is missing (send X-Original-URL or X-Forwarded-Host).",
        );
    };
    let path = pq.split('?').next().unwrap_or("/").to_string();
    let Some(idx) = core.proxy.routes.lookup(&host, &path) else {
        return status(
            StatusCode::FORBIDDEN,
            "No app is configured for this host and path.",
        );
    };
    let scheme = h(&headers, "x-forwarded-proto")
        .filter(|p| *p == "http" || *p == "https")
        .unwrap_or(core.config.server.public_url.scheme());
    let unauthenticated = || {
        if q.redirect
            .as_deref()
            .is_some_and(|r| r == "1" || r == "true")
        {
            let login = super::login_url(&core, &format!("{scheme}://{host}{pq}"));
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&login) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        } else {
            status(StatusCode::UNAUTHORIZED, "Sign in first.")
        }
    };
    let session = match crate::web::cookies::get(&headers, &core.config.session_cookie_name()) {
        Some(token) => match core.sessions.lookup(&core.store, token).await {
            Ok(s) => s.filter(|s| s.stage == crate::auth::session::Stage::Active),
            Err(e) => return crate::error::AppError::from(e).into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
        return unauthenticated();
    };
    match super::access::decide(&core, &session, idx, &path).await {
        Err(e) => e.into_response(),
        Ok(None) => unauthenticated(),
        Ok(Some(Decision::Deny { reason, access })) => {
            super::audit_denied(&core, idx, &access, reason, &path, &client.ip.to_string()).await;
            status(
                StatusCode::FORBIDDEN,
                "Your account has no access to this resource.",
            )
        }
        Ok(Some(Decision::SeatsFull { licensed, .. })) => status(
            StatusCode::FORBIDDEN,
            &format!("All {licensed} licences are in use."),
        ),
        Ok(Some(Decision::Allow(access))) => {
            let mut r = StatusCode::OK.into_response();
            super::stamp_identity(&core, idx, r.headers_mut(), &access, &session);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
    }
}
