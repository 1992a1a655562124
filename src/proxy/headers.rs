//! Building identity header values and cleaning what the client sent.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Percent-encodes (UTF-8) every byte outside printable ASCII, and `%` itself, so any name or
/// email is a valid, unambiguous header value.
pub fn encode_value(s: &str) -> HeaderValue {
    let mut out = Vec::with_capacity(s.len());
    put_encoded(&mut out, s);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
        .expect("printable ASCII is a valid header value")
}

/// `s` as printable ASCII, appended to `out`: every other byte and `%` percent-encoded.
pub fn put_encoded(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

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

/// The header names the fast path treats specially, told apart in one pass (any case).
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
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
    Other,
}

/// Which of the `Known` names `name` is: by its length first, so most names are settled by
/// one comparison (the proxy classifies every request and response header).
pub fn known(name: &[u8]) -> Known {
    let is = |k: &str| name.eq_ignore_ascii_case(k.as_bytes());
    match name.len() {
        2 if is("te") => Known::HopByHop,
        4 if is("date") => Known::Date,
        4 if is("host") => Known::Host,
        6 if is("cookie") => Known::Cookie,
        7 if is("trailer") || is("upgrade") => Known::HopByHop,
        9 if is("forwarded") => Known::Forwarded,
        10 if is("connection") => Known::Connection,
        10 if is("keep-alive") => Known::HopByHop,
        14 if is("content-length") => Known::ContentLength,
        15 if is("x-forwarded-for") => Known::XForwardedFor,
        16 if is("x-forwarded-host") => Known::XForwardedHost,
        16 if is("proxy-connection") => Known::HopByHop,
        17 if is("transfer-encoding") => Known::TransferEncoding,
        17 if is("x-forwarded-proto") => Known::XForwardedProto,
        18 if is("proxy-authenticate") => Known::HopByHop,
        19 if is("proxy-authorization") => Known::HopByHop,
        _ => Known::Other,
    }
}

/// Whether `name` (any case) is hop-by-hop by itself.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    matches!(
        known(name),
        Known::Connection | Known::TransferEncoding | Known::HopByHop
    )
}

/// Whether `name` is one of `strip` in any case, also with `_` for `-` (CGI-style servers map
/// both to the same variable).
pub fn is_identity_name(strip: &[HeaderName], name: &[u8]) -> bool {
    strip.iter().any(|s| {
        let s = s.as_str().as_bytes();
        s.len() == name.len()
            && s.iter().zip(name).all(|(a, b)| {
                let b = b.to_ascii_lowercase();
                *a == b || (*a == b'-' && b == b'_')
            })
    })
}

/// Runs on every request and every response: one pass over the names present (no name
/// parsing, no allocation when there is nothing to remove).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut remove: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n.as_str().as_bytes()))
        .cloned()
        .collect();
    if remove.is_empty() {
        return;
    }
    remove.extend(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok()),
    );
    for n in remove {
        headers.remove(n);
    }
}

/// The `name=value` pairs of one `Cookie` header value, without those named in `drop` (the
/// gateway's own cookies).
pub fn kept_cookie_pairs<'a>(
    value: &'a [u8],
    drop: &'a [&str],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    crate::web::cookies::pairs(value).filter(|pair| {
        let (name, _) = crate::web::cookies::split_pair(pair);
        !pair.is_empty() && !drop.iter().any(|d| d.as_bytes() == name)
    })
}

/// Removes the gateway's own cookies from `Cookie` headers, keeping the app's cookies (in one
/// header: HTTP/2 cookie crumbs are joined for the HTTP/1.1 upstream, RFC 9113 §8.2.3).
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let mut kept: Vec<u8> = Vec::new();
    let mut any = false;
    for v in headers.get_all(header::COOKIE) {
        any = true;
        for pair in kept_cookie_pairs(v.as_bytes(), names) {
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    if !any {
        return;
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_bytes(&kept)
    {
        headers.insert(header::COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110 §7.6.1 hop-by-hop headers (and the proxy-only ones); `Connection` may name more.
    const HOP_BY_HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];

    /// The classifier knows every hop-by-hop name, in any case, and nothing that merely looks
    /// like one.
    #[test]
    fn hop_by_hop_names_are_known_in_any_case() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name.as_bytes()), "{name}");
            assert!(
                is_hop_by_hop(name.to_ascii_uppercase().as_bytes()),
                "{name}"
            );
        }
        for name in [
            "",
            "t",
            "tex",
            "upgrades",
            "connection2",
            "keep_alive",
            "x-te",
            "date",
        ] {
            assert!(!is_hop_by_hop(name.as_bytes()), "{name}");
        }
        let named = [
            ("Content-Length", Known::ContentLength),
            ("DATE", Known::Date),
            ("host", Known::Host),
            ("Cookie", Known::Cookie),
            ("X-Forwarded-For", Known::XForwardedFor),
            ("x-forwarded-PROTO", Known::XForwardedProto),
            ("X-Forwarded-Host", Known::XForwardedHost),
            ("Forwarded", Known::Forwarded),
            ("Transfer-Encoding", Known::TransferEncoding),
            ("Connection", Known::Connection),
            ("x-forwarded-fox", Known::Other),
            ("cookies", Known::Other),
        ];
        for (name, kind) in named {
            assert_eq!(known(name.as_bytes()), kind, "{name}");
        }
    }

    #[test]
    fn values_are_percent_encoded_outside_printable_ascii() {
        assert_eq!(encode_value("Zoë 100%"), "Zo%C3%AB 100%25");
        assert_eq!(encode_value("a\r\nb"), "a%0D%0Ab");
    }

    #[test]
    fn only_gateway_cookies_are_removed() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("app=1; gatehouse_session=secret"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("gatehouse_csrf=x; theme=dark"),
        );
        strip_cookies(&mut h, &["gatehouse_session", "gatehouse_csrf"]);
        assert_eq!(h.get(header::COOKIE).unwrap(), "app=1; theme=dark");
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("gatehouse_session=secret"),
        );
        strip_cookies(&mut h, &["gatehouse_session"]);
        assert!(h.get(header::COOKIE).is_none());
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-app", HeaderValue::from_static("stays"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-app"));
    }

    #[test]
    fn identity_names_match_in_any_case_and_with_underscores() {
        let strip = [HeaderName::from_static("x-gatehouse-user")];
        for n in [
            "x-gatehouse-user",
            "X-GATEHOUSE-USER",
            "x_gatehouse_user",
            "X-Gatehouse_User",
        ] {
            assert!(is_identity_name(&strip, n.as_bytes()), "{n}");
        }
        for n in ["x-gatehouse-users", "x-gatehouse", "y-gatehouse-user"] {
            assert!(!is_identity_name(&strip, n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn content_lengths_are_plain_digits() {
        assert_eq!(content_length(b" 42 "), Some(42));
        assert_eq!(content_length(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"+5",
            b"-1",
            b"5, 5",
            b"0x10",
            b"1234567890123456789",
        ] {
            assert_eq!(
                content_length(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
