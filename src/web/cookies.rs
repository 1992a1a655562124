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
/// Works on bytes (the proxy's hot path calls it per request); only the value found must be text.
pub fn find<'a>(values: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    values
        .flat_map(pairs)
        .find_map(|pair| match split_pair(pair) {
            (n, Some(v)) if n == name.as_bytes() => std::str::from_utf8(v).ok(),
            _ => None,
        })
}

/// The `name=value` pairs of one `Cookie` header value, trimmed (empty ones included).
/// Separators are found with `memchr` (the proxy reads the session cookie per request).
pub fn pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let v = rest?;
        let (pair, next) = match memchr::memchr(b';', v) {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        };
        rest = next;
        Some(pair.trim_ascii())
    })
}

/// A pair's name and, when it has an `=`, its value; both trimmed. Reading a cookie and
/// keeping the gateway's cookies from an upstream both go by this, so they agree on names.
pub fn split_pair(pair: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'=', pair) {
        Some(i) => (pair[..i].trim_ascii(), Some(pair[i + 1..].trim_ascii())),
        None => (pair.trim_ascii(), None),
    }
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

#[cfg(test)]
mod tests {
    use super::find;

    fn look<'a>(values: &[&'a str], name: &str) -> Option<&'a str> {
        find(values.iter().map(|v| v.as_bytes()), name)
    }

    #[test]
    fn cookies_are_found_by_their_exact_name() {
        assert_eq!(look(&["a=1; s=tok; b=2"], "s"), Some("tok"));
        assert_eq!(look(&["a=1", " s=tok "], "s"), Some("tok"));
        assert_eq!(look(&["s=first; s=second"], "s"), Some("first"));
        assert_eq!(look(&["s="], "s"), Some(""));
        // Names that merely start or end like it, or pairs without a value, are not it.
        assert_eq!(look(&["ss=1; xs=2; s; s2=3"], "s"), None);
        assert_eq!(look(&["session=1"], "s"), None);
        assert_eq!(look(&[], "s"), None);
    }

    /// The session cookie the gateway reads is the one it keeps from upstreams, however spaced.
    #[test]
    fn reading_and_stripping_agree_on_names() {
        assert_eq!(look(&["a=1;  s = tok "], "s"), Some("tok"));
        let names = ["s".to_string()];
        let kept: Vec<&[u8]> =
            crate::proxy::headers::kept_cookie_pairs(b"a=1;  s = tok ; b", &names).collect();
        assert_eq!(kept, [&b"a=1"[..], b"b"]);
    }

    /// Pairs are what splitting at every `;` and trimming gives, empty ones included.
    #[test]
    fn pairs_are_split_at_every_semicolon() {
        for v in [
            "",
            ";",
            "a",
            "a=1",
            " a=1 ;b=2;",
            ";;x; ;",
            "a=1;  s = tok ; b",
        ] {
            let want: Vec<&[u8]> = v
                .as_bytes()
                .split(|b| *b == b';')
                .map(<[u8]>::trim_ascii)
                .collect();
            let got: Vec<&[u8]> = super::pairs(v.as_bytes()).collect();
            assert_eq!(got, want, "{v:?}");
        }
    }

    #[test]
    fn a_value_that_is_not_text_is_no_cookie() {
        let values: [&[u8]; 2] = [b"s=\xff\xfe", b"t=ok"];
        assert_eq!(find(values.iter().copied(), "s"), None);
        assert_eq!(find(values.iter().copied(), "t"), Some("ok"));
    }
}
