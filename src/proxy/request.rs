//! Reading the client's request: the host it addressed, whether it is a browser navigation,
//! the URL to come back to after sign-in.

use crate::core::Core;
use axum::http::{HeaderMap, header};

/// The host the client addressed (HTTP/2 `:authority` or HTTP/1 `Host`), lowercased.
pub fn request_host(uri: &axum::http::Uri, headers: &HeaderMap) -> String {
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
pub(super) fn sent_host<'a>(uri: &'a axum::http::Uri, headers: &'a HeaderMap) -> &'a str {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
}

/// The URL the browser asked for, as it will be after sign-in.
pub fn original_url(core: &Core, host: &str, uri: &axum::http::Uri) -> String {
    format!(
        "{}://{host}{}",
        core.config.server.public_url.scheme(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    )
}

pub fn login_url(core: &Core, rd: &str) -> String {
    core.public_url(&format!(
        "/login?rd={}",
        url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
    ))
}
