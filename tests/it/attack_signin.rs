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
        sections: FA_APPS.into(),
        env: trusted(r#"["127.0.0.1/32"]"#),
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

/// Attack: a caller that is not a trusted proxy describes an original request itself (and
/// claims, in `X-Forwarded-For`/`X-Real-IP`, to be the proxy). Must hold: `/.gatehouse/verify`
/// answers only peers in `[server] trusted_proxies`; anyone else gets 403 JSON naming
/// `trusted_proxies`, signed in or not. The same calls from a trusted peer get 200/401, so the
/// refusal is the peer's doing.
#[tokio::test]
async fn verify_answers_only_trusted_proxies() {
    // Loopback is not in this list (nor is there an empty list's "everyone").
    let server = Server::start_with(Options {
        sections: FA_APPS.into(),
        env: trusted(r#"["192.0.2.0/24"]"#),
    });
    let cookie = signed_in(&server, "mo@example.com", &["modify@wide"])
        .await
        .cookie_header();
    let spoof = [("X-Forwarded-For", "192.0.2.1"), ("X-Real-IP", "192.0.2.1")];
    for (who, c) in [("signed in", Some(cookie.as_str())), ("anonymous", None)] {
        for extra in [&[][..], &spoof[..]] {
            let mut h = forwarded("wide.test", "/x");
            h.extend_from_slice(extra);
            let r = verify(&server, c, &h);
            assert_eq!(
                r.status, 403,
                "{who} {extra:?} from an untrusted peer: {}\n{}",
                r.head, r.body
            );
            let v: Value = serde_json::from_str(&r.body)
                .unwrap_or_else(|e| panic!("403 body is not JSON ({e}): {}", r.body));
            assert_eq!(v["error"], "Forbidden", "{}", r.body);
            assert!(
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("trusted_proxies")),
                "{}",
                r.body
            );
            assert!(
                !r.head.to_ascii_lowercase().contains("x-gatehouse-"),
                "identity headers to an untrusted peer: {}",
                r.head
            );
        }
    }

    // Control: the same calls from a trusted peer are answered.
    let (server, _, modify) = fa_gateway().await;
    let r = verify(&server, Some(&modify), &forwarded("wide.test", "/x"));
    assert_eq!(r.status, 200, "trusted, signed in: {}\n{}", r.head, r.body);
    let r = verify(&server, None, &forwarded("wide.test", "/x"));
    assert_eq!(r.status, 401, "trusted, anonymous: {}\n{}", r.head, r.body);
}

/// Attack (defects 2, 3, 4): a limited user describes a path that a lax reading routes to the
/// app or path they may use, while the canonical reading is the staff app or the back office:
/// dot segments, `//`, encoded unreserved characters, a relative `X-Original-URL` that
/// disagrees in spelling with `X-Forwarded-Uri`, a `#fragment`, `;parameters`, case, trailing
/// dots. Must hold: judged on the canonical path (403), or refused as malformed/ambiguous (400);
/// never 200. The plain paths the user may use still give 200, and a modify user's dot-segment
/// path is judged (200) as the staff app.
#[tokio::test]
async fn verify_judges_the_canonical_path_of_every_description() {
    let (server, limited, modify) = fa_gateway().await;
    let (lim, modi) = (Some(limited.as_str()), Some(modify.as_str()));
    let fa = |uri: &'static str| forwarded("fa.test", uri);
    let crm = |uri: &'static str| forwarded("crm.test", uri);
    let mut cases: Vec<Case> = vec![
        // Controls: what the limited user may use, and what they may not, plainly spelled.
        ("limited", lim, fa("/x"), 200),
        ("limited", lim, fa("/staffroom/x"), 200),
        ("limited", lim, fa("/staff/x"), 403),
        ("limited", lim, crm("/crm/page"), 200),
        ("limited", lim, crm("/crm/admin/x"), 403),
    ];
    // Judged as `staff` (no role for the limited user): 403; for the modify user, 200.
    for uri in [
        "//staff/x",
        "/./staff/x",
        "/x/../staff/x",
        "/pub/../staff/x",
        "/%73taff/x",
        "/x/%2e%2e/staff/x",
        "/x/%2E%2E/staff/x",
    ] {
        cases.push(("limited", lim, fa(uri), 403));
        cases.push(("modify", modi, fa(uri), 200));
    }
    // A client's relative X-Original-URL next to the proxy's X-Forwarded-Uri: the same
    // canonical path, so they agree, and that path (staff) is judged.
    let mut h = fa("/staff/x");
    h.push(("X-Original-URL", "/pub/../staff/x"));
    cases.push(("limited", lim, h.clone(), 403));
    cases.push(("modify", modi, h, 200));
    // Malformed, or the loose reading chooses another app than the canonical one: 400.
    for uri in [
        "/%2fstaff/x",
        "/%2Fstaff/x",
        "/STAFF/x",
        "/staff;x=1/y",
        "/staff./x",
        "/x%5c..%5cstaff/x",
        "/x\\..\\staff/x",
        "/x%00/y",
        "/x%09/y",
        "/x%0A/y",
        "/%2561/y",
        "/x%zz/y",
        "/x%4",
        "/x%C0%AF/y",
        "/x%FF/y",
    ] {
        cases.push(("limited", lim, fa(uri), 400));
    }
    // The back office however spelled (a fragment cut off): 403 or 400, never 200.
    for (uri, want) in [
        ("/crm/admin#x", 403),
        ("/crm/admin/x#frag", 403),
        ("/crm/admin%20/x", 403),
        ("/crm/admin./x", 403),
        ("/crm/admin;x=1/y", 403),
        ("/crm/ADMIN/x", 403),
        ("/crm/%61dmin/x", 403),
        ("/crm/x/../admin/x", 403),
        ("/crm/admin%00/x", 400),
        ("/crm/admin%09/x", 400),
        ("/crm/%2561dmin/x", 400),
        ("/crm/admin%C0%AF/x", 400),
        ("/crm/admin%5cx", 400),
        ("/crm/admin%2fx", 400),
    ] {
        cases.push(("limited", lim, crm(uri), want));
    }
    // The fragment in nginx's description too.
    cases.push((
        "limited",
        lim,
        vec![("Host", "crm.test"), ("X-Original-URI", "/crm/admin#x")],
        403,
    ));

    let mut wrong = Vec::new();
    for (who, cookie, headers, want) in &cases {
        let r = verify(&server, *cookie, headers);
        if r.status != *want {
            wrong.push(format!(
                "{who} {headers:?}: {} (want {want}) {}",
                r.status, r.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} descriptions judged wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Attack (defect 5): an nginx-style call (`X-Original-URI` + `Host: narrow.test`) to which a
/// client added `X-Forwarded-Host: wide.test`, an app host where it may go; or an absolute
/// `X-Original-URL` naming another host than `Host`. Must hold: `Host` naming an app host is a
/// description too, so these disagree → 400. Agreeing descriptions (case and default port
/// ignored) are judged, and a `Host` that is no app host (the gateway's own address, as Traefik
/// and Caddy call it) is ignored: those parts already hold today and are kept as regression
/// checks.
#[tokio::test]
async fn verify_refuses_a_host_description_that_disagrees_with_host() {
    let (server, limited, modify) = fa_gateway().await;
    let (lim, modi) = (Some(limited.as_str()), Some(modify.as_str()));
    let own = format!("127.0.0.1:{}", server.port);
    let nginx = |host: &'static str| vec![("Host", host), ("X-Original-URI", "/x")];
    let with = |mut h: Vec<(&'static str, &'static str)>,
                extra: &[(&'static str, &'static str)]| {
        h.extend_from_slice(extra);
        h
    };
    let mut traefik_wide = forwarded("wide.test", "/x");
    traefik_wide.push(("Host", own.as_str()));
    let mut traefik_narrow = forwarded("narrow.test", "/x");
    traefik_narrow.push(("Host", own.as_str()));
    let cases: Vec<Case> = vec![
        // Controls: nginx style alone, for each host and user.
        ("limited", lim, nginx("wide.test"), 200),
        ("limited", lim, nginx("narrow.test"), 403),
        ("modify", modi, nginx("narrow.test"), 200),
        // The attack: Host says narrow.test, a client's X-Forwarded-Host says wide.test.
        (
            "limited",
            lim,
            with(nginx("narrow.test"), &[("X-Forwarded-Host", "wide.test")]),
            400,
        ),
        // Host against an absolute X-Original-URL on another host.
        (
            "limited",
            lim,
            with(
                nginx("narrow.test"),
                &[("X-Original-URL", "http://wide.test/x")],
            ),
            400,
        ),
        // Agreeing descriptions spelled differently (case, default port): judged.
        (
            "limited",
            lim,
            with(
                nginx("WIDE.test:80"),
                &[
                    ("X-Forwarded-Host", "wide.TEST"),
                    ("X-Original-URL", "http://wide.test:80/x"),
                ],
            ),
            200,
        ),
        // The gateway's own address as Host (no app lives there) is ignored.
        ("limited", lim, traefik_wide, 200),
        ("limited", lim, traefik_narrow, 403),
    ];
    let mut wrong = Vec::new();
    for (who, cookie, headers, want) in &cases {
        let r = verify(&server, *cookie, headers);
        if r.status != *want {
            wrong.push(format!(
                "{who} {headers:?}: {} (want {want}) {}",
                r.status, r.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} host descriptions judged wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Cross-host sign-in: return URLs, the handoff, sessions per host, CSRF per session.

/// Two proxied apps on their own hosts (`wiki.test`, `shop.test`, for anyone signed in); the
/// gateway's loopback peers are trusted, for the forward-auth checks.
fn hosts_gateway(upstream: &Upstream) -> Server {
    let url = &upstream.url;
    Server::start_with(Options {
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

/// The five hops of a cross-host sign-in, each with its status and `Location` (attack-spec §7).
/// Must hold: hop 2 goes to the app host's `/.gatehouse/login` (not straight to a callback),
/// hop 3 binds the handoff to this browser in a host-only cookie, the callback with that cookie
/// signs the app host in (host-only session, handoff cookie cleared) and lands on the exact
/// path; the app sees the user.
#[tokio::test]
async fn cross_host_sign_in_takes_five_hops_bound_to_the_browser() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    server.create_user("five@example.com", GOOD_PASSWORD, &["limited"]);
    let mut wiki = Browser::for_host(&server, "wiki.test");

    // Hop 1: not signed in.
    let r = wiki.get("/path?x=1").await;
    assert_eq!(r.status, 302, "hop 1: {}", r.body);
    let original = format!("http://wiki.test:{}/path?x=1", server.port);
    assert_eq!(
        r.location(),
        format!("{}/login?rd={}", server.base, enc(&original)),
        "hop 1"
    );
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    // Hop 2: sign-in at the gateway.
    let mut gateway = server.browser();
    let page = gateway.get(&r.location()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let rd = field_value(&page.body, "rd").unwrap_or_default();
    assert_eq!(rd, original);
    let r = gateway
        .post(
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("email", "five@example.com"),
                ("password", GOOD_PASSWORD),
                ("rd", rd.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "hop 2: {}", r.body);
    assert_eq!(
        r.location(),
        format!(
            "http://wiki.test:{}/.gatehouse/login?rd=%2Fpath%3Fx%3D1",
            server.port
        ),
        "hop 2 must go to the app host's /.gatehouse/login"
    );

    // Hops 3 and 4 (asserted by the helper), then 5.
    let r = follow_handoff(&mut gateway, &mut wiki, r.location()).await;
    assert_eq!(r.status, 303, "hop 5: {}", r.body);
    assert_eq!(r.location(), "/path?x=1", "hop 5");
    let set = r.set_cookies();
    let session = set
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap_or_else(|| panic!("hop 5 set no session: {set:?}"));
    assert!(
        !session.to_ascii_lowercase().contains("domain="),
        "host-only session: {session}"
    );
    assert!(
        set.iter().any(|c| c.starts_with("gatehouse_handoff=")),
        "hop 5 must clear the handoff cookie: {set:?}"
    );
    assert!(
        !wiki.cookies.contains_key("gatehouse_handoff"),
        "the handoff cookie is cleared: {set:?}"
    );

    let r = wiki.get("/path?x=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = upstream.last("/path");
    assert_eq!(seen.path_and_query, "/path?x=1");
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("five@example.com")
    );
}

/// An app-host sign-in link (`/.gatehouse/login`) opened by a browser not yet signed in at the
/// gateway. Must hold: hop 4 sends it to sign in with the handoff URL as its return, the
/// sign-in comes back to that handoff, and the handoff then goes on to a callback that signs
/// the app host in.
#[tokio::test]
async fn a_handoff_without_a_gateway_session_goes_through_sign_in_and_back() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    server.create_user("late@example.com", GOOD_PASSWORD, &["limited"]);
    let mut wiki = Browser::for_host(&server, "wiki.test");
    let mut gateway = server.browser();

    let r = wiki.get(&app_login(&server, "wiki.test", "/doc")).await;
    assert_eq!(r.status, 303, "hop 3: {} {}", r.location(), r.body);
    let handoff = r.location();
    assert!(
        handoff.starts_with(&format!("{}/.gatehouse/handoff?", server.base)),
        "hop 3 went to {handoff}"
    );
    assert!(
        wiki.cookies.contains_key("gatehouse_handoff"),
        "{:?}",
        wiki.cookies
    );

    // Hop 4 without a gateway session: sign in first, coming back here.
    let r = gateway.get(&handoff).await;
    assert_eq!(r.status, 303, "hop 4 signed out: {}", r.body);
    let login = r.location();
    let resolve = |l: &str| {
        url::Url::parse(&server.base)
            .unwrap()
            .join(l)
            .unwrap()
            .to_string()
    };
    assert!(
        resolve(&login).starts_with(&format!("{}/login?", server.base)),
        "hop 4 signed out went to {login}"
    );
    let rd = query_param(&login, "rd").unwrap_or_default();
    assert_eq!(resolve(&rd), resolve(&handoff), "sign-in's return: {login}");
    let page = gateway.get(&resolve(&login)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let form_rd = field_value(&page.body, "rd").unwrap_or_default();
    let r = gateway
        .post(
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("email", "late@example.com"),
                ("password", GOOD_PASSWORD),
                ("rd", form_rd.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(resolve(&r.location()), resolve(&handoff), "after sign-in");

    // Hop 4 again, now signed in, then the callback.
    let r = gateway.get(&handoff).await;
    assert_eq!(r.status, 303, "hop 4: {}", r.body);
    let callback = r.location();
    assert!(
        callback.starts_with(&format!(
            "http://wiki.test:{}/.gatehouse/callback?code=",
            server.port
        )),
        "hop 4 went to {callback}"
    );
    let r = wiki.get(&callback).await;
    assert_eq!(r.status, 303, "hop 5: {}", r.body);
    assert_eq!(r.location(), "/doc");
    assert_eq!(wiki.get("/doc").await.status, 200);
    assert_eq!(
        upstream.last("/doc").one("x-gatehouse-email").as_deref(),
        Some("late@example.com")
    );
}

/// Attack (defect 7): the callback link opened without the handoff cookie it is bound to (a
/// fresh browser), or with another browser's handoff cookie. Must hold: 400 "Sign-in link
/// expired", no session cookie, and the code is spent — the right browser cannot use it
/// afterwards either. Control: the same steps, the link opened by the browser that started
/// them, sign in.
#[tokio::test]
async fn a_callback_link_works_only_in_the_browser_that_started_it() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut gateway = signed_in(&server, "own@example.com", &["limited"]).await;

    // Control.
    let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let r = wiki.get(&callback).await;
    assert_eq!(r.status, 303, "the starting browser: {}", r.body);
    assert!(session_of(&wiki).is_some(), "{:?}", r.set_cookies());

    // No handoff cookie.
    let (mut owner, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let mut fresh = Browser::for_host(&server, "wiki.test");
    let r = fresh.get(&callback).await;
    assert_eq!(r.status, 400, "no handoff cookie: {}", r.body);
    assert!(r.body.contains("Sign-in link expired"), "{}", r.body);
    assert!(
        session_of(&fresh).is_none(),
        "no handoff cookie, yet a session: {:?}",
        r.set_cookies()
    );
    // Spent: not even the browser it was bound to can use it now.
    let r = owner.get(&callback).await;
    assert_eq!(r.status, 400, "spent code: {}", r.body);
    assert!(session_of(&owner).is_none(), "{:?}", r.set_cookies());

    // Another value of the handoff cookie (another browser's, from its own hop 3).
    let (_, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let mut other = Browser::for_host(&server, "wiki.test");
    let r = other.get(&app_login(&server, "wiki.test", "/b")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(other.cookies.contains_key("gatehouse_handoff"));
    let r = other.get(&callback).await;
    assert_eq!(r.status, 400, "another handoff cookie: {}", r.body);
    assert!(session_of(&other).is_none(), "{:?}", r.set_cookies());
    // A forged value neither.
    let (_, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let mut forged = Browser::for_host(&server, "wiki.test");
    forged
        .cookies
        .insert("gatehouse_handoff".into(), "A".repeat(43));
    let r = forged.get(&callback).await;
    assert_eq!(r.status, 400, "forged handoff cookie: {}", r.body);
    assert!(session_of(&forged).is_none(), "{:?}", r.set_cookies());
    assert!(
        upstream.seen().is_empty(),
        "nothing was proxied: {:?}",
        upstream.seen()
    );
}

/// Attack (defect 7, login CSRF / session swap): the attacker signs in and sends the callback
/// link it got (bound to the attacker's handoff cookie) to a victim who is signed in on the app
/// host as themselves — once with no handoff cookie, once with the victim's own. Must hold: the
/// victim is not signed in as the attacker (400 or 409), keeps their own session cookie, and
/// their next app request reaches the upstream as the victim.
#[tokio::test]
async fn a_planted_callback_link_does_not_sign_the_victim_in_as_the_attacker() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut victim_gw = signed_in(&server, "victim@example.com", &["limited"]).await;
    let mut mallory_gw = signed_in(&server, "mallory@example.com", &["limited"]).await;

    // The victim, signed in on wiki.test.
    let (mut victim, callback) = handoff_link(&server, &mut victim_gw, "wiki.test", "/").await;
    let r = victim.get(&callback).await;
    assert_eq!(r.status, 303, "victim's own sign-in: {}", r.body);
    let victim_session = session_of(&victim).expect("victim's session");
    assert_eq!(victim.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("victim@example.com")
    );

    for with_own_handoff in [false, true] {
        let (_, planted) = handoff_link(&server, &mut mallory_gw, "wiki.test", "/").await;
        if with_own_handoff {
            let r = victim.get(&app_login(&server, "wiki.test", "/")).await;
            assert_eq!(r.status, 303, "{}", r.body);
            assert!(victim.cookies.contains_key("gatehouse_handoff"));
        } else {
            victim.cookies.remove("gatehouse_handoff");
        }
        let r = victim.get(&planted).await;
        assert!(
            r.status == 400 || r.status == 409,
            "victim (own handoff cookie: {with_own_handoff}) opened the attacker's link: {} {:?} {}",
            r.status,
            r.set_cookies(),
            r.body
        );
        assert_eq!(
            session_of(&victim).as_deref(),
            Some(victim_session.as_str()),
            "the victim's session cookie was replaced: {:?}",
            r.set_cookies()
        );
        assert_eq!(victim.get("/me").await.status, 200);
        assert_eq!(
            upstream.last("/me").one("x-gatehouse-email").as_deref(),
            Some("victim@example.com"),
            "own handoff cookie: {with_own_handoff}"
        );
        victim.cookies.remove("gatehouse_handoff");
    }

    // A browser with no cookies at all: 400, no session.
    let (_, planted) = handoff_link(&server, &mut mallory_gw, "wiki.test", "/").await;
    let mut fresh = Browser::for_host(&server, "wiki.test");
    let r = fresh.get(&planted).await;
    assert_eq!(r.status, 400, "fresh browser: {}", r.body);
    assert!(session_of(&fresh).is_none(), "{:?}", r.set_cookies());

    // Control: the attacker's own browser completes the same kind of link.
    let (mut mallory, link) = handoff_link(&server, &mut mallory_gw, "wiki.test", "/").await;
    let r = mallory.get(&link).await;
    assert_eq!(r.status, 303, "the attacker's own browser: {}", r.body);
    assert_eq!(mallory.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("mallory@example.com")
    );
}

/// Someone else signs in on an app host where a browser already holds a live session of
/// another user (a shared computer), with the handoff cookie of this browser. Must hold: the
/// callback answers 409 (someone else is signed in here: sign out first) and keeps the existing
/// session; for the same user the session is simply replaced (303, a new session cookie).
#[tokio::test]
async fn a_callback_for_another_user_does_not_replace_a_live_app_host_session() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut first_gw = signed_in(&server, "first@example.com", &["limited"]).await;
    let mut second_gw = signed_in(&server, "second@example.com", &["limited"]).await;

    let (mut wiki, callback) = handoff_link(&server, &mut first_gw, "wiki.test", "/").await;
    assert_eq!(wiki.get(&callback).await.status, 303);
    let first = session_of(&wiki).expect("first user's session");

    // The second user, signed in at the gateway, signs in on wiki.test in this same browser.
    let link = callback_link(&server, &mut second_gw, &mut wiki, "wiki.test", "/").await;
    let r = wiki.get(&link).await;
    assert_eq!(
        r.status,
        409,
        "another user's callback: {:?} {}",
        r.set_cookies(),
        r.body
    );
    assert!(
        r.body.to_lowercase().contains("sign out"),
        "the page says to sign out first: {}",
        r.body
    );
    assert_eq!(
        session_of(&wiki).as_deref(),
        Some(first.as_str()),
        "the live session was replaced: {:?}",
        r.set_cookies()
    );
    assert_eq!(wiki.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("first@example.com")
    );
    wiki.cookies.remove("gatehouse_handoff");

    // The same user again: replaced.
    let link = callback_link(&server, &mut first_gw, &mut wiki, "wiki.test", "/").await;
    let r = wiki.get(&link).await;
    assert_eq!(r.status, 303, "the same user's callback: {}", r.body);
    let again = session_of(&wiki).expect("a session");
    assert_ne!(again, first, "a new session cookie: {:?}", r.set_cookies());
    assert_eq!(wiki.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("first@example.com")
    );
}

/// Hostile return URLs (defect 6).
const EVIL_RD: &[&str] = &[
    "%2F%09%2Fevil.example",
    "%2F%0A%2Fevil.example",
    "%2F%0D%2Fevil.example",
    "%2F%00%2Fevil.example",
    "%2F%0D%0ALocation%3A%20https%3A%2F%2Fevil.example",
    "%09%2F%2Fevil.example",
    "%20%2F%2Fevil.example",
    "/%5Cevil.example",
    "%2F%5Cevil.example",
    "https%3A%2F%2Fevil.example%2F",
    "https://evil.example/",
    "//evil.example",
    "%2F%2Fevil.example",
    "http%3A%2F%2Fwiki.test%40evil.example%2F",
    "javascript%3Aalert(1)",
];

/// Whether a browser following `location` stays on a configured host.
fn stays_home(location: &str, hosts: &[String]) -> bool {
    if location.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if let Some(rest) = location.strip_prefix('/') {
        return !rest.starts_with('/') && !rest.starts_with('\\');
    }
    ["http://", "https://"].iter().any(|scheme| {
        location.strip_prefix(scheme).is_some_and(|rest| {
            hosts.iter().any(|h| {
                rest.strip_prefix(h.as_str())
                    .is_some_and(|after| after.is_empty() || after.starts_with('/'))
            })
        })
    })
}

/// Attack (defect 6): hostile `rd` values (tab, CR, LF, NUL in a path that browsers would
/// strip into `//evil.example`, backslashes, other hosts, scheme tricks), raw and
/// percent-encoded, on `/login` (signed in and at sign-in), the app host's `/.gatehouse/login`
/// and the `/.gatehouse/callback`. Must hold: every answer is a redirect (never a 500) whose
/// `Location` is a same-origin path or an http(s) URL on a configured host, at every hop.
#[tokio::test]
async fn return_urls_never_leave_the_configured_hosts() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    server.create_user("rd@example.com", GOOD_PASSWORD, &["limited"]);
    let hosts: Vec<String> = [
        format!("127.0.0.1:{}", server.port),
        format!("wiki.test:{}", server.port),
        format!("shop.test:{}", server.port),
    ]
    .into();
    // What is wrong with an answer, if anything: not a redirect, or one that leaves home.
    // (`must_redirect: false`: any answer but a 5xx will do, as long as a Location it has
    // stays home.)
    let verdict = |what: String, r: &Page, must_redirect: bool| -> Option<String> {
        let redirect = (300..400).contains(&r.status);
        let location_ok = if redirect || r.headers.contains_key("location") {
            stays_home(&r.location(), &hosts)
        } else {
            true
        };
        if location_ok && r.status < 500 && (redirect || !must_redirect) {
            return None;
        }
        let body: String = r.body.chars().take(200).collect();
        Some(format!(
            "{what}: {} Location {:?} {body}",
            r.status,
            r.location()
        ))
    };
    let mut wrong: Vec<String> = Vec::new();
    let mut gateway = signed_in(&server, "rd2@example.com", &["limited"]).await;
    // Control: an ordinary callback link with its own rd lands there.
    let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/home").await;
    let r = wiki.get(&callback).await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (303, "/home"),
        "{}",
        r.body
    );

    for evil in EVIL_RD {
        // Signed in: /login?rd= answers straight on.
        let r = gateway.get(&format!("/login?rd={evil}")).await;
        wrong.extend(verdict(format!("GET /login?rd={evil} signed in"), &r, true));

        // At sign-in: the form keeps rd, the POST answers with it.
        let mut b = server.browser();
        let page = b.get(&format!("/login?rd={evil}")).await;
        assert_eq!(page.status, 200, "GET /login?rd={evil}: {}", page.body);
        let csrf = page.csrf();
        let rd = field_value(&page.body, "rd").unwrap_or_default();
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", "rd@example.com"),
                    ("password", GOOD_PASSWORD),
                    ("rd", rd.as_str()),
                ],
            )
            .await;
        wrong.extend(verdict(format!("POST /login rd={evil}"), &r, true));

        // The app host's /.gatehouse/login, every hop to the callback's answer.
        let mut wiki = Browser::for_host(&server, "wiki.test");
        let start = format!(
            "http://wiki.test:{}/.gatehouse/login?rd={evil}",
            server.port
        );
        for (url, r) in walk(&mut gateway, &mut wiki, &start, false).await.0 {
            wrong.extend(verdict(
                format!("{url} (from /.gatehouse/login?rd={evil})"),
                &r,
                true,
            ));
        }
        // The gateway's own /.gatehouse/login.
        let r = gateway.get(&format!("/.gatehouse/login?rd={evil}")).await;
        wrong.extend(verdict(
            format!("gateway /.gatehouse/login?rd={evil}"),
            &r,
            false,
        ));

        // The callback, its rd swapped for the hostile one.
        let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/").await;
        let swapped = format!("{}&rd={evil}", callback.split("&rd=").next().unwrap());
        let r = wiki.get(&swapped).await;
        wrong.extend(verdict(format!("callback rd={evil}"), &r, true));
    }
    assert!(
        wrong.is_empty(),
        "{} answers leave the configured hosts or are no redirect:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Attack (hardening): a session cookie that a callback made for `wiki.test` carried to
/// `shop.test`, to the gateway's own pages, and to forward-auth for `shop.test`. Must hold: it
/// is a session only on `wiki.test` (and forward-auth for `wiki.test`); elsewhere it is no
/// session (302 to sign-in, 401, 303 to `/login`).
#[tokio::test]
async fn an_app_host_session_is_no_session_on_another_host() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut gateway = signed_in(&server, "bound@example.com", &["limited"]).await;
    let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/").await;
    assert_eq!(wiki.get(&callback).await.status, 303);
    let token = session_of(&wiki).expect("wiki session");
    let carried = format!("gatehouse_session={token}");

    // Controls: on wiki.test it works, the gateway's own session works on the gateway.
    assert_eq!(wiki.get("/w").await.status, 200);
    let r = gateway.get("/").await;
    assert_eq!(r.status, 200, "gateway's own session on /: {}", r.body);
    let r = verify(
        &server,
        Some(&carried),
        &forwarded(&format!("wiki.test:{}", server.port), "/w"),
    );
    assert_eq!(
        r.status, 200,
        "forward-auth for wiki.test: {}\n{}",
        r.head, r.body
    );

    // Elsewhere: each answer that treats it as a session is collected.
    let mut wrong: Vec<String> = Vec::new();
    let mut shop = Browser::for_host(&server, "shop.test");
    shop.cookies
        .insert("gatehouse_session".into(), token.clone());
    let r = shop.get("/s").await;
    if r.status != 302 || !r.location().contains("/login?rd=") {
        wrong.push(format!(
            "shop.test page: {} Location {:?} (want 302 to sign-in)",
            r.status,
            r.location()
        ));
    }
    let r = shop
        .client
        .get(format!("{}/s", shop.base))
        .header("accept", "application/json")
        .header("cookie", &carried)
        .send()
        .await
        .unwrap();
    if r.status() != 401 {
        wrong.push(format!("shop.test API: {} (want 401)", r.status()));
    }
    let mut home = server.browser();
    home.cookies
        .insert("gatehouse_session".into(), token.clone());
    let r = home.get("/").await;
    if r.status != 303 || !r.location().contains("/login") {
        wrong.push(format!(
            "gateway /: {} Location {:?} (want 303 to /login)",
            r.status,
            r.location()
        ));
    }
    let r = verify(
        &server,
        Some(&carried),
        &forwarded(&format!("shop.test:{}", server.port), "/s"),
    );
    if r.status != 401 {
        wrong.push(format!(
            "forward-auth for shop.test: {} (want 401)",
            r.status
        ));
    }
    let to_shop: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/s"))
        .map(|s| s.path_and_query)
        .collect();
    if !to_shop.is_empty() {
        wrong.push(format!("the upstream saw {to_shop:?} for shop.test"));
    }
    assert!(
        wrong.is_empty(),
        "wiki.test's session counted elsewhere:\n{}",
        wrong.join("\n")
    );
}

/// Attack (hardening): the CSRF token of a form rendered for browser A, with A's CSRF cookie,
/// posted with browser B's session cookie (a token and cookie obtained once, replayed against
/// every session). Must hold: `POST /logout` is refused (403) and B stays signed in; B's own
/// token signs B out.
#[tokio::test]
async fn a_csrf_token_is_good_only_with_the_session_it_was_rendered_for() {
    let server = Server::start();
    let mut a = signed_in(&server, "csrf-a@example.com", &[]).await;
    let mut b = signed_in(&server, "csrf-b@example.com", &[]).await;
    let page = a.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let a_token = page.csrf();
    let a_csrf_cookie = a.cookies["gatehouse_csrf"].clone();

    let mut mixed = server.browser();
    mixed
        .cookies
        .insert("gatehouse_csrf".into(), a_csrf_cookie.clone());
    mixed.cookies.insert(
        "gatehouse_session".into(),
        b.cookies["gatehouse_session"].clone(),
    );
    let r = mixed.post("/logout", &[("csrf", a_token.as_str())]).await;
    assert_eq!(
        r.status,
        403,
        "A's token + A's CSRF cookie + B's session: {} {:?} {}",
        r.status,
        r.set_cookies(),
        r.body
    );
    let r = b.get("/").await;
    assert_eq!(r.status, 200, "B is still signed in: {}", r.body);

    // Control: B's own token signs B out.
    let b_token = r.csrf();
    let r = b.post("/logout", &[("csrf", b_token.as_str())]).await;
    assert!(
        r.status == 303 || r.status == 200,
        "B's own sign-out: {} {}",
        r.status,
        r.body
    );
    let r = b.get("/").await;
    assert_eq!(r.status, 303, "B signed out: {}", r.body);
}
