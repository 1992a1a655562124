//! Requests handed over to hyper (HTTP/1.0, `Expect: 100-continue`, chunked request bodies).

use super::*;
use crate::upstream::Upstream;

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
