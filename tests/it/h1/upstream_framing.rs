//! Upstream response framing, with a scripted upstream that writes exact bytes: chunked with
//! extensions and trailers, close-delimited, untrustworthy framing, bodiless answers, interim
//! responses, kept connections the upstream closed, stray bytes after a response.

use super::*;

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
/// client's next GET (at once, or once the upstream's close is on its way to the gateway) still
/// gets its answer, sent once on a new upstream connection.
#[tokio::test]
async fn a_get_on_a_kept_connection_the_upstream_closed_is_retried_on_a_new_one() {
    let (upstream, server, token) = scripted_setup(|req| Reply::close(ok(&req.target))).await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    for (i, after_close) in [false, false, true, false].into_iter().enumerate() {
        if after_close {
            upstream.wait_replied(i).await;
        }
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

/// Before a request body goes out on a kept connection, the gateway checks it is still open: a
/// POST after the upstream silently closed it reaches the upstream on a new connection with its
/// body, instead of failing.
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
    upstream.wait_replied(1).await;
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
    let (upstream, server, token) = scripted_setup(stray_script).await;
    let cookie = format!("Cookie: gatehouse_session={token}");
    let mut c = Client::connect(&server).await;
    c.send(c.head("GET", "/crm/stray", &[&cookie])).await;
    assert_eq!(c.response(false).await.text(), "hi");
    upstream.wait_replied(1).await;
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
    upstream.wait_replied(3).await;
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
    upstream.wait_replied(1).await;

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
