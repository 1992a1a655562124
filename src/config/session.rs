//! `[session]`: the session cookie and its timeouts.

use super::reader::Section;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub cookie_name: String,
    /// The cookie's name as sent: `__Host-` + `cookie_name` over https without a shared cookie
    /// domain (derived once here, read on every request).
    pub effective_cookie_name: String,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub cookie_domain: Option<String>,
}

pub(super) fn read_session(s: &Section, https: bool) -> SessionConfig {
    let cookie_name = s.string("cookie_name", "gatehouse_session");
    if cookie_name.is_empty()
        || !cookie_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.problem("cookie_name", "use letters, digits, '_' and '-' only");
    }
    let idle_timeout = s.duration("idle_timeout", "8h");
    let absolute_timeout = s.duration("absolute_timeout", "24h");
    if idle_timeout > absolute_timeout {
        s.problem("idle_timeout", "must not exceed session.absolute_timeout");
    }
    let cookie_domain = s.string("cookie_domain", "");
    s.finish();
    let cookie_domain = (!cookie_domain.is_empty()).then_some(cookie_domain);
    SessionConfig {
        effective_cookie_name: if https && cookie_domain.is_none() {
            format!("__Host-{cookie_name}")
        } else {
            cookie_name.clone()
        },
        cookie_name,
        idle_timeout,
        absolute_timeout,
        cookie_domain,
    }
}
