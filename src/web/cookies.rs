use axum::http::HeaderMap;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    find(
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .map(|v| v.as_bytes()),
        name,
    )
}

/// The value of cookie `name` in these `Cookie` header values (the first one that has it).
pub fn find<'a>(values: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub struct CookieSpec<'a> {
    pub secure: bool,
    pub domain: Option<&'a str>,
}

/// `Set-Cookie` for a session-scoped, HttpOnly, SameSite=Lax cookie (no Max-Age: the server
/// decides when the session ends, and a closed browser forgets it).
pub fn set(name: &str, value: &str, spec: &CookieSpec) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if spec.secure {
        c.push_str("; Secure");
    }
    if let Some(d) = spec.domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    c
}

pub fn clear(name: &str, spec: &CookieSpec) -> String {
    let mut c = format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if spec.secure {
        c.push_str("; Secure");
    }
    if let Some(d) = spec.domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    c
}
