//! The whole upstream sign-in in a real browser (Chromium): a person opens a protected app,
//! types their work address at `/login`, is sent straight to their organization's provider (the
//! real `oidc-provider`, as Google), signs in and consents on the provider's own pages, comes
//! back through `/.gatehouse/sso/google/callback`, and the app receives who they are.

use crate::harness::*;
use crate::peers::browser::*;
use crate::peers::oidc::*;
use crate::upstream::Upstream;
use serde_json::Value;

const SECRET: &str = "gatehouse-upstream-secret-1";

#[test]
fn a_domain_organizations_member_signs_in_through_the_provider_in_chromium() {
    let app = Upstream::start();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/.gatehouse/sso/google/callback");
    let mut alice = account("alice-1", "alice@acme.test", "Alice Example");
    alice["hd"] = "acme.test".into();
    let peer = OidcPeer::start(
        &PeerConfig::new(PeerClient::new("gatehouse", SECRET, &redirect)).account("alice", alice),
    );
    let server = Server::start_with(Options {
        sections: format!(
            "{}\n[[identity_provider]]\nid = \"google\"\nkind = \"google\"\nname = \"Acme Google\"\n\
             client_id = \"gatehouse\"\nclient_secret = \"{SECRET}\"\nissuer = \"{}\"\n",
            crm_app(&app.url, "10s"),
            peer.issuer
        ),
        port: Some(port),
        ..Default::default()
    });
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
        "limited@crm",
    ]);

    let mut chromium = Chromium::start(true, &artifacts("sso"));

    // The app sends a stranger to the sign-in page, which asks for the email first.
    let shown = chromium.goto(&format!("{}/crm/reports?year=2026", server.base));
    assert_eq!(
        shown.url.split('?').next(),
        Some(format!("{}/login", server.base).as_str()),
        "{shown:?}"
    );
    assert_eq!(shown.status, Some(200));
    assert!(shown.html.contains("name=\"email\""), "{}", shown.html);
    assert!(!shown.html.contains("name=\"password\""), "{}", shown.html);
    assert!(app.seen().is_empty(), "nothing reached the app unsigned");

    // The work address goes straight to the provider, with it as login_hint.
    chromium.fill("#email", "alice@acme.test");
    let trail = chromium.click("button[type=submit]");
    let shown = chromium.state();
    assert!(
        shown
            .url
            .starts_with(&format!("{}/interaction/", peer.origin)),
        "the provider's own login page, not a password step: {shown:?}\ntrail: {trail:#?}"
    );
    assert!(
        trail
            .iter()
            .any(|u| u.starts_with(&format!("{}/.gatehouse/sso/google?", server.base))),
        "{trail:#?}"
    );
    let authorize = trail
        .iter()
        .find(|u| u.starts_with(&format!("{}/auth?", peer.issuer)))
        .unwrap_or_else(|| panic!("no authorization request on the way: {trail:#?}"));
    assert_eq!(
        query_param(authorize, "login_hint").as_deref(),
        Some("alice@acme.test")
    );
    assert_eq!(
        query_param(authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(shown.html.contains("id=\"login\""), "{}", shown.html);

    // The provider's login form, then its consent form.
    chromium.fill("#login input[name=account]", "alice");
    chromium.click("#login button");
    let shown = chromium.state();
    assert!(
        shown.html.contains("id=\"consent\""),
        "the provider asks for consent: {shown:?}"
    );

    let trail = chromium.click("#consent button");
    let shown = chromium.state();
    assert!(
        trail
            .iter()
            .any(|u| u.starts_with(&format!("{}/.gatehouse/sso/google/callback?", server.base))),
        "back through the callback: {trail:#?}\n{}",
        server.logs()
    );
    assert_eq!(
        shown.url,
        format!("{}/crm/reports?year=2026", server.base),
        "back at the page first asked for: {shown:?}\n{}",
        server.logs()
    );
    assert_eq!(shown.status, Some(200), "{shown:?}");

    // What the app received, as it received it.
    let seen = app.last("/crm/reports");
    assert_eq!(seen.path_and_query, "/crm/reports?year=2026");
    assert_eq!(seen.one("x-gatehouse-org").as_deref(), Some("acme"));
    assert_eq!(seen.one("x-gatehouse-roles").as_deref(), Some("limited"));
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("alice@acme.test")
    );
    assert!(seen.one("x-gatehouse-user").is_some(), "{seen:?}");
    // ... and what the browser shows is that request echoed.
    let echoed: Value = serde_json::from_str(shown.text.trim())
        .unwrap_or_else(|e| panic!("the app's JSON in the browser ({e}): {}", shown.text));
    assert_eq!(echoed["path"], "/crm/reports");
    assert!(
        echoed["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "x-gatehouse-org" && h[1] == "acme"),
        "{echoed}"
    );

    // The account was created on this first sign-in, as the organization's member.
    let shown: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "alice@acme.test",
    ]))
    .unwrap();
    assert!(shown.to_string().contains("acme"), "{shown}");
}
