//! Requests the gateway refuses before any upstream, whoever sends them: `Upgrade: h2c`, two
//! `Host`s (or none on HTTP/1.1), `CONNECT`, transfer codings other than `chunked`.

use super::*;

/// Attack: `Upgrade: h2c` on an app request asks the gateway (or, passed on, the upstream) to
/// switch the connection to HTTP/2 — after which nothing of it would be checked. Must hold: 400,
/// the upstream sees nothing. A WebSocket upgrade on the same server still reaches the upstream
/// and is switched (`101`).
#[tokio::test]
async fn an_h2c_upgrade_is_refused_and_a_websocket_upgrade_still_works() {
    let upstream = Scripted::start(|r| {
        let key = r
            .all("sec-websocket-key")
            .first()
            .cloned()
            .unwrap_or_default();
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        Reply::close(format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        ))
    });
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "upgrade@example.com", &["modify@crm"]).await;
    let h2c_upgrade = [
        cookie.as_str(),
        "Connection: Upgrade, HTTP2-Settings",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
    ];
    let mut failures = Vec::new();
    for via in [Via::Fast, Via::Http10] {
        failures
            .extend(refused(&server, &[&upstream], via, "/crm/switch", &h2c_upgrade, 400).await);
    }
    assert_none(&failures);
    let a = send(
        &server,
        Via::Fast,
        "/crm/ws",
        &[
            &cookie,
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ],
    )
    .await;
    assert_eq!(a.status, 101, "the WebSocket upgrade: {a:?}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].all("upgrade"), ["websocket"], "{}", seen[0].head);
}

/// Attack: two `Host` headers (the same twice, or the app's and another), so that the gateway
/// and the upstream may each believe another one; or no `Host` at all on HTTP/1.1. Must hold on
/// the fast path, HTTP/1.0 and a chunked POST: 400, the upstream sees nothing — while the same
/// request with one `Host` goes through.
#[tokio::test]
async fn two_host_headers_or_none_are_refused() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "hosts@example.com", &["modify@crm"]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let second_same = format!("Host: {host}");
    let mut failures = Vec::new();
    for via in HTTP1 {
        let method = if via == Via::Chunked { "POST" } else { "GET" };
        let before = upstream.seen().len();
        let one = send_bytes(
            &server,
            &request_bytes(via, method, "/crm/one", Some(&host), &[&cookie]),
        )
        .await;
        assert_eq!(one.status, 200, "{via:?}, one Host: {one:?}");
        assert_eq!(since(&upstream, before).len(), 1, "{via:?}, one Host");

        let mut cases: Vec<(&str, Option<&str>, Vec<&str>)> = vec![
            ("same Host twice", Some(&host), vec![&second_same, &cookie]),
            (
                "another Host second",
                Some(&host),
                vec!["Host: evil.example", &cookie],
            ),
            (
                "another Host first",
                Some("evil.example"),
                vec![&second_same, &cookie],
            ),
        ];
        if via != Via::Http10 {
            cases.push(("no Host on HTTP/1.1", None, vec![&cookie]));
        }
        for (name, first, headers) in cases {
            let before = upstream.seen().len();
            let r = send_bytes(
                &server,
                &request_bytes(via, method, "/crm/two", first, &headers),
            )
            .await;
            let new = since(&upstream, before);
            if r.status != 400 || !new.is_empty() {
                let got: Vec<&String> = new.iter().map(|r| &r.target).collect();
                failures.push(format!(
                    "{via:?}, {name}: want 400, got {} and the upstream got {got:?}",
                    r.status
                ));
            }
        }
    }
    assert_none(&failures);
}

/// Attack: `CONNECT` to the gateway's own address (or anywhere), asking it to open a tunnel
/// — past every per-request check. Must hold: 405, nothing forwarded — while a `GET` with the
/// same session reaches the upstream.
#[tokio::test]
async fn connect_is_refused_with_405() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "connect@example.com", &["modify@crm"]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let a = send(&server, Via::Fast, "/crm/page", &[&cookie]).await;
    assert_eq!(a.status, 200, "GET: {a:?}");
    assert_eq!(upstream.seen().len(), 1);
    let mut failures = Vec::new();
    for target in [host.as_str(), "evil.example:443"] {
        let r = send_bytes(
            &server,
            &request_bytes(Via::Fast, "CONNECT", target, Some(&host), &[&cookie]),
        )
        .await;
        if r.status != 405 || upstream.seen().len() != 1 {
            failures.push(format!(
                "CONNECT {target}: want 405, got {} {:?}; upstream saw {}",
                r.status,
                r.text(),
                upstream.seen().len() - 1
            ));
        }
    }
    assert_none(&failures);
}

/// Attack: a transfer coding other than exactly `chunked` (`gzip, chunked`, `chunked,
/// chunked`, `identity`), which a proxy and an upstream may frame differently — the way to
/// smuggle a request — or decode differently (the gzip label lost on the way). Must hold:
/// refused, nothing reaches the upstream — 501 for codings the gateway does not implement
/// (RFC 9112 §6.1), 400 when `chunked` is not the last coding, since the body's length cannot
/// be known (RFC 9112 §6.3); plain `chunked` goes through.
#[tokio::test]
async fn transfer_codings_other_than_chunked_are_refused() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "codings@example.com", &["modify@crm"]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let post = |te: &str| {
        format!(
            "POST /crm/body HTTP/1.1\r\nHost: {host}\r\n{cookie}\r\nTransfer-Encoding: {te}\r\n\r\n{CHUNKED_BODY}"
        )
    };
    let r = send_bytes(&server, &post("chunked")).await;
    assert_eq!(r.status, 200, "chunked: {r:?}");
    assert_eq!(upstream.seen().len(), 1);
    let mut failures = Vec::new();
    for (te, want) in [
        ("gzip, chunked", 501),
        ("chunked, chunked", 501),
        ("identity", 400),
        ("chunked, gzip", 400),
    ] {
        let before = upstream.seen().len();
        let r = send_bytes(&server, &post(te)).await;
        let got: Vec<String> = since(&upstream, before)
            .into_iter()
            .map(|r| r.target)
            .collect();
        if r.status != want || !got.is_empty() {
            failures.push(format!(
                "Transfer-Encoding: {te}: want {want}, got {} {:?}; the upstream got {got:?}",
                r.status,
                r.text()
            ));
        }
    }
    assert_none(&failures);
}
