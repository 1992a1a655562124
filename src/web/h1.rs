//! HTTP/1.1 (plain, or over TLS without HTTP/2), served by hand on the hot path.
//!
//! Each request head is parsed with `httparse` straight out of the connection's buffer. A
//! request for an app that is allowed through goes to `proxy::relay` without ever becoming an
//! `http::Request`; any other ordinary request (the gateway's pages, sign-in redirects, 403s)
//! is bridged to the axum router and its response written back here. Anything out of the
//! ordinary — HTTP/1.0, `Transfer-Encoding` on a request, `Expect`, upgrades (WebSocket, h2c),
//! absolute-form targets, an HTTP/2 preface, more than 100 headers or a head over 64 KiB,
//! anything `httparse` refuses, a request target that must be refused (`proxy::target`) — hands
//! the whole connection (bytes already read included) to hyper, which serves (or refuses) it
//! from that request on. When in doubt, hyper decides. A target that is merely not canonical
//! (dot segments, `//`, escaped unreserved characters, a `#fragment`) stays here in its
//! canonical form, which is what is routed, judged and forwarded.

use crate::app::Gateway;
use crate::proxy::headers::{Known, known, tokens};
use crate::proxy::relay::Fast;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// A request head larger than this goes to hyper (which refuses it).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// A keep-alive connection with no request for this long is closed.
const IDLE: Duration = Duration::from_secs(120);
/// A request head must arrive completely within this time of its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies of requests bridged to the router (gateway forms, refused proxy requests) are read
/// up to this size, the router's own limit on the other paths (axum's default). A larger one
/// is not read: the gateway's own endpoints answer 413, an app's refusal is answered as it
/// would be, and the connection closes after the answer.
const BRIDGE_BODY_LIMIT: u64 = 2 * 1024 * 1024;

/// Byte range of a request head.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn of(base: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }
}

/// One parsed request head. Everything borrows from `bytes`.
pub struct Head {
    bytes: Bytes,
    pub method: Method,
    /// The request target, then the `Host` value: text checked once, by the parser.
    text: String,
    /// Where the target's path ends (its query starts) and where the target ends in `text`.
    path_end: u32,
    target_end: u32,
    /// (name, value) of every header, in order.
    headers: Vec<(Span, Span)>,
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
    /// The client asked for `Connection: close`.
    pub close: bool,
    /// `Connection` names more than keep-alive/close: those headers are hop-by-hop too.
    pub connection_tokens: bool,
}

impl Head {
    pub fn bytes(&self, s: Span) -> &[u8] {
        &self.bytes[s.start as usize..s.end as usize]
    }
    /// Request target (origin form: path and query).
    pub fn target(&self) -> &str {
        &self.text[..self.target_end as usize]
    }
    pub fn path(&self) -> &str {
        &self.text[..self.path_end as usize]
    }
    /// The `Host` value as sent (empty when it is not text, which matches no route).
    pub fn host(&self) -> &str {
        &self.text[self.target_end as usize..]
    }
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (self.bytes(*n), self.bytes(*v)))
    }
    /// Values of header `name` (lowercase).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
    pub fn value_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
    /// The client lists `text/html` in `Accept` (a browser navigation).
    pub fn accepts_html(&self) -> bool {
        self.values("accept").any(crate::proxy::accept_has_html)
    }
    /// The header names that `Connection` declares hop-by-hop.
    pub fn connection_names(&self) -> impl Iterator<Item = &[u8]> {
        self.values("connection")
            .flat_map(tokens)
            .filter(|t| !t.is_empty())
    }
}

enum Parsed {
    Partial,
    Done(Head, usize),
    /// Not for this path: hyper takes the connection.
    Hyper,
}

/// Storage a connection reuses from one request head to the next.
#[derive(Default)]
struct Scratch {
    spans: Vec<(Span, Span)>,
    text: String,
}

impl Scratch {
    fn with_capacity(headers: usize, text: usize) -> Scratch {
        Scratch {
            spans: Vec::with_capacity(headers),
            text: String::with_capacity(text),
        }
    }

    /// Takes the storage back from a head that has been served.
    fn reclaim(&mut self, head: &mut Head) {
        self.spans = std::mem::take(&mut head.headers);
        self.text = std::mem::take(&mut head.text);
    }
}

/// Parses a head from `buf`; `scratch` is reused storage (taken into the head when complete).
fn parse(buf: &[u8], scratch: &mut Scratch) -> Parsed {
    // Left uninitialised: httparse fills only the slots it uses.
    let mut storage = [std::mem::MaybeUninit::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Hyper,
    };
    if req.version != Some(1) {
        return Parsed::Hyper;
    }
    let (Some(m), Some(path)) = (req.method, req.path) else {
        return Parsed::Hyper;
    };
    let Ok(method) = Method::from_bytes(m.as_bytes()) else {
        return Parsed::Hyper;
    };
    if method == Method::CONNECT || !path.starts_with('/') {
        return Parsed::Hyper;
    }
    let spans = &mut scratch.spans;
    spans.clear();
    let (mut host, mut hosts): (&[u8], _) = (b"", 0);
    let (mut content_length, mut lengths) = (None, 0);
    let (mut close, mut connection_tokens) = (false, false);
    for h in req.headers.iter() {
        let (n, v) = (h.name.as_bytes(), h.value);
        spans.push((Span::of(buf, n), Span::of(buf, v)));
        let is = |s: &str| n.eq_ignore_ascii_case(s.as_bytes());
        match known(n) {
            Known::Host => {
                host = v;
                hosts += 1;
            }
            Known::ContentLength => {
                lengths += 1;
                content_length = crate::proxy::headers::content_length(v);
                if content_length.is_none() {
                    return Parsed::Hyper;
                }
            }
            Known::TransferEncoding => return Parsed::Hyper,
            Known::Connection => {
                for t in tokens(v) {
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"upgrade") {
                        return Parsed::Hyper;
                    } else if !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive") {
                        connection_tokens = true;
                    }
                }
            }
            Known::HopByHop | Known::Other
                if is("upgrade") || is("expect") || is("http2-settings") =>
            {
                return Parsed::Hyper;
            }
            _ => {}
        }
    }
    if hosts != 1 || lengths > 1 || (lengths == 1 && content_length.is_none()) {
        return Parsed::Hyper;
    }
    // Routing, rules and the upstream all see the canonical target (`proxy::target`); one
    // that must be refused is refused by hyper's path, the same way for every transport.
    let Ok((target, path_end)) = crate::proxy::target::canonical_split(path) else {
        return Parsed::Hyper;
    };
    let text = &mut scratch.text;
    text.clear();
    text.push_str(&target);
    text.push_str(std::str::from_utf8(host).unwrap_or(""));
    Parsed::Done(
        Head {
            bytes: Bytes::new(),
            method,
            text: std::mem::take(text),
            path_end: path_end as u32,
            target_end: target.len() as u32,
            headers: std::mem::take(spans),
            content_length,
            close,
            connection_tokens,
        },
        len,
    )
}

/// One client connection served by hand.
pub struct Conn {
    pub io: ClientIo,
    /// Bytes read from the client and not yet used.
    pub buf: BytesMut,
    pub peer: SocketAddr,
    /// Upstream connection kept for this client's next request (app index, connection).
    pub upstream: Option<(usize, crate::proxy::relay::UpConn)>,
    /// Output scratch, reused across requests: responses to the client…
    pub out: Vec<u8>,
    /// …and request heads for the upstream.
    pub up_head: Vec<u8>,
    /// The last allowed request's session and access (see `proxy::relay::Recent`).
    pub recent: Option<Box<crate::proxy::relay::Recent>>,
    /// The upstream's time to answer (see `proxy::relay`), pushed forward per request.
    pub answer: Pin<Box<tokio::time::Sleep>>,
}

impl Conn {
    /// Reads more from the client; `Ok(0)` at end of stream.
    pub async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        self.io.read_buf(&mut self.buf).await
    }
}

/// The client's connection: plain TCP, or TLS that negotiated HTTP/1.1.
pub enum ClientIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(t) => Pin::new(t).poll_read(cx, buf),
            ClientIo::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Plain(t) => Pin::new(t).poll_write(cx, buf),
            ClientIo::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Plain(t) => Pin::new(t).poll_write_vectored(cx, bufs),
            ClientIo::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            ClientIo::Plain(t) => t.is_write_vectored(),
            ClientIo::Tls(t) => t.is_write_vectored(),
        }
    }
    /// TLS keeps records in its own buffer until flushed: every answer ends with a flush.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(t) => Pin::new(t).poll_flush(cx),
            ClientIo::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(t) => Pin::new(t).poll_shutdown(cx),
            ClientIo::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What to do after a request.
pub enum Next {
    KeepAlive,
    Close,
}

/// Serves an HTTP/1.1 connection until it closes, the server drains, or hyper takes it over.
pub async fn serve(
    io: ClientIo,
    peer: SocketAddr,
    gateway: Gateway,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    mut drain: watch::Receiver<bool>,
) {
    let mut c = Conn {
        io,
        buf: BytesMut::with_capacity(8 * 1024),
        peer,
        upstream: None,
        out: Vec::with_capacity(2048),
        up_head: Vec::with_capacity(2048),
        answer: Box::pin(tokio::time::sleep(IDLE)),
        recent: None,
    };
    let mut scratch = Scratch::with_capacity(16, 128);
    // Long-lived timers, pushed forward per request (cheap while they have not fired).
    let mut idle = Box::pin(tokio::time::sleep(IDLE));
    let stop = drain.wait_for(|d| *d);
    tokio::pin!(stop);
    'conn: loop {
        // A whole request head, or the end of this connection. Once its first byte is here, the
        // rest must follow within HEAD_TIMEOUT in all (a trickle does not keep it open).
        let mut deadline = None;
        let (mut head, len) = loop {
            if !c.buf.is_empty() {
                match parse(&c.buf, &mut scratch) {
                    Parsed::Done(h, len) => break (h, len),
                    Parsed::Hyper => {
                        return hand_to_hyper(c, gateway, builder, watcher).await;
                    }
                    Parsed::Partial => {}
                }
                let until =
                    *deadline.get_or_insert_with(|| tokio::time::Instant::now() + HEAD_TIMEOUT);
                let more = tokio::time::timeout_at(until, c.read_more()).await;
                if !matches!(more, Ok(Ok(n)) if n > 0) {
                    break 'conn;
                }
                continue;
            }
            idle.as_mut().reset(tokio::time::Instant::now() + IDLE);
            let more = tokio::select! {
                biased;
                _ = &mut stop => break 'conn,
                r = c.read_more() => r,
                _ = idle.as_mut() => break 'conn,
            };
            if !matches!(more, Ok(n) if n > 0) {
                break 'conn;
            }
        };
        head.bytes = c.buf.split_to(len).freeze();
        let next = match gateway.fast(&mut c, &head).await {
            Fast::Done(next) => next,
            Fast::Bridge => bridge(&mut c, &gateway, &head).await,
            Fast::Hyper => {
                // Nothing was consumed: hyper starts with this request's head.
                let mut all = BytesMut::with_capacity(head.bytes.len() + c.buf.len());
                all.extend_from_slice(&head.bytes);
                all.extend_from_slice(&c.buf);
                c.buf = all;
                return hand_to_hyper(c, gateway, builder, watcher).await;
            }
        };
        scratch.reclaim(&mut head);
        match next {
            Next::KeepAlive if !head.close => {}
            _ => break 'conn,
        }
    }
    if let Some((idx, up)) = c.upstream.take() {
        gateway.give_back(idx, up);
    }
    let _ = c.io.shutdown().await;
    drop(watcher);
}

/// Hands the connection, with what was read and not yet served, to hyper.
async fn hand_to_hyper(
    mut c: Conn,
    gateway: Gateway,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    if let Some((idx, up)) = c.upstream.take() {
        gateway.give_back(idx, up);
    }
    let io = Prefixed {
        prefix: c.buf.freeze(),
        inner: c.io,
    };
    super::server::serve_with_hyper(io, c.peer, gateway, builder, watcher).await
}

/// An ordinary request that the proxy's fast path did not take: the gateway's own pages, and
/// requests for apps that are not simply forwarded (sign-in redirect, 403, licence page,
/// `builtin:whoami`). Runs the router and writes its answer.
async fn bridge(c: &mut Conn, gateway: &Gateway, head: &Head) -> Next {
    let len = head.content_length.unwrap_or(0);
    let mut next = Next::KeepAlive;
    let body = if len == 0 {
        Body::empty()
    } else if len > BRIDGE_BODY_LIMIT {
        if !gateway.is_app_request(head) {
            let r = crate::proxy::forward::gateway_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                head.accepts_html(),
                "The request body is too large.",
            );
            let _ = write_response(c, r, head.method == Method::HEAD, true).await;
            return Next::Close;
        }
        // Not read: the connection cannot be used again.
        next = Next::Close;
        Body::empty()
    } else {
        while (c.buf.len() as u64) < len {
            match c.read_more().await {
                Ok(n) if n > 0 => {}
                _ => return Next::Close,
            }
        }
        Body::from(c.buf.split_to(len as usize).freeze())
    };
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.version_mut() = Version::HTTP_11;
    match head.target().parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => {
            let r = crate::proxy::forward::gateway_error(
                StatusCode::BAD_REQUEST,
                false,
                "The request target is not valid.",
            );
            let _ = write_response(c, r, false, true).await;
            return Next::Close;
        }
    }
    let headers = req.headers_mut();
    headers.reserve(head.headers.len());
    for (n, v) in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(head.bytes(*n)),
            HeaderValue::from_maybe_shared(head.bytes.slice(v.start as usize..v.end as usize)),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let head_only = head.method == Method::HEAD;
    let resp = gateway.call(c.peer, req).await;
    let close = matches!(next, Next::Close) || head.close;
    match write_response(c, resp, head_only, close).await {
        Ok(()) => next,
        Err(_) => Next::Close,
    }
}

/// Writes a response made by the gateway (any body: sized bodies with `Content-Length`, others
/// chunked).
pub async fn write_response(
    c: &mut Conn,
    resp: Response<Body>,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let size = http_body::Body::size_hint(&body).exact();
    let out = &mut c.out;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in parts.headers.iter() {
        if n == header::CONTENT_LENGTH || n == header::TRANSFER_ENCODING || n == header::CONNECTION
        {
            continue;
        }
        put_header(out, n.as_str().as_bytes(), v.as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        put_header(out, b"date", &http_date());
    }
    let chunked = !no_body && size.is_none();
    if !no_body {
        match size {
            Some(n) => put_header(out, b"content-length", n.to_string().as_bytes()),
            None => put_header(out, b"transfer-encoding", b"chunked"),
        }
    }
    if close {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if head_only || no_body {
        c.io.write_all(&c.out).await?;
        return c.io.flush().await;
    }
    // Small bodies go out with the head in one write.
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(std::io::Error::other("response body failed"));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            c.out
                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        if c.out.len() + data.len() <= 64 * 1024 {
            c.out.extend_from_slice(&data);
            if chunked {
                c.out.extend_from_slice(b"\r\n");
            }
        } else {
            c.io.write_all(&c.out).await?;
            c.out.clear();
            c.io.write_all(&data).await?;
            if chunked {
                c.out.extend_from_slice(b"\r\n");
            }
        }
    }
    if chunked {
        c.out.extend_from_slice(b"0\r\n\r\n");
    }
    if !c.out.is_empty() {
        c.io.write_all(&c.out).await?;
    }
    c.io.flush().await
}

pub fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), formatted once a
/// second per thread.
pub fn http_date() -> [u8; 29] {
    use std::cell::Cell;
    thread_local! {
        static CACHE: Cell<(i64, [u8; 29])> = const { Cell::new((i64::MIN, [0; 29])) };
    }
    let now = crate::store::now();
    CACHE.with(|c| {
        let (at, text) = c.get();
        if at == now {
            return text;
        }
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let mut out = [0u8; 29];
        if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(now)
            && let Ok(s) = t.format(&fmt)
            && s.len() == 29
        {
            out.copy_from_slice(s.as_bytes());
        }
        c.set((now, out));
        out
    })
}

/// The client connection as hyper sees it after a hand-over: first the bytes already read.
struct Prefixed {
    prefix: Bytes,
    inner: ClientIo,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let part = self.prefix.split_to(n);
            buf.put_slice(&part);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(raw: &str) -> Head {
        match parse(raw.as_bytes(), &mut Scratch::default()) {
            Parsed::Done(mut h, len) => {
                assert_eq!(len, raw.len());
                h.bytes = Bytes::copy_from_slice(raw.as_bytes());
                h
            }
            Parsed::Partial => panic!("partial: {raw:?}"),
            Parsed::Hyper => panic!("handed over: {raw:?}"),
        }
    }

    fn to_hyper(raw: &str) -> bool {
        matches!(
            parse(raw.as_bytes(), &mut Scratch::default()),
            Parsed::Hyper
        )
    }

    #[test]
    fn ordinary_requests_stay_on_the_fast_path() {
        let h = done("GET /a/b?q=1 HTTP/1.1\r\nHost: Wiki.Test\r\nCookie: x=1\r\n\r\n");
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.target(), "/a/b?q=1");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.host(), "Wiki.Test");
        assert_eq!(h.value_str("cookie"), Some("x=1"));
        assert_eq!(h.content_length, None);
        let h =
            done("POST /f HTTP/1.1\r\nhost: a\r\ncontent-length: 12\r\nconnection: close\r\n\r\n");
        assert_eq!(h.content_length, Some(12));
        assert!(h.close);
    }

    #[test]
    fn anything_unusual_goes_to_hyper() {
        for raw in [
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
        ] {
            assert!(to_hyper(raw), "{raw:?}");
        }
        let many = format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
            "X-A: 1\r\n".repeat(MAX_HEADERS)
        );
        assert!(to_hyper(&many));
    }

    #[test]
    fn partial_heads_wait_for_more_up_to_the_limit() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a\r\n", &mut Scratch::default()),
            Parsed::Partial
        ));
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(MAX_HEAD));
        assert!(to_hyper(&big));
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let d = http_date();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT") && s.as_bytes()[3] == b',', "{s}");
    }
}
