//! Sign-in rules of organizations: the organization's own address never signs in (and no
//! account can be made with it), `enforce_mfa` takes members through enrolment before any
//! app, and `reset-mfa` takes a member out of their organization.

use super::*;

/// Enrols TOTP for a browser at the enrolment step; returns the secret.
async fn enrol(b: &mut Browser) -> String {
    let page = b.get("/mfa/enroll").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let secret = enrolment_secret(&page.body);
    let r = b
        .post(
            "/mfa/enroll",
            &[("csrf", &page.csrf()), ("code", &totp_code(&secret))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    secret
}

/// Attack: someone signs in with an organization's own address (as created, in another case,
/// with spaces), with any password. Must hold: SPEC's exact message, no session, a refused
/// sign-in in the audit trail; no account can be created with that address either (so the
/// address never gains a password), while an ordinary unknown address still gets the one
/// answer that reveals nothing.
#[tokio::test]
async fn the_organizations_own_address_never_signs_in() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &["ann@acme.example"], &["modify@crm"], &[]);
    for typed in ["it@acme.example", " IT@Acme.Example "] {
        let mut b = server.browser();
        let r = b.login(typed, GOOD_PASSWORD).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(
            r.body
                .contains("This address belongs to an organization and cannot be used to sign in."),
            "{}",
            r.body
        );
        assert!(
            !b.cookies.contains_key("gatehouse_session"),
            "{:?}",
            b.cookies
        );
        assert_ne!(b.get("/crm/x").await.status, 200);
    }
    let unknown = server
        .browser()
        .login("nobody@acme.example", GOOD_PASSWORD)
        .await;
    assert_eq!(unknown.status, 401);
    assert!(!unknown.body.contains("belongs to an organization"));
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    let refused = trail
        .iter()
        .filter(|e| {
            e["action"] == "signin"
                && e["outcome"] == "failure"
                && e["target"] == "it@acme.example"
                && e["details"]["reason"] == "organization_address"
        })
        .count();
    assert_eq!(refused, 2, "{trail:#?}");
    let out = server.admin_stdin(
        &[
            "user",
            "create",
            "--email",
            "It@acme.example",
            "--password-stdin",
        ],
        Some(&format!("{GOOD_PASSWORD}\n")),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("it@acme.example is the address of organization acme"),
        "{err}"
    );
    // The listed member exists (invited, from the activation mail); the org address never.
    let users: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["--json", "user", "list"])).unwrap();
    let emails: Vec<&str> = users.iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, ["ann@acme.example"], "{users:?}");
}

/// `enforce_mfa`: a member without a second factor is taken through enrolment and reaches no
/// app before it (the proxy sends them to sign in; the upstream sees nothing); enrolled, they
/// get in. `reset-mfa` takes them out of the organization (off the list, no longer a
/// member, audited), so they are refused (`403`: the role was the organization's) until an
/// administrator lists them again — which, `enforce_mfa` applying to them again, ends their
/// session without a second factor, and enrolment comes first once more.
#[tokio::test]
async fn enforce_mfa_comes_before_any_app_and_reset_mfa_takes_a_member_out() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(
        &server,
        "acme",
        &["ann@acme.example"],
        &["modify@crm"],
        &["--enforce-mfa"],
    );
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    let r = b.login("ann@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/mfa/enroll", "enrolment comes first");
    let before = upstream.seen().len();
    let r = b.get("/crm/early").await;
    assert_eq!(r.status, 302, "not signed in before enrolling: {}", r.body);
    assert!(r.location().contains("/login?rd="), "{}", r.location());
    assert_eq!(upstream.seen().len(), before, "the app saw nothing");
    enrol(&mut b).await;
    assert_eq!(b.get("/crm/enrolled").await.status, 200);
    assert_eq!(
        upstream.last("/crm/enrolled").all("x-gatehouse-org"),
        ["acme"]
    );

    let out = server.admin_ok(&["user", "reset-mfa", "--email", "ann@acme.example"]);
    assert!(out.contains("removed from organization acme"), "{out}");
    let user = admin_json(&server, &["user", "show", "--email", "ann@acme.example"]);
    assert_eq!(user["org"], Value::Null, "{user}");
    assert_eq!(user["mfa"], false);
    let org = admin_json(&server, &["org", "show", "--slug", "acme"]);
    assert_eq!(org["members"], serde_json::json!([]), "{org}");
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    assert!(
        trail.iter().any(|e| e["action"] == "org.member.remove"
            && e["target"] == "acme"
            && e["details"]["reason"] == "mfa_reset"),
        "{trail:#?}"
    );
    // Out of the organization: no MFA needed any more, and no role.
    let mut b = sign_in(&server, "ann@acme.example").await;
    let before = upstream.seen().len();
    assert_eq!(b.get("/crm/after-reset").await.status, 403);
    assert_eq!(upstream.seen().len(), before);

    server.admin_ok(&[
        "org",
        "add-member",
        "--slug",
        "acme",
        "--email",
        "ann@acme.example",
    ]);
    // Her session had no second factor: it ended.
    let r = b.get("/crm/readded").await;
    assert_eq!(r.status, 302, "{}", r.body);
    let mut b = server.browser();
    let r = b.login("ann@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.location(), "/mfa/enroll");
    enrol(&mut b).await;
    assert_eq!(b.get("/crm/readded").await.status, 200);
    assert_eq!(
        upstream.last("/crm/readded").all("x-gatehouse-org"),
        ["acme"]
    );
}

/// Turning `enforce_mfa` on for an existing organization ends the sessions of members who have
/// no second factor (they enrol at their next sign-in); `--enforce-mfa=false` turns it off.
#[tokio::test]
async fn turning_enforce_mfa_on_ends_sessions_without_a_second_factor() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &["ann@acme.example"], &["modify@crm"], &[]);
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    let mut b = sign_in(&server, "ann@acme.example").await;
    assert_eq!(b.get("/crm/a").await.status, 200);
    let out = server.admin_ok(&["org", "update", "--slug", "acme", "--enforce-mfa"]);
    assert!(out.contains("1 session(s) ended"), "{out}");
    assert_eq!(b.get("/crm/b").await.status, 302);
    let r = server
        .browser()
        .login("ann@acme.example", GOOD_PASSWORD)
        .await;
    assert_eq!(r.location(), "/mfa/enroll");
    let org = admin_json(
        &server,
        &["org", "update", "--slug", "acme", "--enforce-mfa=false"],
    );
    assert_eq!(org["org"]["enforce_mfa"], false, "{org}");
    let r = server
        .browser()
        .login("ann@acme.example", GOOD_PASSWORD)
        .await;
    assert_eq!(r.location(), "/", "no enrolment once it is off");
}
