//! Forwarding to the upstream: streaming bodies both ways, connection reuse, hop-by-hop
//! headers dropped, `X-Forwarded-*`/`Forwarded` set for this hop, upgrades (WebSocket) spliced
//! through, and a clear 502/504 instead of a hang.

use super::headers::{drop_gateway_set_cookies, strip_hop_by_hop};
use crate::config::app::{AppConfig, Upstream};
use crate::metrics::Outcome;
use axum::body::Body;
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header,
};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::IpAddr;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One pooled client per app (each app has its own connect timeout).
pub struct Upstreams {
    /// `[worker slot][app]`: each serving worker keeps its own pools (see `server::workers`).
    clients: Vec<Vec<Client<Connector, Body>>>,
    /// Per app with an `http(s)://` upstream: its URL parts, parsed once.
    targets: Vec<Option<Target>>,
    /// `[worker slot][app]`: idle upstream connections of the HTTP/1.1 fast path
    /// (`proxy::relay`).
    idle: Vec<Vec<std::sync::Mutex<Vec<super::relay::UpConn>>>>,
}

/// An upstream URL taken apart once, so that each request only splices in its path.
pub struct Target {
    scheme: Scheme,
    /// `host:port` to connect to (the scheme's port when the URL has none).
    pub connect: String,
    authority: Authority,
    /// Without the trailing slash; empty for none.
    pub base_path: String,
    /// `Host` as the client library would derive it from the URL (port only if not the
    /// scheme's default).
    pub host: HeaderValue,
}

impl Target {
    fn new(base: &url::Url) -> Option<Target> {
        let authority = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str()?),
            None => base.host_str()?.to_string(),
        };
        let connect = match base.host()? {
            url::Host::Ipv6(a) => format!("[{a}]:{}", base.port_or_known_default()?),
            h => format!("{h}:{}", base.port_or_known_default()?),
        };
        Some(Target {
            connect,
            scheme: base.scheme().parse().ok()?,
            host: HeaderValue::from_str(&authority).ok()?,
            authority: authority.parse().ok()?,
            base_path: base.path().trim_end_matches('/').to_string(),
        })
    }

    pub fn is_plain_http(&self) -> bool {
        self.scheme == Scheme::HTTP
    }

    fn uri(&self, original: &Uri) -> Option<Uri> {
        let pq = match (self.base_path.is_empty(), original.path_and_query()) {
            (true, Some(pq)) if pq.as_str().starts_with('/') => pq.clone(),
            (true, Some(_)) => return None,
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => format!(
                "{}{}",
                self.base_path,
                pq.map(|p| p.as_str()).unwrap_or("/")
            )
            .parse()
            .ok()?,
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .ok()
    }
}

impl Upstreams {
    /// Pools for `workers` serving workers (plus one for any other thread).
    pub fn new(apps: &[AppConfig], workers: usize) -> Upstreams {
        let targets = apps
            .iter()
            .map(|a| match &a.upstream {
                Upstream::Url(u) => Target::new(u),
                _ => None,
            })
            .collect();
        let connectors: Vec<Connector> = apps.iter().map(connector).collect();
        let clients = (0..=workers)
            .map(|_| connectors.iter().map(client).collect())
            .collect();
        let idle = (0..=workers)
            .map(|_| apps.iter().map(|_| Default::default()).collect())
            .collect();
        Upstreams {
            clients,
            targets,
            idle,
        }
    }
}

/// App `idx`'s connector (its connect timeout; TLS set up once, shared by every worker's pool).
fn connector(app: &AppConfig) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(app.connect_timeout));
    http.set_nodelay(true);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

fn client(connector: &Connector) -> Client<Connector, Body> {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(connector.clone())
}

impl Upstreams {
    /// App `idx`'s upstream, when it is a plain `http://` URL (the fast path's case).
    pub fn plain(&self, idx: usize) -> Option<&Target> {
        self.targets[idx].as_ref().filter(|t| t.is_plain_http())
    }

    /// An idle fast-path connection to app `idx`'s upstream, kept by this worker.
    pub fn take_idle(&self, idx: usize) -> Option<super::relay::UpConn> {
        let slot = crate::server::worker_slot();
        let mut idle = self.idle[slot][idx]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while let Some(c) = idle.pop() {
            if c.fresh() && super::relay::still_open(&c) {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a reusable fast-path connection for the next request (up to 256 per app).
    pub fn give_back(&self, idx: usize, c: super::relay::UpConn) {
        let slot = crate::server::worker_slot();
        let mut idle = self.idle[slot][idx]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if idle.len() < 256 && super::relay::still_open(&c) {
            idle.push(c);
        }
    }
}

/// Facts about the incoming hop that the forwarded headers report.
pub struct Hop<'a> {
    pub client_ip: IpAddr,
    /// The peer is a trusted proxy: its X-Forwarded-* chain is extended, not replaced.
    pub peer_trusted: bool,
    pub proto: &'a str,
    /// As the client sent it (lowercased; see `proxy::forwarded_host`).
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

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// `ip` as text in `buf` (an IPv6 address takes at most 45 bytes), without allocating.
fn ip_text(ip: IpAddr, buf: &mut [u8; 48]) -> &[u8] {
    let mut n = 0;
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if o >= 100 {
                    buf[n] = b'0' + o / 100;
                    n += 1;
                }
                if o >= 10 {
                    buf[n] = b'0' + o / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + o % 10;
                n += 1;
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let mut rest = &mut buf[..];
            let _ = write!(rest, "{v6}");
            n = 48 - rest.len();
        }
    }
    &buf[..n]
}

/// Writes `X-Forwarded-For`, `-Proto`, `-Host` and `Forwarded` for this hop as header lines,
/// given what the client sent (believed, and extended, only from a trusted proxy).
pub fn write_forwarded(
    out: &mut Vec<u8>,
    hop: &Hop,
    prev_xff: Option<&[u8]>,
    prev_proto: Option<&[u8]>,
    prev_forwarded: Option<&[u8]>,
) {
    fn believed<'a>(hop: &Hop, v: Option<&'a [u8]>) -> Option<&'a [u8]> {
        v.map(<[u8]>::trim_ascii)
            .filter(|p| hop.peer_trusted && !p.is_empty())
    }
    // The client's address as text, once (it is written twice).
    let mut text = [0u8; 48];
    let ip = ip_text(hop.client_ip, &mut text);
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prev) = believed(hop, prev_xff) {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(ip);
    let proto: &[u8] = match believed(hop, prev_proto).unwrap_or(hop.proto.as_bytes()) {
        b"https" => b"https",
        b"http" => b"http",
        _ if hop.proto == "https" => b"https",
        _ => b"http",
    };
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(proto);
    out.extend_from_slice(b"\r\nx-forwarded-host: ");
    out.extend_from_slice(hop.host.as_bytes());
    out.extend_from_slice(b"\r\nforwarded: ");
    if let Some(prev) = believed(hop, prev_forwarded) {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"for=");
    if hop.client_ip.is_ipv6() {
        out.extend_from_slice(b"\"[");
        out.extend_from_slice(ip);
        out.extend_from_slice(b"]\"");
    } else {
        out.extend_from_slice(ip);
    }
    out.extend_from_slice(b";host=\"");
    let host = hop.host.as_bytes();
    if memchr::memchr(b'"', host).is_none() {
        out.extend_from_slice(host);
    } else {
        out.extend(host.iter().filter(|b| **b != b'"'));
    }
    out.extend_from_slice(b"\";proto=");
    out.extend_from_slice(proto);
    out.extend_from_slice(b"\r\n");
}

fn set_forwarded(headers: &mut HeaderMap, hop: &Hop) {
    let mut lines = Vec::with_capacity(160);
    write_forwarded(
        &mut lines,
        hop,
        headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes),
        headers.get(&X_FORWARDED_PROTO).map(HeaderValue::as_bytes),
        headers.get(header::FORWARDED).map(HeaderValue::as_bytes),
    );
    for line in lines.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            headers.insert(n, v);
        }
    }
}

/// An error answered by the gateway itself, as a browser or an API client reads it (one
/// renderer for every such body: `crate::error`).
pub fn gateway_error(status: StatusCode, wants_html: bool, message: &str) -> Response<Body> {
    crate::error::render(status, wants_html, message)
}

/// GET, HEAD or OPTIONS without a body and without an upgrade: safe to send twice.
fn retryable(req: &Request<Body>) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && http_body::Body::size_hint(req.body()).exact() == Some(0)
        && !req.headers().contains_key(header::UPGRADE)
}

/// The upstream closed (or reset) a kept connection before it answered: a connection error
/// after it was reused, not a refusal to connect.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled() || h.is_closed();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = s.source();
    }
    false
}

/// `504`, logged: app `app`'s upstream did not answer within its `timeout`.
pub fn upstream_timed_out(app: &AppConfig, wants_html: bool) -> Response<Body> {
    tracing::warn!(app = %app.id, timeout = ?app.timeout, "upstream timed out");
    Outcome::UpstreamTimeout.mark(gateway_error(
        StatusCode::GATEWAY_TIMEOUT,
        wants_html,
        "The application did not answer in time. Try again in a moment.",
    ))
}

/// `502`, logged: app `app`'s upstream could not be reached or broke the protocol.
pub fn upstream_unreachable(
    app: &AppConfig,
    error: &dyn std::fmt::Display,
    wants_html: bool,
) -> Response<Body> {
    tracing::warn!(app = %app.id, error = %error, "upstream unreachable");
    Outcome::UpstreamUnreachable.mark(gateway_error(
        StatusCode::BAD_GATEWAY,
        wants_html,
        "The application is not reachable right now. Try again in a moment.",
    ))
}

/// A client's upgrade (WebSocket): the protocol it asked for and its side of the connection,
/// taken note of before the hop-by-hop headers that announce it are removed.
pub struct Upgrade {
    protocol: HeaderValue,
    client: hyper::upgrade::OnUpgrade,
}

pub fn take_upgrade(req: &mut Request<Body>) -> Option<Upgrade> {
    if !is_upgrade(req.headers()) {
        return None;
    }
    let protocol = req.headers().get(header::UPGRADE)?.clone();
    Some(Upgrade {
        protocol,
        client: hyper::upgrade::on(req),
    })
}

/// Sends the (already cleaned and identity-stamped) request to app `idx`'s upstream.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    upstreams: &Upstreams,
    idx: usize,
    app: &AppConfig,
    mut req: Request<Body>,
    upgrade: Option<Upgrade>,
    hop: &Hop<'_>,
    gateway_cookies: &[String],
    wants_html: bool,
) -> Response<Body> {
    let headers = req.headers_mut();
    set_forwarded(headers, hop);
    let client_upgrade = upgrade.map(|u| {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, u.protocol);
        u.client
    });

    match &app.upstream {
        Upstream::Url(_) => {}
        Upstream::Whoami => {
            req.headers_mut().remove(header::HOST);
            return super::whoami::respond(app, req);
        }
        Upstream::None => {
            return gateway_error(
                StatusCode::NOT_FOUND,
                wants_html,
                "This app is reachable only through forward-auth.",
            );
        }
    };
    let Some((uri, host)) = upstreams.targets[idx]
        .as_ref()
        .and_then(|t| Some((t.uri(req.uri())?, t.host.clone())))
    else {
        return gateway_error(
            StatusCode::BAD_GATEWAY,
            wants_html,
            "The upstream address is not valid.",
        );
    };
    *req.uri_mut() = uri;
    // The upstream's own host (set here from the parsed URL rather than by the client).
    req.headers_mut().insert(header::HOST, host);
    // An HTTP/2 request keeps its version; the upstream speaks HTTP/1.1.
    *req.version_mut() = Version::HTTP_11;

    let client = &upstreams.clients[crate::server::worker_slot()][idx];
    // A bodiless idempotent request may be sent again once when the kept connection it went
    // out on turns out closed by the upstream before any answer (as a proxy's
    // "next upstream on error" does); anything else is answered as it fails.
    let again = retryable(&req).then(|| {
        let mut r = Request::new(Body::empty());
        *r.method_mut() = req.method().clone();
        *r.uri_mut() = req.uri().clone();
        *r.version_mut() = req.version();
        *r.headers_mut() = req.headers().clone();
        r
    });
    let started = tokio::time::Instant::now();
    let sent = tokio::time::timeout(app.timeout, client.request(req)).await;
    let sent = match (sent, again) {
        (Ok(Err(e)), Some(again)) if closed_before_answer(&e) => {
            tracing::debug!(app = %app.id, error = %e, "kept upstream connection closed; sending again");
            let left = app.timeout.saturating_sub(started.elapsed());
            tokio::time::timeout(left, client.request(again)).await
        }
        (sent, _) => sent,
    };
    let mut resp = match sent {
        Err(_) => return upstream_timed_out(app, wants_html),
        Ok(Err(e)) => return upstream_unreachable(app, &e, wants_html),
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
        drop_gateway_set_cookies(resp.headers_mut(), gateway_cookies);
        return resp.map(Body::new);
    }
    strip_hop_by_hop(resp.headers_mut());
    // An upstream never sets the gateway's own cookies in the browser.
    drop_gateway_set_cookies(resp.headers_mut(), gateway_cookies);
    resp.map(Body::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_name_the_client_and_extend_only_trusted_chains() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "192.168.100.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
        ] {
            let client: IpAddr = ip.parse().unwrap();
            for trusted in [false, true] {
                let hop = Hop {
                    client_ip: client,
                    peer_trusted: trusted,
                    proto: "https",
                    host: "wiki.test",
                };
                let mut out = Vec::new();
                write_forwarded(
                    &mut out,
                    &hop,
                    Some(b"1.2.3.4"),
                    Some(b"http"),
                    Some(b"for=1.2.3.4"),
                );
                let text = String::from_utf8(out).unwrap();
                let shown = if client.is_ipv6() {
                    format!("\"[{ip}]\"")
                } else {
                    ip.to_string()
                };
                let expected = if trusted {
                    format!(
                        "x-forwarded-for: 1.2.3.4, {ip}\r\nx-forwarded-proto: http\r\nx-forwarded-host: wiki.test\r\nforwarded: for=1.2.3.4, for={shown};host=\"wiki.test\";proto=http\r\n"
                    )
                } else {
                    format!(
                        "x-forwarded-for: {ip}\r\nx-forwarded-proto: https\r\nx-forwarded-host: wiki.test\r\nforwarded: for={shown};host=\"wiki.test\";proto=https\r\n"
                    )
                };
                assert_eq!(text, expected);
            }
        }
    }

    #[test]
    fn upstream_uri_keeps_path_and_query_under_the_base_path() {
        let t = Target::new(&url::Url::parse("http://app.internal:8080/base/").unwrap()).unwrap();
        let uri: Uri = "/x/y?q=1".parse().unwrap();
        assert_eq!(
            t.uri(&uri).unwrap(),
            "http://app.internal:8080/base/x/y?q=1"
        );
        assert_eq!(t.host, "app.internal:8080");
        let t = Target::new(&url::Url::parse("https://app.internal").unwrap()).unwrap();
        assert_eq!(t.uri(&uri).unwrap(), "https://app.internal/x/y?q=1");
        assert_eq!(t.host, "app.internal");
        let t = Target::new(&url::Url::parse("http://[::1]:9000").unwrap()).unwrap();
        assert_eq!(t.uri(&uri).unwrap(), "http://[::1]:9000/x/y?q=1");
        assert_eq!(t.host, "[::1]:9000");
        assert_eq!(t.connect, "[::1]:9000");
        let t = Target::new(&url::Url::parse("http://app.internal/").unwrap()).unwrap();
        assert_eq!(t.connect, "app.internal:80");
    }
}
