//! The proxy path from an attacker's side: the same hostile request over every transport — the
//! hand-written HTTP/1.1 relay ("fast path"), hyper serving
//! HTTP/1.0 or a chunked HTTP/1.1 POST, HTTP/2 prior knowledge on the plain port (h2c) — with a
//! scripted upstream that records the exact bytes it received, so that a refusal can be told
//! from an upstream's own 400 and "the upstream saw nothing" means exactly that. Here: the
//! gateway's identity and forwarding headers against `Connection`, fragments, look-alike and
//! client address headers, gateway cookies set by an upstream, `Upgrade: h2c`, two `Host`s,
//! `CONNECT`, odd transfer codings (`refusals`), and the parity of the two HTTP/1.x paths
//! (`parity`). Paths and app choice: `paths`.

mod parity;
mod paths;
mod refusals;

use crate::harness::*;
use crate::raw::*;
use http_body_util::BodyExt;
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// Transports.

/// How a request reaches the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `GET … HTTP/1.1`, no body: the hand-written relay.
    Fast,
    /// `GET … HTTP/1.0`: served by hyper.
    Http10,
    /// `POST … HTTP/1.1` with `Transfer-Encoding: chunked`: served by hyper.
    Chunked,
    /// HTTP/2 prior knowledge on the plain port, with an exact `:path`.
    H2c,
}

pub const HTTP1: [Via; 3] = [Via::Fast, Via::Http10, Via::Chunked];
pub const ALL: [Via; 4] = [Via::Fast, Via::Http10, Via::Chunked, Via::H2c];

/// The body of every `Via::Chunked` request.
pub const CHUNKED_BODY: &str = "4\r\nbody\r\n0\r\n\r\n";

/// An answer, whatever the transport.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// (lowercased name, value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The bytes of an HTTP/1.x request: `host` (if any) as the first header line, then
/// `headers`; `Via::Chunked` adds `Transfer-Encoding: chunked` and `CHUNKED_BODY`.
pub fn request_bytes(
    via: Via,
    method: &str,
    target: &str,
    host: Option<&str>,
    headers: &[&str],
) -> String {
    let version = if via == Via::Http10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut s = format!("{method} {target} {version}\r\n");
    if let Some(h) = host {
        s.push_str(&format!("Host: {h}\r\n"));
    }
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    if via == Via::Chunked {
        s.push_str("Transfer-Encoding: chunked\r\n\r\n");
        s.push_str(CHUNKED_BODY);
    } else {
        s.push_str("\r\n");
    }
    s
}

/// Writes `bytes` on a connection of its own and reads the final response (or a `101`).
pub async fn send_bytes(server: &Server, bytes: &str) -> Resp {
    let mut c = Client::connect(server).await;
    c.send(bytes).await;
    loop {
        let r = c.response(false).await;
        if r.status == 101 || !(100..200).contains(&r.status) {
            return r;
        }
    }
}

/// `GET target` (a chunked `POST` for `Via::Chunked`) with `headers` ("Name: value") over
/// `via`, on a connection of its own, to the gateway's own host.
pub async fn send(server: &Server, via: Via, target: &str, headers: &[&str]) -> Answer {
    let host = format!("127.0.0.1:{}", server.port);
    if via == Via::H2c {
        let method = "GET";
        return h2c(server.port, method, &host, target, headers).await;
    }
    let method = if via == Via::Chunked { "POST" } else { "GET" };
    let r = send_bytes(
        server,
        &request_bytes(via, method, target, Some(&host), headers),
    )
    .await;
    Answer {
        status: r.status,
        headers: r
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: r.text(),
    }
}

/// One HTTP/2 request over a fresh prior-knowledge connection; `:path` is exactly `target`.
pub async fn h2c(
    port: u16,
    method: &str,
    authority: &str,
    target: &str,
    headers: &[&str],
) -> Answer {
    let tcp = within(
        "connect for h2c",
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .expect("connect to the gateway");
    h2_over(tcp, "http", method, authority, target, headers).await
}

/// One HTTP/2 request over `io` (plain TCP or TLS); `:path` is exactly `target`.
pub async fn h2_over<I>(
    io: I,
    scheme: &str,
    method: &str,
    authority: &str,
    target: &str,
    headers: &[&str],
) -> Answer
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = within(
        "HTTP/2 handshake",
        hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(io),
        ),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let mut b = axum::http::Request::builder()
        .method(method)
        .uri(format!("{scheme}://{authority}{target}"));
    for h in headers {
        let (n, v) = h.split_once(':').expect("a header line");
        b = b.header(n.trim(), v.trim());
    }
    let req = b
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap_or_else(|e| panic!("not sendable over HTTP/2: {target:?}: {e}"));
    assert_eq!(
        req.uri().path_and_query().map(|p| p.as_str()),
        Some(target),
        "the client library changed the :path"
    );
    let r = within("HTTP/2 response", sender.send_request(req))
        .await
        .unwrap_or_else(|e| panic!("HTTP/2 request {target:?} failed: {e}"));
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = within("HTTP/2 body", r.into_body().collect())
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up.

/// A scripted upstream that answers every request `200` with its target as the body.
pub fn echo_target() -> Scripted {
    Scripted::start(|r| Reply::keep(ok(&r.target)))
}

/// A gateway with the `crm` app (`harness::crm_app`) relayed to `upstream`.
pub fn crm_server(upstream: &Scripted) -> Server {
    Server::start_with(Options {
        port: None,
        sections: crm_app(&upstream.url, "5s"),
        env: vec![],
        ..Default::default()
    })
}

/// Signs a new user in with `roles`; returns the `Cookie:` line of its session.
pub async fn cookie_of(server: &Server, email: &str, roles: &[&str]) -> String {
    let b = signed_in(server, email, roles).await;
    let token = b
        .cookies
        .get("gatehouse_session")
        .expect("session cookie")
        .clone();
    format!("Cookie: gatehouse_session={token}")
}

/// What the upstream received since `before` requests.
pub fn since(upstream: &Scripted, before: usize) -> Vec<RawRequest> {
    upstream.seen()[before..].to_vec()
}

/// The header lines of a raw request head: (lowercased name, value as sent, trimmed).
pub fn lines(req: &RawRequest) -> Vec<(String, String)> {
    req.head
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_ascii_lowercase(), v.trim().to_string()),
            None => (l.to_ascii_lowercase(), String::new()),
        })
        .collect()
}

/// Sends the request; `None` if it is refused with `status` and no upstream receives anything
/// of it, else what happened instead.
pub async fn refused(
    server: &Server,
    upstreams: &[&Scripted],
    via: Via,
    target: &str,
    headers: &[&str],
    status: u16,
) -> Option<String> {
    let before: Vec<usize> = upstreams.iter().map(|u| u.seen().len()).collect();
    let a = send(server, via, target, headers).await;
    let got: Vec<String> = upstreams
        .iter()
        .zip(before)
        .flat_map(|(u, n)| since(u, n))
        .map(|r| r.target)
        .collect();
    (a.status != status || !got.is_empty()).then(|| {
        format!(
            "{via:?} {target:?}: want {status} and nothing forwarded, got {} {:?}, upstream got {got:?}",
            a.status, a.body
        )
    })
}

/// Fails with every collected failure, one per line.
pub fn assert_none(failures: &[String]) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Defect 1: identity headers against `Connection`.

const GATEWAY_HEADERS: [&str; 11] = [
    "X-Gatehouse-Seat",
    "X-Gatehouse-Org",
    "X-Gatehouse-Assertion",
    "X-Gatehouse-Roles",
    "X-Gatehouse-User",
    "X-Gatehouse-Email",
    "X-Gatehouse-Name",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "Forwarded",
];

/// Attack: a `limited@crm` user (a member of organization `acme`, so that the organization's
/// header is sent too) lists the gateway's identity and forwarding headers in
/// `Connection` (all of them in their usual case, or a subset in odd case), hoping a hop-by-hop
/// pass after the gateway added them deletes them — the upstream would then take the request
/// as one without a seat or assertion. Must hold on the fast path, HTTP/1.0 and a chunked POST:
/// the upstream gets exactly one of each identity header with the gateway's values (seat
/// `limited`, organization `acme`, an assertion that verifies with the JWKS), exactly one `x-forwarded-for`,
/// `x-forwarded-host`, `x-forwarded-proto` and `forwarded`; the client's own `X-Custom`, which
/// it also lists, is still dropped.
#[tokio::test]
async fn connection_cannot_remove_the_gateways_identity_or_forwarding_headers() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let email = "conn-limited@example.com";
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
        email,
    ]);
    let cookie = cookie_of(&server, email, &["limited@crm"]).await;
    let id = user_id(&server, email);
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host = format!("127.0.0.1:{}", server.port);
    let all = format!("Connection: {}, X-Custom", GATEWAY_HEADERS.join(", "));
    let odd =
        "Connection: keep-alive, x-gatehouse-SEAT, X-GATEHOUSE-ASSERTION, forwarded, x-custom"
            .to_string();
    let mut failures = Vec::new();
    for via in HTTP1 {
        for connection in [&all, &odd] {
            let before = upstream.seen().len();
            let a = send(
                &server,
                via,
                "/crm/conn",
                &[&cookie, connection, "X-Custom: 1"],
            )
            .await;
            assert_eq!(a.status, 200, "{via:?} {connection}: {a:?}");
            let new = since(&upstream, before);
            assert_eq!(new.len(), 1, "{via:?} {connection}: {new:#?}");
            let got = lines(&new[0]);
            let count = |n: &str| got.iter().filter(|(k, _)| k == n).count();
            let value = |n: &str| {
                got.iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let mut wrong = Vec::new();
            for name in GATEWAY_HEADERS {
                let n = name.to_ascii_lowercase();
                if count(&n) != 1 {
                    wrong.push(format!("{n} arrived {} times", count(&n)));
                }
            }
            for (n, want) in [
                ("x-gatehouse-seat", "limited"),
                ("x-gatehouse-user", id.as_str()),
                ("x-gatehouse-email", email),
                ("x-gatehouse-roles", "limited"),
                ("x-gatehouse-org", "acme"),
                ("x-forwarded-for", "127.0.0.1"),
                ("x-forwarded-host", host.as_str()),
                ("x-forwarded-proto", "http"),
            ] {
                if count(n) == 1 && value(n) != want {
                    wrong.push(format!("{n}: {:?}, not {want:?}", value(n)));
                }
            }
            if count("x-gatehouse-assertion") == 1 {
                match verify_es256(&value("x-gatehouse-assertion"), &jwks) {
                    Ok(claims) if claims["email"] == email || claims["sub"] == id.as_str() => {}
                    Ok(claims) => wrong.push(format!("assertion for someone else: {claims}")),
                    Err(e) => wrong.push(format!("assertion does not verify: {e}")),
                }
            }
            if count("x-custom") != 0 {
                wrong.push("the client's X-Custom (listed in Connection) arrived".into());
            }
            if !wrong.is_empty() {
                failures.push(format!("{via:?}, {connection}: {wrong:?}\n{}", new[0].head));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Defect 2: fragments.

/// Attack: a `limited@crm` user asks for `/crm/admin#x`, a target whose `#x` hides it from the
/// `/crm/admin/*` back-office rule while an upstream that cuts the fragment serves
/// `/crm/admin`. Must hold on the fast path, HTTP/1.0 and a chunked POST: 403, the upstream
/// sees nothing; a `modify@crm` user's `/crm/page#frag?x` and `/crm/page?q=1#frag` reach the
/// upstream as `/crm/page` and `/crm/page?q=1` — no `#` ever reaches it.
#[tokio::test]
async fn a_fragment_is_cut_before_rules_and_never_reaches_the_upstream() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let limited = cookie_of(&server, "frag-limited@example.com", &["limited@crm"]).await;
    let modify = cookie_of(&server, "frag-modify@example.com", &["modify@crm"]).await;
    let mut failures = Vec::new();
    for via in HTTP1 {
        // The modify user's requests first: the upstream is reached.
        for (target, arrives) in [
            ("/crm/page#frag?x", "/crm/page"),
            ("/crm/page?q=1#frag", "/crm/page?q=1"),
        ] {
            let before = upstream.seen().len();
            let a = send(&server, via, target, &[&modify]).await;
            let got: Vec<String> = since(&upstream, before)
                .into_iter()
                .map(|r| r.target)
                .collect();
            if a.status != 200 || got != [arrives] {
                failures.push(format!(
                    "{via:?} {target}: want 200 and {arrives:?} upstream, got {} and {got:?}",
                    a.status
                ));
            }
        }
        let headers = [limited.as_str(), "Accept: application/json"];
        failures.extend(refused(&server, &[&upstream], via, "/crm/admin#x", &headers, 403).await);
    }
    let hashes: Vec<String> = upstream
        .seen()
        .iter()
        .filter(|r| r.target.contains('#'))
        .map(|r| r.target.clone())
        .collect();
    if !hashes.is_empty() {
        failures.push(format!("fragments reached the upstream: {hashes:?}"));
    }
    assert_none(&failures);
}

// ---------------------------------------------------------------------------------------------
// Also hardened: what an upstream sets, what a client claims.

const GATEWAY_COOKIES: [&str; 9] = [
    "gatehouse_session",
    "gatehouse_csrf",
    "gatehouse_handoff",
    "__Host-gatehouse_session",
    "__Secure-gatehouse_session",
    "__Host-gatehouse_csrf",
    "__Secure-gatehouse_csrf",
    "__Host-gatehouse_handoff",
    "__Secure-gatehouse_handoff",
];

/// Attack: a compromised (or careless) app answers with `Set-Cookie` for the gateway's own
/// cookies — fixing a victim's gateway session to one the attacker knows, or clearing it. Must
/// hold on the fast path, HTTP/1.0 and a chunked POST: none of those `Set-Cookie`s reaches the
/// client (any prefix), while the app's own `app=1` and `theme=dark` do.
#[tokio::test]
async fn an_upstream_cannot_set_the_gateways_cookies() {
    let upstream = Scripted::start(|_| {
        let mut r = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
        r.push_str("Set-Cookie: app=1; Path=/\r\n");
        for name in GATEWAY_COOKIES {
            r.push_str(&format!("Set-Cookie: {name}=planted; Path=/; HttpOnly\r\n"));
        }
        r.push_str("Set-Cookie: theme=dark\r\n\r\nok");
        Reply::keep(r)
    });
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "setcookie@example.com", &["modify@crm"]).await;
    let mut failures = Vec::new();
    for via in HTTP1 {
        let before = upstream.seen().len();
        let a = send(&server, via, "/crm/sets", &[&cookie]).await;
        assert_eq!(a.status, 200, "{via:?}: {a:?}");
        assert_eq!(since(&upstream, before).len(), 1, "{via:?}");
        let set = a.all("set-cookie");
        let names: Vec<&str> = set
            .iter()
            .map(|c| c.split('=').next().unwrap_or("").trim())
            .collect();
        if !(names.contains(&"app") && names.contains(&"theme")) {
            failures.push(format!("{via:?}: the app's own cookies were lost: {set:?}"));
        }
        let planted: Vec<&str> = names
            .iter()
            .zip(&set)
            .filter(|(n, _)| GATEWAY_COOKIES.contains(n))
            .map(|(_, c)| *c)
            .collect();
        if !planted.is_empty() {
            failures.push(format!(
                "{via:?}: the upstream set gateway cookies: {planted:?}"
            ));
        }
    }
    assert_none(&failures);
}

/// Header names that look like framing, hop-by-hop or forwarding headers with `_` for `-`.
pub const LOOK_ALIKES: [&str; 8] = [
    "Transfer_Encoding: chunked",
    "Content_Length: 99",
    "X_Forwarded_For: 6.6.6.6",
    "X_Forwarded_Host: evil.example",
    "X_Forwarded_Proto: https",
    "Keep_Alive: timeout=99",
    "Proxy_Connection: keep-alive",
    "X_Real_IP: 6.6.6.6",
];

/// Client address and original-URL headers only a trusted proxy may send.
pub const CLIENT_ADDRESS: [&str; 15] = [
    "X-Real-IP: 6.6.6.6",
    "True-Client-IP: 6.6.6.6",
    "X-Client-IP: 6.6.6.6",
    "X-Cluster-Client-IP: 6.6.6.6",
    "CF-Connecting-IP: 6.6.6.6",
    "X-Forwarded-Port: 6666",
    "X-Forwarded-Prefix: /evil",
    "X-Forwarded-Server: evil.example",
    "X-Forwarded-Uri: /evil",
    "X-Original-URL: /evil",
    "X-Original-URI: /evil",
    "X-Rewrite-URL: /evil",
    "X-Original-Host: evil.example",
    "X-Host: evil.example",
    "X-Forwarded-For: 6.6.6.6",
];

/// Attack: a client that is no trusted proxy sends framing and forwarding look-alikes
/// (`Transfer_Encoding`, `X_Forwarded_For`, … — a CGI-style upstream reads `_` as `-`) and the
/// headers upstreams take the client's address or original URL from (`X-Real-IP`,
/// `X-Original-URL`, …). Must hold on the fast path, HTTP/1.0 and a chunked POST: the request
/// reaches the upstream with none of those names (any spelling) and none of their values; the
/// forwarding headers it gets are the gateway's own.
#[tokio::test]
async fn look_alike_and_client_address_headers_never_reach_the_upstream() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "lookalike@example.com", &["modify@crm"]).await;
    let banned: Vec<String> = LOOK_ALIKES
        .iter()
        .chain(CLIENT_ADDRESS.iter())
        .map(|h| h.split(':').next().unwrap().to_ascii_lowercase())
        .filter(|n| n != "x-forwarded-for")
        .collect();
    let mut headers: Vec<&str> = vec![&cookie, "Accept: application/json"];
    headers.extend(LOOK_ALIKES);
    headers.extend(CLIENT_ADDRESS);
    let mut failures = Vec::new();
    for via in HTTP1 {
        let before = upstream.seen().len();
        let a = send(&server, via, "/crm/claims", &headers).await;
        assert_eq!(a.status, 200, "{via:?}: {a:?}");
        let new = since(&upstream, before);
        assert_eq!(new.len(), 1, "{via:?}: {new:#?}");
        let got = lines(&new[0]);
        let mut wrong: Vec<String> = got
            .iter()
            .filter(|(n, v)| {
                banned.contains(n)
                    || banned.contains(&n.replace('_', "-"))
                    || n.contains('_')
                    || v.contains("6.6.6.6")
                    || v.contains("evil")
                    || v.contains("6666")
                    || v == "99"
            })
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        let xff: Vec<&String> = got
            .iter()
            .filter(|(n, _)| n == "x-forwarded-for")
            .map(|(_, v)| v)
            .collect();
        if xff != ["127.0.0.1"] {
            wrong.push(format!("x-forwarded-for {xff:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!("{via:?}: {wrong:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Per-target outcomes as a readable list, so that one failing assertion shows
/// every target that went wrong.
pub fn report(failures: &BTreeMap<String, String>) -> String {
    failures
        .iter()
        .map(|(k, v)| format!("  {k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}
