//! Which app a request path chooses, and what path the upstream then receives, against dot
//! segments, doubled slashes, percent-encodings, case, `;parameters` and trailing dots — over
//! every transport (and, for a few, HTTP/2 over TLS). Two apps on one host, each with its own
//! scripted upstream, so that a test can tell which app a request reached.
//!
//! The gateway refuses an app covering `/` on its public host, so `open` is at `/site/` and
//! `staff` at `/site/staff/` there: an open app with a stricter one nested in it
//! (`/site/x/../staff/x` is `open` as written, `staff` once resolved).

use super::*;

/// A gateway with two apps on its own host: `open` at `/site/` (limited and modify users) and
/// `staff` at `/site/staff/` (modify users only), relayed to `open` and `staff`.
fn two_apps(open: &Scripted, staff: &Scripted) -> Server {
    Server::start_with(Options {
        port: None,
        sections: two_apps_config("127.0.0.1:{PORT}", open, staff),
        env: vec![],
        ..Default::default()
    })
}

fn two_apps_config(host: &str, open: &Scripted, staff: &Scripted) -> String {
    format!(
        r#"
[[app]]
id = "open"
host = "{host}"
path_prefix = "/site/"
upstream = "{}"
allow_roles = ["limited", "modify"]

[[app]]
id = "staff"
host = "{host}"
path_prefix = "/site/staff/"
upstream = "{}"
allow_roles = ["modify"]
"#,
        open.url, staff.url
    )
}

/// Sends requests and collects, per transport, target and user, what went wrong; `done`
/// fails with all of it at once.
struct Probe<'a> {
    server: &'a Server,
    /// (app name, its upstream).
    upstreams: Vec<(&'static str, &'a Scripted)>,
    failures: BTreeMap<String, String>,
}

impl<'a> Probe<'a> {
    fn new(server: &'a Server, upstreams: &[(&'static str, &'a Scripted)]) -> Probe<'a> {
        Probe {
            server,
            upstreams: upstreams.to_vec(),
            failures: BTreeMap::new(),
        }
    }

    /// Sends `target` as `user` over each of `vias` and records what went wrong against
    /// `want`: a refusal's status with nothing reaching any upstream, or `200` with exactly one
    /// request, at the named app's upstream, for exactly the given target.
    async fn check(&mut self, vias: &[Via], user: &User, target: &str, want: Want<'_>) {
        for &via in vias {
            let before: Vec<usize> = self.upstreams.iter().map(|(_, u)| u.seen().len()).collect();
            let headers = [user.cookie.as_str(), "Accept: application/json"];
            let a = send(self.server, via, target, &headers).await;
            let got: Vec<(&str, String)> = self
                .upstreams
                .iter()
                .zip(&before)
                .flat_map(|((name, u), n)| since(u, *n).into_iter().map(move |r| (*name, r.target)))
                .collect();
            let right = match want {
                Want::Refused(status) => a.status == status && got.is_empty(),
                Want::Reaches(app, path) => {
                    a.status == 200 && got.len() == 1 && got[0] == (app, path.to_string())
                }
            };
            if !right {
                self.failures.insert(
                    format!("{via:?} {target} as {} (want {want:?})", user.email),
                    format!("answered {}, upstreams got {got:?}", a.status),
                );
            }
        }
    }

    fn done(self) {
        assert!(self.failures.is_empty(), "\n{}", report(&self.failures));
    }
}

/// A signed-in user: the email (to name it in failures) and its session's `Cookie:` line.
struct User {
    email: &'static str,
    cookie: String,
}

async fn user(server: &Server, email: &'static str, roles: &[&str]) -> User {
    User {
        email,
        cookie: cookie_of(server, email, roles).await,
    }
}

#[derive(Clone, Copy, Debug)]
enum Want<'a> {
    Refused(u16),
    /// 200 from app (name), whose upstream got exactly this target.
    Reaches(&'a str, &'a str),
}

/// Targets that resolve to `/site/staff/x`.
const INTO_STAFF: [&str; 6] = [
    "/site//staff/x",
    "/site/./staff/x",
    "/site/x/../staff/x",
    "/site/%73taff/x",
    "/site/x/%2e%2e/staff/x",
    "/site/x/%2E%2E/staff/x",
];

/// Attack: a `limited@open` user (no role on `staff`) writes a path that a later reader
/// (the upstream, a framework) resolves to `/site/staff/x` but that does not start with
/// `/site/staff/` as sent: doubled slash, dot segments, encoded letters or dots. Must hold on the fast path,
/// HTTP/1.0, a chunked POST and h2c: the gateway judges it as `staff` — 403 — and neither
/// upstream sees anything; a `modify@staff` user's same requests reach the *staff* upstream as
/// `/site/staff/x`. (Also the two-app `/pub/` vs `/priv/` layout: `/pub/../priv/x` → 403.)
#[tokio::test]
async fn dot_segments_and_encodings_are_judged_as_the_app_they_resolve_to() {
    let (open, staff) = (echo_target(), echo_target());
    let server = two_apps(&open, &staff);
    let limited = user(&server, "walk-limited@example.com", &["limited@open"]).await;
    let modify = user(&server, "walk-modify@example.com", &["modify@staff"]).await;
    let mut p = Probe::new(&server, &[("open", &open), ("staff", &staff)]);
    // The upstreams are reachable: the limited user's own app, the modify user's staff app.
    p.check(&ALL, &limited, "/site/x", Want::Reaches("open", "/site/x"))
        .await;
    for target in INTO_STAFF {
        p.check(&ALL, &limited, target, Want::Refused(403)).await;
        let want = Want::Reaches("staff", "/site/staff/x");
        p.check(&ALL, &modify, target, want).await;
    }
    p.done();
}

/// The same walk between two apps under their own prefixes, `/pub/` (limited users) and
/// `/priv/` (modify users): a limited user's `/pub/../priv/x` must get 403 on every transport,
/// and neither upstream sees it (today it reaches the pub upstream), while `/pub/x` reaches pub.
#[tokio::test]
async fn a_dot_segment_cannot_walk_from_one_prefix_into_another() {
    let (publ, privy) = (echo_target(), echo_target());
    let server = Server::start_with(Options {
        port: None,
        sections: format!(
            "[[app]]\nid = \"pub\"\nhost = \"127.0.0.1:{{PORT}}\"\npath_prefix = \"/pub/\"\n\
             upstream = \"{}\"\nallow_roles = [\"limited\", \"modify\"]\n\n\
             [[app]]\nid = \"priv\"\nhost = \"127.0.0.1:{{PORT}}\"\npath_prefix = \"/priv/\"\n\
             upstream = \"{}\"\nallow_roles = [\"modify\"]\n",
            publ.url, privy.url
        ),
        env: vec![],
        ..Default::default()
    });
    let limited = user(&server, "pub@example.com", &["limited@pub"]).await;
    let mut p = Probe::new(&server, &[("pub", &publ), ("priv", &privy)]);
    let want = Want::Reaches("pub", "/pub/x");
    p.check(&ALL, &limited, "/pub/x", want).await;
    for target in ["/pub/../priv/x", "/pub/%2e%2e/priv/x", "/pub/./../priv/x"] {
        p.check(&ALL, &limited, target, Want::Refused(403)).await;
    }
    p.done();
}

/// Encodings a later reader may decode into something else than what was judged: encoded
/// slash and backslash, encoded control characters, double encoding, malformed escapes,
/// escapes that are not UTF-8.
const REFUSED_400: [&str; 15] = [
    "/site/%2fstaff/x",
    "/site/%2Fstaff/x",
    "/site/a%2Fb",
    "/site/a%5Cb",
    "/site/a%5cb",
    "/site/a%00b",
    "/site/a%09b",
    "/site/a%0Ab",
    "/site/a%1Fb",
    "/site/a%7Fb",
    "/site/a%2561",
    "/site/a%zz",
    "/site/a%4",
    "/site/a%C0%AF",
    "/site/a%FF",
];

/// Attack: a user of `open` sends targets whose meaning depends on how often and how
/// strictly the reader decodes them (`/%2fstaff/x`, `%5C`, `%00`, `%2561`, `%zz`, `%C0%AF`, …)
/// and a raw backslash (all under `/site/`). Must hold on every transport: 400, and neither upstream sees anything
/// — the user may use `open`, so only the refusal keeps these out. (A raw `\` is sent over
/// HTTP/1.x only; any 400 is right there, the HTTP parser's own included.)
#[tokio::test]
async fn ambiguous_encodings_in_the_path_are_refused_with_400() {
    let (open, staff) = (echo_target(), echo_target());
    let server = two_apps(&open, &staff);
    let limited = user(
        &server,
        "enc@example.com",
        &["limited@open", "modify@staff"],
    )
    .await;
    let mut p = Probe::new(&server, &[("open", &open), ("staff", &staff)]);
    p.check(&ALL, &limited, "/site/a", Want::Reaches("open", "/site/a"))
        .await;
    for target in REFUSED_400 {
        p.check(&ALL, &limited, target, Want::Refused(400)).await;
    }
    for target in ["/site/a\\b", "/site/staff\\x"] {
        p.check(&HTTP1, &limited, target, Want::Refused(400)).await;
    }
    p.done();
}

/// Attack: a path that exactly matches `open` but that a case-insensitive, `;`-stripping or
/// dot-trimming reader (Windows, Java servlet containers) takes for `/site/staff/…`:
/// `/site/STAFF/x`, `/site/staff;x=1/y`, `/site/staff./x`, `/site/Staff/x`, `/site/staff%20/x`. Must hold on every transport, for a `limited@open` user and for
/// a user with roles on both apps alike: 400 (ambiguous), neither upstream sees anything.
#[tokio::test]
async fn a_path_whose_loose_reading_chooses_another_app_is_refused_with_400() {
    let (open, staff) = (echo_target(), echo_target());
    let server = two_apps(&open, &staff);
    let limited = user(&server, "loose-l@example.com", &["limited@open"]).await;
    let both = user(
        &server,
        "loose-b@example.com",
        &["limited@open", "modify@staff"],
    )
    .await;
    let mut p = Probe::new(&server, &[("open", &open), ("staff", &staff)]);
    let want = Want::Reaches("staff", "/site/staff/x");
    p.check(&ALL, &both, "/site/staff/x", want).await;
    for target in [
        "/site/STAFF/x",
        "/site/staff;x=1/y",
        "/site/staff./x",
        "/site/Staff/x",
        "/site/staff%20/x",
    ] {
        for cookie in [&limited, &both] {
            p.check(&ALL, cookie, target, Want::Refused(400)).await;
        }
    }
    p.done();
}

/// What the upstream receives is the canonical path the gateway judged (unreserved escapes
/// decoded, other escapes upper-cased, dot segments resolved, `//` collapsed) plus the query
/// exactly as sent — so the upstream cannot read another path than the one allowed. Must hold
/// on every transport.
#[tokio::test]
async fn the_upstream_receives_the_canonical_path_and_the_query_as_sent() {
    let (open, staff) = (echo_target(), echo_target());
    let server = two_apps(&open, &staff);
    let canon = user(&server, "canon@example.com", &["limited@open"]).await;
    let mut p = Probe::new(&server, &[("open", &open), ("staff", &staff)]);
    for (target, canonical) in [
        ("/site/docs/a", "/site/docs/a"),
        ("/site/docs/./a//b/../c", "/site/docs/a/c"),
        ("/site/docs/%7Euser/%41%2d%5F%2E", "/site/docs/~user/A-_."),
        ("/site/docs/a%3bb%c3%a9", "/site/docs/a%3Bb%C3%A9"),
        (
            "/site/docs/x/%2e%2e/y?q=%2e%2e/%7e#",
            "/site/docs/y?q=%2e%2e/%7e",
        ),
        ("/site/docs/a/..?q=../x", "/site/docs/?q=../x"),
    ] {
        let want = Want::Reaches("open", canonical);
        p.check(&HTTP1, &canon, target, want).await;
        // (A fragment is for HTTP/1.x only: HTTP/2 gets the target without its `#`.)
        p.check(&[Via::H2c], &canon, target.trim_end_matches('#'), want)
            .await;
    }
    p.done();
}

/// Back-office evasions. Attack: a `limited@crm` user spells `/crm/admin/…` so that the
/// `/crm/admin/*` rule does not match as written but an upstream serves the admin pages:
/// trailing space or dot, `;params`, case, encoded letter (→ 403, judged as back office), or
/// an encoded NUL or tab, double encoding, overlong UTF-8, encoded backslash or slash (→ 400).
/// Must hold on every transport: never 200, the upstream sees none of them — while a
/// `modify@crm` user's `/crm/admin/x` reaches it.
#[tokio::test]
async fn back_office_evasions_are_refused() {
    let upstream = echo_target();
    let server = crm_server(&upstream);
    let limited = user(&server, "bo-limited@example.com", &["limited@crm"]).await;
    let modify = user(&server, "bo-modify@example.com", &["modify@crm"]).await;
    let mut p = Probe::new(&server, &[("crm", &upstream)]);
    let want = Want::Reaches("crm", "/crm/admin/x");
    p.check(&ALL, &modify, "/crm/admin/x", want).await;
    let cases = [
        ("/crm/admin%20/x", 403),
        ("/crm/admin./x", 403),
        ("/crm/admin;x=1/y", 403),
        ("/crm/ADMIN/x", 403),
        ("/crm/%61dmin/x", 403),
        ("/crm/admin%00/x", 400),
        ("/crm/admin%09/x", 400),
        ("/crm/%2561dmin/x", 400),
        ("/crm/admin%C0%AF/x", 400),
        ("/crm/admin%5cx", 400),
        ("/crm/admin%2fx", 400),
    ];
    for (target, status) in cases {
        p.check(&ALL, &limited, target, Want::Refused(status)).await;
    }
    p.done();
}

/// The routing attacks over HTTP/2 on the TLS port (ALPN `h2`), where hyper serves every
/// request: a `limited@open` user's walks into `staff` get 403, an encoded slash and a loose
/// reading of `staff` 400, neither upstream seeing any; a `modify@staff` user's `/%73taff/x`
/// reaches the staff upstream as `/site/staff/x`.
#[tokio::test]
async fn routing_holds_over_tls_http2() {
    let certs = TempDir::new();
    let (cert, key) = (certs.path("dev.pem"), certs.path("dev.key"));
    let out = std::process::Command::new(BIN)
        .args(["dev-cert", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (open, staff) = (echo_target(), echo_target());
    let server = Server::start_with(Options {
        port: None,
        sections: format!(
            "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n{}",
            cert.display(),
            key.display(),
            two_apps_config("localhost:{PORT}", &open, &staff)
        ),
        env: vec![(
            "GATEHOUSE_SERVER__PUBLIC_URL".into(),
            "https://localhost:{PORT}".into(),
        )],
        ..Default::default()
    });
    let pem = std::fs::read(&cert).unwrap();
    let base = format!("https://localhost:{}", server.port);
    let sign_in = async |email: &str, role: &str| {
        server.create_user(email, GOOD_PASSWORD, &[role]);
        let mut b = Browser::new(&base);
        b.client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .resolve("localhost", ([127, 0, 0, 1], server.port).into())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = b.login(email, GOOD_PASSWORD).await;
        assert_eq!(r.status, 303, "sign-in of {email}: {}", r.body);
        format!("Cookie: {}", b.cookie_header())
    };
    let limited = sign_in("tls-limited@example.com", "limited@open").await;
    let modify = sign_in("tls-modify@example.com", "modify@staff").await;

    let tls = {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
    };
    let authority = format!("localhost:{}", server.port);
    let h2 = async |cookie: &str, target: &str| {
        let tcp = within(
            "connect",
            tokio::net::TcpStream::connect(("127.0.0.1", server.port)),
        )
        .await
        .unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let io = within("TLS handshake", tls.connect(name, tcp))
            .await
            .unwrap();
        assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
        let headers = [cookie, "Accept: application/json"];
        h2_over(io, "https", "GET", &authority, target, &headers).await
    };
    let mut failures = Vec::new();
    let mut expect =
        async |cookie: &str, target: &str, status: u16, reaches: Option<(&Scripted, &str)>| {
            let before = (open.seen().len(), staff.seen().len());
            let a = h2(cookie, target).await;
            let got: Vec<String> = since(&open, before.0)
                .into_iter()
                .chain(since(&staff, before.1))
                .map(|r| r.target)
                .collect();
            let ok = a.status == status
                && match reaches {
                    None => got.is_empty(),
                    Some((up, path)) => {
                        got == [path] && up.seen().last().map(|r| r.target.as_str()) == Some(path)
                    }
                };
            if !ok {
                failures.push(format!(
                    "{target}: want {status}, answered {}, upstreams got {got:?}",
                    a.status
                ));
            }
        };
    expect(&limited, "/site/x", 200, Some((&open, "/site/x"))).await;
    expect(
        &modify,
        "/site/%73taff/x",
        200,
        Some((&staff, "/site/staff/x")),
    )
    .await;
    for target in ["/site/x/../staff/x", "/site//staff/x", "/site/%73taff/x"] {
        expect(&limited, target, 403, None).await;
    }
    for target in ["/site/%2fstaff/x", "/site/STAFF/x", "/site/staff;x=1/y"] {
        expect(&limited, target, 400, None).await;
    }
    assert!(
        failures.is_empty(),
        "over TLS HTTP/2:\n{}",
        failures.join("\n")
    );
}
