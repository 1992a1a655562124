//! HTTP/1.1 (plain, or over TLS without HTTP/2), served by hand on the hot path.
//!
//! Each request head is parsed with `httparse` straight out of the connection's buffer
//! (`head`) and offered to the dispatcher's fast path (`Dispatch::fast`: for the gateway,
//! `proxy::relay`, which answers an allowed request for an app without it ever becoming an
//! `http::Request`); any other ordinary request (the gateway's pages, sign-in redirects, 403s)
//! is bridged to `Dispatch::call` (the axum router) and its response written back here
//! (`write`). Anything out of the ordinary — HTTP/1.0, `Transfer-Encoding` on a request,
//! `Expect`, upgrades (WebSocket, h2c), absolute-form targets, an HTTP/2 preface, more than 100
//! headers or a head over 64 KiB, anything `httparse` refuses, a request target that must be
//! refused (`Dispatch::canonical_target`) — hands the whole connection (bytes already read
//! included, `io::Prefixed`) to hyper, which serves (or refuses) it from that request on. When
//! in doubt, hyper decides. A target that is merely not canonical (dot segments, `//`, escaped
//! unreserved characters, a `#fragment`) stays here in its canonical form, which is what is
//! routed, judged and forwarded.

mod head;
mod io;
pub mod wire;
mod write;

pub use head::{Head, Span};
pub use io::ClientIo;
pub use write::{http_date, put_header, write_response};

use super::Dispatch;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use bytes::BytesMut;
use head::{Parsed, Scratch, parse};
use hyper_util::rt::TokioExecutor;
use io::Prefixed;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const IDLE: Duration = Duration::from_secs(120);
/// A request head must arrive completely within this time of its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies of requests bridged to the router (gateway forms, refused proxy requests) are read
/// up to this size, the router's own limit on the other paths (axum's default). A larger one
/// is not read: the gateway's own endpoints answer 413, an app's refusal is answered as it
/// would be, and the connection closes after the answer.
const BRIDGE_BODY_LIMIT: u64 = 2 * 1024 * 1024;

/// One client connection served by hand. `slot` is the dispatcher's own per-connection state
/// (`Dispatch::Slot`: for the gateway, the relay's kept upstream connection, remembered session
/// and scratch buffers), opaque to the engine.
pub struct Conn<S> {
    pub io: ClientIo,
    /// Bytes read from the client and not yet used.
    pub buf: BytesMut,
    pub peer: SocketAddr,
    /// Output scratch for responses to the client, reused across requests.
    pub out: Vec<u8>,
    pub slot: S,
}

impl<S> Conn<S> {
    /// Reads more from the client; `Ok(0)` at end of stream.
    pub async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        self.io.read_buf(&mut self.buf).await
    }
}

/// What to do after a request.
pub enum Next {
    KeepAlive,
    Close,
}

/// What the dispatcher's fast path did with a request (`Dispatch::fast`).
pub enum Fast {
    /// Answered it; what the client connection does next.
    Done(Next),
    /// Not a simple forward (not signed in, refused, not a plain `http://` upstream…): the
    /// router answers it (`Dispatch::call`). Nothing was read or written.
    Bridge,
    /// hyper serves this connection from here on (an `https://` upstream). Nothing was read
    /// or written.
    Hyper,
}

/// Serves an HTTP/1.1 connection until it closes, the server drains, or hyper takes it over.
pub async fn serve<D: Dispatch>(
    io: ClientIo,
    peer: SocketAddr,
    gateway: D,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    mut drain: watch::Receiver<bool>,
) {
    let mut c = Conn {
        io,
        buf: BytesMut::with_capacity(8 * 1024),
        peer,
        out: Vec::with_capacity(2048),
        slot: gateway.slot(),
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
                match parse(&c.buf, &mut scratch, D::canonical_target) {
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
    gateway.release(&mut c.slot);
    let _ = c.io.shutdown().await;
    drop(watcher);
}

/// Hands the connection, with what was read and not yet served, to hyper.
async fn hand_to_hyper<D: Dispatch>(
    mut c: Conn<D::Slot>,
    gateway: D,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    gateway.release(&mut c.slot);
    let io = Prefixed {
        prefix: c.buf.freeze(),
        inner: c.io,
    };
    super::workers::serve_with_hyper(io, c.peer, gateway, builder, watcher).await
}

/// An ordinary request that the proxy's fast path did not take: the gateway's own pages, and
/// requests for apps that are not simply forwarded (sign-in redirect, 403, licence page,
/// `builtin:whoami`). Runs the router and writes its answer.
async fn bridge<D: Dispatch>(c: &mut Conn<D::Slot>, gateway: &D, head: &Head) -> Next {
    let len = head.content_length.unwrap_or(0);
    let mut next = Next::KeepAlive;
    let body = if len == 0 {
        Body::empty()
    } else if len > BRIDGE_BODY_LIMIT {
        if !gateway.is_app_request(head) {
            let r = gateway.refusal(
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
            let r = gateway.refusal(
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
