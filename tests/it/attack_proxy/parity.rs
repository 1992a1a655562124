//! The parity test: the same hostile requests over the fast path (HTTP/1.1) and hyper
//! (HTTP/1.0) must reach the upstream as the same bytes, or be refused alike.

use super::*;

/// Hostile requests for the parity test: (what it tries, target, header lines).
fn hostile() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("plain", "/crm/plain?q=1", vec![]),
        (
            "spoofed identity, odd case and `_`",
            "/crm/spoof",
            vec![
                "x-GATEHOUSE-user: evil",
                "X_Gatehouse_Email: evil@example.com",
                "X-Gatehouse-Seat: modify",
                "x_gatehouse_assertion: forged",
                "X-GATEHOUSE-ROLES: admin",
                "X-Gatehouse-Org: evil",
                "x_gatehouse_ORG: evil",
                "Remote_User: evil",
                "X-Forwarded-User: evil",
            ],
        ),
        ("look-alike framing", "/crm/framing", LOOK_ALIKES.to_vec()),
        (
            "gateway headers listed in Connection",
            "/crm/conn",
            vec![
                "Connection: X-Gatehouse-Seat, x-gatehouse-assertion, X-FORWARDED-FOR, Forwarded, X-Custom",
                "X-Custom: 1",
            ],
        ),
        (
            "client address headers",
            "/crm/addr",
            CLIENT_ADDRESS.to_vec(),
        ),
        (
            "forwarding claims",
            "/crm/fwd",
            vec![
                "X-Forwarded-Host: evil.example",
                "X-Forwarded-Proto: https",
                "Forwarded: for=6.6.6.6;host=evil.example;proto=https",
            ],
        ),
        ("dot segments", "/crm/a/../b/./c", vec![]),
        ("doubled slashes", "/crm//a//b", vec![]),
        (
            "encoded unreserved and dots",
            "/crm/%7Euser/%2e%2E/%61b%3b",
            vec![],
        ),
        ("fragment", "/crm/page?q=1#frag", vec![]),
        ("encoded slash", "/crm/a%2Fb", vec![]),
        ("encoded NUL", "/crm/admin%00/x", vec![]),
        ("double encoding", "/crm/%2561dmin/x", vec![]),
        ("overlong UTF-8", "/crm/a%C0%AF", vec![]),
        (
            "gateway cookies in Cookie",
            "/crm/cookies",
            vec![
                "Cookie: theme=dark; gatehouse_csrf=abc; gatehouse_handoff=x; __Host-gatehouse_session=y",
            ],
        ),
        (
            "h2c upgrade",
            "/crm/h2c",
            vec![
                "Connection: Upgrade, HTTP2-Settings",
                "Upgrade: h2c",
                "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
            ],
        ),
        ("second Host", "/crm/hosts", vec!["Host: evil.example"]),
        (
            "space before the colon",
            "/crm/space",
            vec!["X-Gatehouse-User : evil"],
        ),
        ("obsolete line folding", "/crm/fold", vec!["X-App: a\r\n b"]),
    ]
}

/// The parity test. Attack: whatever one HTTP/1.x path lets through that the other does not.
/// Each hostile request of one table (spoofed identity in odd case and with `_`, look-alike
/// framing, `Connection`-listed gateway headers, client address headers, forwarding claims,
/// dot segments and encodings in the path, a fragment, gateway cookies in `Cookie`, an h2c
/// upgrade, a second `Host`, malformed header lines) is sent by a `modify@crm` user who is a
/// member of organization `acme` (so every identity header is sent, `X-Gatehouse-Org` too) as
/// HTTP/1.1 (fast path) and as HTTP/1.0 (hyper). Must hold: the upstream gets the same
/// method, target and multiset of header lines (names lower-cased, values exact) from both —
/// or both give the same refusal and the upstream gets nothing — and every forwarded request
/// carries the gateway's `x-gatehouse-org: acme` exactly once. Every difference is listed,
/// none hidden.
#[tokio::test]
async fn the_fast_path_and_hyper_forward_the_same_bytes_or_refuse_alike() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "acme",
        "--name",
        "Acme",
        "--email",
        "it@acme.example",
        "--access-by",
        "email",
        "--member",
        "parity@example.com",
    ]);
    let cookie = cookie_of(&server, "parity@example.com", &["modify@crm"]).await;
    let mut differences = Vec::new();
    let mut forwarded = 0;
    for (what, target, extra) in hostile() {
        let mut headers = vec![cookie.as_str(), "Accept: application/json"];
        headers.extend(extra);
        let mut outcome = Vec::new();
        for via in [Via::Fast, Via::Http10] {
            let before = upstream.seen().len();
            let a = send(&server, via, target, &headers).await;
            outcome.push((a.status, since(&upstream, before)));
        }
        let (fast, old) = (&outcome[0], &outcome[1]);
        match (fast.1.as_slice(), old.1.as_slice()) {
            ([], []) if fast.0 == old.0 && fast.0 >= 400 => {}
            ([f], [o]) => {
                forwarded += 1;
                let mut fl = lines(f);
                let mut ol = lines(o);
                for (via, l) in [("fast path", &fl), ("HTTP/1.0", &ol)] {
                    let orgs: Vec<&str> = l
                        .iter()
                        .filter(|(n, _)| n.replace('_', "-") == "x-gatehouse-org")
                        .map(|(_, v)| v.as_str())
                        .collect();
                    if orgs != ["acme"] {
                        differences.push(format!(
                            "{what} ({target}) over the {via}: organization headers {orgs:?}"
                        ));
                    }
                }
                fl.sort();
                ol.sort();
                let only = |a: &[(String, String)], b: &[(String, String)]| {
                    let mut b = b.to_vec();
                    a.iter()
                        .filter(|l| match b.iter().position(|x| x == *l) {
                            Some(i) => {
                                b.remove(i);
                                false
                            }
                            None => true,
                        })
                        .map(|(n, v)| format!("{n}: {v}"))
                        .collect::<Vec<_>>()
                };
                if (f.method.as_str(), f.target.as_str()) != (o.method.as_str(), o.target.as_str())
                    || fl != ol
                {
                    differences.push(format!(
                        "{what} ({target}): fast path {} {} vs HTTP/1.0 {} {}; only on the fast path: {:?}; only on HTTP/1.0: {:?}",
                        f.method,
                        f.target,
                        o.method,
                        o.target,
                        only(&fl, &ol),
                        only(&ol, &fl)
                    ));
                }
            }
            (f, o) => differences.push(format!(
                "{what} ({target}): fast path {} forwarding {:?}, HTTP/1.0 {} forwarding {:?}",
                fast.0,
                f.iter().map(|r| &r.target).collect::<Vec<_>>(),
                old.0,
                o.iter().map(|r| &r.target).collect::<Vec<_>>()
            )),
        }
    }
    assert!(forwarded > 0, "nothing was forwarded at all");
    assert!(
        differences.is_empty(),
        "the two paths differ:\n{}",
        differences.join("\n")
    );
}
