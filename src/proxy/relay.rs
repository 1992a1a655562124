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

use super::access::{AppAccess, Verdict};
use super::forward::{Hop, Target, upstream_timed_out, upstream_unreachable, write_forwarded};
use super::headers::{
    Fate, Known, content_length, kept_cookie_pairs, known, request_fate, sets_gateway_cookie,
    tokens,
};
use crate::auth::session::{Session, Stage};
use crate::core::Core;
use crate::metrics::Outcome;
use crate::web::h1::{Conn, Head, Next, http_date, put_header, write_response};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An idle upstream connection older than this is not reused.
const KEEP_IDLE: Duration = Duration::from_secs(60);
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// More header lines than this in a response head: 502.
const MAX_RESPONSE_HEADERS: usize = 100;

/// A kept-alive HTTP/1.1 connection to an upstream.
pub struct UpConn {
    tcp: TcpStream,
    buf: BytesMut,
    idle_since: Instant,
}

impl UpConn {
    pub fn fresh(&self) -> bool {
        self.idle_since.elapsed() < KEEP_IDLE
    }
}

/// What the fast path did with a request.
pub enum Fast {
    /// Answered it; what the client connection does next.
    Done(Next),
    /// Not a simple forward (not signed in, refused, not a plain `http://` upstream…): the
    /// router answers it. Nothing was read or written.
    Bridge,
    /// The app's upstream is `https://`: hyper serves this connection from here on. Nothing
    /// was read or written.
    Hyper,
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
    fn refresh_assertion(&mut self, core: &Core, now: i64) {
        if now < self.assertion_until {
            return;
        }
        let app = &core.config.apps[self.idx];
        let v = self.access.assertion(core, app, &self.session);
        self.assertion.clear();
        self.assertion.extend_from_slice(v.as_bytes());
        self.assertion_until = now + 5;
    }
}

/// Relays the request when it is an allowed request to a plain HTTP upstream.
pub async fn relay(core: &Core, idx: usize, c: &mut Conn, head: &Head) -> Fast {
    let Some(target) = core.proxy.upstreams.plain(idx) else {
        return match &core.config.apps[idx].upstream {
            crate::config::app::Upstream::Url(_) => Fast::Hyper,
            _ => Fast::Bridge,
        };
    };
    let Some(token) =
        crate::web::cookies::find(head.values("cookie"), core.config.session_cookie_name())
    else {
        return Fast::Bridge;
    };
    let now = crate::store::now();
    let remembered = match c.recent.take() {
        Some(r)
            if r.idx == idx
                // Constant time: behind a front proxy that pools connections, the previous
                // request on this connection may have been someone else's.
                && crate::crypto::ct_eq(&r.token, token.as_bytes())
                && r.epoch == core.sessions.epoch()
                && matches!(
                    core.sessions.still_live(&core.store, &r.session, now).await,
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
            let epoch = core.sessions.epoch();
            let session = match core.sessions.lookup(&core.store, token).await {
                // A session made for another app host does not count here.
                Ok(Some(s)) if s.stage == Stage::Active && s.fits(head.host()) => s,
                _ => return Fast::Bridge,
            };
            let access = match super::access::access_for(core, &session, idx).await {
                Ok(Some(a)) => a,
                _ => return Fast::Bridge,
            };
            let mut lines = Vec::with_capacity(256);
            access.write_lines(&core.proxy.names[idx], &mut lines);
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
    let refusal = match super::access::judge(core, &recent.access, idx, head.path()).await {
        Ok(Verdict::Allow) => None,
        Ok(Verdict::Deny(reason)) => {
            let ip = client_ip(core, c, head);
            super::audit_denied(
                core,
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
            recent.refresh_assertion(core, now);
            Fast::Done(forward(core, idx, target, c, head, recent).await)
        }
        Some(r) => {
            c.recent = Some(recent);
            core.metrics.proxy.count(idx, Outcome::of(&r));
            Fast::Done(answer(c, head, r).await)
        }
    }
}

fn client_ip(core: &Core, c: &Conn, head: &Head) -> std::net::IpAddr {
    crate::web::client::client_ip(
        c.peer.ip(),
        head.value_str("x-forwarded-for"),
        &core.config.server.trusted_proxies,
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
    core: &Core,
    idx: usize,
    target: &Target,
    head: &Head,
    hop: &Hop,
    recent: &Recent,
    out: &mut Vec<u8>,
) {
    let identity = &core.proxy.strip[idx];
    let gateway_cookies = &core.proxy.gateway_cookies;
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
        core.proxy.names[idx].assertion.as_str().as_bytes(),
        &recent.assertion,
    );
    write_forwarded(out, hop, prev_xff, prev_proto, prev_fwd);
    if let Some(n) = head.content_length {
        put_header(out, b"content-length", n.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// How the upstream's response body ends.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes (the client connection closes after it too).
    Close,
}

struct ResponseHead {
    len: usize,
    framing: Framing,
    /// The upstream connection may carry another request afterwards.
    reusable: bool,
}

enum Failure {
    /// Nothing usable came back: a kept connection the upstream had closed, or an error.
    Upstream(&'static str),
    Timeout,
    /// The client went away or broke the request body.
    Client,
}

/// Reads the upstream's response head into `up.buf`, skipping interim (1xx) responses, and
/// writes the client's response head (without the body bytes) into `out`.
async fn response_head(
    up: &mut UpConn,
    head_only: bool,
    client_close: bool,
    gateway_cookies: &[String],
    out: &mut Vec<u8>,
) -> Result<ResponseHead, Failure> {
    loop {
        let mut storage = [std::mem::MaybeUninit::uninit(); MAX_RESPONSE_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            &up.buf,
            &mut storage,
        );
        match parsed {
            Ok(httparse::Status::Complete(len)) => {
                let code = resp.code.unwrap_or(502);
                if (100..200).contains(&code) {
                    if code == 101 {
                        return Err(Failure::Upstream("switched protocols unasked"));
                    }
                    up.buf.advance(len);
                    continue;
                }
                return client_head(&resp, len, head_only, client_close, gateway_cookies, out);
            }
            Ok(httparse::Status::Partial) if up.buf.len() < MAX_RESPONSE_HEAD => {}
            _ => return Err(Failure::Upstream("malformed response head")),
        }
        if up.buf.capacity() - up.buf.len() < 4096 {
            up.buf.reserve(16 * 1024);
        }
        match up.tcp.read_buf(&mut up.buf).await {
            Ok(n) if n > 0 => {}
            _ => return Err(Failure::Upstream("closed before answering")),
        }
    }
}

fn client_head(
    resp: &httparse::Response,
    len: usize,
    head_only: bool,
    client_close: bool,
    gateway_cookies: &[String],
    out: &mut Vec<u8>,
) -> Result<ResponseHead, Failure> {
    let code = resp.code.unwrap_or(502);
    let http11 = resp.version == Some(1);
    let mut upstream_close = !http11;
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut listed: Vec<&[u8]> = Vec::new();
    // Each name classified once; the second pass below reuses it.
    let mut kinds = [Known::Other; MAX_RESPONSE_HEADERS];
    for (h, kind) in resp.headers.iter().zip(kinds.iter_mut()) {
        let v = h.value;
        *kind = known(h.name.as_bytes());
        match *kind {
            Known::Connection => {
                for t in tokens(v) {
                    if t.eq_ignore_ascii_case(b"close") {
                        upstream_close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                        upstream_close = false;
                    } else if !t.is_empty() {
                        listed.push(t);
                    }
                }
            }
            Known::TransferEncoding => {
                let last = tokens(v).next_back().unwrap_or(b"");
                chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            Known::ContentLength => match (content_length(v), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(l)) if n == l => {}
                _ => return Err(Failure::Upstream("invalid Content-Length")),
            },
            _ => {}
        }
    }
    let framing = if head_only || code == 204 || code == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => return Err(Failure::Upstream("unsupported transfer coding")),
            (None, Some(0)) => Framing::Empty,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::Close,
        }
    };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (h, kind) in resp.headers.iter().zip(kinds) {
        let n = h.name.as_bytes();
        let dropped = match kind {
            Known::Connection | Known::HopByHop => true,
            // A chunked body is passed on as it came, so its framing header stays.
            Known::TransferEncoding => framing != Framing::Chunked && !head_only,
            Known::ContentLength => chunked.is_some(),
            // An upstream never sets the gateway's own cookies in the browser.
            Known::SetCookie => sets_gateway_cookie(h.value, gateway_cookies),
            _ => false,
        };
        if dropped || listed.iter().any(|t| n.eq_ignore_ascii_case(t)) {
            continue;
        }
        has_date |= kind == Known::Date;
        put_header(out, n, h.value);
    }
    if !has_date {
        put_header(out, b"date", &http_date());
    }
    if client_close || framing == Framing::Close {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    Ok(ResponseHead {
        len,
        framing,
        reusable: !upstream_close && framing != Framing::Close,
    })
}

/// Follows chunked framing (RFC 9112 §7.1) over the bytes as they pass.
#[derive(Clone, Copy)]
enum Chunk {
    Size { digits: u8, value: u64 },
    Ext { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

impl Chunk {
    /// Before the first chunk's size.
    const START: Chunk = Chunk::Size {
        digits: 0,
        value: 0,
    };

    /// Consumes from `data` up to the end of the body; returns how many bytes belong to it,
    /// or `None` when the framing is broken.
    fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            *self = match *self {
                Chunk::Done => return Some(i),
                Chunk::Data(n) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    *self = if n == take {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(n - take)
                    };
                    continue;
                }
                Chunk::Size { digits, value } => match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => Chunk::Size {
                        digits: digits + 1,
                        value: value * 16 + d as u64,
                    },
                    None if digits > 0 && (b == b';' || b == b' ' || b == b'\t') => {
                        Chunk::Ext { value }
                    }
                    None if digits > 0 && b == b'\r' => Chunk::SizeLf { value },
                    _ => return None,
                },
                Chunk::Ext { value } => match b {
                    b'\r' => Chunk::SizeLf { value },
                    b'\n' => return None,
                    _ => Chunk::Ext { value },
                },
                Chunk::SizeLf { value } => match b {
                    b'\n' if value == 0 => Chunk::TrailerStart,
                    b'\n' => Chunk::Data(value),
                    _ => return None,
                },
                Chunk::DataCr => match b {
                    b'\r' => Chunk::DataLf,
                    _ => return None,
                },
                Chunk::DataLf => match b {
                    b'\n' => Chunk::START,
                    _ => return None,
                },
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    b'\n' => return None,
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLine => match b {
                    b'\r' => Chunk::TrailerLf,
                    b'\n' => return None,
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLf => match b {
                    b'\n' => Chunk::TrailerStart,
                    _ => return None,
                },
                Chunk::EndLf => match b {
                    b'\n' => Chunk::Done,
                    _ => return None,
                },
            };
            i += 1;
        }
        Some(i)
    }
}

/// A connection to app `idx`'s upstream: the one this client used last, an idle one of this
/// worker, or a new one. The flag says whether it was used before.
async fn connection(
    core: &Core,
    idx: usize,
    target: &Target,
    c: &mut Conn,
    new_only: bool,
) -> Result<(UpConn, bool), Failure> {
    let kept = match c.upstream.take() {
        Some((i, up)) if i == idx && up.fresh() && still_open(&up) => Some(up),
        Some((i, up)) => {
            core.proxy.upstreams.give_back(i, up);
            None
        }
        None => None,
    };
    if !new_only && let Some(up) = kept.or_else(|| core.proxy.upstreams.take_idle(idx)) {
        return Ok((up, true));
    }
    let app = &core.config.apps[idx];
    match tokio::time::timeout(app.connect_timeout, TcpStream::connect(&target.connect)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok((
                UpConn {
                    tcp,
                    buf: BytesMut::with_capacity(16 * 1024),
                    idle_since: Instant::now(),
                },
                false,
            ))
        }
        Ok(Err(_)) => Err(Failure::Upstream("cannot connect")),
        Err(_) => Err(Failure::Upstream("connect timed out")),
    }
}

/// Whether a kept connection can carry another request: nothing arrived on it since its last
/// response (no end-of-stream, and no stray bytes that would pass for the next answer). Costs
/// no system call unless the socket was reported readable.
pub fn still_open(up: &UpConn) -> bool {
    let mut probe = [0u8; 1];
    matches!(up.tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Sends the request (head, then its body streamed from the client) and reads the response
/// head. On a kept connection that turns out closed, a request without a body is sent once
/// more on a new connection.
async fn exchange(
    core: &Core,
    idx: usize,
    target: &Target,
    c: &mut Conn,
    head: &Head,
    request_head: &mut Vec<u8>,
) -> Result<(UpConn, ResponseHead, Vec<u8>), Failure> {
    let app = &core.config.apps[idx];
    let body_len = head.content_length.unwrap_or(0);
    let head_only = head.method == axum::http::Method::HEAD;
    for attempt in 0..2 {
        let (mut up, reused) = connection(core, idx, target, c, attempt > 0).await?;
        up.buf.clear();
        // The head and whatever of the body is already here, in one write (a request with a
        // body is never sent twice, so the head buffer can take it).
        let ready = (c.buf.len() as u64).min(body_len) as usize;
        let mut with_head = 0;
        if ready > 0 && request_head.len() + ready <= 64 * 1024 {
            request_head.extend_from_slice(&c.buf[..ready]);
            c.buf.advance(ready);
            with_head = ready as u64;
        }
        let sent = up.tcp.write_all(request_head).await;
        if sent.is_err() {
            if reused && attempt == 0 && body_len == 0 {
                continue;
            }
            return Err(Failure::Upstream("write failed"));
        }
        let mut left = body_len - with_head;
        while left > 0 {
            if c.buf.is_empty() {
                match c.read_more().await {
                    Ok(n) if n > 0 => {}
                    _ => return Err(Failure::Client),
                }
            }
            let n = (c.buf.len() as u64).min(left) as usize;
            if up.tcp.write_all(&c.buf[..n]).await.is_err() {
                return Err(Failure::Upstream("write failed"));
            }
            c.buf.advance(n);
            left -= n as u64;
        }
        let mut out = std::mem::take(&mut c.out);
        c.answer
            .as_mut()
            .reset(tokio::time::Instant::now() + app.timeout);
        let got = tokio::select! {
            biased;
            r = response_head(&mut up, head_only, head.close, &core.proxy.gateway_cookies, &mut out) => Ok(r),
            _ = c.answer.as_mut() => Err(()),
        };
        match got {
            Err(_) => {
                c.out = out;
                return Err(Failure::Timeout);
            }
            // Closed before a byte of the answer: the request did not get through (or, if it
            // did, repeating it does no harm).
            Ok(Err(Failure::Upstream(_)))
                if reused && body_len == 0 && up.buf.is_empty() && head.method.is_idempotent() =>
            {
                c.out = out;
                continue;
            }
            Ok(Err(e)) => {
                c.out = out;
                return Err(e);
            }
            Ok(Ok(rh)) => return Ok((up, rh, out)),
        }
    }
    Err(Failure::Upstream("kept connections were closed"))
}

/// Forwards one allowed request and relays the response.
async fn forward(
    core: &Core,
    idx: usize,
    target: &Target,
    c: &mut Conn,
    head: &Head,
    recent: Box<Recent>,
) -> Next {
    let app = &core.config.apps[idx];
    let peer = c.peer.ip();
    let peer_trusted = (core.config.server.trusted_proxies.iter()).any(|n| n.contains(&peer));
    let host = super::forwarded_host(head.host());
    let hop = Hop {
        // `X-Forwarded-For` is read only from a trusted proxy.
        client_ip: if peer_trusted {
            client_ip(core, c, head)
        } else {
            peer
        },
        peer_trusted,
        proto: core.config.server.public_url.scheme(),
        host: &host,
    };
    let mut request_head = std::mem::take(&mut c.up_head);
    upstream_head(core, idx, target, head, &hop, &recent, &mut request_head);
    c.recent = Some(recent);
    let result = exchange(core, idx, target, c, head, &mut request_head).await;
    c.up_head = request_head;
    let (mut up, rh, response_head) = match result {
        Ok(r) => r,
        Err(f) => {
            let wants_html = head.accepts_html();
            let r = match f {
                Failure::Timeout => upstream_timed_out(app, wants_html),
                Failure::Upstream(why) => upstream_unreachable(app, &why, wants_html),
                Failure::Client => return Next::Close,
            };
            core.metrics.proxy.count(idx, Outcome::of(&r));
            // The request body may be partly unread: `answer` ends the connection then.
            return answer(c, head, r).await;
        }
    };
    up.buf.advance(rh.len);
    core.metrics.proxy.count(idx, Outcome::Forwarded);
    let done = relay_body(c, &mut up, rh.framing, response_head).await;
    match done {
        Ok(true) if rh.reusable && up.buf.is_empty() => {
            up.idle_since = Instant::now();
            c.upstream = Some((idx, up));
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

/// Writes the response head and streams the body to the client. `Ok(true)`: the body ended
/// where its framing said, with nothing after it.
async fn relay_body(
    c: &mut Conn,
    up: &mut UpConn,
    framing: Framing,
    mut out: Vec<u8>,
) -> Result<bool, ()> {
    let mut left = match framing {
        Framing::Empty => 0,
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    let mut chunk = Chunk::START;
    let mut clean = true;
    loop {
        // Take what is buffered that belongs to the body.
        let n = match framing {
            Framing::Empty => 0,
            Framing::Length(_) => (up.buf.len() as u64).min(left) as usize,
            Framing::Close => up.buf.len(),
            Framing::Chunked => match chunk.feed(&up.buf) {
                Some(n) => n,
                None => {
                    clean = false;
                    up.buf.len()
                }
            },
        };
        let finished = match framing {
            Framing::Empty => true,
            Framing::Length(_) => {
                left -= n as u64;
                left == 0
            }
            Framing::Chunked => matches!(chunk, Chunk::Done) || !clean,
            Framing::Close => false,
        };
        if !out.is_empty() || n > 0 {
            if out.len() + n <= 64 * 1024 {
                out.extend_from_slice(&up.buf[..n]);
                let r = c.io.write_all(&out).await;
                out.clear();
                r.map_err(|_| ())?;
            } else {
                let r = c.io.write_all(&out).await;
                out.clear();
                r.map_err(|_| ())?;
                c.io.write_all(&up.buf[..n]).await.map_err(|_| ())?;
            }
            up.buf.advance(n);
        }
        if finished {
            c.out = out;
            c.io.flush().await.map_err(|_| ())?;
            // A broken chunked body cut short: the client must not wait for more.
            return if clean { Ok(true) } else { Err(()) };
        }
        up.buf.clear();
        if up.buf.capacity() < 16 * 1024 {
            up.buf.reserve(64 * 1024);
        }
        match up.tcp.read_buf(&mut up.buf).await {
            Ok(0) if framing == Framing::Close => {
                c.out = out;
                c.io.flush().await.map_err(|_| ())?;
                return Ok(false);
            }
            Ok(k) if k > 0 => {}
            _ => {
                c.out = out;
                return Err(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_end(chunks: &[&[u8]]) -> Option<usize> {
        let mut c = Chunk::START;
        let mut total = 0;
        for part in chunks {
            let n = c.feed(part)?;
            total += n;
            if matches!(c, Chunk::Done) {
                return Some(total);
            }
        }
        None
    }

    #[test]
    fn chunked_framing_is_followed_across_reads() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(body_end(&[body]), Some(body.len()));
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(body_end(&[a, b]), Some(body.len()), "split at {split}");
        }
        let mut with_next = body.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(body_end(&[&with_next]), Some(body.len()));
        assert_eq!(body_end(&[b"0\r\n\r\n"]), Some(5));
    }

    #[test]
    fn broken_chunked_framing_is_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"\r\n",
            b"fffffffffffffffff\r\n",
            b"0\r\n\n",
        ] {
            let mut c = Chunk::START;
            assert!(c.feed(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
