//! One exchange with the upstream: the request sent (head, then the body streamed from the
//! client), the response head read and rewritten for the client, and the body relayed by its
//! framing.

use super::Conn;
use super::chunked::Chunk;
use super::pool::{UpConn, connection};
use crate::proxy::Proxy;
use crate::proxy::forward::Target;
use crate::proxy::headers::{Known, content_length, known, sets_gateway_cookie, tokens};
use crate::server::http1::{Head, http_date, put_header};
use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// More header lines than this in a response head: 502.
const MAX_RESPONSE_HEADERS: usize = 100;

/// How the upstream's response body ends.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes (the client connection closes after it too).
    Close,
}

pub(super) struct ResponseHead {
    pub(super) len: usize,
    pub(super) framing: Framing,
    /// The upstream connection may carry another request afterwards.
    pub(super) reusable: bool,
}

pub(super) enum Failure {
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

/// Sends the request (head, then its body streamed from the client) and reads the response
/// head. On a kept connection that turns out closed, a request without a body is sent once
/// more on a new connection.
pub(super) async fn exchange(
    proxy: &Proxy,
    idx: usize,
    target: &Target,
    c: &mut Conn,
    head: &Head,
    request_head: &mut Vec<u8>,
) -> Result<(UpConn, ResponseHead, Vec<u8>), Failure> {
    let app = &proxy.config.apps[idx];
    let body_len = head.content_length.unwrap_or(0);
    let head_only = head.method == axum::http::Method::HEAD;
    for attempt in 0..2 {
        let (mut up, reused) = connection(proxy, idx, target, c, attempt > 0).await?;
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
        c.slot
            .answer
            .as_mut()
            .reset(tokio::time::Instant::now() + app.timeout);
        let got = tokio::select! {
            biased;
            r = response_head(&mut up, head_only, head.close, &proxy.gateway_cookies, &mut out) => Ok(r),
            _ = c.slot.answer.as_mut() => Err(()),
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

/// Writes the response head and streams the body to the client. `Ok(true)`: the body ended
/// where its framing said, with nothing after it.
pub(super) async fn relay_body(
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
