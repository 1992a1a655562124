//! Forwarding to the upstream: streaming bodies both ways, connection reuse, hop-by-hop
//! headers dropped, `X-Forwarded-*`/`Forwarded` set for this hop, upgrades (WebSocket) spliced
//! through, and a clear 502/504 instead of a hang.

use super::headers::strip_hop_by_hop;
use crate::config::app::{AppConfig, Upstream};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::IpAddr;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One pooled client per app (each app has its own connect timeout).
pub struct Upstreams {
    clients: Vec<Client<Connector, Body>>,
}

impl Upstreams {
    pub fn new(apps: &[AppConfig]) -> Upstreams {
        let clients = apps
            .iter()
            .map(|a| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(a.connect_timeout));
                http.set_nodelay(true);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_webpki_roots()
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(256)
                    .build(https)
            })
            .collect();
        Upstreams { clients }
    }
}

/// Facts about the incoming hop that the forwarded headers report.
pub struct Hop<'a> {
    pub client_ip: IpAddr,
    /// The peer is a trusted proxy: its X-Forwarded-* chain is extended, not replaced.
    pub peer_trusted: bool,
    pub proto: &'a str,
    pub host: &'a str,
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn set_forwarded(headers: &mut HeaderMap, hop: &Hop) {
    let ip = hop.client_ip.to_string();
    let xff = match (
        hop.peer_trusted,
        headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
    ) {
        (true, Some(prev)) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip.clone(),
    };
    let proto = if hop.peer_trusted {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|p| *p == "http" || *p == "https")
            .unwrap_or(hop.proto)
            .to_string()
    } else {
        hop.proto.to_string()
    };
    let node = if hop.client_ip.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip
    };
    let this = format!(
        "for={node};host=\"{}\";proto={proto}",
        hop.host.replace('"', "")
    );
    let forwarded = match (
        hop.peer_trusted,
        headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()),
    ) {
        (true, Some(prev)) if !prev.trim().is_empty() => format!("{prev}, {this}"),
        _ => this,
    };
    for (name, value) in [
        ("x-forwarded-for", xff),
        ("x-forwarded-proto", proto),
        ("x-forwarded-host", hop.host.to_string()),
        ("forwarded", forwarded),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

fn upstream_uri(base: &url::Url, original: &Uri) -> Option<Uri> {
    let base_path = base.path().trim_end_matches('/');
    let pq = original.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = match base.port() {
        Some(p) => format!("{}:{p}", base.host_str()?),
        None => base.host_str()?.to_string(),
    };
    format!("{}://{authority}{base_path}{pq}", base.scheme())
        .parse()
        .ok()
}

pub fn gateway_error(status: StatusCode, wants_html: bool, message: &str) -> Response<Body> {
    let mut r = if wants_html {
        Response::new(Body::from(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Gatehouse</title></head>\
             <body><main><h1>{}</h1><p>{message}</p></main></body></html>",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        )))
    } else {
        Response::new(Body::from(
            serde_json::json!({ "error": status.canonical_reason().unwrap_or("error"), "message": message }).to_string(),
        ))
    };
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if wants_html {
            "text/html; charset=utf-8"
        } else {
            "application/json"
        }),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Sends the (already cleaned and identity-stamped) request to app `idx`'s upstream.
pub async fn forward(
    upstreams: &Upstreams,
    idx: usize,
    app: &AppConfig,
    mut req: Request<Body>,
    hop: &Hop<'_>,
    wants_html: bool,
) -> Response<Body> {
    let upgrade = is_upgrade(req.headers());
    let upgrade_proto = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    headers.remove(header::HOST);
    set_forwarded(headers, hop);
    if let (true, Some(p)) = (upgrade, upgrade_proto) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, p);
    }

    let base = match &app.upstream {
        Upstream::Url(u) => u,
        Upstream::Whoami => return super::whoami::respond(app, req),
        Upstream::None => {
            return gateway_error(
                StatusCode::NOT_FOUND,
                wants_html,
                "This app is reachable only through forward-auth.",
            );
        }
    };
    let Some(uri) = upstream_uri(base, req.uri()) else {
        return gateway_error(
            StatusCode::BAD_GATEWAY,
            wants_html,
            "The upstream address is not valid.",
        );
    };
    *req.uri_mut() = uri;
    // An HTTP/2 request keeps its version; the upstream speaks HTTP/1.1.
    *req.version_mut() = Version::HTTP_11;

    let sent = tokio::time::timeout(app.timeout, upstreams.clients[idx].request(req)).await;
    let mut resp = match sent {
        Err(_) => {
            tracing::warn!(app = %app.id, timeout = ?app.timeout, "upstream timed out");
            return gateway_error(
                StatusCode::GATEWAY_TIMEOUT,
                wants_html,
                "The application did not answer in time. Try again in a moment.",
            );
        }
        Ok(Err(e)) => {
            tracing::warn!(app = %app.id, error = %e, "upstream unreachable");
            return gateway_error(
                StatusCode::BAD_GATEWAY,
                wants_html,
                "The application is not reachable right now. Try again in a moment.",
            );
        }
        Ok(Ok(r)) => r,
    };

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let app_id = app.id.clone();
            tokio::spawn(async move {
                match (client_upgrade.await, upstream_upgrade.await) {
                    (Ok(c), Ok(u)) => {
                        let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
                    }
                    _ => tracing::debug!(app = %app_id, "upgrade did not complete"),
                }
            });
        }
        return resp.map(Body::new);
    }
    strip_hop_by_hop(resp.headers_mut());
    resp.map(Body::new)
}
