//! The one check every return URL goes through (`rd` of sign-in, of an app host's sign-in and
//! of the handoff callback): no open redirect.

use crate::core::Core;

/// A return path as every entry point takes it (`rd` of sign-in, of an app host's sign-in
/// and of the handoff callback): a path on the same origin, else `None`. Refused: anything not
/// starting with one `/` (`//evil`, a scheme), a backslash (`/\evil` is `//evil` to a
/// browser), and control characters or whitespace anywhere — browsers delete tabs and line
/// breaks from URLs, so `/\t/evil` would become `//evil`, and a CR or LF cannot be sent in a
/// `Location` at all. What passes is resolved against a placeholder origin as a browser would
/// resolve it, and must stay there.
pub fn local_path(rd: &str) -> Option<String> {
    if !rd.starts_with('/')
        || rd.starts_with("//")
        || rd
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let base = url::Url::parse("http://origin.invalid/").expect("valid URL");
    let u = base.join(rd).ok()?;
    if u.origin() != base.origin() || !u.username().is_empty() {
        return None;
    }
    Some(rd.to_string())
}

/// Where to go after sign-in: a path on this gateway (see `local_path`), or a URL on its
/// public origin or on a configured app host. Anything else falls back to `/`: no open
/// redirect.
pub fn safe_return(core: &Core, rd: &str) -> String {
    let rd = rd.trim();
    if let Some(p) = local_path(rd) {
        return p;
    }
    if !rd
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && let Ok(u) = url::Url::parse(rd)
        && (u.scheme() == "http" || u.scheme() == "https")
        && u.username().is_empty()
        && u.password().is_none()
        && (u.origin() == core.config.server.public_url.origin()
            || core.config.is_app_host(&crate::config::host_of(&u)))
    {
        return u.to_string();
    }
    "/".to_string()
}

/// `path?rd=…`, or just `path` when there is nowhere in particular to return to.
pub fn with_rd(path: &str, rd: &str) -> String {
    if rd.is_empty() || rd == "/" {
        path.to_string()
    } else {
        format!(
            "{path}?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )
    }
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
