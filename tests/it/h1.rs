//! The hand-written HTTP/1.1 path (`web::h1` and `proxy::relay`) from a peer's side, in raw
//! bytes over TCP so that the framing is exactly what the test writes: pipelining, what reaches
//! the upstream (identity, hop-by-hop headers, cookies), every response framing an upstream may
//! use (with a scripted upstream that writes exact bytes), request smuggling attempts, the
//! hand-over of unusual requests to hyper, and the gateway's own pages on the same connections.

use crate::harness::*;
use crate::raw::*;
use crate::upstream::Upstream;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A gateway with the `crm` app under `/crm/` on its own host, relayed to `upstream`, with
/// `/crm/admin/*` back office.
fn start(upstream: &str) -> Server {
    start_env(upstream, vec![])
}

fn start_env(upstream: &str, env: Vec<(String, String)>) -> Server {
    Server::start_with(Options {
        sections: crm_app(upstream, "5s"),
        env,
    })
}

/// Creates a `modify@crm` user and signs in; returns the session token and the user's id.
async fn session(server: &Server, email: &str) -> (String, String) {
    session_as(server, email, "modify@crm").await
}

async fn session_as(server: &Server, email: &str, role: &str) -> (String, String) {
    let b = signed_in(server, email, &[role]).await;
    let token = b
        .cookies
        .get("gatehouse_session")
        .expect("session cookie")
        .clone();
    (token, user_id(server, email))
}

/// A scripted upstream, a gateway relaying `crm` to it, and a signed-in session token.
async fn scripted_setup(
    script: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
) -> (Scripted, Server, String) {
    let upstream = Scripted::start(script);
    let server = start(&upstream.url);
    let (token, _) = session(&server, "raw@example.com").await;
    (upstream, server, token)
}

// ---------------------------------------------------------------------------------------------
// Client side: pipelining and what reaches the upstream.

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
    tokio::time::sleep(Duration::from_millis(100)).await;
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

// ---------------------------------------------------------------------------------------------
// Upstream response framing, with a scripted upstream.

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;name=\"a b\";x\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 42\r\n\r\n";

/// A chunked response with chunk extensions and a trailer, arriving in awkward pieces, reaches
/// the client with its body and trailer intact (one that also carries `Content-Length` reaches
/// it as chunked only); the client connection goes on, and every request of it went over one
/// kept-alive upstream connection.
#[tokio::test]
async fn a_chunked_response_with_extensions_and_trailers_passes_intact_over_a_reused_connection() {
    let (upstream, server, token) = scripted_setup(|req| match req.target.as_str() {
        "/crm/chunked" => {
            // Split in the size line, between CR and LF, inside the extension and the trailer.
            let cuts = [60, 90, 95, 104, 111, 113, 126, 131, 139];
            assert_eq!(CHUNKED.len(), 140);
            let mut parts = Vec::new();
            let mut at = 0;
            for cut in cuts {
                parts.push(CHUNKED[at..cut].to_vec());
                at = cut;
            }
            parts.push(CHUNKED[at..].to_vec());
            Reply {
                parts,
                close: false,
            }
        }
        // Both framings: chunked wins, and the client must not be told a length.
        "/crm/both" => Reply::keep(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboth\r\n0\r\n\r\n",
        ),
        _ => Reply::keep(ok("plain")),
    })
    .await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    for (path, body) in [
        ("/crm/chunked", "hello, world"),
        ("/crm/plain", "plain"),
        ("/crm/chunked", "hello, world"),
        ("/crm/both", "both"),
        ("/crm/plain", "plain"),
    ] {
        c.send(c.head("GET", path, &[&cookie])).await;
        // (The reader refuses a response with both framing headers.)
        let r = c.response(false).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.text(), body, "{path}");
        if path == "/crm/chunked" {
            assert_eq!(r.header("transfer-encoding"), Some("chunked"));
            assert_eq!(r.trailers, [("X-Sum".to_string(), "42".to_string())]);
        }
    }
    let seen = upstream.seen();
    assert_eq!(seen.len(), 5, "{seen:#?}");
    assert!(
        seen.iter().all(|s| s.conn == seen[0].conn),
        "not one upstream connection: {seen:#?}"
    );
    assert!(seen.iter().all(|s| s.all("x-gatehouse-user").len() == 1));
}

/// A response with neither `Content-Length` nor `Transfer-Encoding` ends when the upstream
/// closes: the client gets all of it, told `connection: close`, and then the end of the stream.
#[tokio::test]
async fn a_close_delimited_response_arrives_whole_and_then_the_connection_closes() {
    const SIZE: usize = 200_000;
    let (_upstream, server, token) = scripted_setup(|_| {
        let mut parts = vec![b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec()];
        for _ in 0..4 {
            parts.push(vec![b'z'; SIZE / 4]);
        }
        Reply { parts, close: true }
    })
    .await;
    let mut c = Client::connect(&server).await;
    c.send(c.head(
        "GET",
        "/crm/stream",
        &[&format!("Cookie: gatehouse_session={token}")],
    ))
    .await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
    assert!(r.all("content-length").is_empty() && r.all("transfer-encoding").is_empty());
    assert_eq!(r.body.len(), SIZE);
    assert!(r.body.iter().all(|&b| b == b'z'));
}

/// Responses whose framing cannot be trusted — two different `Content-Length`s, an invalid
/// one, a transfer coding that does not end in chunked, an unasked `101` — give the client a
/// 502 (never the upstream's bytes); the client connection still serves the next request.
#[tokio::test]
async fn untrustworthy_response_framing_gives_502() {
    let (_upstream, server, token) = scripted_setup(|req| match req.target.as_str() {
        "/crm/two-lengths" => {
            Reply::close("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        }
        "/crm/bad-length" => Reply::close("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"),
        "/crm/gzip" => {
            Reply::close("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello")
        }
        "/crm/switch" => Reply::close(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: evil\r\n\r\nraw",
        ),
        _ => Reply::keep(ok("fine")),
    })
    .await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    for path in [
        "/crm/two-lengths",
        "/crm/bad-length",
        "/crm/gzip",
        "/crm/switch",
    ] {
        c.send(c.head("GET", path, &[&cookie, "Accept: application/json"]))
            .await;
        let r = c.response(false).await;
        assert_eq!(r.status, 502, "{path}: {r:?}");
        assert_eq!(r.json()["error"], "Bad Gateway", "{path}");
        c.send(c.head("GET", "/crm/ok", &[&cookie])).await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.text().as_str()), (200, "fine"), "after {path}");
    }
}

/// The answer to a HEAD announces `Content-Length: 100` and has no body (as do 204 and 304
/// answers): the client gets the head alone and the next request on the connection works —
/// over the same upstream connection.
#[tokio::test]
async fn bodiless_responses_announcing_a_length_do_not_stall_the_connection() {
    let (upstream, server, token) = scripted_setup(|req| match req.target.as_str() {
        "/crm/page" if req.method == "HEAD" => Reply::keep(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n",
        ),
        "/crm/nothing" => Reply::keep("HTTP/1.1 204 No Content\r\n\r\n"),
        "/crm/same" => {
            Reply::keep("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 50\r\n\r\n")
        }
        _ => Reply::keep(ok("body")),
    })
    .await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    c.send(c.head("HEAD", "/crm/page", &[&cookie])).await;
    let r = c.response(true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100"));
    c.send(c.head("GET", "/crm/page", &[&cookie])).await;
    let r = c.response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "body"));
    for (path, status) in [("/crm/nothing", 204), ("/crm/same", 304)] {
        c.send(c.head("GET", path, &[&cookie])).await;
        let r = c.response(false).await;
        assert_eq!(r.status, status, "{r:?}");
        c.send(c.head("GET", "/crm/page", &[&cookie])).await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.text().as_str()), (200, "body"), "after {path}");
    }
    let seen = upstream.seen();
    assert_eq!(seen.len(), 6, "{seen:#?}");
    assert!(
        seen.iter().all(|s| s.conn == seen[0].conn),
        "not one upstream connection: {seen:#?}"
    );
}

/// Interim responses (`100`, `103 Early Hints`) before the final one are not mistaken for it:
/// the client gets the `200` with its body, and the connection goes on.
#[tokio::test]
async fn interim_responses_are_skipped_and_the_final_one_is_relayed() {
    let (_upstream, server, token) = scripted_setup(|req| match req.target.as_str() {
        "/crm/early" => Reply {
            parts: vec![
                b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n".to_vec(),
                ok("done"),
            ],
            close: false,
        },
        _ => Reply::keep(ok("next")),
    })
    .await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    c.send(c.head("GET", "/crm/early", &[&cookie])).await;
    let r = c.final_response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "done"), "{r:?}");
    c.send(c.head("GET", "/crm/after", &[&cookie])).await;
    let r = c.final_response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "next"), "{r:?}");
}

/// An upstream that closes its kept-alive connection after a response without saying so: the
/// client's next GET (at once, or after a pause) still gets its answer, sent once on a new
/// upstream connection.
#[tokio::test]
async fn a_get_on_a_kept_connection_the_upstream_closed_is_retried_on_a_new_one() {
    let (upstream, server, token) = scripted_setup(|req| Reply::close(ok(&req.target))).await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    for (i, pause) in [0u64, 0, 200, 0].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let path = format!("/crm/r{i}");
        c.send(c.head("GET", &path, &[&cookie])).await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.text()), (200, path.clone()), "{r:?}");
    }
    let seen = upstream.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(paths, ["/crm/r0", "/crm/r1", "/crm/r2", "/crm/r3"]);
    let mut conns: Vec<usize> = seen.iter().map(|s| s.conn).collect();
    conns.dedup();
    assert_eq!(conns.len(), 4, "{seen:#?}");
}

/// Before a request body goes out on a kept connection idle for over a second, the gateway
/// checks it is still open: a POST after the upstream silently closed it reaches the upstream
/// on a new connection with its body, instead of failing.
#[tokio::test]
async fn a_body_is_not_sent_on_a_kept_connection_the_upstream_closed_while_idle() {
    let (upstream, server, token) = scripted_setup(|req| {
        if req.method == "POST" {
            Reply::keep(ok(&String::from_utf8_lossy(&req.body)))
        } else {
            Reply::close(ok("first"))
        }
    })
    .await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    c.send(c.head("GET", "/crm/first", &[&cookie])).await;
    assert_eq!(c.response(false).await.text(), "first");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut post = c.head(
        "POST",
        "/crm/save",
        &[&cookie, "Content-Length: 11", "Content-Type: text/plain"],
    );
    post.push_str("hello world");
    c.send(post).await;
    let r = c.response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"), "{r:?}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_ne!(seen[0].conn, seen[1].conn);
    assert_eq!(seen[1].body, b"hello world");
}

/// What an upstream sends after a complete response — a second response, a body to a HEAD —
/// answers nothing the client asked: the client's next request on the connection gets the
/// upstream's real answer to it.
#[tokio::test]
async fn stray_bytes_after_a_response_are_never_served_as_the_next_answer() {
    let (_upstream, server, token) = scripted_setup(stray_script).await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    c.send(c.head("GET", "/crm/stray", &[&cookie])).await;
    assert_eq!(c.response(false).await.text(), "hi");
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.send(c.head("GET", "/crm/next", &[&cookie])).await;
    let r = c.response(false).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "/crm/next"),
        "the answer to another request: {r:?}"
    );

    c.send(c.head("HEAD", "/crm/head-with-body", &[&cookie]))
        .await;
    assert_eq!(c.response(true).await.status, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.send(c.head("GET", "/crm/after-head", &[&cookie])).await;
    let r = c.response(false).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "/crm/after-head"),
        "{r:?}"
    );
}

/// The same across users: an upstream connection that one user's request left with stray
/// bytes on it is not handed, through the worker's pool, to another user's request — who
/// would otherwise get a response meant for no one (or for the first user).
#[tokio::test]
async fn stray_bytes_from_one_users_exchange_never_reach_another_user() {
    let upstream = Scripted::start(stray_script);
    // One serving worker: both clients share its pool of upstream connections.
    let server = start_env(
        &upstream.url,
        vec![("GATEHOUSE_SERVER__WORKERS".into(), "1".into())],
    );
    let (ada, _) = session(&server, "ada@example.com").await;
    let (bob, _) = session(&server, "bob@example.com").await;

    // Ada's last request: with `Connection: close` the gateway puts her upstream connection
    // back in the pool as her connection ends — before the upstream's stray bytes arrive.
    let mut a = Client::connect(&server).await;
    a.send(a.head(
        "GET",
        "/crm/stray",
        &[
            &format!("Cookie: gatehouse_session={ada}"),
            "Connection: close",
        ],
    ))
    .await;
    assert_eq!(a.response(false).await.text(), "hi");
    a.expect_eof().await;
    tokio::time::sleep(Duration::from_millis(150)).await;

    let mut b = Client::connect(&server).await;
    b.send(b.head(
        "GET",
        "/crm/mine",
        &[&format!("Cookie: gatehouse_session={bob}")],
    ))
    .await;
    let r = b.response(false).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "/crm/mine"),
        "bob got an answer that was not his: {r:?}"
    );
}

/// `/crm/stray` is answered, then followed by a second, unasked response; a HEAD for
/// `/crm/head-with-body` gets its head, then (wrongly) a body; anything else is answered with
/// its own target.
fn stray_script(req: &RawRequest) -> Reply {
    match (req.method.as_str(), req.target.as_str()) {
        (_, "/crm/stray") => Reply {
            parts: vec![
                ok("hi"),
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfor-nobody".to_vec(),
            ],
            close: false,
        },
        ("HEAD", "/crm/head-with-body") => Reply {
            parts: vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n".to_vec(),
                b"0123456789".to_vec(),
            ],
            close: false,
        },
        _ => Reply::keep(ok(&req.target)),
    }
}

// ---------------------------------------------------------------------------------------------
// Request smuggling.

/// A request carrying both `Transfer-Encoding: chunked` and `Content-Length` (either order,
/// either one hiding a second request) or an obfuscated transfer coding never gets a hidden
/// request to the upstream as a request of its own: the upstream never sees
/// `/crm/smuggled` (whose spoofed identity headers would otherwise have gone through
/// unchecked), whatever the gateway answered.
#[tokio::test]
async fn conflicting_body_framing_cannot_smuggle_a_request_to_the_upstream() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "smuggle@example.com").await;
    let host = format!("127.0.0.1:{}", server.port);
    let smuggled = format!(
        "GET /crm/smuggled HTTP/1.1\r\nHost: {host}\r\nX-Gatehouse-User: evil\r\nX-Gatehouse-Roles: admin\r\n\r\n"
    );
    let front = |framing: &str| {
        format!(
            "POST /crm/body HTTP/1.1\r\nHost: {host}\r\nCookie: gatehouse_session={token}\r\n{framing}\r\n"
        )
    };
    let cl_te_body = format!("0\r\n\r\n{smuggled}");
    let te_cl_body = format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
    // (name, bytes, the body the upstream must have received if the gateway accepts them:
    // chunked framing wins over Content-Length, RFC 9112 §6.3).
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "CL.TE",
            front(&format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                cl_te_body.len()
            )) + &cl_te_body,
            "",
        ),
        (
            "TE.CL",
            front("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n") + &te_cl_body,
            &smuggled,
        ),
        (
            "CL.te (lowercase, CHUNKED)",
            front(&format!(
                "content-length: {}\r\ntransfer-encoding: CHUNKED\r\n",
                cl_te_body.len()
            )) + &cl_te_body,
            "",
        ),
        (
            "CL.TE with a tab",
            front(&format!(
                "Content-Length: {}\r\nTransfer-Encoding:\tchunked\r\n",
                cl_te_body.len()
            )) + &cl_te_body,
            "",
        ),
        (
            "CL + xchunked",
            front(&format!(
                "Content-Length: {}\r\nTransfer-Encoding: xchunked\r\n",
                cl_te_body.len()
            )) + &cl_te_body,
            "",
        ),
        (
            "CL + two TE lines",
            front(&format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                cl_te_body.len()
            )) + &cl_te_body,
            "",
        ),
        (
            "CL + TE with space before colon",
            front(&format!(
                "Content-Length: {}\r\nTransfer-Encoding : chunked\r\n",
                cl_te_body.len()
            )) + &cl_te_body,
            "",
        ),
        (
            "CL hiding a request in a GET body",
            front(&format!("Content-Length: {}\r\n", smuggled.len())).replacen("POST", "GET", 1)
                + &smuggled,
            &smuggled,
        ),
    ];
    for (name, bytes, body) in cases {
        let before = upstream.seen().len();
        let mut c = Client::connect(&server).await;
        c.send(&bytes).await;
        let r = c.final_response(false).await;
        assert!(
            r.status == 200 || r.status == 400,
            "{name}: unexpected answer {r:?}"
        );
        // Whatever else the gateway makes of the bytes, it must answer before the end.
        c.tcp.shutdown().await.expect("half-close");
        let rest = c.read_to_end().await;
        let seen = upstream.seen();
        let smuggled_through: Vec<_> = seen
            .iter()
            .filter(|s| s.path_and_query.contains("smuggled"))
            .collect();
        assert!(
            smuggled_through.is_empty(),
            "{name}: a hidden request reached the upstream: {smuggled_through:#?}"
        );
        let new = &seen[before..];
        if r.status == 200 {
            // The front request went through once, as one request, with the real identity.
            assert_eq!(new.len(), 1, "{name}: {new:#?}");
            assert_eq!(
                new[0].one("x-gatehouse-user").as_deref(),
                Some(id.as_str()),
                "{name}"
            );
            assert_eq!(r.text(), body, "{name}: the upstream got another body");
        } else {
            assert!(new.is_empty(), "{name}: refused, yet forwarded: {new:#?}");
        }
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            !rest.contains(" 200 "),
            "{name}: a second request was answered: {rest}"
        );
    }
}

/// Two different `Content-Length`s (or a malformed one) make the body's end ambiguous: the
/// gateway answers 400 and nothing reaches the upstream.
#[tokio::test]
async fn ambiguous_content_lengths_are_refused_with_400_before_the_upstream() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, _) = session(&server, "lengths@example.com").await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    for lengths in [
        &["Content-Length: 5", "Content-Length: 6"][..],
        &["Content-Length: 6", "Content-Length: 5"],
        &["Content-Length: 5, 6"],
        &["Content-Length: +5"],
        &["Content-Length: -5"],
        &["Content-Length: 0x5"],
    ] {
        let mut c = Client::connect(&server).await;
        let mut headers = vec![cookie.as_str(), "Accept: application/json"];
        headers.extend_from_slice(lengths);
        let mut req = c.head("POST", "/crm/body", &headers);
        req.push_str("hello!");
        c.send(req).await;
        let r = c.final_response(false).await;
        assert_eq!(r.status, 400, "{lengths:?}: {r:?}");
    }
    assert!(upstream.seen().is_empty(), "{:#?}", upstream.seen());
}

// ---------------------------------------------------------------------------------------------
// Requests handed over to hyper.

/// An HTTP/1.0 request (handed to hyper) is proxied like any other: the identity is added, the
/// client's spoofed one dropped.
#[tokio::test]
async fn http_1_0_requests_are_proxied_with_the_identity() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "old@example.com").await;
    let mut c = Client::connect(&server).await;
    let req = format!(
        "GET /crm/old?v=1.0 HTTP/1.0\r\nHost: {}\r\nCookie: gatehouse_session={token}\r\nX-Gatehouse-User: evil\r\nX_Gatehouse_User: evil\r\nx-gatehouse-roles: admin\r\n\r\n",
        c.host
    );
    c.send(req).await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["path"], "/crm/old");
    c.expect_eof().await;
    let seen = upstream.last("/crm/old");
    assert_eq!(seen.path_and_query, "/crm/old?v=1.0");
    assert_eq!(seen.one("x-gatehouse-user").as_deref(), Some(id.as_str()));
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("old@example.com")
    );
    assert_eq!(seen.one("x-gatehouse-roles").as_deref(), Some("modify"));
    for (n, v) in &seen.headers {
        assert!(
            !n.contains('_'),
            "a header named {n:?} reached the upstream"
        );
        assert!(
            v != "evil",
            "a spoofed value reached the upstream: {n}: {v}"
        );
    }
}

/// `Expect: 100-continue`: the client gets `100 Continue` before it sends the body, then the
/// upstream's answer to the whole body.
#[tokio::test]
async fn expect_100_continue_gets_continue_then_the_upstream_answer() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "expect@example.com").await;
    let mut c = Client::connect(&server).await;
    let req = c.head(
        "POST",
        "/crm/body",
        &[
            &format!("Cookie: gatehouse_session={token}"),
            "Content-Length: 11",
            "Expect: 100-continue",
        ],
    );
    c.send(req).await;
    let interim = c.response(false).await;
    assert_eq!(interim.status, 100, "{interim:?}");
    c.send("hello world").await;
    let r = c.final_response(false).await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"), "{r:?}");
    let seen = upstream.last("/crm/body");
    assert_eq!(seen.one("x-gatehouse-user").as_deref(), Some(id.as_str()));
}

/// A chunked request body (with chunk extensions and a trailer, sent in several writes, after
/// a fast-path request on the same connection) arrives at the upstream byte for byte, and the
/// connection serves the next request.
#[tokio::test]
async fn a_chunked_request_body_arrives_intact() {
    let upstream = Upstream::start();
    let server = start(&upstream.url);
    let (token, id) = session(&server, "chunks@example.com").await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    // A fast-path request first: the hand-over happens mid-connection.
    c.send(c.head("GET", "/crm/before", &[&cookie])).await;
    assert_eq!(c.response(false).await.json()["path"], "/crm/before");
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    c.send(c.head(
        "POST",
        "/crm/body",
        &[&cookie, "Transfer-Encoding: chunked"],
    ))
    .await;
    for (i, piece) in payload.chunks(9_000).enumerate() {
        let mut chunk = format!("{:x};n={i}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        c.send(chunk).await;
    }
    c.send("0\r\nX-Checksum: 1\r\n\r\n").await;
    let r = c.final_response(false).await;
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body.len(), payload.len());
    assert!(r.body == payload, "the body was altered on the way");
    let seen = upstream.last("/crm/body");
    assert_eq!(seen.one("x-gatehouse-user").as_deref(), Some(id.as_str()));

    c.send(c.head("GET", "/crm/next", &[&cookie])).await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/crm/next");
}

// ---------------------------------------------------------------------------------------------
// The gateway's own pages on the fast path.

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
