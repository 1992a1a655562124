//! Building identity header values and cleaning what the client sent.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Percent-encodes (UTF-8) every byte outside printable ASCII, and `%` itself, so any name or
/// email is a valid, unambiguous header value.
pub fn encode_value(s: &str) -> HeaderValue {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).expect("printable ASCII is a valid header value")
}

/// RFC 9110 §7.6.1 hop-by-hop headers, plus whatever `Connection` names.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Runs on every request and every response: one pass over the names present (no name
/// parsing, no allocation when there is nothing to remove).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut remove: Vec<HeaderName> = headers
        .keys()
        .filter(|n| HOP_BY_HOP.contains(n))
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

/// Removes the gateway's own cookies from `Cookie` headers, keeping the app's cookies (in one
/// header: HTTP/2 cookie crumbs are joined for the HTTP/1.1 upstream, RFC 9113 §8.2.3).
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let mut kept = String::new();
    let mut any = false;
    for v in headers.get_all(header::COOKIE) {
        any = true;
        for pair in String::from_utf8_lossy(v.as_bytes()).split(';') {
            let p = pair.trim();
            if p.is_empty() {
                continue;
            }
            let name = p.split('=').next().unwrap_or("").trim();
            if !names.contains(&name) {
                if !kept.is_empty() {
                    kept.push_str("; ");
                }
                kept.push_str(p);
            }
        }
    }
    if !any {
        return;
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept)
    {
        headers.insert(header::COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
