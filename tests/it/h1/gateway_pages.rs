//! The gateway's own pages on the fast path, refusals, oversized bodies, revocations on a
//! kept-alive connection, and connections handed between workers.

use super::*;
use crate::upstream::Upstream;

/// `GET /healthz` is answered by hand with a date and an exact length, `HEAD /healthz` with no
/// body, and the same kept-alive connection then carries a signed-in app request; a client's
/// `Connection: close` is honoured.
#[tokio::test]
async fn gateway_pages_and_app_requests_share_a_kept_alive_connection() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "pages@example.com").await;
    let mut c = Client::connect(&server).await;

    c.send(c.head("GET", "/healthz", &[])).await;
    let r = c.response(false).await;
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("content-length"), Some("2"));
    let date = r.header("date").expect("date header");
    assert!(
        date.len() == 29 && date.ends_with(" GMT") && date.as_bytes()[3] == b',',
        "{date:?}"
    );
    assert!(r.header("connection").is_none(), "{:?}", r.headers);

    c.send(c.head("HEAD", "/healthz", &[])).await;
    let r = c.response(true).await;
    assert_eq!(r.status, 200);
    // Nothing but the next response may follow: a stray body would be read as its start.
    c.send(c.head(
        "GET",
        "/crm/app",
        &[&format!("Cookie: gatehouse_session={token}")],
    ))
    .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["path"], "/crm/app");
    assert_eq!(
        upstream.last("/crm/app").one("x-gatehouse-user").as_deref(),
        Some(id.as_str())
    );

    c.send(c.head("GET", "/healthz", &["Connection: close"]))
        .await;
    let r = c.response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof().await;
}

/// Without a session, an app request from a browser is sent to sign in (back to the exact
/// URL) and an API client gets 401 JSON, on one connection; a refused POST's body is consumed
/// as a body, never read as the next request; nothing reaches the upstream.
#[tokio::test]
async fn unauthenticated_app_requests_get_a_redirect_or_401_json() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let mut c = Client::connect(&server).await;

    c.send(c.head("GET", "/crm/page?x=1&y=%C3%A9", &["Accept: text/html"]))
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").expect("location").to_string();
    assert!(location.contains("/login?rd="), "{location}");
    let rd = url::Url::parse(&location)
        .or_else(|_| url::Url::parse(&format!("{}{location}", server.base)))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.to_string())
        .unwrap();
    assert_eq!(rd, format!("{}/crm/page?x=1&y=%C3%A9", server.base));

    c.send(c.head("GET", "/crm/page", &[])).await;
    let r = c.response(false).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{r:?}"
    );
    let v = r.json();
    assert_eq!(v["error"], "unauthorized");
    assert!(v["login_url"].as_str().unwrap().contains("/login?rd="));

    // A refused POST whose body looks like a request: it stays a body.
    let hidden = c.head("GET", "/crm/hidden", &[]);
    let mut post = c.head(
        "POST",
        "/crm/api",
        &[
            "Accept: application/json",
            &format!("Content-Length: {}", hidden.len()),
        ],
    );
    post.push_str(&hidden);
    post.push_str(&c.head("GET", "/healthz", &[]));
    c.send(post).await;
    assert_eq!(c.response(false).await.status, 401);
    let r = c.response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");

    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());
}

/// A body over the router's limit is not read: the gateway's own form answers 413 (as on the
/// other paths), an app request without a session still gets its 401; either way the
/// connection ends after the answer, so the unread body is never taken for a request.
#[tokio::test]
async fn oversized_bodies_are_refused_without_being_read() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let too_big = "Content-Length: 3000000";

    let mut c = Client::connect(&server).await;
    c.send(c.head("POST", "/login", &[too_big, "Accept: text/html"]))
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.text().contains("too large"), "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof().await;

    let mut c = Client::connect(&server).await;
    c.send(c.head(
        "POST",
        "/crm/upload",
        &[too_big, "Accept: application/json"],
    ))
    .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof().await;
    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());
}

/// A client connection remembers its last allowed request's session and access (so that the
/// next request skips the cache and the locks), but never past an invalidation: on the same
/// kept-alive connection, a revoked role gives 403 and a revoked session 401 at once, and a
/// role granted again lets the next request through.
#[tokio::test]
async fn revocations_reach_a_kept_alive_connection_at_once() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, _) = session(&server, "kept@example.com").await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    let get = async |c: &mut Client| {
        let req = c.head("GET", "/crm/page", &[&cookie]);
        c.send(req).await;
        c.response(false).await.status
    };
    assert_eq!(get(&mut c).await, 200);
    assert_eq!(get(&mut c).await, 200);

    server.admin_ok(&[
        "revoke",
        "--user",
        "kept@example.com",
        "--role",
        "modify",
        "--app",
        "crm",
    ]);
    assert_eq!(get(&mut c).await, 403, "role revoked");
    server.admin_ok(&[
        "grant",
        "--user",
        "kept@example.com",
        "--role",
        "modify",
        "--app",
        "crm",
    ]);
    assert_eq!(get(&mut c).await, 200, "role granted again");
    assert_eq!(get(&mut c).await, 200);

    server.admin_ok(&["session", "revoke", "--email", "kept@example.com"]);
    assert_eq!(get(&mut c).await, 401, "session revoked");
}

/// Connections are spread over the workers (one that holds more than another hands the new
/// connection over) and are served alike wherever they land: proxied requests, refusals and the
/// gateway's own pages, kept alive across requests.
#[tokio::test]
async fn connections_handed_between_workers_are_served_alike() {
    let upstream = Upstream::start();
    let server = start_env(
        &upstream.url,
        vec![
            ("GATEHOUSE_SERVER__WORKERS".into(), "4".into()),
            ("GATEHOUSE_LOG__LEVEL".into(), "gatehouse=debug,info".into()),
        ],
    );
    let (token, _) = session(&server, "spread@example.com").await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(Client::connect(&server).await);
    }
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            let req = c.head("GET", &format!("/crm/page?c={i}&r={round}"), &[&cookie]);
            c.send(req).await;
            let r = c.response(false).await;
            assert_eq!(r.status, 200, "connection {i}, round {round}: {}", r.text());
            assert!(
                r.text().contains("spread@example.com"),
                "no identity: {}",
                r.text()
            );
            let req = c.head("GET", "/crm/admin/x", &[&cookie]);
            c.send(req).await;
            assert_eq!(
                c.response(false).await.status,
                200,
                "modify user, back office"
            );
            let req = c.head("GET", "/healthz", &[]);
            c.send(req).await;
            assert_eq!(c.response(false).await.status, 200);
            let req = c.head("GET", "/crm/page", &["Accept: application/json"]);
            c.send(req).await;
            assert_eq!(c.response(false).await.status, 401);
        }
    }
    // Sixteen connections hashed over four listening sockets land evenly only by chance
    // (well under 1%): some were handed over.
    assert!(
        server
            .logs()
            .contains("connection handed to a less busy worker"),
        "no connection was handed over"
    );
}
