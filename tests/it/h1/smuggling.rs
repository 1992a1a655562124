//! Request smuggling: conflicting or ambiguous body framing never gets a hidden request to the
//! upstream.

use super::*;
use crate::upstream::Upstream;
use tokio::io::AsyncWriteExt;

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
