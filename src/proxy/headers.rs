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

pub use crate::server::http1::wire::{Known, content_length, known, tokens};

/// What becomes of one client request header on its way to an upstream. Both proxy paths
/// (the fast path on wire bytes, hyper on a `HeaderMap`) ask this, so they cannot disagree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    /// Passed on as sent.
    Keep,
    /// Never passed on.
    Drop,
    /// Passed on without the gateway's cookies.
    Cookie,
    /// Written by the proxy itself (`Host`, `Content-Length`, `X-Forwarded-Host`).
    Own,
    /// A previous hop's `X-Forwarded-For` / `-Proto` / `Forwarded`: extended when the peer is
    /// a trusted proxy, else replaced.
    Previous,
}

/// The fate of request header `name` (classified as `kind`). `listed`: the client named it
/// in `Connection`, which makes it hop-by-hop (RFC 9110 §7.6.1) — but never removes what the
/// gateway writes itself, which is added after the client's headers are gone.
pub fn request_fate(
    kind: Known,
    name: &[u8],
    identity: &[HeaderName],
    peer_trusted: bool,
    listed: bool,
) -> Fate {
    match kind {
        Known::Connection | Known::TransferEncoding | Known::HopByHop | Known::Lookalike => {
            Fate::Drop
        }
        Known::Host | Known::ContentLength | Known::XForwardedHost => Fate::Own,
        _ if listed => Fate::Drop,
        Known::XForwardedFor | Known::XForwardedProto | Known::Forwarded => Fate::Previous,
        Known::ClientAddress if peer_trusted => Fate::Keep,
        Known::ClientAddress => Fate::Drop,
        Known::Cookie => Fate::Cookie,
        Known::Date | Known::SetCookie | Known::Other => {
            if is_identity_name(identity, name) {
                Fate::Drop
            } else {
                Fate::Keep
            }
        }
    }
}

/// Removes from a request what `request_fate` drops (the hyper path; the fast path copies
/// what it keeps instead). Runs after the upgrade, if any, was taken note of.
pub fn clean_request(headers: &mut HeaderMap, identity: &[HeaderName], peer_trusted: bool) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| tokens(v.as_bytes()))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    let drop: Vec<HeaderName> = headers
        .keys()
        .filter(|n| {
            let b = n.as_str().as_bytes();
            let fate = request_fate(known(b), b, identity, peer_trusted, listed.contains(n));
            // hyper sends the body by the request's own Content-Length; Host and
            // X-Forwarded-Host are overwritten before sending.
            fate == Fate::Drop
        })
        .cloned()
        .collect();
    for n in drop {
        headers.remove(n);
    }
}

/// Whether a `Set-Cookie` value sets one of the gateway's cookies (`gateway`, compared
/// without the `__Host-`/`__Secure-` prefixes a browser treats as part of the name): an
/// upstream may never plant or overwrite the gateway's session or CSRF cookie.
pub fn sets_gateway_cookie(set_cookie: &[u8], gateway: &[String]) -> bool {
    fn base(n: &[u8]) -> &[u8] {
        for p in [&b"__host-"[..], b"__secure-"] {
            if n.len() >= p.len() && n[..p.len()].eq_ignore_ascii_case(p) {
                return &n[p.len()..];
            }
        }
        n
    }
    let pair = set_cookie.split(|b| *b == b';').next().unwrap_or(b"");
    let (name, _) = crate::web::cookies::split_pair(pair);
    let name = base(name);
    gateway.iter().any(|g| base(g.as_bytes()) == name)
}

/// Removes the upstream's `Set-Cookie`s for the gateway's cookies (the hyper path).
pub fn drop_gateway_set_cookies(headers: &mut HeaderMap, gateway: &[String]) {
    if !headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| sets_gateway_cookie(v.as_bytes(), gateway))
    {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !sets_gateway_cookie(v.as_bytes(), gateway))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
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
    drop: &'a [String],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    crate::web::cookies::pairs(value).filter(|pair| {
        let (name, _) = crate::web::cookies::split_pair(pair);
        !pair.is_empty() && !drop.iter().any(|d| d.as_bytes() == name)
    })
}

/// Removes the gateway's own cookies from `Cookie` headers, keeping the app's cookies (in one
/// header: HTTP/2 cookie crumbs are joined for the HTTP/1.1 upstream, RFC 9113 §8.2.3).
pub fn strip_cookies(headers: &mut HeaderMap, names: &[String]) {
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
        for name in ["", "t", "tex", "upgrades", "connection2", "x-te", "date"] {
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
            ("Set-Cookie", Known::SetCookie),
            ("X-Real-IP", Known::ClientAddress),
            ("x-original-url", Known::ClientAddress),
            ("Transfer_Encoding", Known::Lookalike),
            ("X_Forwarded_For", Known::Lookalike),
            ("x_forwarded-host", Known::Lookalike),
            ("Content_Length", Known::Lookalike),
            ("Keep_Alive", Known::Lookalike),
            ("X_Real_IP", Known::Lookalike),
            ("set_cookie", Known::Other),
            ("x_app_id", Known::Other),
        ];
        for (name, kind) in named {
            assert_eq!(known(name.as_bytes()), kind, "{name}");
        }
    }

    /// What the client may and may not pass, on either proxy path: the gateway's own names are
    /// written by the gateway whatever `Connection` lists; look-alikes never pass; address
    /// headers only from a trusted proxy.
    #[test]
    fn request_headers_meet_one_fate_on_both_paths() {
        let identity = [HeaderName::from_static("x-gatehouse-seat")];
        let fate = |name: &str, trusted: bool, listed: bool| {
            request_fate(
                known(name.as_bytes()),
                name.as_bytes(),
                &identity,
                trusted,
                listed,
            )
        };
        assert_eq!(fate("X-Gatehouse-Seat", true, false), Fate::Drop);
        assert_eq!(fate("x_gatehouse_seat", true, false), Fate::Drop);
        assert_eq!(fate("Accept", false, false), Fate::Keep);
        assert_eq!(fate("X-Custom", false, true), Fate::Drop);
        assert_eq!(fate("Cookie", false, false), Fate::Cookie);
        assert_eq!(fate("Cookie", false, true), Fate::Drop);
        for own in ["Host", "Content-Length", "X-Forwarded-Host"] {
            assert_eq!(fate(own, false, true), Fate::Own, "{own}");
        }
        assert_eq!(fate("X-Forwarded-For", true, false), Fate::Previous);
        assert_eq!(fate("Forwarded", false, true), Fate::Drop);
        for name in [
            "Transfer_Encoding",
            "X_Forwarded_For",
            "Content_Length",
            "X_Real_IP",
        ] {
            assert_eq!(fate(name, true, false), Fate::Drop, "{name}");
        }
        for name in [
            "X-Real-IP",
            "True-Client-IP",
            "X-Original-URL",
            "X-Forwarded-Prefix",
        ] {
            assert_eq!(fate(name, false, false), Fate::Drop, "{name}");
            assert_eq!(fate(name, true, false), Fate::Keep, "{name}");
        }
    }

    #[test]
    fn clean_request_leaves_what_the_gateway_writes_for_it_to_write() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-gatehouse-seat, x-custom, content-length"),
        );
        h.insert("x-gatehouse-seat", HeaderValue::from_static("modify"));
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("x_forwarded_for", HeaderValue::from_static("6.6.6.6"));
        h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert("x-app", HeaderValue::from_static("stays"));
        clean_request(
            &mut h,
            &[HeaderName::from_static("x-gatehouse-seat")],
            false,
        );
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-length", "x-app"]);
    }

    #[test]
    fn upstreams_cannot_set_the_gateways_cookies() {
        let gateway = [
            "gatehouse_session".to_string(),
            "__Host-gatehouse_csrf".to_string(),
        ];
        for v in [
            "gatehouse_session=evil; Path=/",
            " gatehouse_session = evil",
            "__Secure-gatehouse_session=evil",
            "__Host-gatehouse_csrf=x; Secure; Path=/",
            "gatehouse_csrf=x",
        ] {
            assert!(sets_gateway_cookie(v.as_bytes(), &gateway), "{v}");
        }
        for v in ["app=1", "gatehouse_sessions=1", "x=gatehouse_session"] {
            assert!(!sets_gateway_cookie(v.as_bytes(), &gateway), "{v}");
        }
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("app=1"));
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("gatehouse_session=x"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("theme=dark"));
        drop_gateway_set_cookies(&mut h, &gateway);
        let left: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(left, ["app=1", "theme=dark"]);
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
        strip_cookies(
            &mut h,
            &["gatehouse_session".into(), "gatehouse_csrf".into()],
        );
        assert_eq!(h.get(header::COOKIE).unwrap(), "app=1; theme=dark");
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("gatehouse_session=secret"),
        );
        strip_cookies(&mut h, &["gatehouse_session".into()]);
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
