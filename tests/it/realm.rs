//! Home-realm discovery at `/login`, against a real OpenID provider (`oidc-provider` as the
//! Google-like upstream): the sign-in page asks for the email first; a domain organization's
//! address goes straight to its provider with `login_hint`; an email organization's listed
//! address gets the password step with the buttons its organization allows; an unknown address
//! and a known address outside every organization get the very same page.

use crate::harness::*;
use crate::peers::oidc::*;
use serde_json::Value;

const SECRET: &str = "gatehouse-upstream-secret-1";

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";

/// The gateway with two providers: `google` (the peer) and `partner` (a generic provider,
/// never started here).
fn gateway_and_provider(accounts: &[(&str, Value)]) -> (Server, OidcPeer) {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/.gatehouse/sso/google/callback");
    let mut config = PeerConfig::new(PeerClient::new("gatehouse", SECRET, &redirect)).account(
        "nobody",
        account("nobody-0", "nobody@elsewhere.test", "Nobody"),
    );
    for (login, claims) in accounts {
        config = config.account(login, claims.clone());
    }
    let peer = OidcPeer::start(&config);
    let server = Server::start_with(Options {
        sections: format!(
            "{WHOAMI}\n[[identity_provider]]\nid = \"google\"\nkind = \"google\"\nname = \"Acme Google\"\n\
             client_id = \"gatehouse\"\nclient_secret = \"{SECRET}\"\nissuer = \"{0}\"\n\n\
             [[identity_provider]]\nid = \"partner\"\nkind = \"oidc\"\nname = \"Partner ID\"\n\
             client_id = \"gatehouse\"\nclient_secret = \"{SECRET}\"\nissuer = \"{0}\"\n",
            peer.issuer
        ),
        port: Some(port),
        ..Default::default()
    });
    (server, peer)
}

/// The email step: POST /login with only `email`.
async fn email_step(b: &mut Browser, email: &str, rd: &str) -> Page {
    let page = b
        .get(&format!("/login?rd={}", rd.replace('/', "%2F")))
        .await;
    let csrf = page.csrf();
    b.post("/login", &[("csrf", &csrf), ("email", email), ("rd", rd)])
        .await
}

#[tokio::test]
async fn the_sign_in_page_asks_for_the_email_first_and_works_without_javascript() {
    let (server, _peer) = gateway_and_provider(&[]);
    let mut b = server.browser();
    let page = b.get("/login?rd=%2Fwhoami%2F").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"email\""), "{}", page.body);
    assert!(
        !page.body.contains("name=\"password\""),
        "the first step asks only for the email: {}",
        page.body
    );
    assert!(!page.body.contains("<script"), "no JavaScript needed");
    // Both buttons are offered at the first step too.
    assert!(page.body.contains("Acme Google") && page.body.contains("Partner ID"));

    // Not an address: said so, the typed text kept.
    let r = email_step(&mut b, "not-an-address", "/whoami/").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Enter your email address."), "{}", r.body);
    assert!(r.body.contains("value=\"not-an-address\""), "{}", r.body);

    // The one-step form (email and password together) still signs in.
    server.create_user("pat@example.test", GOOD_PASSWORD, &["limited@whoami"]);
    let r = b.login("pat@example.test", GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn a_domain_organizations_address_goes_straight_to_its_provider_with_login_hint() {
    let mut alice = account("alice-1", "alice@acme.test", "Alice");
    alice["hd"] = "acme.test".into();
    let (server, peer) = gateway_and_provider(&[("alice", alice)]);
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
    let mut b = server.browser();
    // Typed with capitals and spaces: the domain is still found.
    let r = email_step(&mut b, " Alice@ACME.test ", "/whoami/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let start = r.location();
    assert_eq!(
        start, "/.gatehouse/sso/google?rd=%2Fwhoami%2F&login_hint=Alice%40ACME.test",
        "straight to the organization's provider, no password step"
    );
    let r = b.get(&start).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let authorize = r.location();
    assert!(authorize.starts_with(&peer.issuer), "{authorize}");
    assert_eq!(
        query_param(&authorize, "login_hint").as_deref(),
        Some("Alice@ACME.test"),
        "{authorize}"
    );
    // ... and the round trip ends at the app, as the organization's member.
    let answer = peer.browser().sign_in(&authorize, "alice").await;
    let r = b.get(answer.url.as_str()).await;
    assert_eq!(r.status, 303, "{}\n{}", r.body, server.logs());
    assert_eq!(r.location(), "/whoami/");
    let who = b.get_json("/whoami/").await;
    let who: Value = serde_json::from_str(&who.body).unwrap();
    assert_eq!(who["headers"]["x-gatehouse-org"], "acme");

    // A login_hint that is no address is not passed on.
    let r = b
        .get("/.gatehouse/sso/google?rd=%2Fwhoami%2F&login_hint=%3Cscript%3E")
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(query_param(&r.location(), "login_hint"), None);

    // The organization's own address: SPEC's message at the email step, audited.
    let r = email_step(&mut server.browser(), "it@acme.test", "/whoami/").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body
            .contains("This address belongs to an organization and cannot be used to sign in."),
        "{}",
        r.body
    );
    let audit: Value =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "signin"
                && e["details"]["reason"] == "organization_address"
                && e["details"]["step"] == "email"),
        "{audit}"
    );
}

#[tokio::test]
async fn unknown_and_known_addresses_outside_organizations_get_the_same_page() {
    let (server, _peer) = gateway_and_provider(&[]);
    server.create_user("known@example.test", GOOD_PASSWORD, &["limited@whoami"]);
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "partners",
        "--name",
        "Partners",
        "--email",
        "office@partner.test",
        "--access-by",
        "email",
        "--member",
        "listed@partner.test",
        "--provider",
        "partner",
        "--role",
        "limited@whoami",
    ]);
    let mut b = server.browser();
    let known = email_step(&mut b, "known@example.test", "/whoami/").await;
    let unknown = email_step(&mut b, "nobody@example.test", "/whoami/").await;
    assert_eq!(known.status, 200, "{}", known.body);
    assert_eq!(unknown.status, known.status);
    assert!(known.body.contains("name=\"password\""), "{}", known.body);
    let known_body = known.body.replace("known%40example.test", "ADDRESS");
    let known_body = known_body.replace("known@example.test", "ADDRESS");
    let unknown_body = unknown.body.replace("nobody%40example.test", "ADDRESS");
    let unknown_body = unknown_body.replace("nobody@example.test", "ADDRESS");
    assert_eq!(
        known_body, unknown_body,
        "the email step tells nothing of accounts"
    );
    // Every provider's button, with the address as login_hint.
    assert!(known.body.contains("Acme Google") && known.body.contains("Partner ID"));
    assert!(
        known
            .body
            .replace("&amp;", "&")
            .contains("login_hint=known%40example.test"),
        "{}",
        known.body
    );

    // A listed address of an email organization: the password step, and only the buttons of
    // the providers its organization allows.
    let listed = email_step(&mut b, "listed@partner.test", "/whoami/").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("name=\"password\""), "{}", listed.body);
    assert!(listed.body.contains("Partner ID"), "{}", listed.body);
    assert!(!listed.body.contains("Acme Google"), "{}", listed.body);

    // A wrong password for the known and for an unknown address: the same page again.
    let a = b.login("known@example.test", "wrong-password-1A!").await;
    let c = b.login("nobody@example.test", "wrong-password-1A!").await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body
            .replace("known%40example.test", "X")
            .replace("known@example.test", "X"),
        c.body
            .replace("nobody%40example.test", "X")
            .replace("nobody@example.test", "X")
    );
}
