//! Client side: pipelining, and what reaches the upstream (identity, hop-by-hop headers,
//! cookies, raw request targets).

use super::*;
use crate::upstream::Upstream;

/// Requests pipelined in one write (app requests and a gateway page mixed, a body followed by
/// a request, a head split across two writes) get complete responses in order on the one
/// connection, and each app request reaches the upstream once, in order, with the identity;
/// `Connection: close` on the last one ends the connection after its answer.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_each_carries_the_identity() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "pipe@example.com").await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;

    let two = format!(
        "{}{}",
        c.head("GET", "/crm/first?n=1", &[&cookie]),
        c.head("GET", "/crm/second?n=2", &[&cookie])
    );
    c.send(two).await;
    for path in ["/crm/first", "/crm/second"] {
        let r = c.response(false).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.json()["path"], path);
    }

    // App, gateway page, app in one write; then a head arriving in two pieces.
    let three = format!(
        "{}{}{}",
        c.head("GET", "/crm/third", &[&cookie]),
        c.head("GET", "/healthz", &[]),
        c.head("GET", "/crm/fourth", &[&cookie])
    );
    c.send(three).await;
    assert_eq!(c.response(false).await.json()["path"], "/crm/third");
    let health = c.response(false).await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    assert_eq!(c.response(false).await.json()["path"], "/crm/fourth");
    let split = c.head("GET", "/crm/fifth", &[&cookie]);
    let (a, b) = split.split_at(split.len() / 2);
    c.send(a).await;
    c.wait_read().await;
    c.send(b).await;
    assert_eq!(c.response(false).await.json()["path"], "/crm/fifth");

    // A body (that looks like a request) then a request behind it, the last one asking to
    // close: the body stays a body, and the connection ends after the last answer.
    let hidden = c.head("GET", "/crm/hidden", &[&cookie]);
    let mut more = c.head(
        "POST",
        "/crm/body",
        &[&cookie, &format!("Content-Length: {}", hidden.len())],
    );
    more.push_str(&hidden);
    more.push_str(&c.head("GET", "/crm/last", &[&cookie, "Connection: close"]));
    c.send(more).await;
    let r = c.response(false).await;
    assert_eq!((r.status, r.text()), (200, hidden.clone()));
    let r = c.response(false).await;
    assert_eq!(r.json()["path"], "/crm/last");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof().await;

    let seen = upstream.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path_and_query.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/crm/first?n=1",
            "/crm/second?n=2",
            "/crm/third",
            "/crm/fourth",
            "/crm/fifth",
            "/crm/body",
            "/crm/last"
        ]
    );
    for s in &seen {
        assert_eq!(s.one("x-gatehouse-user").as_deref(), Some(id.as_str()));
        assert_eq!(
            s.one("x-gatehouse-email").as_deref(),
            Some("pipe@example.com")
        );
    }
}

/// On the fast path, identity headers sent by the client in any case, twice, or with `_` for
/// `-` never reach the upstream — only the gateway's own values do; headers the client names
/// in `Connection` are dropped as hop-by-hop; the gateway's cookies are cut out of `Cookie`
/// and the app's cookies kept.
#[tokio::test]
async fn spoofed_identity_hop_by_hop_and_gateway_cookies_are_dropped_on_the_fast_path() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "spoof@example.com").await;
    let mut c = Client::connect(&server).await;
    let session_cookie = format!("Cookie: app=1; gatehouse_session={token}");
    let req = c.head(
        "GET",
        "/crm/spoof?q=1",
        &[
            "X-Gatehouse_User: evil",
            "x-gatehouse-user: evil",
            "x-gatehouse-user: evil",
            "X-GATEHOUSE-ROLES: admin",
            "x_gatehouse_email: evil@example.com",
            "X-Gatehouse-Assertion: forged",
            "Remote-User: evil",
            "Remote_User: evil",
            "X-Forwarded-User: evil",
            "X-Forwarded-For: 6.6.6.6",
            "X-Forwarded-Host: evil.example",
            "X-Forwarded-Proto: https",
            "Forwarded: for=6.6.6.6;host=evil.example",
            "Connection: keep-alive, x-hop-secret",
            "X-Hop-Secret: 1",
            "Keep-Alive: timeout=5",
            "X-App: kept",
            &session_cookie,
            "Cookie: gatehouse_csrf=abc; theme=dark",
            "Accept: application/json",
        ],
    );
    c.send(req).await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{r:?}");

    let seen = upstream.last("/crm/spoof");
    assert_eq!(seen.path_and_query, "/crm/spoof?q=1");
    assert_eq!(seen.one("x-gatehouse-user").as_deref(), Some(id.as_str()));
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("spoof@example.com")
    );
    assert_eq!(seen.one("x-gatehouse-roles").as_deref(), Some("modify"));
    let assertion = seen.one("x-gatehouse-assertion").expect("assertion");
    assert_ne!(assertion, "forged");
    for name in [
        "remote-user",
        "x-forwarded-user",
        "x-hop-secret",
        "keep-alive",
    ] {
        assert!(seen.all(name).is_empty(), "{name} reached the upstream");
    }
    for (n, v) in &seen.headers {
        if n == "x-gatehouse-assertion" {
            continue;
        }
        assert!(
            !n.contains('_'),
            "a header named {n:?} reached the upstream"
        );
        assert!(
            !v.contains("evil") && !v.contains("6.6.6.6") && v != "admin",
            "a spoofed value reached the upstream: {n}: {v}"
        );
    }
    assert_eq!(seen.one("x-app").as_deref(), Some("kept"));
    // The hop's own facts, not the client's claims (it is not a trusted proxy).
    assert_eq!(seen.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.one("x-forwarded-proto").as_deref(), Some("http"));
    let host = format!("127.0.0.1:{}", server.port);
    assert_eq!(seen.one("x-forwarded-host").as_deref(), Some(host.as_str()));
    let fwd = seen.one("forwarded").expect("forwarded");
    assert!(!fwd.contains("6.6.6.6"), "{fwd}");
    let cookies = seen.all("cookie").join("; ");
    assert_eq!(cookies, "app=1; theme=dark");
    assert!(!cookies.contains(&token));
}

/// Request targets sent exactly as written (no client library resolves them first): dot
/// segments, doubled slashes and percent-encoding cannot walk a limited user around the
/// `/crm/admin/*` back-office rule on the fast path; nothing of it reaches the upstream, while
/// a modify user gets through.
#[tokio::test]
async fn raw_targets_cannot_walk_around_a_back_office_rule() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (limited, _) = session_as(&server, "lim@example.com", "limited@crm").await;
    let (modify, _) = session(&server, "mod@example.com").await;
    let targets = [
        "/crm/admin/users",
        "/crm/admin",
        "/crm/admin?x=1",
        "/crm/orders/../admin/users",
        "/crm/./admin/users",
        "/crm//admin/users",
        "/crm/%61dmin/users",
        "/crm/%61%64%6D%69%6E/users",
        "/crm/orders/%2e%2e/admin/users",
        "/crm/orders/%2E%2E/admin/users",
        "/crm/orders/.%2e/admin/users",
        "/crm/admin;x=1/users",
        "/crm/admin;/users",
        "/crm/orders/..;/admin/users",
        "/crm/ADMIN/users",
        "/crm/Admin",
    ];
    let mut c = Client::connect(&server).await;
    let cookie = format!("Cookie: gatehouse_session={limited}");
    for target in targets {
        c.send(c.head("GET", target, &[&cookie, "Accept: application/json"]))
            .await;
        let r = c.response(false).await;
        assert_eq!(r.status, 403, "limited user reached {target}: {r:?}");
    }
    // An encoded slash cannot be read one way by every upstream: refused before any judgement
    // (and the connection, handed to hyper for the refusal, closes).
    for target in ["/crm/orders/..%2fadmin/users", "/crm/admin%2fusers"] {
        let mut c = Client::connect(&server).await;
        c.send(c.head("GET", target, &[&cookie, "Accept: application/json"]))
            .await;
        let r = c.response(false).await;
        assert_eq!(r.status, 400, "limited user's {target}: {r:?}");
    }
    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());

    let cookie = format!("Cookie: gatehouse_session={modify}");
    c.send(c.head("GET", "/crm/orders/../admin/users", &[&cookie]))
        .await;
    assert_eq!(c.response(false).await.status, 200);
    assert_eq!(
        upstream.seen().len(),
        1,
        "the modify user's request went through once"
    );
}
