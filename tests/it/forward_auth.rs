//! Forward-auth (`GET /.gatehouse/verify`) as deployed: real nginx from Debian's packages in
//! front of the gateway, configured from the committed `deploy/forward-auth/nginx.conf`
//! (placeholders substituted), so the snippet operators copy is the one proven here. Then the
//! endpoint as Traefik and Caddy call it (`X-Forwarded-Proto/-Host/-Uri`, no nginx).
//!
//! nginx is found on PATH or at /usr/sbin/nginx; the tests do not install it (`.ci/run` does):
//! without it they fail naming the package to install, they are never skipped.

use crate::harness::*;
use crate::upstream::Upstream;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SNIPPET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/forward-auth/nginx.conf"
);

// ---------------------------------------------------------------------------------------------
// nginx: found on the machine, run in the foreground from a scratch folder.

fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("nginx"));
    on_path
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
}

/// Debian's nginx; the tests never install it (`.ci/run` does, in `ensure_nginx`), and without
/// it they fail naming the package.
fn nginx_binary() -> PathBuf {
    find_nginx().unwrap_or_else(|| {
        panic!(
            "these tests need nginx (on PATH or at /usr/sbin/nginx) and it is missing: install \
             Debian's nginx-light package (or nginx where the release has no nginx-light), e.g. \
             `apt-get install nginx-light`, as .ci/run does"
        )
    })
}

struct Nginx {
    port: u16,
    base: String,
    dir: TempDir,
    child: Child,
}

impl Nginx {
    /// nginx on a free loopback port with the deploy snippet for an app whose `host` is
    /// `127.0.0.1:PORT`, checking against `gatehouse` and forwarding to `upstream`. `None` when
    /// another process took the port first (the caller starts over on another one).
    fn start(port: u16, gatehouse: &Server, upstream: &Upstream) -> Option<Nginx> {
        let bin = nginx_binary();
        let dir = TempDir::new();
        let d = dir.0.display().to_string();
        let snippet = std::fs::read_to_string(SNIPPET).expect("deploy/forward-auth/nginx.conf");
        let site = snippet
            .replace("LISTEN", &format!("127.0.0.1:{port}"))
            .replace("SERVER_NAME", "127.0.0.1")
            .replace("APP_HOST", &format!("127.0.0.1:{port}"))
            .replace("GATEHOUSE_URL", &gatehouse.base)
            .replace("UPSTREAM_URL", &upstream.url);
        std::fs::write(dir.path("gatehouse-site.conf"), site).unwrap();
        // Temp paths of modules this build has (nginx-light leaves some out).
        let version = Command::new(&bin).arg("-V").output().expect("nginx -V");
        let build = String::from_utf8_lossy(&version.stderr).into_owned();
        let mut temp_paths =
            format!("client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n");
        for m in ["fastcgi", "uwsgi", "scgi"] {
            if !build.contains(&format!("--without-http_{m}_module")) {
                temp_paths.push_str(&format!("    {m}_temp_path {d}/{m};\n"));
            }
        }
        let conf = format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log {d}/access.log;\n    {temp_paths}    include {d}/gatehouse-site.conf;\n}}\n"
        );
        std::fs::write(dir.path("nginx.conf"), conf).unwrap();
        let mut child = Command::new(&bin)
            .arg("-p")
            .arg(format!("{d}/"))
            .arg("-e")
            .arg(format!("{d}/error.log"))
            .arg("-c")
            .arg(dir.path("nginx.conf"))
            .arg("-g")
            .arg("daemon off; master_process off;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        // nginx writes its pid file once its listening sockets are bound: with the port
        // answering, that tells our nginx from a stranger that took the port.
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = child.id().to_string();
        loop {
            let exited = child.try_wait().unwrap();
            let log = std::fs::read_to_string(dir.path("error.log")).unwrap_or_default();
            if exited.is_some() && log.contains("Address already in use") {
                return None;
            }
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nginx did not start ({exited:?}); error.log:\n{log}");
            }
            let bound =
                std::fs::read_to_string(dir.path("nginx.pid")).is_ok_and(|p| p.trim() == pid);
            if bound && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Nginx {
            port,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        })
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The setting: `crm` reached only through forward-auth, `/admin/*` back office; `other` is a
// second app the `no role` user may use.

struct Setup {
    upstream: Upstream,
    server: Server,
    nginx: Nginx,
}

const OTHER_HOST: &str = "other.example.test";

fn gatehouse_config(app_host: &str) -> String {
    format!(
        r#"
[[app]]
id = "crm"
host = "{app_host}"
upstream = "none"
allow_roles = ["modify", "limited"]
[[app.rule]]
path = "/admin/*"
back_office = true

[[app]]
id = "other"
host = "{OTHER_HOST}"
upstream = "none"
allow_roles = ["modify"]
"#
    )
}

/// Forward-auth is answered only to `[server] trusted_proxies`: nginx here, and the tests' own
/// Traefik/Caddy-style calls, both come from loopback.
fn trust_loopback() -> Vec<(String, String)> {
    vec![(
        "GATEHOUSE_SERVER__TRUSTED_PROXIES".into(),
        r#"["127.0.0.1/32"]"#.into(),
    )]
}

/// The gateway names nginx's port in its config, so when another test takes that port before
/// nginx binds it, both start over on another one.
fn setup() -> Setup {
    let upstream = Upstream::start();
    for _ in 0..5 {
        let nginx_port = free_port();
        let server = Server::start_with(Options {
            port: None,
            sections: gatehouse_config(&format!("127.0.0.1:{nginx_port}")),
            env: trust_loopback(),
            ..Default::default()
        });
        if let Some(nginx) = Nginx::start(nginx_port, &server, &upstream) {
            return Setup {
                upstream,
                server,
                nginx,
            };
        }
    }
    panic!("nginx found its port taken 5 times in a row");
}

/// Signs in at the gateway itself; returns the `Cookie` header a browser then sends to any
/// port of 127.0.0.1 (cookies are not bound to ports).
async fn session_cookie(server: &Server, email: &str, roles: &[&str]) -> String {
    signed_in(server, email, roles).await.cookie_header()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// An HTTP/1.0 request written byte for byte: header names keep their case, repeat, and may be
/// ones an HTTP library would refuse or merge.
fn raw_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Raw {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn login_url(server: &Server, original: &str) -> String {
    format!(
        "{}/login?rd={}",
        server.base,
        url::form_urlencoded::byte_serialize(original.as_bytes()).collect::<String>()
    )
}

fn denials(server: &Server) -> Vec<Value> {
    let all: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    all.into_iter()
        .filter(|e| e["action"] == "proxy.denied")
        .collect()
}

/// Verifies a compact ES256 JWS with the gateway's published keys; returns the claims.
async fn verified_claims(server: &Server, jws: &str) -> Value {
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_es256(jws, &jwks).expect("assertion verifies with the published keys")
}

// ---------------------------------------------------------------------------------------------
// Through nginx.

#[tokio::test]
async fn nginx_sends_browsers_to_sign_in_and_back_and_gives_api_clients_401() {
    let s = setup();
    s.server
        .create_user("ada@example.com", GOOD_PASSWORD, &["modify@crm"]);
    let path = "/reports/q3?year=2026&sort=-total&name=%C3%A9t%C3%A9";
    let original = format!("{}{path}", s.nginx.base);
    let http = client();

    // An API client: 401 JSON that says where to sign in; the app never sees the request.
    let r = http
        .get(&original)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "nginx error.log:\n{}", s.nginx.error_log());
    let body: Value = r.json().await.expect("401 body is JSON");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["login_url"], login_url(&s.server, &original).as_str());

    // A browser: 302 to the gateway's sign-in with the exact URL, encoded, to come back to.
    let mut b = Browser::new(&s.nginx.base);
    let r = b.get(path).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.location();
    assert_eq!(location, login_url(&s.server, &original));
    assert!(
        s.upstream.seen().is_empty(),
        "the app saw an unauthenticated request"
    );

    // Sign in there (the gateway's own host: its own cookie jar); the gateway sends the
    // browser back through the app host's /.gatehouse/login, the gateway's handoff and the app
    // host's /.gatehouse/callback (nginx hands those to the gateway), which lands on the exact
    // URL.
    let mut gateway = s.server.browser();
    let page = gateway.get(&location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let rd = field_value(&page.body, "rd").expect("rd kept on the sign-in form");
    assert_eq!(rd, original);
    let r = gateway
        .post(
            &format!("{}/login", s.server.base),
            &[
                ("csrf", csrf.as_str()),
                ("email", "ada@example.com"),
                ("password", GOOD_PASSWORD),
                ("rd", rd.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let app_login = r.location();
    assert_eq!(
        query_param(&app_login, "rd").as_deref(),
        Some(path),
        "{app_login}"
    );
    let callback = handoff_callback(&mut gateway, &mut b, &app_login).await;
    assert!(
        callback.starts_with(&format!("{}/.gatehouse/callback?code=", s.nginx.base)),
        "{callback}"
    );
    let r = b.get(&callback).await;
    assert_eq!(r.status, 303, "{} / {}", r.body, s.nginx.error_log());
    assert_eq!(r.location(), path);
    let r = b.get(path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = s.upstream.last("/reports/q3");
    assert_eq!(seen.path_and_query, path);
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("ada@example.com")
    );

    // A used callback code does not sign anyone in again.
    let mut stranger = Browser::new(&s.nginx.base);
    let r = stranger.get(&callback).await;
    assert_ne!(r.status, 303);
    assert!(!stranger.cookies.contains_key("gatehouse_session"));
}

#[tokio::test]
async fn nginx_passes_the_gateways_identity_and_never_the_clients() {
    let s = setup();
    let created = s.server.admin_stdin(
        &[
            "user",
            "create",
            "--email",
            "grace@example.com",
            "--name",
            "Grace Zoë Hopper",
            "--role",
            "modify@crm",
            "--password-stdin",
        ],
        Some(&format!("{GOOD_PASSWORD}\n")),
    );
    assert!(created.status.success(), "{created:?}");
    let mut b = s.server.browser();
    assert_eq!(
        b.login("grace@example.com", GOOD_PASSWORD).await.status,
        303
    );
    let cookie = b.cookie_header();
    let id = user_id(&s.server, "grace@example.com");

    let r = raw_get(
        s.nginx.port,
        "/records/7?tab=notes",
        &[
            ("Cookie", cookie.as_str()),
            ("Accept", "application/json"),
            ("X-Gatehouse-User", "attacker"),
            ("x-gatehouse-user", "attacker2"),
            ("X-GATEHOUSE-ROLES", "admin"),
            ("X-Gatehouse-Email", "boss@example.com"),
            ("X-Gatehouse-Name", "Boss"),
            ("X-Gatehouse-Org", "acme"),
            ("x-gatehouse-seat", "modify-forged"),
            ("X-Gatehouse-Assertion", "eyJhbGciOiJub25lIn0.e30."),
            ("X_Gatehouse_User", "underscored"),
        ],
    );
    assert_eq!(
        r.status,
        200,
        "{}\n{}\nnginx error.log:\n{}",
        r.head,
        r.body,
        s.nginx.error_log()
    );
    let seen = s.upstream.last("/records/7");
    assert_eq!(seen.path_and_query, "/records/7?tab=notes");
    assert_eq!(seen.one("x-gatehouse-user").as_deref(), Some(id.as_str()));
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("grace@example.com")
    );
    assert_eq!(seen.one("x-gatehouse-roles").as_deref(), Some("modify"));
    assert_eq!(seen.one("x-gatehouse-seat").as_deref(), Some("modify"));
    // Outside visible ASCII, percent-encoded (UTF-8) by the gateway and passed on as is.
    assert_eq!(
        seen.one("x-gatehouse-name").as_deref(),
        Some("Grace Zo%C3%AB Hopper")
    );
    // The gateway sends no org for this user, and nginx sends none either (not the client's).
    assert!(seen.all("x-gatehouse-org").is_empty(), "{:?}", seen.headers);
    for (name, value) in &seen.headers {
        assert!(
            ![
                "attacker",
                "attacker2",
                "admin",
                "boss@example.com",
                "Boss",
                "acme",
                "modify-forged",
                "underscored"
            ]
            .contains(&value.as_str()),
            "client's {name}: {value} reached the app"
        );
        assert!(!name.contains('_'), "{name} reached the app");
    }
    let claims = verified_claims(
        &s.server,
        &seen.one("x-gatehouse-assertion").expect("assertion"),
    )
    .await;
    assert_eq!(claims["aud"], "crm");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["email"], "grace@example.com");
    assert_eq!(claims["roles"], serde_json::json!(["modify"]));
    assert_eq!(claims["iss"], s.server.base.as_str());
}

#[tokio::test]
async fn nginx_keeps_limited_users_out_of_back_office_paths_however_spelled() {
    let s = setup();
    let cookie = session_cookie(&s.server, "lin@example.com", &["limited@crm"]).await;
    let other = format!("{}/other", s.nginx.base);

    let r = raw_get(s.nginx.port, "/other", &[("Cookie", cookie.as_str())]);
    assert_eq!(r.status, 200, "{}\n{}", r.head, r.body);
    assert_eq!(
        s.upstream.last("/other").one("x-gatehouse-seat").as_deref(),
        Some("limited")
    );

    for (path, extra) in [
        ("/admin/x", vec![]),
        ("/admin", vec![]),
        ("/%61dmin/x", vec![]),
        ("//admin/x", vec![]),
        ("/other/../admin/x", vec![]),
        // A client describing the request itself, as a proxy would to the gateway: nginx sets
        // every description, so these never reach it.
        (
            "/admin/x",
            vec![
                ("X-Original-URL", other.as_str()),
                ("X-Forwarded-Uri", "/other"),
                ("X-Original-URI", "/other"),
                ("X-Forwarded-Host", OTHER_HOST),
            ],
        ),
    ] {
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend(extra.iter().copied());
        let r = raw_get(s.nginx.port, path, &headers);
        assert_eq!(r.status, 403, "{path} {extra:?}: {}\n{}", r.head, r.body);
    }
    assert!(
        s.upstream
            .seen()
            .iter()
            .all(|r| !r.path_and_query.contains("dmin")),
        "a back-office request reached the app: {:?}",
        s.upstream.seen()
    );

    let denied = denials(&s.server);
    let e = denied
        .iter()
        .find(|e| e["details"]["reason"] == "back_office")
        .unwrap_or_else(|| panic!("no back_office denial audited: {denied:?}"));
    assert_eq!(e["target"], "crm");
    assert_eq!(e["outcome"], "denied");
}

#[tokio::test]
async fn nginx_refuses_a_user_without_a_role_for_the_app_whatever_host_is_named() {
    let s = setup();
    // A role for `other`, none for `crm`.
    let cookie = session_cookie(&s.server, "olga@example.com", &["modify@other"]).await;
    let r = raw_get(s.nginx.port, "/home", &[("Cookie", cookie.as_str())]);
    assert_eq!(r.status, 403, "{}\n{}", r.head, r.body);
    // Naming the other app's host to nginx does not make it check that app.
    let r = raw_get(
        s.nginx.port,
        "/home",
        &[("Host", OTHER_HOST), ("Cookie", cookie.as_str())],
    );
    assert_eq!(r.status, 403, "{}\n{}", r.head, r.body);
    assert!(s.upstream.seen().is_empty(), "{:?}", s.upstream.seen());

    let denied = denials(&s.server);
    assert!(
        denied
            .iter()
            .any(|e| e["details"]["reason"] == "no_role" && e["target"] == "crm"),
        "no no_role denial audited: {denied:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Called as Traefik's ForwardAuth and Caddy's forward_auth call it (no nginx).

#[tokio::test]
async fn verify_answers_traefik_and_caddy_style_calls() {
    const APP: &str = "crm.example.test";
    let server = Server::start_with(Options {
        port: None,
        sections: gatehouse_config(APP),
        env: trust_loopback(),
        ..Default::default()
    });
    let modify = session_cookie(&server, "mo@example.com", &["modify@crm"]).await;
    let limited = session_cookie(&server, "li@example.com", &["limited@crm"]).await;
    let stranger = session_cookie(&server, "st@example.com", &["modify@other"]).await;
    let http = client();
    let verify = |uri: &str, cookie: Option<&str>, redirect: bool| {
        let mut req = http
            .get(format!(
                "{}/.gatehouse/verify{}",
                server.base,
                if redirect { "?redirect=1" } else { "" }
            ))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", APP)
            .header("x-forwarded-uri", uri)
            .header("x-forwarded-for", "203.0.113.7");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req
    };

    // Not signed in: 401 JSON, or 302 to sign-in with the exact original URL when asked.
    let r = verify("/deals/9?view=full&x=a%26b", None, false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let original = format!("https://{APP}/deals/9?view=full&x=a%26b");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["login_url"], login_url(&server, &original).as_str());
    let r = verify("/deals/9?view=full&x=a%26b", None, true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, login_url(&server, &original));
    let rd: String = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(rd, original);
    // An unknown session is no session.
    let r = verify("/deals/9", Some("gatehouse_session=forged"), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Allowed: 200 with the identity headers to copy.
    let r = verify("/deals/9", Some(&modify), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(
        h["x-gatehouse-user"].to_str().unwrap(),
        user_id(&server, "mo@example.com")
    );
    assert_eq!(h["x-gatehouse-email"], "mo@example.com");
    assert_eq!(h["x-gatehouse-roles"], "modify");
    assert_eq!(h["x-gatehouse-seat"], "modify");
    let claims = verified_claims(&server, h["x-gatehouse-assertion"].to_str().unwrap()).await;
    assert_eq!(claims["aud"], "crm");

    // Limited: the back office is refused, the rest is not.
    let r = verify("/admin/users", Some(&limited), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = verify("/deals", Some(&limited), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-seat"], "limited");

    // Traefik and Caddy pass the client's other headers on: a client-added X-Original-URL
    // naming an allowed path does not win over X-Forwarded-Uri.
    let r = verify("/admin/users", Some(&limited), false)
        .header("x-original-url", format!("https://{APP}/deals"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = verify("/admin/users", Some(&limited), false)
        .header("x-original-uri", "/deals")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No role for this app: 403; an unknown host: 403; no path at all: 400.
    let r = verify("/deals", Some(&stranger), false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{}/.gatehouse/verify", server.base))
        .header("x-forwarded-host", "unknown.example.test")
        .header("x-forwarded-uri", "/deals")
        .header("cookie", &modify)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A second X-Forwarded-Host (a client's, passed on next to the proxy's) is refused.
    let r = verify("/deals", Some(&stranger), false)
        .header("x-forwarded-host", OTHER_HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!("{}/.gatehouse/verify", server.base))
        .header("x-forwarded-host", APP)
        .header("cookie", &modify)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let denied = denials(&server);
    for reason in ["back_office", "no_role"] {
        assert!(
            denied.iter().any(|e| e["details"]["reason"] == reason
                && e["target"] == "crm"
                && e["details"]["path"].as_str().is_some()),
            "no {reason} denial audited: {denied:?}"
        );
    }
}

/// The committed snippets name the headers the gateway sends and the endpoint it answers.
#[test]
fn deploy_snippets_name_every_identity_header() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/forward-auth");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let (nginx, traefik, caddy) = (read("nginx.conf"), read("traefik.yml"), read("Caddyfile"));
    for suffix in ["User", "Email", "Name", "Roles", "Org", "Seat", "Assertion"] {
        let name = format!("X-Gatehouse-{suffix}");
        assert!(
            nginx.contains(&format!("proxy_set_header {name} ")),
            "nginx: {name}"
        );
        assert!(
            nginx.contains(&format!(
                "$upstream_http_{}",
                name.to_lowercase().replace('-', "_")
            )),
            "nginx: {name}"
        );
        assert!(
            traefik.contains(&format!("- \"{name}\"")),
            "traefik: {name}"
        );
        assert!(caddy.contains(&name), "caddy: {name}");
    }
    for text in [&nginx, &traefik, &caddy] {
        assert!(text.contains("/.gatehouse/verify"));
    }
}
