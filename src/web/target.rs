//! The request target, read one way for routing, rules and forwarding.
//!
//! An upstream resolves dot segments, decodes escapes and may fold case on its own; had the
//! gateway routed and judged the target as sent while the upstream read it otherwise,
//! `/pub/../priv/x` would be judged as `pub` and served as `priv`. So every request target is
//! first brought to one **canonical form**, and that form is what chooses the app, what rules
//! are checked against, and what the upstream receives:
//!
//! - a `#fragment` is cut (it has no place in a request target, RFC 9112 §3.2; `http`'s own URI
//!   parser drops it too, so every path agrees);
//! - escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded (RFC 3986 §6.2.2.2:
//!   they mean the same), other escapes are kept with upper-case hex;
//! - `.` and `..` segments are resolved (RFC 3986 §5.2.4), empty segments (`//`) collapsed.
//!
//! What cannot be made unambiguous is refused (`400`), the way nginx refuses a NUL: an encoded
//! `/` or `\` (one upstream splits on it, another does not), a raw `\`, an encoded control
//! character, double encoding (`%2561`: decoded twice by some stacks), a malformed escape, raw
//! non-ASCII bytes, and escapes that decode to invalid UTF-8 (overlong forms such as `%C0%AF`).
//!
//! For matching only, a **loose** reading is also made (`loose`): fully decoded, lower-cased,
//! `;parameters` dropped and trailing dots and spaces trimmed from each segment — how Java
//! servlet containers, Windows servers and case-insensitive file systems may read the same
//! path. A rule applies when either reading matches it, and a request whose loose reading
//! would choose another app is refused (`Routes::route`).

use std::borrow::Cow;

/// Why a request target was refused (each a `400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotOriginForm,
    MalformedEscape,
    EncodedSeparator,
    Backslash,
    ControlCharacter,
    DoubleEncoding,
    NotAscii,
    InvalidUtf8,
}

impl Refused {
    /// The reason as the client is told it.
    pub fn message(self) -> &'static str {
        match self {
            Refused::NotOriginForm => "The request target must be a path starting with /.",
            Refused::MalformedEscape => "The request path has a malformed percent-escape.",
            Refused::EncodedSeparator => {
                "The request path has an encoded slash or backslash (%2F, %5C)."
            }
            Refused::Backslash => "The request path has a backslash.",
            Refused::ControlCharacter => "The request path has an encoded control character.",
            Refused::DoubleEncoding => "The request path is percent-encoded twice (%25XX).",
            Refused::NotAscii => "The request path has bytes outside ASCII; percent-encode them.",
            Refused::InvalidUtf8 => "The request path's escapes are not valid UTF-8.",
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// One pass over a target starting with `/`: where its path ends (at `?`, `#` or the end),
/// where a fragment starts, and whether the path is already canonical — no escapes, no
/// backslash, no raw non-ASCII, no empty or dot segment (the common case, settled here without
/// allocating; the proxy reads every request's target).
struct Scan {
    path_end: usize,
    fragment: Option<usize>,
    plain: bool,
}

fn scan(b: &[u8]) -> Scan {
    let mut plain = true;
    let mut seg_start = 1;
    let mut path_end = b.len();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'?' | b'#' => {
                path_end = i;
                break;
            }
            b'%' | b'\\' | 0x80.. => plain = false,
            b'/' => {
                if matches!(&b[seg_start..i], b"" | b"." | b"..") {
                    plain = false;
                }
                seg_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if matches!(&b[seg_start..path_end], b"." | b"..") {
        plain = false;
    }
    let fragment = b[path_end..]
        .iter()
        .position(|c| *c == b'#')
        .map(|p| p + path_end);
    Scan {
        path_end,
        fragment,
        plain,
    }
}

/// The canonical form of an origin-form request target (path and optional query; a fragment
/// is cut). Borrowed when the target is canonical already.
pub fn canonical(target: &str) -> Result<Cow<'_, str>, Refused> {
    canonical_split(target).map(|(t, _)| t)
}

/// As `canonical`, with where the canonical target's path ends (its query starts).
pub fn canonical_split(target: &str) -> Result<(Cow<'_, str>, usize), Refused> {
    if !target.starts_with('/') {
        return Err(Refused::NotOriginForm);
    }
    let Scan {
        path_end,
        fragment,
        plain,
    } = scan(target.as_bytes());
    let target = &target[..fragment.unwrap_or(target.len())];
    if plain {
        let t = match fragment {
            Some(_) => Cow::Owned(target.to_string()),
            None => Cow::Borrowed(target),
        };
        return Ok((t, path_end));
    }
    let mut out = canonical_path(&target[..path_end])?;
    let end = out.len();
    out.push_str(&target[path_end..]);
    Ok((Cow::Owned(out), end))
}

/// Decodes what means the same either way, refuses what is ambiguous, resolves segments.
fn canonical_path(path: &str) -> Result<String, Refused> {
    let b = path.as_bytes();
    // The path with unreserved escapes decoded, and (only to check it is UTF-8) fully decoded.
    let mut text = String::with_capacity(b.len());
    let mut full = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(Refused::MalformedEscape);
                };
                let d = h * 16 + l;
                match d {
                    b'/' | b'\\' => return Err(Refused::EncodedSeparator),
                    0..0x20 | 0x7f => return Err(Refused::ControlCharacter),
                    b'%' if b.get(i + 3).copied().and_then(hex).is_some()
                        && b.get(i + 4).copied().and_then(hex).is_some() =>
                    {
                        return Err(Refused::DoubleEncoding);
                    }
                    _ if is_unreserved(d) => text.push(d as char),
                    _ => {
                        text.push('%');
                        text.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                        text.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
                    }
                }
                full.push(d);
                i += 3;
                continue;
            }
            b'\\' => return Err(Refused::Backslash),
            0x80.. => return Err(Refused::NotAscii),
            _ => {
                text.push(c as char);
                full.push(c);
            }
        }
        i += 1;
    }
    if std::str::from_utf8(&full).is_err() {
        return Err(Refused::InvalidUtf8);
    }
    Ok(resolve(&text, Some))
}

/// Joins the segments of `path` (each passed through `seg`, `None` dropping it) with `.` and
/// `..` resolved and empty segments dropped; a trailing slash is kept (RFC 3986 §5.2.4: also
/// after a final `.` or `..`).
fn resolve<'a>(path: &'a str, seg: impl Fn(&'a str) -> Option<&'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut trailing = false;
    for s in path.split('/').skip(1) {
        trailing = false;
        match seg(s) {
            Some("") | None => trailing = true,
            Some(".") => trailing = true,
            Some("..") => {
                out.pop();
                trailing = true;
            }
            Some(s) => out.push(s),
        }
    }
    let mut p = String::with_capacity(path.len());
    for s in &out {
        p.push('/');
        p.push_str(s);
    }
    if trailing || p.is_empty() {
        p.push('/');
    }
    p
}

/// The loose reading of a canonical path, for matching only: fully decoded, lower-cased,
/// `;parameters` dropped and trailing dots and spaces trimmed from each segment, segments
/// resolved again. Borrowed when it reads the same.
pub fn loose(path: &str) -> Cow<'_, str> {
    let b = path.as_bytes();
    // (A canonical path has no dot segments, so a segment ending in `.` is one to trim.)
    let same = !b.iter().any(|c| matches!(c, b'%' | b';' | b'A'..=b'Z'))
        && !path.split('/').any(|s| s.ends_with('.'));
    if same {
        return Cow::Borrowed(path);
    }
    let mut decoded = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            decoded.push(h * 16 + l);
            i += 3;
            continue;
        }
        decoded.push(b[i]);
        i += 1;
    }
    let text = String::from_utf8_lossy(&decoded).to_lowercase();
    Cow::Owned(resolve(&text, |s| {
        let s = s.split(';').next().unwrap_or("");
        Some(match s {
            "." | ".." => s,
            _ => s.trim_end_matches(['.', ' ']),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t: &str) -> Result<String, Refused> {
        canonical(t).map(Cow::into_owned)
    }

    #[test]
    fn plain_targets_are_borrowed() {
        for t in [
            "/",
            "/a/b",
            "/a/b/",
            "/a.b/c..d/.e",
            "/a?x=../%2F",
            "/a/b?q=1",
        ] {
            assert!(matches!(canonical(t), Ok(Cow::Borrowed(_))), "{t}");
        }
    }

    #[test]
    fn the_path_end_is_where_the_canonical_query_starts() {
        for (raw, want, end) in [
            ("/a/b?q=1", "/a/b?q=1", 4),
            ("/a/b", "/a/b", 4),
            ("/x/../a?q=/..", "/a?q=/..", 2),
            ("/a#f?x", "/a", 2),
            ("/%61/?#", "/a/?", 3),
        ] {
            let (t, e) = canonical_split(raw).unwrap();
            assert_eq!((t.as_ref(), e), (want, end), "{raw}");
        }
    }

    #[test]
    fn fragments_are_cut() {
        assert_eq!(c("/admin#x").unwrap(), "/admin");
        assert_eq!(c("/a?q=1#x?y").unwrap(), "/a?q=1");
        assert_eq!(c("/a/../b#x").unwrap(), "/b");
    }

    #[test]
    fn dot_segments_slashes_and_unreserved_escapes_are_resolved() {
        for (raw, want) in [
            ("//staff/x", "/staff/x"),
            ("/./staff/x", "/staff/x"),
            ("/x/../staff/x", "/staff/x"),
            ("/%73taff/x", "/staff/x"),
            ("/x/%2e%2e/staff/x", "/staff/x"),
            ("/x/%2E%2E/staff/x", "/staff/x"),
            ("/pub/../priv/x?a=1", "/priv/x?a=1"),
            ("/../../x", "/x"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a//", "/a/"),
            ("/%7euser/%41", "/~user/A"),
            ("/a%20b/%c3%a9", "/a%20b/%C3%A9"),
            ("/a;x=1/b", "/a;x=1/b"),
        ] {
            assert_eq!(c(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn ambiguous_targets_are_refused() {
        for (raw, why) in [
            ("/%2fstaff/x", Refused::EncodedSeparator),
            ("/%2Fstaff", Refused::EncodedSeparator),
            ("/admin%5cx", Refused::EncodedSeparator),
            ("/admin\\x", Refused::Backslash),
            ("/admin%00/x", Refused::ControlCharacter),
            ("/admin%09/x", Refused::ControlCharacter),
            ("/a%0A", Refused::ControlCharacter),
            ("/a%7f", Refused::ControlCharacter),
            ("/%2561dmin", Refused::DoubleEncoding),
            ("/%zz", Refused::MalformedEscape),
            ("/a%4", Refused::MalformedEscape),
            ("/admin%C0%AF/x", Refused::InvalidUtf8),
            ("/%FF", Refused::InvalidUtf8),
            ("/caf\u{e9}", Refused::NotAscii),
            ("*", Refused::NotOriginForm),
            ("", Refused::NotOriginForm),
        ] {
            assert_eq!(c(raw), Err(why), "{raw:?}");
        }
        // A literal percent sign stays what it is.
        assert_eq!(c("/100%25").as_deref(), Ok("/100%25"));
    }

    #[test]
    fn canonical_is_a_fixed_point() {
        for raw in ["/x/../a%20b/./c//d", "/%7e/%41?q", "/a/b/..", "/A;b/c."] {
            let once = c(raw).unwrap();
            assert_eq!(c(&once).unwrap(), once, "{raw}");
        }
    }

    #[test]
    fn the_loose_reading_folds_what_servers_may_fold() {
        for (path, want) in [
            ("/admin/x", "/admin/x"),
            ("/ADMIN/x", "/admin/x"),
            ("/admin%20/x", "/admin/x"),
            ("/admin./x", "/admin/x"),
            ("/admin;x=1/y", "/admin/y"),
            ("/orders/..;/admin/", "/admin/"),
            ("/admin%3Bjsessionid=1/x", "/admin/x"),
            ("/%C3%89T%C3%89", "/\u{e9}t\u{e9}"),
            ("/a/.../b", "/a/b"),
        ] {
            assert_eq!(loose(path), want, "{path}");
        }
        assert!(matches!(loose("/plain/path"), Cow::Borrowed(_)));
    }
}
