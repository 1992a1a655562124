//! Request heads parsed in place: `httparse` over the connection's buffer, the few headers
//! the engine decides on read in the same pass, and the target made canonical by the
//! dispatcher (`Dispatch::canonical_target`). Anything out of the ordinary is `Parsed::Hyper`.

use super::wire::{Known, accept_has_html, known, tokens};
use axum::http::Method;
use bytes::Bytes;
use std::borrow::Cow;

/// A request head larger than this goes to hyper (which refuses it).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// Byte range of a request head.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub(super) start: u32,
    pub(super) end: u32,
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
    pub(super) bytes: Bytes,
    pub method: Method,
    /// The request target, then the `Host` value: text checked once, by the parser.
    text: String,
    /// Where the target's path ends (its query starts) and where the target ends in `text`.
    path_end: u32,
    target_end: u32,
    /// (name, value) of every header, in order.
    pub(super) headers: Vec<(Span, Span)>,
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
        self.values("accept").any(accept_has_html)
    }
    /// The header names that `Connection` declares hop-by-hop.
    pub fn connection_names(&self) -> impl Iterator<Item = &[u8]> {
        self.values("connection")
            .flat_map(tokens)
            .filter(|t| !t.is_empty())
    }
}

pub(super) enum Parsed {
    Partial,
    Done(Head, usize),
    /// Not for this path: hyper takes the connection.
    Hyper,
}

/// Storage a connection reuses from one request head to the next.
#[derive(Default)]
pub(super) struct Scratch {
    spans: Vec<(Span, Span)>,
    text: String,
}

impl Scratch {
    pub(super) fn with_capacity(headers: usize, text: usize) -> Scratch {
        Scratch {
            spans: Vec::with_capacity(headers),
            text: String::with_capacity(text),
        }
    }

    /// Takes the storage back from a head that has been served.
    pub(super) fn reclaim(&mut self, head: &mut Head) {
        self.spans = std::mem::take(&mut head.headers);
        self.text = std::mem::take(&mut head.text);
    }
}

/// Parses a head from `buf`; `scratch` is reused storage (taken into the head when complete).
/// `canonical` is the dispatcher's reading of the target (`Dispatch::canonical_target`): the
/// canonical target and where its path ends, or `None` to hand the request to hyper.
pub(super) fn parse(
    buf: &[u8],
    scratch: &mut Scratch,
    canonical: impl Fn(&str) -> Option<(Cow<'_, str>, usize)>,
) -> Parsed {
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
                content_length = super::wire::content_length(v);
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
    let Some((target, path_end)) = canonical(path) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's reading of a target (what `Dispatch::canonical_target` gives the engine).
    fn canonical(target: &str) -> Option<(Cow<'_, str>, usize)> {
        crate::web::target::canonical_split(target).ok()
    }

    fn done(raw: &str) -> Head {
        match parse(raw.as_bytes(), &mut Scratch::default(), canonical) {
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
            parse(raw.as_bytes(), &mut Scratch::default(), canonical),
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
            parse(
                b"GET / HTTP/1.1\r\nHost: a\r\n",
                &mut Scratch::default(),
                canonical
            ),
            Parsed::Partial
        ));
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(MAX_HEAD));
        assert!(to_hyper(&big));
    }
}
