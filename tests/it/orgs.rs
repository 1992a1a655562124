//! Organizations, end to end: members get the organization's grants, its slug in
//! `X-Gatehouse-Org` and the assertion's `org` on every transport (and a client's own
//! `X-Gatehouse-Org` never), apps refuse or admit members by organization (proxy and
//! forward-auth alike). The administration (`admin org …`, clashes, unknown apps, the audit
//! trail as each viewer sees it) is in `admin`; sign-in rules (the organization's own
//! address, `enforce_mfa`, `reset-mfa`) in `signin`.

mod admin;
mod signin;

use crate::attack_proxy::{ALL, send};
use crate::harness::*;
use crate::upstream::Upstream;
use serde_json::Value;

/// A gateway with the `crm` app (`harness::crm_app`: `/crm/` on the gateway's host, for the
/// `modify` and `limited` roles) relayed to `upstream`, and `extra` config.
pub fn org_server(upstream: &Upstream, extra: &str) -> Server {
    Server::start_with(Options {
        port: None,
        sections: format!("{}{extra}", crm_app(&upstream.url, "5s")),
        env: vec![],
        ..Default::default()
    })
}

/// `gatehouse admin --json ARGS…`, which must succeed, as JSON.
pub fn admin_json(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&server.admin_ok(&all)).unwrap()
}

/// `gatehouse admin ARGS…`, which must fail with exit code 2 (bad input); its message.
pub fn admin_refused(server: &Server, args: &[&str]) -> String {
    let out = server.admin(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "gatehouse admin {args:?} must be refused: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Creates an `email` organization `slug` whose address is `it@<slug>.example`, listing
/// `members`, with `roles` (R[@APP]) and `extra` options.
pub fn create_email_org(
    server: &Server,
    slug: &str,
    members: &[&str],
    roles: &[&str],
    extra: &[&str],
) {
    let name = format!("{} Ltd", slug[..1].to_uppercase() + &slug[1..]);
    let email = format!("it@{slug}.example");
    let mut args = vec![
        "org",
        "create",
        "--slug",
        slug,
        "--name",
        &name,
        "--email",
        &email,
        "--access-by",
        "email",
    ];
    for m in members {
        args.extend(["--member", m]);
    }
    for r in roles {
        args.extend(["--role", r]);
    }
    args.extend_from_slice(extra);
    server.admin_ok(&args);
}

/// Signs `email` in with `GOOD_PASSWORD` (the account exists already).
pub async fn sign_in(server: &Server, email: &str) -> Browser {
    let mut b = server.browser();
    let r = b.login(email, GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "sign-in of {email}: {}", r.body);
    b
}

/// The session's `Cookie:` header line.
pub fn cookie_line(b: &Browser) -> String {
    format!("Cookie: {}", b.cookie_header())
}

async fn jwks(server: &Server) -> Value {
    reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Attack: a client of each kind sends its own `X-Gatehouse-Org` (several spellings) to pass
/// for a member of `acme`, over every transport (the fast path, HTTP/1.0 and a chunked POST
/// through hyper, h2c). Must hold: a member listed before their account existed and one
/// listed after both reach `crm` with their organization's role (`modify`, granted to the
/// organization only), `X-Gatehouse-Org: acme` exactly once and an assertion (verified with
/// the published keys) whose `org` is `acme`; a staff user without an organization gets no
/// `X-Gatehouse-Org` at all and `org: null` — whatever the client claimed.
#[tokio::test]
async fn members_reach_the_app_with_their_organization_and_a_claimed_one_never_does() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    // Listed first: an invited account is made (and mailed); `user create` completes it.
    create_email_org(&server, "acme", &["Ann@Acme.example"], &["modify@crm"], &[]);
    let shown = server.admin_ok(&["org", "show", "--slug", "acme"]);
    assert!(
        shown.contains("ann@acme.example") && shown.contains("invited (activation link mailed"),
        "{shown}"
    );
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    // Account first, listed afterwards: it joins as it is listed.
    server.create_user("bob@acme.example", GOOD_PASSWORD, &[]);
    server.admin_ok(&[
        "org",
        "add-member",
        "--slug",
        "acme",
        "--email",
        "bob@acme.example",
    ]);
    for email in ["ann@acme.example", "bob@acme.example"] {
        let user = admin_json(&server, &["user", "show", "--email", email]);
        assert_eq!(user["org"]["slug"], "acme", "{user}");
        assert_eq!(
            user["roles"],
            serde_json::json!([]),
            "no role of their own: {user}"
        );
    }
    let shown = admin_json(&server, &["org", "show", "--slug", "acme"]);
    let accounts: Vec<bool> = shown["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["account"].as_bool().unwrap())
        .collect();
    assert_eq!(accounts, [true, true], "{shown}");
    server.create_user("sam@corp.example", GOOD_PASSWORD, &["modify@crm"]);

    let keys = jwks(&server).await;
    let spoof = [
        "X-Gatehouse-Org: globex",
        "x-gatehouse-org: globex",
        "X_Gatehouse_Org: globex",
    ];
    let mut failures = Vec::new();
    for (email, org) in [
        ("ann@acme.example", Some("acme")),
        ("bob@acme.example", Some("acme")),
        ("sam@corp.example", None),
    ] {
        let b = sign_in(&server, email).await;
        let cookie = cookie_line(&b);
        for via in ALL {
            let target = format!("/crm/who-{}", email.split('@').next().unwrap());
            let mut headers = vec![cookie.as_str(), "Accept: application/json"];
            headers.extend(spoof);
            let a = send(&server, via, &target, &headers).await;
            if a.status != 200 {
                failures.push(format!("{email} {via:?}: {} {}", a.status, a.body));
                continue;
            }
            let seen = upstream.last(&target);
            let orgs = seen.all("x-gatehouse-org");
            let want: Vec<String> = org.iter().map(|s| s.to_string()).collect();
            if orgs != want {
                failures.push(format!(
                    "{email} {via:?}: X-Gatehouse-Org {orgs:?}, want {want:?}"
                ));
            }
            if !seen.all("x_gatehouse_org").is_empty() {
                failures.push(format!("{email} {via:?}: the `_` spelling arrived"));
            }
            if seen.one("x-gatehouse-roles").as_deref() != Some("modify")
                || seen.one("x-gatehouse-seat").as_deref() != Some("modify")
            {
                failures.push(format!(
                    "{email} {via:?}: roles {:?} seat {:?}",
                    seen.one("x-gatehouse-roles"),
                    seen.one("x-gatehouse-seat")
                ));
            }
            let jws = seen.one("x-gatehouse-assertion").unwrap_or_default();
            match verify_es256(&jws, &keys) {
                Ok(claims) => {
                    let want = org.map_or(Value::Null, |o| Value::String(o.into()));
                    if claims["org"] != want || claims["email"] != email {
                        failures.push(format!("{email} {via:?}: assertion {claims}"));
                    }
                }
                Err(e) => failures.push(format!("{email} {via:?}: assertion: {e}")),
            }
        }
    }
    let unreachable: Vec<String> = (server.logs().lines())
        .filter(|l| l.contains("upstream unreachable"))
        .map(str::to_string)
        .collect();
    assert!(
        failures.is_empty(),
        "\n{}\n{}",
        failures.join("\n"),
        unreachable.join("\n")
    );
}

/// A change to an organization reaches signed-in members at once (each member's cached
/// access is cleared): a member with no role is refused (`403`), the organization is granted
/// `limited@crm` and the next request passes with that role; revoked, refused again; the
/// organization deleted, the former member is a user without an organization (no
/// `X-Gatehouse-Org`) and without the organization's rights.
#[tokio::test]
async fn organization_changes_reach_signed_in_members_at_once() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &["ann@acme.example"], &[], &[]);
    server.create_user("ann@acme.example", GOOD_PASSWORD, &["limited@crm"]);
    let mut b = sign_in(&server, "ann@acme.example").await;
    assert_eq!(b.get("/crm/one").await.status, 200);
    assert_eq!(upstream.last("/crm/one").all("x-gatehouse-org"), ["acme"]);
    assert_eq!(
        upstream.last("/crm/one").one("x-gatehouse-seat").as_deref(),
        Some("limited")
    );
    server.admin_ok(&["grant", "--org", "acme", "--role", "modify", "--app", "crm"]);
    assert_eq!(b.get("/crm/two").await.status, 200);
    let seen = upstream.last("/crm/two");
    assert_eq!(
        seen.one("x-gatehouse-roles").as_deref(),
        Some("limited,modify")
    );
    assert_eq!(seen.one("x-gatehouse-seat").as_deref(), Some("modify"));
    server.admin_ok(&[
        "revoke", "--org", "acme", "--role", "modify", "--app", "crm",
    ]);
    assert_eq!(b.get("/crm/three").await.status, 200);
    assert_eq!(
        upstream
            .last("/crm/three")
            .one("x-gatehouse-seat")
            .as_deref(),
        Some("limited")
    );
    // Only the organization's grant let a user without their own role in.
    server.admin_ok(&[
        "revoke",
        "--user",
        "ann@acme.example",
        "--role",
        "limited",
        "--app",
        "crm",
    ]);
    assert_eq!(b.get("/crm/four").await.status, 403);
    server.admin_ok(&["grant", "--org", "acme", "--role", "limited"]);
    assert_eq!(b.get("/crm/five").await.status, 200);
    let out = server.admin_ok(&["org", "delete", "--slug", "acme"]);
    assert!(out.contains("1 user(s) left"), "{out}");
    assert_eq!(
        b.get("/crm/six").await.status,
        403,
        "the organization's grant went with it"
    );
    let user = admin_json(&server, &["user", "show", "--email", "ann@acme.example"]);
    assert_eq!(user["org"], Value::Null);
    server.admin_ok(&[
        "grant",
        "--user",
        "ann@acme.example",
        "--role",
        "limited",
        "--app",
        "crm",
    ]);
    assert_eq!(b.get("/crm/seven").await.status, 200);
    assert!(
        upstream
            .last("/crm/seven")
            .all("x-gatehouse-org")
            .is_empty()
    );
}

const APPS: &str = r#"
[[app]]
id = "showroom"
host = "127.0.0.1:{PORT}"
path_prefix = "/showroom/"
upstream = "{UPSTREAM}"
allow_roles = ["modify"]
organization_members = false

[[app]]
id = "portal"
host = "127.0.0.1:{PORT}"
path_prefix = "/portal/"
upstream = "{UPSTREAM}"
allow_roles = ["modify"]
allow_organizations = ["acme"]

[[app]]
id = "showroom-fa"
host = "showroom.example.test"
upstream = "none"
allow_roles = ["modify"]
organization_members = false

[[app]]
id = "portal-fa"
host = "portal.example.test"
upstream = "none"
allow_roles = ["modify"]
allow_organizations = ["acme"]
"#;

/// Attack: members of partner organizations try apps that are closed to them — one that
/// refuses organization members altogether (`organization_members = false`) and one open to
/// `acme` only (`allow_organizations`) — through the proxy (a page and JSON) and through
/// forward-auth. Must hold: staff with the same `modify` role (no organization) get in
/// everywhere; an `acme` member gets `403` on the showroom and in on the portal; a `globex`
/// member gets `403` on both; forward-auth (`/.gatehouse/verify`) answers the same; each
/// refusal is a `proxy.denied` audit event naming the reason; the upstream sees nothing
/// refused.
#[tokio::test]
async fn apps_refuse_or_admit_members_by_organization_on_the_proxy_and_forward_auth() {
    let upstream = Upstream::start();
    let server = Server::start_with(Options {
        port: None,
        sections: APPS.replace("{UPSTREAM}", &upstream.url),
        env: vec![(
            "GATEHOUSE_SERVER__TRUSTED_PROXIES".into(),
            r#"["127.0.0.1/32"]"#.into(),
        )],
        ..Default::default()
    });
    create_email_org(&server, "acme", &["ann@acme.example"], &["modify"], &[]);
    create_email_org(&server, "globex", &["gil@globex.example"], &["modify"], &[]);
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    server.create_user("gil@globex.example", GOOD_PASSWORD, &[]);
    server.create_user("sam@corp.example", GOOD_PASSWORD, &["modify"]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let cases = [
        ("sam@corp.example", "showroom", 200, None),
        ("sam@corp.example", "portal", 200, None),
        (
            "ann@acme.example",
            "showroom",
            403,
            Some("organization_member"),
        ),
        ("ann@acme.example", "portal", 200, None),
        (
            "gil@globex.example",
            "showroom",
            403,
            Some("organization_member"),
        ),
        (
            "gil@globex.example",
            "portal",
            403,
            Some("organization_not_allowed"),
        ),
    ];
    for (email, app, want, _) in cases {
        let b = sign_in(&server, email).await;
        let cookie = b.cookie_header();
        let user = email.split('@').next().unwrap();
        // The proxy, as a browser page and as JSON.
        for accept in ["text/html", "application/json"] {
            let path = format!("/{app}/{user}-{}", accept.replace('/', "-"));
            let before = upstream.seen().len();
            let r = http
                .get(format!("{}{path}", server.base))
                .header("accept", accept)
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = r.text().await.unwrap();
            let reached = upstream.seen().len() - before;
            if status != want || reached != usize::from(want == 200) {
                failures.push(format!(
                    "{email} {app} ({accept}): {status}, upstream got {reached}: {body}"
                ));
            }
            if want == 403 {
                let page = accept == "text/html";
                let shaped = if page {
                    kind.starts_with("text/html") && body.contains("organization")
                } else {
                    kind.starts_with("application/json")
                        && serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                            v["error"] == "Forbidden"
                                && v["message"]
                                    .as_str()
                                    .is_some_and(|m| m.contains("organization"))
                        })
                };
                if !shaped {
                    failures.push(format!("{email} {app} ({accept}): {kind} {body}"));
                }
            }
        }
        // Forward-auth, for the same rules on an app reached only that way (asked on a host
        // that is no app's, so that `Host` describes no other original request).
        let r = http
            .get(format!(
                "http://localhost:{}/.gatehouse/verify",
                server.port
            ))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", format!("{app}.example.test"))
            .header("x-forwarded-uri", "/x")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let org = r
            .headers()
            .get("x-gatehouse-org")
            .map(|v| v.to_str().unwrap().to_string());
        if status != want {
            failures.push(format!("{email} verify {app}: {status}, want {want}"));
        }
        let want_org = (want == 200).then(|| email.split(['@', '.']).nth(1).unwrap().to_string());
        let want_org = want_org.filter(|o| o != "corp");
        if org != want_org {
            failures.push(format!(
                "{email} verify {app}: X-Gatehouse-Org {org:?}, want {want_org:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Each refusal is audited with its reason (the proxy's and forward-auth's apps alike).
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    for (email, app, _, reason) in cases {
        let Some(reason) = reason else { continue };
        for app in [app.to_string(), format!("{app}-fa")] {
            let id = user_id(&server, email);
            let found = trail.iter().any(|e| {
                e["action"] == "proxy.denied"
                    && e["target"] == app.as_str()
                    && e["details"]["reason"] == reason
                    && e["actor"].as_str().is_some_and(|a| a.contains(email))
            });
            assert!(
                found,
                "no proxy.denied for {email} ({id}) on {app} with {reason}"
            );
        }
    }
}
