//! Attacks on the sign-in side of the gateway (issue 15): forward-auth descriptions that lie
//! (fragments, dot segments and encodings, disagreeing hosts, untrusted callers), return URLs
//! that would leave the configured hosts, a handoff link planted in another browser, sessions
//! carried to another host, and CSRF tokens carried to another session.

use crate::harness::*;
use crate::upstream::Upstream;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

mod forward_auth;
mod handoff;
mod return_urls;

// ---------------------------------------------------------------------------------------------
// Forward-auth.

/// Apps judged only through forward-auth (`upstream = "none"`):
/// - on `fa.test`, `open` under `/` (limited and modify) and `staff` under `/staff/` (modify);
/// - on `crm.test`, `crm` under `/crm/` with `/crm/admin/*` back office;
/// - `wide.test` (limited and modify) and `narrow.test` (modify), one app per host.
const FA_APPS: &str = r#"
[[app]]
id = "open"
host = "fa.test"
path_prefix = "/"
upstream = "none"
allow_roles = ["limited", "modify"]

[[app]]
id = "staff"
host = "fa.test"
path_prefix = "/staff/"
upstream = "none"
allow_roles = ["modify"]

[[app]]
id = "crm"
host = "crm.test"
path_prefix = "/crm/"
upstream = "none"
allow_roles = ["modify", "limited"]
[[app.rule]]
path = "/crm/admin/*"
back_office = true

[[app]]
id = "wide"
host = "wide.test"
upstream = "none"
allow_roles = ["limited", "modify"]

[[app]]
id = "narrow"
host = "narrow.test"
upstream = "none"
allow_roles = ["modify"]
"#;

fn trusted(list: &str) -> Vec<(String, String)> {
    vec![("GATEHOUSE_SERVER__TRUSTED_PROXIES".into(), list.into())]
}

/// The forward-auth gateway, its peers (loopback) trusted, with a limited user (`open`, `crm`,
/// `wide`) and a modify user (every app); returns their `Cookie` headers.
async fn fa_gateway() -> (Server, String, String) {
    let server = Server::start_with(Options {
        port: None,
        sections: FA_APPS.into(),
        env: trusted(r#"["127.0.0.1/32"]"#),
        ..Default::default()
    });
    let limited = signed_in(
        &server,
        "lim@example.com",
        &["limited@open", "limited@crm", "limited@wide"],
    )
    .await
    .cookie_header();
    let modify = signed_in(
        &server,
        "mod@example.com",
        &[
            "modify@open",
            "modify@staff",
            "modify@crm",
            "modify@wide",
            "modify@narrow",
        ],
    )
    .await
    .cookie_header();
    (server, limited, modify)
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `GET /.gatehouse/verify` written byte for byte (HTTP/1.1, `Connection: close`): exactly the
/// headers given, a `Host` of the gateway's own address unless one is given.
fn verify(server: &Server, cookie: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = String::from("GET /.gatehouse/verify HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{}\r\n", server.port));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("Accept: application/json\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// One forward-auth call of a table: who (for the message), their cookie, the headers, the
/// status that must come back.
type Case<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>, u16);

/// A Traefik/Caddy-style description: `X-Forwarded-Proto/-Host/-Uri`.
fn forwarded<'a>(host: &'a str, uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", host),
        ("X-Forwarded-Uri", uri),
    ]
}

// ---------------------------------------------------------------------------------------------
// Cross-host sign-in: return URLs, the handoff, sessions per host, CSRF per session.

/// Two proxied apps on their own hosts (`wiki.test`, `shop.test`, for anyone signed in); the
/// gateway's loopback peers are trusted, for the forward-auth checks.
fn hosts_gateway(upstream: &Upstream) -> Server {
    let url = &upstream.url;
    Server::start_with(Options {
        port: None,
        sections: format!(
            r#"
[[app]]
id = "wiki"
host = "wiki.test:{{PORT}}"
upstream = "{url}"
allow_roles = ["*"]

[[app]]
id = "shop"
host = "shop.test:{{PORT}}"
upstream = "{url}"
allow_roles = ["*"]
"#
        ),
        env: trusted(r#"["127.0.0.1/32"]"#),
        ..Default::default()
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The app host's `/.gatehouse/login` for a return path (what hop 2 sends a browser to).
fn app_login(server: &Server, host: &str, path: &str) -> String {
    format!(
        "http://{host}:{}/.gatehouse/login?rd={}",
        server.port,
        enc(path)
    )
}

/// Follows redirects from `start`, each hop in the browser for its host (`gateway` for the
/// gateway's origin, `app` otherwise), until an answer that is not a redirect, a redirect to a
/// path (the landing page, not opened), or the answer of a callback; or, with `stop_at_callback`,
/// until a redirect to a callback (not opened). Returns every (URL, answer) and the URL it
/// stopped at.
async fn walk(
    gateway: &mut Browser,
    app: &mut Browser,
    start: &str,
    stop_at_callback: bool,
) -> (Vec<(String, Page)>, String) {
    let mut hops = Vec::new();
    let mut url = start.to_string();
    for _ in 0..8 {
        if stop_at_callback && url.contains("/.gatehouse/callback") {
            return (hops, url);
        }
        let page = if url.starts_with(&gateway.base) {
            gateway.get(&url).await
        } else {
            app.get(&url).await
        };
        let location = page.location();
        let done = !(300..400).contains(&page.status)
            || !location.starts_with("http")
            || url.contains("/.gatehouse/callback");
        hops.push((url.clone(), page));
        if done {
            return (hops, url);
        }
        url = location;
    }
    panic!(
        "more than 8 redirects from {start}: {:?}",
        hops.iter().map(|(u, _)| u).collect::<Vec<_>>()
    );
}

/// A callback link for the user signed in at `gateway`, on `host`, back to `path`: a fresh
/// app-host browser opens the host's `/.gatehouse/login` and follows the redirects (each in its
/// host's browser) up to the callback link, not opened. Whatever hops lie between (today's
/// code sends the browser to `/login`, which goes straight on; the fixed code goes through the
/// gateway's handoff and binds the link to this browser), the link comes the same way a user's
/// does. Returns that app-host browser and the link.
async fn handoff_link(
    server: &Server,
    gateway: &mut Browser,
    host: &str,
    path: &str,
) -> (Browser, String) {
    let mut app = Browser::for_host(server, host);
    let link = callback_link(server, gateway, &mut app, host, path).await;
    (app, link)
}

/// [`handoff_link`] in a given app-host browser.
async fn callback_link(
    server: &Server,
    gateway: &mut Browser,
    app: &mut Browser,
    host: &str,
    path: &str,
) -> String {
    let start = app_login(server, host, path);
    let (hops, at) = walk(gateway, app, &start, true).await;
    for (url, r) in &hops {
        assert!(
            r.status == 302 || r.status == 303,
            "{url}: {} (Location {:?}) {}",
            r.status,
            r.location(),
            r.body
        );
    }
    assert!(
        at.contains("/.gatehouse/callback?code="),
        "no callback link from {start}: stopped at {at}"
    );
    at
}

fn session_of(b: &Browser) -> Option<String> {
    b.cookies.get("gatehouse_session").cloned()
}
