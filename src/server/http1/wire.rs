//! Wire facts of HTTP/1.1 both the engine and the proxy read: the header classifier, list
//! tokens, `Content-Length`, `Accept: text/html`. They live here, below both, so that the
//! engine's parser and the proxy classify a header name in the same single pass (`proxy::headers`
//! re-exports them).

/// The comma-separated tokens of a header value (`Connection`, `Transfer-Encoding`), trimmed.
pub fn tokens(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// A `Content-Length` value: digits only (no sign, no list, at most 18 of them), else `None`.
pub fn content_length(value: &[u8]) -> Option<u64> {
    let d = value.trim_ascii();
    if d.is_empty() || d.len() > 18 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(d).ok()?.parse().ok()
}

/// The header names the proxy treats specially, told apart in one pass (any case).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Known {
    Connection,
    TransferEncoding,
    /// The other hop-by-hop names: RFC 9110 §7.6.1's and the proxy-only ones (`Connection`
    /// may name more).
    HopByHop,
    ContentLength,
    Date,
    Host,
    Cookie,
    SetCookie,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
    /// Other headers by which a proxy in front tells an upstream the client's address or the
    /// original URL (`X-Real-IP`, `X-Original-URL`, …): believed only from a trusted proxy.
    ClientAddress,
    /// One of the names above spelled with `_` for `-` (`Transfer_Encoding`,
    /// `X_Forwarded_For`): CGI-style servers read both as the same variable, so the look-alike
    /// never passes.
    Lookalike,
    Other,
}

/// Which of the `Known` names `name` is: by its length first, so most names are settled by
/// one comparison (the proxy classifies every request and response header). A name that is
/// none of them but has a `_` is compared again with `_` read as `-`: none of the known names
/// has a `_`, so one that matches only that way is a look-alike.
pub fn known(name: &[u8]) -> Known {
    match classify(name, |k| name.eq_ignore_ascii_case(k.as_bytes())) {
        Known::Other if name.contains(&b'_') => match classify(name, |k| dashed(name, k)) {
            Known::Other | Known::Date | Known::Cookie | Known::SetCookie => Known::Other,
            _ => Known::Lookalike,
        },
        k => k,
    }
}

/// `name` is `k` (lower case) in any case, `_` counting as `-`.
fn dashed(name: &[u8], k: &str) -> bool {
    k.len() == name.len()
        && k.bytes().zip(name).all(|(k, n)| {
            let n = n.to_ascii_lowercase();
            k == n || (k == b'-' && n == b'_')
        })
}
fn classify(name: &[u8], is: impl Fn(&str) -> bool) -> Known {
    match name.len() {
        2 if is("te") => Known::HopByHop,
        4 if is("date") => Known::Date,
        4 if is("host") => Known::Host,
        6 if is("cookie") => Known::Cookie,
        6 if is("x-host") => Known::ClientAddress,
        7 if is("trailer") || is("upgrade") => Known::HopByHop,
        9 if is("forwarded") => Known::Forwarded,
        9 if is("x-real-ip") => Known::ClientAddress,
        10 if is("connection") => Known::Connection,
        10 if is("keep-alive") => Known::HopByHop,
        10 if is("set-cookie") => Known::SetCookie,
        11 if is("x-client-ip") => Known::ClientAddress,
        13 if is("x-rewrite-url") => Known::ClientAddress,
        14 if is("content-length") => Known::ContentLength,
        14 if is("true-client-ip") || is("x-original-url") || is("x-original-uri") => {
            Known::ClientAddress
        }
        15 if is("x-forwarded-for") => Known::XForwardedFor,
        15 if is("x-forwarded-uri") || is("x-original-host") => Known::ClientAddress,
        16 if is("x-forwarded-host") => Known::XForwardedHost,
        16 if is("proxy-connection") => Known::HopByHop,
        16 if is("x-forwarded-port") || is("cf-connecting-ip") => Known::ClientAddress,
        17 if is("transfer-encoding") => Known::TransferEncoding,
        17 if is("x-forwarded-proto") => Known::XForwardedProto,
        18 if is("proxy-authenticate") => Known::HopByHop,
        18 if is("x-forwarded-prefix") || is("x-forwarded-server") => Known::ClientAddress,
        19 if is("proxy-authorization") => Known::HopByHop,
        19 if is("x-cluster-client-ip") => Known::ClientAddress,
        _ => Known::Other,
    }
}

/// An `Accept` value that lists `text/html` (a browser navigation).
pub fn accept_has_html(accept: &[u8]) -> bool {
    accept.windows(9).any(|w| w == b"text/html")
}
