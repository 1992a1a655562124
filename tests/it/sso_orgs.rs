//! Organizations through upstream sign-in, against a real OpenID provider (`oidc-provider`, as
//! the Google-like upstream): a domain organization's Workspace people are created on their
//! first sign-in with the organization's rights; a same-domain address without the `hd` proof
//! and an unverified address are refused; an email organization admits its listed addresses
//! only.

use crate::harness::*;
use crate::peers::oidc::*;
use serde_json::Value;

const SECRET: &str = "gatehouse-upstream-secret-1";

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";

/// The gateway, registered at a fresh provider with these accounts, as provider `google`.
fn gateway_and_provider(accounts: &[(&str, Value)]) -> (Server, OidcPeer) {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/.gatehouse/sso/google/callback");
    let mut config = PeerConfig::new(PeerClient::new("gatehouse", SECRET, &redirect));
    for (login, claims) in accounts {
        config = config.account(login, claims.clone());
    }
    let peer = OidcPeer::start(&config);
    let server = Server::start_with(Options {
        sections: format!(
            "{WHOAMI}\n[[identity_provider]]\nid = \"google\"\nkind = \"google\"\nclient_id = \"gatehouse\"\n\
             client_secret = \"{SECRET}\"\nissuer = \"{}\"\n",
            peer.issuer
        ),
        port: Some(port),
        ..Default::default()
    });
    (server, peer)
}

/// Signs in at the gateway through the provider as `login`; the gateway's last answer.
async fn sso(server: &Server, peer: &OidcPeer, b: &mut Browser, login: &str) -> Page {
    let r = b.get("/.gatehouse/sso/google?rd=%2Fwhoami%2F").await;
    assert_eq!(r.status, 303, "start: {}", r.body);
    let answer = peer.browser().sign_in(&r.location(), login).await;
    assert!(answer.code().is_some(), "{:?}", answer.url);
    let callback = answer.url.to_string();
    assert!(callback.starts_with(&server.base), "{callback}");
    b.get(&callback).await
}

fn workspace(sub: &str, email: &str, hd: Option<&str>, verified: bool) -> Value {
    let mut a = account(sub, email, "Someone");
    a["email_verified"] = verified.into();
    if let Some(hd) = hd {
        a["hd"] = hd.into();
    }
    a
}

#[tokio::test]
async fn a_domain_organizations_workspace_user_is_created_on_first_sign_in_with_its_rights() {
    let (server, peer) = gateway_and_provider(&[
        (
            "alice",
            workspace("alice-1", "alice@acme.test", Some("acme.test"), true),
        ),
        ("gmail", workspace("bob-2", "bob@acme.test", None, true)),
        (
            "unverified",
            workspace("carol-3", "carol@acme.test", Some("acme.test"), false),
        ),
    ]);
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "acme",
        "--name",
        "Acme Ltd",
        "--email",
        "it@acme.test",
        "--access-by",
        "domain",
        "--domain",
        "acme.test",
        "--provider",
        "google",
        "--role",
        "limited@whoami",
    ]);
    let out = server.admin(&["user", "show", "--email", "alice@acme.test"]);
    assert!(!out.status.success(), "no account before the first sign-in");

    let mut b = server.browser();
    let r = sso(&server, &peer, &mut b, "alice").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/whoami/");
    let who = b.get_json("/whoami/").await;
    assert_eq!(who.status, 200, "{}", who.body);
    let who: Value = serde_json::from_str(&who.body).unwrap();
    let h = &who["headers"];
    assert_eq!(h["x-gatehouse-email"], "alice@acme.test");
    assert_eq!(h["x-gatehouse-org"], "acme");
    assert_eq!(h["x-gatehouse-roles"], "limited");
    let shown: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "alice@acme.test",
    ]))
    .unwrap();
    assert!(shown.to_string().contains("acme"), "a member: {shown}");

    // Signing in again uses the link; still one account.
    let mut again = server.browser();
    let r = sso(&server, &peer, &mut again, "alice").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let users: Value = serde_json::from_str(&server.admin_ok(&["--json", "user", "list"])).unwrap();
    let alices = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == "alice@acme.test")
        .count();
    assert_eq!(alices, 1, "{users}");

    // Same domain, but no `hd`: not proved to be Acme's (a consumer account with that
    // address); and an address the provider does not vouch for.
    for login in ["gmail", "unverified"] {
        let mut b = server.browser();
        let r = sso(&server, &peer, &mut b, login).await;
        assert_eq!(r.status, 403, "{login}: {}", r.body);
        let r = b.get("/whoami/").await;
        assert!(
            r.status == 302 && r.location().contains("/login"),
            "{login} is not signed in: {}",
            r.status
        );
    }
    for email in ["bob@acme.test", "carol@acme.test"] {
        let out = server.admin(&["user", "show", "--email", email]);
        assert!(!out.status.success(), "{email} was not created");
    }
}

#[tokio::test]
async fn an_email_organization_admits_its_listed_addresses_and_no_one_else_of_the_domain() {
    let (server, peer) = gateway_and_provider(&[
        // Both of the partner's Workspace: the domain is proved, the list still decides.
        (
            "listed",
            workspace("dan-4", "dan@partner.test", Some("partner.test"), true),
        ),
        (
            "outsider",
            workspace("eve-5", "eve@partner.test", Some("partner.test"), true),
        ),
    ]);
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "partner",
        "--name",
        "Partner",
        "--email",
        "office@partner.test",
        "--access-by",
        "email",
        "--member",
        "dan@partner.test",
        "--role",
        "limited@whoami",
    ]);
    let mut b = server.browser();
    let r = sso(&server, &peer, &mut b, "listed").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let who: Value = serde_json::from_str(&b.get_json("/whoami/").await.body).unwrap();
    assert_eq!(who["headers"]["x-gatehouse-org"], "partner");

    let mut b = server.browser();
    let r = sso(&server, &peer, &mut b, "outsider").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        !server
            .admin(&["user", "show", "--email", "eve@partner.test"])
            .status
            .success()
    );
}

/// `enforce_mfa` after an upstream sign-in: the organization's member is taken through TOTP
/// enrolment at the gateway and reaches no app before it; once enrolled, the next upstream
/// sign-in asks for the code before the app.
#[tokio::test]
async fn enforce_mfa_takes_an_upstream_member_through_enrolment_before_any_app() {
    let (server, peer) = gateway_and_provider(&[(
        "alice",
        workspace("alice-1", "alice@acme.test", Some("acme.test"), true),
    )]);
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "acme",
        "--name",
        "Acme Ltd",
        "--email",
        "it@acme.test",
        "--access-by",
        "domain",
        "--domain",
        "acme.test",
        "--provider",
        "google",
        "--enforce-mfa",
        "--role",
        "limited@whoami",
    ]);
    let mut b = server.browser();
    let r = sso(&server, &peer, &mut b, "alice").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/mfa/enroll"), "{}", r.location());
    let r = b.get("/whoami/").await;
    assert_eq!(r.status, 302, "no app before enrolling: {}", r.body);
    assert!(r.location().contains("/login"), "{}", r.location());

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
    let who = b.get_json("/whoami/").await;
    assert_eq!(who.status, 200, "{}", who.body);
    let who: Value = serde_json::from_str(&who.body).unwrap();
    assert_eq!(who["headers"]["x-gatehouse-org"], "acme");

    // Next time through the provider: the code comes before the app.
    let mut b = server.browser();
    let r = sso(&server, &peer, &mut b, "alice").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/login/mfa"), "{}", r.location());
    assert_eq!(b.get("/whoami/").await.status, 302);
    let page = b.get(&r.location()).await;
    // The code just used at enrolment cannot be used twice: the next step's (within the
    // one-step tolerance) is a fresh one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp_code_at(&secret, now + 30);
    let r = b
        .post(
            "/login/mfa",
            &[("csrf", &page.csrf()), ("code", &code), ("rd", "/whoami/")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get_json("/whoami/").await.status, 200);
}
