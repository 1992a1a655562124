//! The identity-aware proxy, from the upstream's side and from an attacker's: what reaches the
//! app, what the assertion proves, where unauthenticated browsers go, who is refused, and how
//! bodies, upgrades and failing upstreams behave.

use crate::harness::*;
use crate::upstream::Upstream;
use base64::Engine;
use serde_json::Value;
use std::time::{Duration, Instant};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A gateway with the `crm` app under `/crm/` on its own host, `/crm/admin/*` back office,
/// plus `legacy` (authelia header names) and `tools` (oauth2-proxy names) on the same upstream.
fn start(upstream: &Upstream, extra: &str) -> Server {
    let url = &upstream.url;
    Server::start_with(Options {
        port: None,
        sections: format!(
            r#"{crm}
[[app]]
id = "legacy"
host = "127.0.0.1:{{PORT}}"
path_prefix = "/legacy/"
upstream = "{url}"
allow_roles = ["*"]
headers = "authelia"

[[app]]
id = "tools"
host = "127.0.0.1:{{PORT}}"
path_prefix = "/tools/"
upstream = "{url}"
allow_roles = ["*"]
headers = "oauth2-proxy"
{extra}"#,
            crm = crm_app(url, "2s")
        ),
        env: vec![],
        ..Default::default()
    })
}

/// Every identity header name of every preset, in odd spellings, some twice.
const SPOOFED: &[(&str, &str)] = &[
    ("X-Gatehouse-User", "attacker"),
    ("x-gatehouse-user", "attacker2"),
    ("x-gatehouse-roles", "admin"),
    ("X-GATEHOUSE-EMAIL", "boss@example.com"),
    ("X-Gatehouse-Seat", "modify"),
    ("X-Gatehouse-Name", "Boss"),
    ("X-Gatehouse-Org", "acme"),
    ("X-Gatehouse-Assertion", "eyJhbGciOiJub25lIn0.e30."),
    ("X-Forwarded-User", "attacker"),
    ("X-Forwarded-Email", "boss@example.com"),
    ("X-Forwarded-Groups", "admin"),
    ("X-Forwarded-Preferred-Username", "boss"),
    ("Remote-User", "attacker"),
    ("remote-user", "attacker2"),
    ("Remote-Email", "boss@example.com"),
    ("Remote-Groups", "admin"),
    ("Remote-Name", "Boss"),
];

async fn spoofed_get(b: &Browser, path: &str, accept: &str) -> reqwest::Response {
    let mut req = b
        .client
        .get(format!("{}{path}", b.base))
        .header("accept", accept)
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=6.6.6.6;host=evil.example");
    for (n, v) in SPOOFED {
        req = req.header(*n, *v);
    }
    let mut cookie = b.cookie_header();
    if !cookie.is_empty() {
        cookie.push_str("; ");
    }
    cookie.push_str("app_pref=dark");
    req.header("cookie", cookie).send().await.unwrap()
}

#[tokio::test]
async fn spoofed_identity_headers_and_the_session_cookie_never_reach_the_upstream() {
    let upstream = Upstream::start();
    let server = start(&upstream, "");

    // Not signed in: nothing reaches the upstream at all, whatever headers are sent.
    let anon = server.browser();
    for prefix in ["/crm/", "/legacy/", "/tools/"] {
        let r = spoofed_get(&anon, &format!("{prefix}page"), "application/json").await;
        assert_eq!(r.status(), 401, "{prefix}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["login_url"].as_str().unwrap().contains("/login?rd="));
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    // Signed in: the gateway's own values replace every spoofed one, exactly once each.
    let b = signed_in(
        &server,
        "ada@example.com",
        &["modify@crm", "limited@legacy"],
    )
    .await;
    let id = user_id(&server, "ada@example.com");
    let session_cookie = b
        .cookies
        .get("gatehouse_session")
        .expect("session cookie")
        .clone();

    let r = spoofed_get(&b, "/crm/page?x=1", "application/json").await;
    assert_eq!(r.status(), 200);
    let seen = upstream.last("/crm/page");
    assert_eq!(seen.path_and_query, "/crm/page?x=1");
    assert_eq!(seen.one("x-gatehouse-user").as_deref(), Some(id.as_str()));
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(seen.one("x-gatehouse-roles").as_deref(), Some("modify"));
    assert_eq!(seen.one("x-gatehouse-seat").as_deref(), Some("modify"));
    assert_eq!(seen.one("x-gatehouse-org"), None, "no organization yet");
    let assertion = seen.one("x-gatehouse-assertion").unwrap();
    assert_ne!(assertion, "eyJhbGciOiJub25lIn0.e30.");
    for name in [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "remote-user",
        "remote-email",
        "remote-groups",
        "remote-name",
    ] {
        assert!(seen.all(name).is_empty(), "{name} reached the upstream");
    }
    // Only the app's own cookie is left.
    let cookies = seen.all("cookie").join("; ");
    assert!(cookies.contains("app_pref=dark"), "{cookies}");
    assert!(!cookies.contains("gatehouse_session"), "{cookies}");
    assert!(!cookies.contains(&session_cookie), "{cookies}");
    assert!(!cookies.contains("gatehouse_csrf"), "{cookies}");
    // The hop's own facts, not the client's claims (the client is not a trusted proxy).
    assert_eq!(seen.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.one("x-forwarded-proto").as_deref(), Some("http"));
    let host = format!("127.0.0.1:{}", server.port);
    assert_eq!(seen.one("x-forwarded-host").as_deref(), Some(host.as_str()));
    let fwd = seen.one("forwarded").unwrap();
    assert!(
        fwd.contains("for=127.0.0.1") || fwd.contains("for=\"127.0.0.1"),
        "{fwd}"
    );
    assert!(!fwd.contains("6.6.6.6") && !fwd.contains("evil"), "{fwd}");

    // The authelia preset: Remote-* carry the identity, spoofed values are gone.
    let r = spoofed_get(&b, "/legacy/x", "application/json").await;
    assert_eq!(r.status(), 200);
    let seen = upstream.last("/legacy/x");
    assert_eq!(seen.one("remote-user").as_deref(), Some(id.as_str()));
    assert_eq!(seen.one("remote-email").as_deref(), Some("ada@example.com"));
    assert_eq!(seen.one("remote-groups").as_deref(), Some("limited"));
    for name in ["x-gatehouse-user", "x-gatehouse-roles", "x-forwarded-user"] {
        assert!(seen.all(name).is_empty(), "{name} reached the upstream");
    }

    // The oauth2-proxy preset.
    let r = spoofed_get(&b, "/tools/x", "application/json").await;
    assert_eq!(r.status(), 200);
    let seen = upstream.last("/tools/x");
    assert_eq!(seen.one("x-forwarded-user").as_deref(), Some(id.as_str()));
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(seen.one("x-forwarded-groups").as_deref(), Some(""));
    for name in ["x-gatehouse-user", "remote-user", "remote-groups"] {
        assert!(seen.all(name).is_empty(), "{name} reached the upstream");
    }
}

#[tokio::test]
async fn the_assertion_verifies_with_the_published_jwks_and_says_who_for_which_app() {
    let upstream = Upstream::start();
    let server = start(&upstream, "");
    let mut b = signed_in(&server, "grace@example.com", &["limited@crm"]).await;
    let id = user_id(&server, "grace@example.com");

    let r = b.get("/crm/home").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let jws = upstream
        .last("/crm/home")
        .one("x-gatehouse-assertion")
        .unwrap();

    let jwks_resp = reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap();
    assert_eq!(jwks_resp.status(), 200);
    let jwks: Value = jwks_resp.json().await.unwrap();
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none(), "private key material published");
    }
    let claims = verify_es256(&jws, &jwks).expect("assertion verifies");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["aud"], "crm");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["email"], "grace@example.com");
    assert_eq!(claims["roles"], serde_json::json!(["limited"]));
    assert_eq!(claims["seat"], "limited");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(
        exp > now && exp - iat <= 300,
        "iat {iat} exp {exp} now {now}"
    );

    // The same check refuses a tampered assertion (the verifier is not a rubber stamp).
    let parts: Vec<&str> = jws.split('.').collect();
    let mut forged: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    forged["roles"] = serde_json::json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(forged.to_string()),
        parts[2]
    );
    assert_eq!(verify_es256(&forged, &jwks).unwrap_err(), "bad signature");
}

/// Follows the sign-in page the gateway redirected to, posting its hidden `rd` back.
async fn sign_in_at(b: &mut Browser, login_location: &str, email: &str) -> Page {
    let page = b.get(login_location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let rd = field_value(&page.body, "rd").unwrap_or_default();
    let login = format!("{}/login", login_location.split("/login").next().unwrap());
    b.post(
        &login,
        &[
            ("csrf", &csrf),
            ("email", email),
            ("password", GOOD_PASSWORD),
            ("rd", &rd),
        ],
    )
    .await
}

#[tokio::test]
async fn browsers_are_sent_to_sign_in_and_back_to_the_exact_url_and_never_elsewhere() {
    let upstream = Upstream::start();
    let server = start(&upstream, "");
    server.create_user("alan@example.com", GOOD_PASSWORD, &["modify@crm"]);

    let original = "/crm/reports/q3?year=2026&sort=-total&name=%C3%A9t%C3%A9";
    let mut b = server.browser();
    let r = b.get(original).await;
    assert_eq!(r.status, 302);
    let location = r.location();
    let expected_rd = format!("http://127.0.0.1:{}{original}", server.port);
    let rd_param = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.to_string())
        .unwrap();
    assert_eq!(rd_param, expected_rd);
    assert!(upstream.seen().is_empty());

    let done = sign_in_at(&mut b, &location, "alan@example.com").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), expected_rd);
    let r = b.get(&done.location()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(upstream.last("/crm/reports").path_and_query, original);

    // A non-navigation request without a session gets 401 JSON, not a redirect.
    let mut anon = server.browser();
    let r = anon.post("/crm/api/save", &[("a", "b")]).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // Open redirects: a return URL off the configured hosts is replaced by the gateway's home.
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "//evil.example/crm/",
        "/\\evil.example",
        "https://evil.example@127.0.0.1/",
        "http://127.0.0.1.evil.example/",
        "javascript:alert(1)",
    ] {
        let mut b = server.browser();
        let login = format!(
            "{}/login?rd={}",
            server.base,
            url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
        );
        let done = sign_in_at(&mut b, &login, "alan@example.com").await;
        assert_eq!(done.status, 303, "{evil}: {}", done.body);
        let to = done.location();
        assert!(
            to == "/" || to.starts_with(&server.base),
            "rd={evil} sent the browser to {to}"
        );
        assert!(!to.contains("evil"), "rd={evil} sent the browser to {to}");
        // Already signed in: the login page with a hostile rd does not bounce either.
        let again = b.get(&login).await;
        assert!(
            !again.location().contains("evil"),
            "{evil}: {}",
            again.location()
        );
    }
}

async fn audit_json(server: &Server) -> Vec<Value> {
    let out = server.admin_ok(&["--json", "audit", "--since", "1h"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn limited_users_are_kept_off_back_office_paths_and_users_without_a_role_are_refused() {
    let upstream = Upstream::start();
    let server = start(&upstream, "");
    let mut limited = signed_in(&server, "lim@example.com", &["limited@crm"]).await;
    let mut modify = signed_in(&server, "mod@example.com", &["modify@crm"]).await;
    let mut outsider = signed_in(&server, "out@example.com", &["modify@legacy"]).await;

    assert_eq!(limited.get("/crm/orders").await.status, 200);
    for path in [
        "/crm/admin/users",
        "/crm/admin",
        "/crm/%61dmin/users",
        "/crm//admin/users",
        "/crm/orders/../admin/users",
        "/crm/ADMIN/../admin/x",
    ] {
        let r = limited.get(path).await;
        assert_eq!(r.status, 403, "limited user reached {path}");
        assert!(r.body.contains("modify rights"), "{}", r.body);
    }
    assert!(
        !upstream
            .seen()
            .iter()
            .any(|s| s.path_and_query.contains("dmin")),
        "{:?}",
        upstream.seen()
    );
    assert_eq!(modify.get("/crm/admin/users").await.status, 200);

    let r = outsider.get("/crm/orders").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("no access"), "{}", r.body);
    // An API client gets JSON.
    let r = outsider
        .client
        .get(format!("{}/crm/orders", server.base))
        .header("cookie", outsider.cookie_header())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "Forbidden");
    // The outsider's own app still works.
    assert_eq!(outsider.get("/legacy/x").await.status, 200);

    let events = audit_json(&server).await;
    let denied: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "proxy.denied")
        .collect();
    let has = |email: &str, reason: &str| {
        denied.iter().any(|e| {
            e.to_string().contains(email)
                && e["details"]["reason"] == reason
                && e["target"] == "crm"
        })
    };
    assert!(has("lim@example.com", "back_office"), "{denied:#?}");
    assert!(has("out@example.com", "no_role"), "{denied:#?}");
    // Rate-limited: six refused back-office requests are one event, not six.
    let n = denied
        .iter()
        .filter(|e| e.to_string().contains("lim@example.com"))
        .count();
    assert_eq!(n, 1, "{denied:#?}");
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[tokio::test]
async fn hundred_megabytes_stream_both_ways_with_flat_memory() {
    const SIZE: u64 = 100 * 1024 * 1024;
    let upstream = Upstream::start();
    let server = start(&upstream, "");
    let b = signed_in(&server, "big@example.com", &["modify@crm"]).await;
    let cookie = b.cookie_header();
    // Warm up (first request builds the access entry, signs the assertion, opens the pool).
    let r = b
        .client
        .get(format!("{}/crm/download?bytes=1000", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 1000);
    let before = vm_kib(server.pid(), "VmRSS:");

    // Upload: a streamed body of unknown length (chunked), counted by the upstream.
    let chunk = bytes::Bytes::from(vec![b'u'; 256 * 1024]);
    let chunks = (SIZE / chunk.len() as u64) as usize;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let r = b
        .client
        .post(format!("{}/crm/upload", server.base))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["bytes"].as_u64(), Some(SIZE));

    // Download, read as a stream.
    let mut r = b
        .client
        .get(format!("{}/crm/download?bytes={SIZE}", server.base))
        .header("cookie", &cookie)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = 0u64;
    while let Some(c) = r.chunk().await.unwrap() {
        assert!(c.iter().all(|&x| x == b'x'));
        got += c.len() as u64;
    }
    assert_eq!(got, SIZE);

    let peak = vm_kib(server.pid(), "VmHWM:");
    let after = vm_kib(server.pid(), "VmRSS:");
    // Buffering either body would add 100 MB; streaming adds a few buffers at most.
    assert!(
        peak < before + 32 * 1024,
        "gateway memory grew from {before} KiB to a peak of {peak} KiB (now {after} KiB)"
    );
}

#[tokio::test]
async fn websockets_work_through_the_gateway() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let upstream = Upstream::start();
    let server = start(&upstream, "");
    let b = signed_in(&server, "ws@example.com", &["modify@crm"]).await;

    let mut req = format!("ws://127.0.0.1:{}/crm/ws", server.port)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", b.cookie_header().parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws handshake");
    assert_eq!(resp.status(), 101);
    for i in 0..20 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let m = ws.next().await.unwrap().unwrap();
        assert_eq!(m, Message::text(format!("hello {i}")));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    // The upgrade request reached the upstream with the identity, not the session cookie.
    let seen = upstream.last("/crm/ws");
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("ws@example.com")
    );
    assert!(!seen.all("cookie").join(";").contains("gatehouse_session"));

    // Without a session the upgrade is refused before reaching the upstream.
    let n = upstream.seen().len();
    let req = format!("ws://127.0.0.1:{}/crm/ws", server.port)
        .into_client_request()
        .unwrap();
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(upstream.seen().len(), n);
}

#[tokio::test]
async fn a_stopped_upstream_gives_502_and_a_silent_one_504_never_a_hang() {
    let mut upstream = Upstream::start();
    let server = start(&upstream, "");
    let mut b = signed_in(&server, "err@example.com", &["modify@crm"]).await;

    // The crm app has `timeout = "2s"`.
    let t = Instant::now();
    let r = b.get("/crm/never").await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(r.body.contains("<html"), "a page for a browser: {}", r.body);

    assert_eq!(b.get("/crm/ok").await.status, 200);
    upstream.stop();
    let t = Instant::now();
    let r = b.get("/crm/ok").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let r = b
        .client
        .get(format!("{}/crm/ok", server.base))
        .header("cookie", b.cookie_header())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "Bad Gateway");
}

#[tokio::test]
async fn apps_on_another_host_sign_in_through_a_single_use_host_bound_handoff() {
    let upstream = Upstream::start();
    let url = &upstream.url;
    let server = Server::start_with(Options {
        port: None,
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
        env: vec![],
        ..Default::default()
    });
    server.create_user("hop@example.com", GOOD_PASSWORD, &["limited"]);
    let mut gateway = server.browser();
    let mut wiki = Browser::for_host(&server, "wiki.test");

    let r = wiki.get("/pages/home?rev=7").await;
    assert_eq!(r.status, 302);
    let login = r.location();
    assert!(
        login.starts_with(&format!("{}/login?rd=", server.base)),
        "{login}"
    );

    // Sign-in at the gateway sends the browser back to the app host's /.gatehouse/login, which
    // binds the handoff to this browser (a cookie) before the gateway issues the code.
    let done = sign_in_at(&mut gateway, &login, "hop@example.com").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let app_login = format!(
        "http://wiki.test:{}/.gatehouse/login?rd=%2Fpages%2Fhome%3Frev%3D7",
        server.port
    );
    assert_eq!(done.location(), app_login, "{}", done.body);
    let callback = handoff_callback(&mut gateway, &mut wiki, &app_login).await;
    let prefix = format!("http://wiki.test:{}/.gatehouse/callback?code=", server.port);
    assert!(callback.starts_with(&prefix), "{callback}");

    // The code is bound to wiki.test: presented on shop.test it is refused (and spent), even
    // by a browser holding wiki.test's handoff cookie.
    let mut shop = Browser::for_host(&server, "shop.test");
    shop.cookies.insert(
        "gatehouse_handoff".into(),
        wiki.cookies["gatehouse_handoff"].clone(),
    );
    let stolen = callback.replace("wiki.test", "shop.test");
    let r = shop.get(&stolen).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!shop.cookies.contains_key("gatehouse_session"));

    // Start again: a fresh code, used on the right host, signs the wiki host in.
    let r = gateway
        .get(&format!(
            "{}/login?rd={}",
            server.base,
            url::form_urlencoded::byte_serialize(
                format!("http://wiki.test:{}/pages/home?rev=7", server.port).as_bytes()
            )
            .collect::<String>()
        ))
        .await;
    assert_eq!(
        r.status, 303,
        "signed in: straight on to the app host: {}",
        r.body
    );
    assert_eq!(r.location(), app_login, "{}", r.body);
    let callback = handoff_callback(&mut gateway, &mut wiki, &app_login).await;
    assert!(callback.starts_with(&prefix), "{callback}");
    let handoff_cookie = wiki.cookies["gatehouse_handoff"].clone();
    let r = wiki.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/pages/home?rev=7");
    let set = r.set_cookies().join("\n");
    assert!(
        set.contains("gatehouse_session=") && !set.to_ascii_lowercase().contains("domain="),
        "{set}"
    );
    assert!(
        !wiki.cookies.contains_key("gatehouse_handoff"),
        "the handoff cookie is cleared by the callback: {set}"
    );
    let r = wiki.get("/pages/home?rev=7").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = upstream.last("/pages/home");
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("hop@example.com")
    );
    assert_eq!(
        seen.one("x-forwarded-host").as_deref(),
        Some(format!("wiki.test:{}", server.port).as_str())
    );

    // Replayed: the same code never works twice, not even with the handoff cookie it was
    // bound to.
    let mut thief = Browser::for_host(&server, "wiki.test");
    thief
        .cookies
        .insert("gatehouse_handoff".into(), handoff_cookie.clone());
    let r = thief.get(&callback).await;
    assert_eq!(r.status, 400);
    assert!(!thief.cookies.contains_key("gatehouse_session"));
    // A made-up code neither.
    let r = thief.get(&format!("{prefix}{}", "A".repeat(43))).await;
    assert_eq!(r.status, 400);

    // Signing out on the app host needs the form's CSRF token...
    let r = wiki.post("/.gatehouse/logout", &[("csrf", "forged")]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(wiki.get("/pages/home").await.status, 200);
    // ...and ends the gateway sign-in with it.
    let r = wiki.submit("/.gatehouse/logout", &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), format!("{}/login", server.base));
    assert!(!wiki.cookies.contains_key("gatehouse_session"));
    let r = gateway.get("/").await;
    assert_eq!(
        r.status, 303,
        "gateway session outlived the app-host sign-out: {}",
        r.body
    );
    let mut wiki = Browser::for_host(&server, "wiki.test");
    let done = sign_in_at(&mut gateway, &login, "hop@example.com").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let r = follow_handoff(&mut gateway, &mut wiki, done.location()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(wiki.get("/pages/home?rev=7").await.status, 200);

    // Signing out at the gateway ends the app host's session too.
    let page = gateway.get("/").await;
    let csrf = page.csrf();
    let r = gateway.post("/logout", &[("csrf", &csrf)]).await;
    assert!(r.status == 303 || r.status == 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = wiki.get("/pages/home").await;
        if r.status == 302 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wiki session outlived the sign-out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn http2_clients_are_proxied_too() {
    let upstream = Upstream::start();
    let server = start(&upstream, "");
    let b = signed_in(&server, "h2@example.com", &["modify@crm"]).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/crm/h2?x=1", server.base))
        .header("cookie", b.cookie_header())
        .header("x-gatehouse-user", "attacker")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let seen = upstream.last("/crm/h2");
    assert_eq!(seen.path_and_query, "/crm/h2?x=1");
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("h2@example.com")
    );
    assert_ne!(seen.one("x-gatehouse-user").as_deref(), Some("attacker"));
    let host = format!("127.0.0.1:{}", server.port);
    assert_eq!(seen.one("x-forwarded-host").as_deref(), Some(host.as_str()));
}

/// An upstream that closes the kept connection a request went out on, without answering: a
/// bodiless GET is sent once more on a new connection (and answered); a POST is not sent
/// twice (`502`). Over HTTP/2 from the client, the path where the gateway keeps upstream
/// connections in a pool.
#[tokio::test]
async fn a_get_on_a_kept_connection_the_upstream_closed_is_sent_again_once() {
    use crate::attack_proxy::{cookie_of, crm_server, h2c};
    use crate::raw::{Reply, Scripted, ok};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let closed = std::sync::Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    let upstream = Scripted::start(move |r| {
        // The first time each `/crm/drop-*` target arrives, the connection is closed unanswered.
        if r.target.starts_with("/crm/drop") && c.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            return Reply::close(Vec::new());
        }
        Reply::keep(ok(&r.target))
    });
    let server = crm_server(&upstream);
    let cookie = cookie_of(&server, "pat@example.test", &["modify@crm"]).await;
    let host = format!("127.0.0.1:{}", server.port);
    let a = h2c(server.port, "GET", &host, "/crm/warm", &[&cookie]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = h2c(server.port, "GET", &host, "/crm/drop-get", &[&cookie]).await;
    assert_eq!(a.status, 200, "sent again: {}", a.body);
    assert_eq!(a.body, "/crm/drop-get");
    let seen = |t: &str| upstream.seen().iter().filter(|r| r.target == t).count();
    assert_eq!(seen("/crm/drop-get"), 2);
    let a = h2c(server.port, "POST", &host, "/crm/drop-post", &[&cookie]).await;
    assert_eq!(a.status, 502, "a POST is never sent twice: {}", a.body);
    assert_eq!(seen("/crm/drop-post"), 1);
}
