//! `[[app]]`: the downstream applications the proxy protects.

use super::reader::Section;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// `http://…` or `https://…`: scheme + authority (+ optional base path).
    Url(url::Url),
    /// `builtin:whoami`: served by the gateway itself; shows the identity headers it received.
    Whoami,
    /// `none`: only answered through forward-auth (`/.gatehouse/verify`).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatOverflow {
    Admit,
    Refuse,
}

#[derive(Debug, Clone)]
pub struct RuleConfig {
    pub path: String,
    /// `path` in lower case, for matching the case-folded request path.
    pub path_lower: String,
    pub roles: Vec<String>,
    pub back_office: bool,
}

/// Header names an app receives. `None` = not sent.
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub user: String,
    pub email: String,
    pub name: String,
    pub roles: String,
    pub org: String,
    pub seat: String,
    pub assertion: String,
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub id: String,
    /// Shown in the list of apps at `/` (default: the id).
    pub name: String,
    /// One line under the name there (default: none).
    pub description: String,
    /// Lowercased `host[:port]`, as clients send it.
    pub host: String,
    pub path_prefix: String,
    pub upstream: Upstream,
    /// Roles that may enter; `"*"` = any signed-in user.
    pub allow_roles: Vec<String>,
    pub rules: Vec<RuleConfig>,
    pub headers: HeaderNames,
    pub modify_seats: Option<u32>,
    pub seat_overflow: SeatOverflow,
    pub seat_idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// `false`: organization members may not use this app (staff only).
    pub organization_members: bool,
    /// Non-empty: only these organizations' members (by slug) may use it; people without an
    /// organization are not concerned (see `directory::org_refusal`).
    pub allow_organizations: Vec<String>,
}

/// Every identity header name of every preset: removed from every incoming request, whatever
/// the app's own preset, so no spelling of an identity can be smuggled in.
pub const ALL_PRESET_NAMES: &[&str] = &[
    "x-gatehouse-user",
    "x-gatehouse-email",
    "x-gatehouse-name",
    "x-gatehouse-roles",
    "x-gatehouse-org",
    "x-gatehouse-seat",
    "x-gatehouse-assertion",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
];

pub fn preset(name: &str) -> Option<HeaderNames> {
    let g = |s: &str| format!("X-Gatehouse-{s}");
    let base = HeaderNames {
        user: g("User"),
        email: g("Email"),
        name: g("Name"),
        roles: g("Roles"),
        org: g("Org"),
        seat: g("Seat"),
        assertion: g("Assertion"),
    };
    match name {
        "gatehouse" => Some(base),
        "oauth2-proxy" => Some(HeaderNames {
            user: "X-Forwarded-User".into(),
            email: "X-Forwarded-Email".into(),
            roles: "X-Forwarded-Groups".into(),
            name: "X-Forwarded-Preferred-Username".into(),
            ..base
        }),
        "authelia" => Some(HeaderNames {
            user: "Remote-User".into(),
            email: "Remote-Email".into(),
            roles: "Remote-Groups".into(),
            name: "Remote-Name".into(),
            ..base
        }),
        _ => None,
    }
}

fn valid_header_name(s: &str) -> bool {
    !s.is_empty() && axum::http::HeaderName::from_bytes(s.as_bytes()).is_ok()
}

/// Path prefixes the gateway itself answers on its public host.
pub const GATEWAY_PATHS: &[&str] = &[
    "/login",
    "/logout",
    "/setup",
    "/mfa",
    "/password",
    "/healthz",
    "/readyz",
    "/.well-known",
    "/.gatehouse",
    "/admin",
    "/scim",
    "/metrics",
];

pub fn read_app(s: &Section) -> AppConfig {
    let id = s.string("id", "");
    if !super::valid_name(&id) {
        s.problem("id", "required: 1-64 of a-z, 0-9, '-', '_'");
    }
    let name = s.string("name", &id).trim().to_string();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        s.problem(
            "name",
            "1-100 characters, no control characters (shown at /)",
        );
    }
    let description = s.string("description", "").trim().to_string();
    if description.chars().count() > 300 || description.chars().any(char::is_control) {
        s.problem(
            "description",
            "at most 300 characters, no control characters",
        );
    }
    let host = s.string("host", "").to_ascii_lowercase();
    if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
        s.problem(
            "host",
            "required: the host[:port] clients send (e.g. \"crm.example.com\")",
        );
    }
    let mut path_prefix = s.string("path_prefix", "/");
    if !path_prefix.starts_with('/') || path_prefix.contains(['?', '#', '*']) {
        s.problem(
            "path_prefix",
            "must start with '/' and hold no '?', '#' or '*'",
        );
        path_prefix = "/".into();
    }
    if path_prefix.starts_with("/.gatehouse") {
        s.problem(
            "path_prefix",
            "/.gatehouse/ is reserved for the gateway on every host",
        );
    }
    let upstream = match s.opt_string("upstream").as_deref() {
        Some("builtin:whoami") => Upstream::Whoami,
        Some("none") => Upstream::None,
        Some(u) => match url::Url::parse(u) {
            Ok(url)
                if (url.scheme() == "http" || url.scheme() == "https") && url.host().is_some() =>
            {
                if url.query().is_some() || url.fragment().is_some() {
                    s.problem("upstream", "must not carry a query or fragment");
                }
                Upstream::Url(url)
            }
            _ => {
                s.problem(
                    "upstream",
                    "must be an http(s):// URL, \"builtin:whoami\" or \"none\"",
                );
                Upstream::None
            }
        },
        None => {
            s.problem(
                "upstream",
                "required (an http(s):// URL, \"builtin:whoami\" or \"none\")",
            );
            Upstream::None
        }
    };
    let allow_roles = s.strings("allow_roles");
    if allow_roles.is_empty() {
        s.problem(
            "allow_roles",
            "required: the roles that may use this app (\"*\" = any signed-in user)",
        );
    }
    let preset_name = s.string("headers", "gatehouse");
    let mut headers = preset(&preset_name).unwrap_or_else(|| {
        s.problem(
            "headers",
            "must be \"gatehouse\", \"oauth2-proxy\" or \"authelia\"",
        );
        preset("gatehouse").expect("known preset")
    });
    {
        let names = s.sub("header_names");
        for (key, slot) in [
            ("user", &mut headers.user),
            ("email", &mut headers.email),
            ("name", &mut headers.name),
            ("roles", &mut headers.roles),
            ("org", &mut headers.org),
            ("seat", &mut headers.seat),
            ("assertion", &mut headers.assertion),
        ] {
            if let Some(v) = names.opt_string(key) {
                if valid_header_name(&v) {
                    *slot = v;
                } else {
                    names.problem(key, "not a valid HTTP header name");
                }
            }
        }
        names.finish();
    }
    let modify_seats = s
        .raw("modify_seats")
        .is_some()
        .then(|| s.int("modify_seats", 0, 0, 1_000_000) as u32);
    let seat_overflow = match s.string("seat_overflow", "admit").as_str() {
        "admit" => SeatOverflow::Admit,
        "refuse" => SeatOverflow::Refuse,
        _ => {
            s.problem("seat_overflow", "must be \"admit\" or \"refuse\"");
            SeatOverflow::Admit
        }
    };
    let seat_idle_timeout = s.duration("seat_idle_timeout", "15m");
    let connect_timeout = s.duration("connect_timeout", "5s");
    let timeout = s.duration("timeout", "60s");
    let organization_members = s.bool("organization_members", true);
    let allow_organizations = s.strings("allow_organizations");
    for slug in &allow_organizations {
        if !super::valid_name(slug) {
            s.problem(
                "allow_organizations",
                format!("{slug:?} is not an organization slug (1-64 of a-z, 0-9, '-', '_')"),
            );
        }
    }
    if !organization_members && !allow_organizations.is_empty() {
        s.problem(
            "allow_organizations",
            "has no effect with organization_members = false (no organization's members may \
             use the app): drop one of the two",
        );
    }
    let mut rules = Vec::new();
    for r in s.array_of_tables("rule", "path") {
        let path = r.string("path", "");
        if !path.starts_with('/') {
            r.problem(
                "path",
                "required: a path glob starting with '/' (e.g. \"/admin/*\")",
            );
        }
        rules.push(RuleConfig {
            path_lower: path.to_lowercase(),
            path,
            roles: r.strings("roles"),
            back_office: r.bool("back_office", false),
        });
        r.finish();
    }
    AppConfig {
        id,
        name,
        description,
        host,
        path_prefix,
        upstream,
        allow_roles,
        rules,
        headers,
        modify_seats,
        seat_overflow,
        seat_idle_timeout,
        connect_timeout,
        timeout,
        organization_members,
        allow_organizations,
    }
}

/// Does `prefix` cover `path`? "/crm/" and "/crm" both cover "/crm/x" and "/crm", never "/crmx".
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let p = prefix.trim_end_matches('/');
    path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
}

/// Route validation across apps: no two apps on the same host and prefix, no app over the
/// gateway's own paths on the public host.
pub fn validate_routes(apps: &[AppConfig], public_host: &str, problem: &dyn Fn(&str, String)) {
    for (i, a) in apps.iter().enumerate() {
        // Named as the reader names them: by id, else by place from 1.
        let name = if a.id.is_empty() {
            (i + 1).to_string()
        } else {
            a.id.clone()
        };
        for b in &apps[..i] {
            if a.host == b.host
                && a.path_prefix.trim_end_matches('/') == b.path_prefix.trim_end_matches('/')
            {
                problem(
                    &format!("app[{name}].path_prefix"),
                    format!("overlaps app {:?} (same host and prefix)", b.id),
                );
            }
            if a.id == b.id {
                problem(
                    &format!("app[{name}].id"),
                    format!("duplicate app id {:?}", a.id),
                );
            }
        }
        if a.host == public_host {
            let clash = a.path_prefix == "/"
                || GATEWAY_PATHS.iter().any(|g| {
                    prefix_matches(&a.path_prefix, g) || prefix_matches(g, &a.path_prefix)
                });
            if clash {
                problem(
                    &format!("app[{name}].path_prefix"),
                    "on the public host an app may not cover the gateway's paths (/, /login, /.gatehouse/, …): give it its own prefix or host".into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/crm/", "/crm/x"));
        assert!(prefix_matches("/crm", "/crm"));
        assert!(prefix_matches("/crm/", "/crm"));
        assert!(!prefix_matches("/crm", "/crmx"));
    }
}
