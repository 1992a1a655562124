//! The proxy's fast path: an allowed HTTP/1.1 request to a plain `http://` upstream, relayed
//! by hand over a kept-alive upstream connection of this worker.
//!
//! Same rules as `forward` (which serves everything else through hyper), from the same
//! `headers::request_fate`: the client's identity headers (any case, any count, `_` for `-`),
//! hop-by-hop headers, look-alikes, untrusted address headers and the gateway's cookies are
//! dropped; the identity headers, the cached assertion and `X-Forwarded-*`/`Forwarded` are
//! added after them (nothing the client lists in `Connection` removes them); an upstream's
//! `Set-Cookie` for the gateway's cookies is dropped; the target sent is the canonical one the
//! request was routed and judged by (`proxy::target`); bodies stream both ways (request bodies by `Content-Length` — chunked ones never get
//! here —, responses by `Content-Length`, chunked framing followed byte by byte, or until the
//! upstream closes); `502` when the upstream cannot be reached or breaks the protocol, `504`
//! when it does not answer within the app's `timeout`.
//!
//! Split along its seams: this file is the request flow (session and access, the request head
//! for the upstream, answering); `pool` the kept upstream connections, `exchange` sending the
//! request and reading and relaying the response, `chunked` the chunked framing. The client
//! connection and its head come from `server::http1`; what the relay keeps per connection is
//! its [`Slot`].

mod chunked;
mod exchange;
mod pool;

pub use pool::{UpConn, still_open};

use super::access::Verdict;
use super::forward::{Hop, Target, upstream_timed_out, upstream_unreachable, write_forwarded};
use super::headers::{Fate, Known, kept_cookie_pairs, known, request_fate};
use crate::metrics::Outcome;
use crate::proxy::Proxy;
use crate::server::http1::{Fast, Head, Next, put_header, write_response};
use crate::session::AppAccess;
use crate::session::{Session, Stage};
use bytes::Buf;
use exchange::{Failure, Framing, exchange, relay_body};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client connection as the relay sees it.
type Conn = crate::server::http1::Conn<Slot>;

/// What the relay keeps on a client connection (`server::Dispatch::Slot`).
pub struct Slot {
    /// Upstream connection kept for this client's next request (app index, connection).
    upstream: Option<(usize, UpConn)>,
    /// Scratch for request heads for the upstream, reused across requests.
    up_head: Vec<u8>,
    /// The last allowed request's session and access (see [`Recent`]).
    recent: Option<Box<Recent>>,
    /// The upstream's time to answer, pushed forward per request.
    answer: Pin<Box<tokio::time::Sleep>>,
}

/// A fresh slot; made on the worker's runtime (it holds a timer).
impl Default for Slot {
    fn default() -> Slot {
        Slot {
            upstream: None,
            up_head: Vec::with_capacity(2048),
            recent: None,
            answer: Box::pin(tokio::time::sleep(Duration::from_secs(120))),
        }
    }
}

impl Slot {
    /// The connection is closing or going to hyper: its kept upstream connection goes back to
    /// the worker's pool.
    pub fn release(&mut self, proxy: &Proxy) {
        if let Some((idx, up)) = self.upstream.take() {
            proxy.upstreams.give_back(idx, up);
        }
    }
}

/// What a client connection remembers of its last allowed request: the next request with the
/// same cookie for the same app skips the cookie hash, the cache lookup and the shared locks,
/// for as long as no session anywhere has been invalidated since (`Sessions::epoch`); expiry,
/// idle time, rules and seats are still checked on every request.
pub struct Recent {
    epoch: u64,
    token: Box<[u8]>,
    idx: usize,
    session: Arc<Session>,
    access: Arc<AppAccess>,
    /// The identity header lines for this session and app, rendered for this connection.
    lines: Vec<u8>,
    /// This connection's copy of the assertion, and until when it may be sent.
    assertion: Vec<u8>,
    assertion_until: i64,
}

impl Recent {
    /// Takes a fresh copy of the shared assertion when this one is due: the shared one is
    /// renewed within its last minute, and this copy is refreshed from it every few seconds.
    fn refresh_assertion(&mut self, proxy: &Proxy, now: i64) {
        if now < self.assertion_until {
            return;
        }
        let app = &proxy.config.apps[self.idx];
        let v = super::access::assertion(proxy, &self.access, app, &self.session);
        self.assertion.clear();
        self.assertion.extend_from_slice(v.as_bytes());
        self.assertion_until = now + 5;
    }
}

/// Relays the request when it is an allowed request to a plain HTTP upstream.
pub async fn relay(proxy: &Proxy, idx: usize, c: &mut Conn, head: &Head) -> Fast {
    let Some(target) = proxy.upstreams.plain(idx) else {
        return match &proxy.config.apps[idx].upstream {
            crate::config::app::Upstream::Url(_) => Fast::Hyper,
            _ => Fast::Bridge,
        };
    };
    let Some(token) =
        crate::web::cookies::find(head.values("cookie"), proxy.config.session_cookie_name())
    else {
        return Fast::Bridge;
    };
    let now = crate::store::now();
    let remembered = match c.slot.recent.take() {
        Some(r)
            if r.idx == idx
                // Constant time: behind a front proxy that pools connections, the previous
                // request on this connection may have been someone else's.
                && crate::crypto::ct_eq(&r.token, token.as_bytes())
                && r.epoch == proxy.sessions.epoch()
                && matches!(
                    proxy.sessions.still_live(&proxy.store, &r.session, now).await,
                    Ok(true)
                ) =>
        {
            Some(r)
        }
        _ => None,
    };
    let mut recent = match remembered {
        Some(r) => r,
        None => {
            let epoch = proxy.sessions.epoch();
            let session = match proxy.sessions.lookup(&proxy.store, token).await {
                // A session made for another app host does not count here.
                Ok(Some(s)) if s.stage == Stage::Active && s.fits(head.host()) => s,
                _ => return Fast::Bridge,
            };
            let access = match super::access::access_for(proxy, &session, idx).await {
                Ok(Some(a)) => a,
                _ => return Fast::Bridge,
            };
            let mut lines = Vec::with_capacity(256);
            proxy.names[idx].write_lines(&access, &mut lines);
            Box::new(Recent {
                epoch,
                token: token.as_bytes().into(),
                idx,
                session,
                access,
                lines,
                assertion: Vec::new(),
                assertion_until: i64::MIN,
            })
        }
    };
    // Refusals are answered here: asking the router would decide (and audit) all over again.
    let refusal = match super::access::judge(proxy, &recent.access, idx, head.path()).await {
        Ok(Verdict::Allow) => None,
        Ok(Verdict::Deny(reason)) => {
            let ip = client_ip(proxy, c, head);
            super::audit_denied(
                proxy,
                idx,
                &recent.access,
                reason,
                head.path(),
                &ip.to_string(),
            )
            .await;
            Some(super::forbidden(head.accepts_html(), reason))
        }
        Ok(Verdict::SeatsFull { frees_at, licensed }) => {
            Some(super::seats_full(frees_at, licensed, head.accepts_html()))
        }
        Err(_) => return Fast::Bridge,
    };
    match refusal {
        None => {
            recent.refresh_assertion(proxy, now);
            Fast::Done(forward(proxy, idx, target, c, head, recent).await)
        }
        Some(r) => {
            c.slot.recent = Some(recent);
            proxy.metrics.proxy.count(idx, Outcome::of(&r));
            Fast::Done(answer(c, head, r).await)
        }
    }
}

fn client_ip(proxy: &Proxy, c: &Conn, head: &Head) -> std::net::IpAddr {
    crate::web::client::client_ip(
        c.peer.ip(),
        head.value_str("x-forwarded-for"),
        &proxy.config.server.trusted_proxies,
    )
}

/// Answers with a response of the gateway's own instead of the upstream's. The request body
/// is not read, so when there is one the connection ends after the answer.
async fn answer(c: &mut Conn, head: &Head, r: axum::response::Response) -> Next {
    let close = head.close || head.content_length.unwrap_or(0) > 0;
    let head_only = head.method == axum::http::Method::HEAD;
    match write_response(c, r, head_only, close).await {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

fn listed_in_connection(head: &Head, name: &[u8]) -> bool {
    head.connection_tokens
        && head
            .connection_names()
            .any(|t| t.eq_ignore_ascii_case(name))
}

/// The request head for the upstream, into `out`.
fn upstream_head(
    proxy: &Proxy,
    idx: usize,
    target: &Target,
    head: &Head,
    hop: &Hop,
    recent: &Recent,
    out: &mut Vec<u8>,
) {
    let identity = &proxy.strip[idx];
    let gateway_cookies = &proxy.gateway_cookies;
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.base_path.as_bytes());
    out.extend_from_slice(head.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    put_header(out, b"host", target.host.as_bytes());
    let (mut prev_xff, mut prev_proto, mut prev_fwd) = (None, None, None);
    for (n, v) in head.headers() {
        let kind = known(n);
        let listed = listed_in_connection(head, n);
        match request_fate(kind, n, identity, hop.peer_trusted, listed) {
            Fate::Keep => put_header(out, n, v),
            Fate::Drop | Fate::Own => {}
            Fate::Cookie => {
                // Each Cookie header without the gateway's cookies (dropped when nothing is left).
                let mut started = false;
                for (i, pair) in kept_cookie_pairs(v, gateway_cookies).enumerate() {
                    out.extend_from_slice(if i > 0 { b"; " } else { b"cookie: " });
                    out.extend_from_slice(pair);
                    started = true;
                }
                if started {
                    out.extend_from_slice(b"\r\n");
                }
            }
            Fate::Previous => match kind {
                Known::XForwardedFor => prev_xff = Some(v),
                Known::XForwardedProto => prev_proto = Some(v),
                _ => prev_fwd = Some(v),
            },
        }
    }
    out.extend_from_slice(&recent.lines);
    put_header(
        out,
        proxy.names[idx].assertion.as_str().as_bytes(),
        &recent.assertion,
    );
    write_forwarded(out, hop, prev_xff, prev_proto, prev_fwd);
    if let Some(n) = head.content_length {
        put_header(out, b"content-length", n.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Forwards one allowed request and relays the response.
async fn forward(
    proxy: &Proxy,
    idx: usize,
    target: &Target,
    c: &mut Conn,
    head: &Head,
    recent: Box<Recent>,
) -> Next {
    let app = &proxy.config.apps[idx];
    let peer = c.peer.ip();
    let peer_trusted = (proxy.config.server.trusted_proxies.iter()).any(|n| n.contains(&peer));
    let host = crate::web::request::forwarded_host(head.host());
    let hop = Hop {
        // `X-Forwarded-For` is read only from a trusted proxy.
        client_ip: if peer_trusted {
            client_ip(proxy, c, head)
        } else {
            peer
        },
        peer_trusted,
        proto: proxy.config.server.public_url.scheme(),
        host: &host,
    };
    let mut request_head = std::mem::take(&mut c.slot.up_head);
    upstream_head(proxy, idx, target, head, &hop, &recent, &mut request_head);
    c.slot.recent = Some(recent);
    let result = exchange(proxy, idx, target, c, head, &mut request_head).await;
    c.slot.up_head = request_head;
    let (mut up, rh, response_head) = match result {
        Ok(r) => r,
        Err(f) => {
            let wants_html = head.accepts_html();
            let r = match f {
                Failure::Timeout => upstream_timed_out(app, wants_html),
                Failure::Upstream(why) => upstream_unreachable(app, &why, wants_html),
                Failure::Client => return Next::Close,
            };
            proxy.metrics.proxy.count(idx, Outcome::of(&r));
            // The request body may be partly unread: `answer` ends the connection then.
            return answer(c, head, r).await;
        }
    };
    up.buf.advance(rh.len);
    proxy.metrics.proxy.count(idx, Outcome::Forwarded);
    let done = relay_body(c, &mut up, rh.framing, response_head).await;
    match done {
        Ok(true) if rh.reusable && up.buf.is_empty() => {
            up.idle_since = Instant::now();
            c.slot.upstream = Some((idx, up));
        }
        Ok(_) => {}
        Err(()) => return Next::Close,
    }
    if rh.framing == Framing::Close || head.close {
        Next::Close
    } else {
        Next::KeepAlive
    }
}
