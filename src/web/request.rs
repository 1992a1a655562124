//! What every request must be before anyone looks at it, on every transport (the fast path
//! hands anything odd to hyper, and hyper's requests come through here): one host, no
//! `CONNECT`, no transfer coding the gateway would lose on the way, no `h2c` upgrade, and a
//! request target in its canonical form (`proxy::target`), which is what routing, rules and
//! the upstream all see. Also the small readings of a request everyone makes: the host it
//! addressed, whether it is a browser navigation.

use super::target;
use crate::server::http1::wire::tokens;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};

/// Why a request is not taken, as the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: &'static str,
}

impl Refusal {
    pub fn response(self, wants_html: bool) -> Response<Body> {
        let mut r = crate::error::render(self.status, wants_html, self.message);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
        }
        r
    }
}

fn refuse(status: StatusCode, message: &'static str) -> Refusal {
    Refusal { status, message }
}

/// Checks `req` and brings its target to the canonical form; or the refusal to answer.
pub fn admit(req: &mut Request<Body>) -> Result<(), Refusal> {
    // The gateway tunnels nothing (RFC 9110 §9.3.6): an app host is no open proxy.
    if req.method() == Method::CONNECT {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported.",
        ));
    }
    host(req)?;
    // RFC 9112 §6.1: only `chunked` is decoded here; any other coding would reach the
    // upstream decoded of its chunks but still compressed, without its label (501, §6.1).
    let only_chunked = {
        let mut codings = req
            .headers()
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| tokens(v.as_bytes()));
        match codings.next() {
            None => true,
            Some(first) => first.eq_ignore_ascii_case(b"chunked") && codings.next().is_none(),
        }
    };
    if !only_chunked {
        return Err(refuse(
            StatusCode::NOT_IMPLEMENTED,
            "Only the chunked transfer coding is supported on requests.",
        ));
    }
    // An `h2c` tunnel to an upstream would carry requests the gateway never judged.
    if req
        .headers()
        .get_all(header::UPGRADE)
        .iter()
        .flat_map(|v| tokens(v.as_bytes()))
        .any(|t| t.eq_ignore_ascii_case(b"h2c"))
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "Upgrading to HTTP/2 over cleartext (h2c) is not supported; use HTTP/2 directly.",
        ));
    }
    let sent = req
        .uri()
        .path_and_query()
        .map(PathAndQuery::as_str)
        .unwrap_or("/");
    let canonical = match target::canonical(sent) {
        Ok(std::borrow::Cow::Borrowed(_)) => None,
        Ok(std::borrow::Cow::Owned(t)) => Some(t),
        Err(why) => return Err(refuse(StatusCode::BAD_REQUEST, why.message())),
    };
    if let Some(t) = canonical {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = PathAndQuery::try_from(t).ok();
        match Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            _ => return Err(refuse(StatusCode::BAD_REQUEST, "Invalid request target.")),
        }
    }
    Ok(())
}

/// RFC 9112 §3.2: exactly one `Host` (none only in HTTP/1.0); with a target that names its
/// authority (absolute form, HTTP/2), `Host` may not name another. Afterwards `Host` names
/// the host on every transport (HTTP/2 sends `:authority` only), for everyone who reads it.
fn host(req: &mut Request<Body>) -> Result<(), Refusal> {
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "More than one Host header.",
        ));
    }
    let authority = req.uri().authority().map(|a| a.as_str().to_string());
    match (authority, req.headers().get(header::HOST)) {
        (Some(a), Some(h)) if !a.as_bytes().eq_ignore_ascii_case(h.as_bytes()) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "The Host header names another host than the request target.",
        )),
        (Some(a), None) => {
            let v = HeaderValue::from_str(&a)
                .map_err(|_| refuse(StatusCode::BAD_REQUEST, "Invalid host."))?;
            req.headers_mut().insert(header::HOST, v);
            Ok(())
        }
        (None, None) if req.version() != Version::HTTP_10 && req.version() != Version::HTTP_09 => {
            Err(refuse(
                StatusCode::BAD_REQUEST,
                "The Host header is missing.",
            ))
        }
        _ => Ok(()),
    }
}

/// The host the client addressed (HTTP/2 `:authority` or HTTP/1 `Host`), lowercased.
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> String {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .is_some_and(|v| accept_has_html(v.as_bytes()))
}

/// An `Accept` value that lists `text/html` (a browser navigation).
pub fn accept_has_html(accept: &[u8]) -> bool {
    accept.windows(9).any(|w| w == b"text/html")
}

/// The `Host` the client sent, lowercased, for `X-Forwarded-Host` and `Forwarded`. A request
/// routed to an app names one of the configured hosts (`Routes::lookup`), so it is plain ASCII;
/// no copy unless it came in upper case.
pub fn forwarded_host(sent: &str) -> std::borrow::Cow<'_, str> {
    if sent.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(sent.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(sent)
    }
}

/// The host as the client sent it (HTTP/2 `:authority` or HTTP/1 `Host`), not lowercased.
pub fn sent_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> &'a str {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)], version: Version) -> Request<Body> {
        let mut r = Request::builder().method(method).uri(uri).version(version);
        for (n, v) in headers {
            r = r.header(*n, *v);
        }
        r.body(Body::empty()).unwrap()
    }

    fn status(mut r: Request<Body>) -> Result<Request<Body>, StatusCode> {
        admit(&mut r).map(|()| r).map_err(|e| e.status)
    }

    #[test]
    fn ordinary_requests_pass_with_their_target_made_canonical() {
        let r = status(req(
            "GET",
            "/a/../b?x=1",
            &[("host", "h")],
            Version::HTTP_11,
        ))
        .unwrap();
        assert_eq!(r.uri(), "/b?x=1");
        let r = status(req("GET", "http://h/x", &[], Version::HTTP_2)).unwrap();
        assert_eq!(r.headers()[header::HOST], "h");
        assert!(status(req("GET", "/", &[], Version::HTTP_10)).is_ok());
        let chunked = [("host", "h"), ("transfer-encoding", "chunked")];
        assert!(status(req("POST", "/", &chunked, Version::HTTP_11)).is_ok());
    }

    #[test]
    fn what_cannot_be_judged_one_way_is_refused() {
        let v11 = Version::HTTP_11;
        let bad = StatusCode::BAD_REQUEST;
        for (r, want) in [
            (
                req("CONNECT", "h:443", &[("host", "h:443")], v11),
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (req("GET", "/", &[("host", "a"), ("host", "b")], v11), bad),
            (
                req(
                    "GET",
                    "/",
                    &[("host", "a"), ("host", "a")],
                    Version::HTTP_10,
                ),
                bad,
            ),
            (req("GET", "/", &[], v11), bad),
            (req("GET", "http://a/", &[("host", "b")], v11), bad),
            (req("GET", "/%2fx", &[("host", "a")], v11), bad),
            (
                req("GET", "/", &[("host", "a"), ("upgrade", "h2c")], v11),
                bad,
            ),
            (
                req(
                    "POST",
                    "/",
                    &[("host", "a"), ("transfer-encoding", "gzip, chunked")],
                    v11,
                ),
                StatusCode::NOT_IMPLEMENTED,
            ),
            (
                req(
                    "POST",
                    "/",
                    &[
                        ("host", "a"),
                        ("transfer-encoding", "chunked"),
                        ("transfer-encoding", "chunked"),
                    ],
                    v11,
                ),
                StatusCode::NOT_IMPLEMENTED,
            ),
        ] {
            let what = format!("{} {} {:?}", r.method(), r.uri(), r.headers());
            assert_eq!(status(r).err(), Some(want), "{what}");
        }
    }
}
