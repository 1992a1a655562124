//! Upstream sign-in from the browser's (and an attacker's) side, against the test provider of
//! `idp.rs`: the happy path through the proxy, every forged or misdirected answer refused,
//! key rotation without a restart, the unknown-`kid` refresh limit, Microsoft's tenant rules,
//! and the refresh token sealed at rest.

use crate::harness::*;
use crate::idp::{Forge, Idp, Next};
use serde_json::{Value, json};

const WHOAMI: &str = r#"
[[app]]
id = "whoami"
host = "127.0.0.1:{PORT}"
path_prefix = "/whoami/"
upstream = "builtin:whoami"
allow_roles = ["limited"]
"#;

/// A provider `id` of `kind` on its own realm of `idp`; returns its TOML.
fn provider(idp: &Idp, id: &str, kind: &str, iss_parameter: bool) -> String {
    let url = idp.realm(id, None, iss_parameter);
    Idp::provider_toml(id, kind, &url)
}

fn start(sections: &str) -> Server {
    Server::start_with(Options {
        sections: format!("{sections}\n{WHOAMI}"),
        ..Default::default()
    })
}

/// Starts the flow at the gateway and lets the provider answer; returns the callback URL the
/// provider sent the browser to (not yet opened).
async fn to_callback(b: &mut Browser, provider: &str, rd: &str) -> String {
    let r = b
        .get(&format!("/.gatehouse/sso/{provider}?rd={}", urlencode(rd)))
        .await;
    assert_eq!(r.status, 303, "start: {}", r.body);
    let authorize = r.location();
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("gatehouse_sso=")
                && c.contains("HttpOnly")
                && c.contains("Path=/.gatehouse/sso/")
                && !c.to_ascii_lowercase().contains("domain=")),
        "browser binding cookie: {:?}",
        r.set_cookies()
    );
    // The provider is another site: the browser's gateway cookies do not go there.
    let at_idp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&authorize)
        .send()
        .await
        .unwrap();
    assert_eq!(at_idp.status(), 303, "provider's authorize: {authorize}");
    at_idp.headers()["location"].to_str().unwrap().to_string()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A full sign-in through `provider`; returns the callback's answer.
async fn sso(b: &mut Browser, provider: &str, rd: &str) -> Page {
    let callback = to_callback(b, provider, rd).await;
    b.get(&callback).await
}

fn google_claims(sub: &str, email: &str, hd: Option<&str>) -> Value {
    let mut c = json!({"sub": sub, "email": email, "email_verified": true, "name": "Pat Example"});
    if let Some(hd) = hd {
        c["hd"] = json!(hd);
    }
    c
}

/// The last `signin.sso` failure's reason in the audit trail.
fn last_sso_failure(server: &Server) -> String {
    let out = server.admin_ok(&["audit", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let events = v.as_array().cloned().unwrap_or_default();
    events
        .iter()
        .rev()
        .find(|e| e["action"] == "signin.sso" && e["outcome"] == "failure")
        .map(|e| e["details"]["reason"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no signin.sso failure in {out}"))
}

async fn assertion_of(b: &mut Browser, server: &Server) -> Value {
    let r = b.get_json("/whoami/").await;
    assert_eq!(r.status, 200, "whoami: {}", r.body);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    let jws = body["headers"]["x-gatehouse-assertion"]
        .as_str()
        .expect("assertion header")
        .to_string();
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_es256(&jws, &jwks).expect("assertion verifies")
}

#[tokio::test]
async fn an_invited_user_signs_in_with_google_links_and_reaches_the_app() {
    let idp = Idp::start();
    let server = start(&provider(&idp, "google", "google", false));
    let out = server.admin_ok(&[
        "invite",
        "--email",
        "pat@acme.test",
        "--role",
        "limited",
        "--provider",
        "google",
    ]);
    assert!(out.contains("/invite?token="), "{out}");
    assert!(out.contains("mailed to pat@acme.test"), "{out}");

    idp.next(Next::claims(google_claims(
        "g-123",
        "pat@acme.test",
        Some("acme.test"),
    )));
    let mut b = server.browser();
    let r = sso(&mut b, "google", "/whoami/").await;
    assert_eq!(r.status, 303, "callback: {}", r.body);
    assert_eq!(r.location(), "/whoami/");
    let claims = assertion_of(&mut b, &server).await;
    assert_eq!(claims["email"], "pat@acme.test");
    assert_eq!(claims["amr"], json!(["sso:google"]));
    // The browser-binding cookie is the gateway's: never passed to an app.
    b.cookies
        .insert("gatehouse_sso".into(), "a-binding-value".into());
    b.cookies.insert("app_cookie".into(), "kept".into());
    let seen = b.get_json("/whoami/").await.body;
    assert!(seen.contains("app_cookie=kept"), "{seen}");
    assert!(
        !seen.contains("a-binding-value"),
        "gatehouse_sso reached the app: {seen}"
    );

    // The PKCE challenge went upstream as S256; the provider checked the verifier.
    let req = idp.authorize_requests().pop().unwrap();
    assert_eq!(req["code_challenge_method"], "S256");
    assert_eq!(req["scope"], "openid email profile");

    let show: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "pat@acme.test",
    ]))
    .unwrap();
    assert_eq!(show["status"], "active");
    assert_eq!(show["upstream_identities"][0]["provider"], "google");
    assert_eq!(show["upstream_identities"][0]["subject"], "g-123");
    // The invitation is spent.
    assert!(server.admin_ok(&["invite", "list"]).contains("0 pending"));

    // Second sign-in, new browser: the link, not the (spent) invitation, lets them in.
    idp.next(Next::claims(google_claims(
        "g-123",
        "pat@acme.test",
        Some("acme.test"),
    )));
    let mut b2 = server.browser();
    let r = sso(&mut b2, "google", "/whoami/").await;
    assert_eq!(r.status, 303, "second sign-in: {}", r.body);
    assert_eq!(
        assertion_of(&mut b2, &server).await["email"],
        "pat@acme.test"
    );
}

#[tokio::test]
async fn google_without_workspace_domain_or_unverified_email_is_refused() {
    let idp = Idp::start();
    let server = start(&provider(&idp, "google", "google", false));
    server.admin_ok(&["invite", "--email", "pat@acme.test", "--provider", "google"]);
    // A consumer Google account registered with the company address: no `hd`.
    idp.next(Next::claims(google_claims("g-1", "pat@acme.test", None)));
    let mut b = server.browser();
    let r = sso(&mut b, "google", "/").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("no account here for this address"),
        "{}",
        r.body
    );
    assert_eq!(last_sso_failure(&server), "email_not_verified");
    // `hd` of another domain does not vouch for this address either.
    idp.next(Next::claims(google_claims(
        "g-1",
        "pat@acme.test",
        Some("evil.test"),
    )));
    assert_eq!(sso(&mut server.browser(), "google", "/").await.status, 403);
    // Unverified.
    let mut c = google_claims("g-1", "pat@acme.test", Some("acme.test"));
    c["email_verified"] = json!(false);
    idp.next(Next::claims(c));
    assert_eq!(sso(&mut server.browser(), "google", "/").await.status, 403);
    // None of this linked anything; the invitation is still pending.
    let show: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "pat@acme.test",
    ]))
    .unwrap();
    assert_eq!(show["upstream_identities"], json!([]));
    assert_eq!(show["status"], "invited");
    // A gmail address (no `hd`: Google hosts it) invited by name gets in.
    server.admin_ok(&[
        "invite",
        "--email",
        "sam@gmail.com",
        "--role",
        "limited",
        "--provider",
        "google",
    ]);
    idp.next(Next::claims(google_claims("g-2", "sam@gmail.com", None)));
    let r = sso(&mut server.browser(), "google", "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn no_silent_linking_by_address() {
    let idp = Idp::start();
    let sections = format!(
        "{}{}",
        provider(&idp, "google", "google", false),
        provider(&idp, "corp", "oidc", false)
    );
    let server = start(&sections);
    // An existing local account, no invitation: a provider vouching for the address is not enough.
    server.create_user("lee@acme.test", GOOD_PASSWORD, &["limited"]);
    idp.next(Next::claims(google_claims(
        "g-9",
        "lee@acme.test",
        Some("acme.test"),
    )));
    let r = sso(&mut server.browser(), "google", "/").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(last_sso_failure(&server), "no_account");
    // An invitation naming another provider does not let this one link.
    server.admin_ok(&["invite", "--email", "lee@acme.test", "--provider", "corp"]);
    idp.next(Next::claims(google_claims(
        "g-9",
        "lee@acme.test",
        Some("acme.test"),
    )));
    assert_eq!(sso(&mut server.browser(), "google", "/").await.status, 403);
    // The provider it names does.
    idp.next(Next::claims(
        json!({"sub": "c-1", "email": "lee@acme.test", "email_verified": true}),
    ));
    let r = sso(&mut server.browser(), "corp", "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Linked, but the provider no longer vouches for the address: refused (SPEC: always).
    idp.next(Next::claims(
        json!({"sub": "c-1", "email": "lee@acme.test", "email_verified": false}),
    ));
    assert_eq!(sso(&mut server.browser(), "corp", "/").await.status, 403);
    assert_eq!(last_sso_failure(&server), "email_not_verified");
    // A blocked user's linked identity is refused.
    server.admin_ok(&["user", "block", "--email", "lee@acme.test"]);
    idp.next(Next::claims(
        json!({"sub": "c-1", "email": "lee@acme.test", "email_verified": true}),
    ));
    assert_eq!(sso(&mut server.browser(), "corp", "/").await.status, 403);
    assert_eq!(last_sso_failure(&server), "status_blocked");
}

/// A server with an invited user on provider `corp` (generic OIDC); each attack is a fresh
/// browser whose sign-in must be refused with 400 and the given audit reason.
struct Bench {
    idp: Idp,
    server: Server,
}

impl Bench {
    fn new(iss_parameter: bool) -> Bench {
        let idp = Idp::start();
        let sections = format!(
            "{}{}",
            provider(&idp, "corp", "oidc", iss_parameter),
            provider(&idp, "other", "oidc", iss_parameter)
        );
        let server = start(&sections);
        server.admin_ok(&[
            "invite",
            "--email",
            "kim@acme.test",
            "--role",
            "limited",
            "--provider",
            "corp",
        ]);
        Bench { idp, server }
    }

    fn claims() -> Value {
        json!({"sub": "k-1", "email": "kim@acme.test", "email_verified": true, "name": "Kim"})
    }

    async fn refused(&self, next: Next, reason: &str) {
        self.idp.next(next);
        let r = sso(&mut self.server.browser(), "corp", "/").await;
        assert_eq!(r.status, 400, "{reason}: {}", r.body);
        assert!(
            !r.set_cookies()
                .iter()
                .any(|c| c.starts_with("gatehouse_session=")),
            "{reason}"
        );
        assert_eq!(last_sso_failure(&self.server), reason);
    }
}

#[tokio::test]
async fn forged_and_misaddressed_id_tokens_are_refused() {
    let t = Bench::new(false);
    t.refused(
        Next::claims(Bench::claims()).forge(Forge::TamperedPayload),
        "id_token_signature",
    )
    .await;
    t.refused(
        Next::claims(Bench::claims()).forge(Forge::AlgNone),
        "id_token_signature",
    )
    .await;
    t.refused(
        Next::claims(Bench::claims()).forge(Forge::Hs256PublicKey),
        "id_token_signature",
    )
    .await;
    t.refused(
        Next::claims(Bench::claims()).forge(Forge::UnpublishedKey("rogue".into())),
        "id_token_signature",
    )
    .await;
    let with = |k: &str, v: Value| {
        let mut c = Bench::claims();
        c[k] = v;
        Next::claims(c)
    };
    t.refused(
        with("iss", json!("http://127.0.0.1:1/evil")),
        "id_token_issuer",
    )
    .await;
    // The other realm of the same provider host is another issuer.
    t.refused(
        with("iss", json!(format!("{}/other", t.idp.base))),
        "id_token_issuer",
    )
    .await;
    t.refused(with("aud", json!("someone-else")), "id_token_audience")
        .await;
    t.refused(
        with("aud", json!([crate::idp::CLIENT_ID, "someone-else"])),
        "id_token_audience",
    )
    .await;
    t.refused(with("nonce", json!("not-the-nonce")), "id_token_nonce")
        .await;
    t.refused(with("nonce", Value::Null), "id_token_nonce")
        .await;
    let now = crate::idp::now();
    t.refused(with("exp", json!(now - 60)), "id_token_expired")
        .await;
    t.refused(with("iat", json!(now + 3600)), "id_token_iat")
        .await;
    t.refused(with("iat", json!(now - 7200)), "id_token_iat")
        .await;
    // After all that, an honest token still works: nothing was linked or spent by the attacks.
    t.idp.next(Next::claims(Bench::claims()));
    let r = sso(&mut t.server.browser(), "corp", "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn state_is_single_use_bound_to_the_browser_and_the_provider() {
    let t = Bench::new(false);
    // Replay: the same callback opened twice in the browser that started it.
    t.idp.next(Next::claims(Bench::claims()));
    let mut b = t.server.browser();
    let callback = to_callback(&mut b, "corp", "/").await;
    let mut replay = b.clone();
    assert_eq!(b.get(&callback).await.status, 303);
    let r = replay.get(&callback).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(last_sso_failure(&t.server), "state_unknown_or_used");

    // Another browser (login CSRF: the attacker's own callback link opened by a victim).
    t.idp.next(Next::claims(Bench::claims()));
    let mut attacker = t.server.browser();
    let callback = to_callback(&mut attacker, "corp", "/").await;
    let mut victim = t.server.browser();
    let r = victim.get(&callback).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(last_sso_failure(&t.server), "state_other_browser");
    // ...and spent: the attacker cannot use it afterwards either.
    assert_eq!(attacker.get(&callback).await.status, 400);

    // Mix-up: provider corp's answer delivered to provider other's callback.
    t.idp.next(Next::claims(Bench::claims()));
    let mut b = t.server.browser();
    let callback = to_callback(&mut b, "corp", "/").await;
    let moved = callback.replace(
        "/.gatehouse/sso/corp/callback",
        "/.gatehouse/sso/other/callback",
    );
    assert_ne!(moved, callback);
    let r = b.get(&moved).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(last_sso_failure(&t.server), "state_other_provider");

    // No state, a made-up state, a provider's error answer.
    let r = t
        .server
        .browser()
        .get("/.gatehouse/sso/corp/callback?code=x")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(last_sso_failure(&t.server), "state_missing");
    let mut b = t.server.browser();
    let callback = to_callback(&mut b, "corp", "/").await;
    let state = query_param(&callback, "state").unwrap();
    let r = b
        .get(&format!(
            "/.gatehouse/sso/corp/callback?error=access_denied&state={state}"
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(last_sso_failure(&t.server), "provider_error:access_denied");
    // Unknown provider.
    assert_eq!(
        t.server
            .browser()
            .get("/.gatehouse/sso/nope?rd=/")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn rfc9207_iss_is_checked_when_the_provider_announces_it() {
    let t = Bench::new(true);
    // Wrong `iss` in the authorization response (a mix-up attacker's provider).
    let mut next = Next::claims(Bench::claims());
    next.response_iss = Some("http://127.0.0.1:1/evil".into());
    t.refused(next, "iss_mismatch").await;
    // Missing `iss` although announced.
    t.idp.next(Next::claims(Bench::claims()));
    let mut b = t.server.browser();
    let callback = to_callback(&mut b, "corp", "/").await;
    let mut u = url::Url::parse(&callback).unwrap();
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    u.query_pairs_mut().clear().extend_pairs(kept);
    assert_eq!(b.get(u.as_str()).await.status, 400);
    assert_eq!(last_sso_failure(&t.server), "iss_missing");
    // The right one passes.
    t.idp.next(Next::claims(Bench::claims()));
    assert_eq!(sso(&mut t.server.browser(), "corp", "/").await.status, 303);
}

#[tokio::test]
async fn an_upstream_key_rotation_is_picked_up_without_a_restart() {
    let t = Bench::new(false);
    t.idp.next(Next::claims(Bench::claims()));
    assert_eq!(sso(&mut t.server.browser(), "corp", "/").await.status, 303);
    let before = t.idp.jwks_fetches();
    t.idp.rotate("key-2");
    t.idp.next(Next::claims(Bench::claims()));
    let r = sso(&mut t.server.browser(), "corp", "/").await;
    assert_eq!(r.status, 303, "after rotation: {}", r.body);
    assert_eq!(
        t.idp.jwks_fetches(),
        before + 1,
        "one refresh for the new kid"
    );
    // Known key again: no fetch.
    t.idp.next(Next::claims(Bench::claims()));
    assert_eq!(sso(&mut t.server.browser(), "corp", "/").await.status, 303);
    assert_eq!(t.idp.jwks_fetches(), before + 1);
}

#[tokio::test]
async fn a_flood_of_unknown_key_ids_refetches_the_keys_at_most_once() {
    let t = Bench::new(false);
    t.idp.next(Next::claims(Bench::claims()));
    assert_eq!(sso(&mut t.server.browser(), "corp", "/").await.status, 303);
    let before = t.idp.jwks_fetches();
    let discovery = t.idp.discovery_fetches();
    for i in 0..12 {
        t.idp
            .next(Next::claims(Bench::claims()).forge(Forge::UnpublishedKey(format!("rogue-{i}"))));
        assert_eq!(sso(&mut t.server.browser(), "corp", "/").await.status, 400);
    }
    let fetched = t.idp.jwks_fetches() - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 12 unknown kids");
    assert_eq!(
        t.idp.discovery_fetches(),
        discovery,
        "no discovery per sign-in"
    );
}

#[tokio::test]
async fn the_refresh_token_is_kept_sealed_with_the_session() {
    let t = Bench::new(false);
    let refresh = "upstream-refresh-token-in-clear-7f3a";
    let mut next = Next::claims(Bench::claims());
    next.refresh_token = Some(refresh.into());
    t.idp.next(next);
    assert_eq!(sso(&mut t.server.browser(), "corp", "/").await.status, 303);
    let rows = query_strings(
        &t.server,
        "SELECT upstream_provider || ' ' || upstream_refresh_token FROM sessions WHERE upstream_refresh_token IS NOT NULL",
    )
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("corp v1."), "{rows:?}");
    assert!(
        !rows[0].contains(refresh),
        "refresh token stored in clear: {rows:?}"
    );
    // Nor anywhere else in the database's text columns that hold sessions or audit.
    let audit = query_strings(&t.server, "SELECT details FROM audit_events").await;
    assert!(audit.iter().all(|d| !d.contains(refresh)));
}

#[tokio::test]
async fn the_token_endpoint_authentication_follows_discovery() {
    let idp = Idp::start();
    let url = idp.realm("corp", None, false);
    idp.set_auth_methods("corp", &["client_secret_post"]);
    let server = start(&Idp::provider_toml("corp", "oidc", &url));
    server.admin_ok(&[
        "invite",
        "--email",
        "kim@acme.test",
        "--role",
        "limited",
        "--provider",
        "corp",
    ]);
    // The name comes from userinfo when the token lacks it.
    let mut next =
        Next::claims(json!({"sub": "k-1", "email": "kim@acme.test", "email_verified": true}));
    next.userinfo = Some(json!({"name": "Kim From Userinfo"}));
    idp.next(next);
    let mut b = server.browser();
    let r = sso(&mut b, "corp", "/whoami/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let claims = assertion_of(&mut b, &server).await;
    assert_eq!(claims["amr"], json!(["sso:corp"]));
}

#[tokio::test]
async fn an_app_host_start_goes_through_the_public_host_and_comes_back() {
    let idp = Idp::start();
    let sections = format!(
        "{}\n[[app]]\nid = \"crm\"\nhost = \"crm.test:{{PORT}}\"\nupstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n",
        provider(&idp, "corp", "oidc", false)
    );
    let server = start(&sections);
    server.admin_ok(&[
        "invite",
        "--email",
        "kim@acme.test",
        "--role",
        "limited",
        "--provider",
        "corp",
    ]);
    let mut app = Browser::for_host(&server, "crm.test");
    let r = app.get("/.gatehouse/sso/corp?rd=/orders?x=1").await;
    assert_eq!(r.status, 303);
    let to = r.location();
    let expected_rd = format!("http://crm.test:{}/orders?x=1", server.port);
    assert!(
        to.starts_with(&format!("{}/.gatehouse/sso/corp?rd=", server.base)),
        "{to}"
    );
    assert_eq!(
        query_param(&to, "rd").as_deref(),
        Some(expected_rd.as_str())
    );
    // At the public host: provider, callback, then the handoff to the app host.
    idp.next(Next::claims(Bench::claims()));
    let mut gw = server.browser();
    let r = sso(&mut gw, "corp", &expected_rd).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = follow_handoff(&mut gw, &mut app, r.location()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/orders?x=1");
    let page = app.get("/orders?x=1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("kim@acme.test"));
    // The provider's callback is only ever the public host's.
    let req = idp.authorize_requests().pop().unwrap();
    assert_eq!(
        req["redirect_uri"],
        format!("{}/.gatehouse/sso/corp/callback", server.base)
    );
}

#[tokio::test]
async fn a_user_with_totp_gives_a_code_after_sso() {
    let t = Bench::new(false);
    // An admin must enrol TOTP: after SSO the session is at enrolment, not active.
    t.server
        .admin_ok(&["grant", "--user", "kim@acme.test", "--role", "admin"]);
    t.idp.next(Next::claims(Bench::claims()));
    let mut b = t.server.browser();
    let r = sso(&mut b, "corp", "/whoami/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/mfa/enroll"), "{}", r.location());
    let r2 = b.get("/whoami/").await;
    assert_eq!(r2.status, 302, "no app before enrolment: {}", r2.body);
    assert!(r2.location().contains("/login"), "{}", r2.location());
    let page = b.get(&r.location()).await;
    let secret = enrolment_secret(&page.body);
    let r = b
        .submit(&r.location(), &[("code", &totp_code(&secret))])
        .await;
    assert_eq!(r.status, 200, "enrolment: {}", r.body);
    // Next SSO sign-in: the code is asked for.
    t.idp.next(Next::claims(Bench::claims()));
    let mut b = t.server.browser();
    let r = sso(&mut b, "corp", "/").await;
    assert!(r.location().starts_with("/login/mfa"), "{}", r.location());
}

/// Text rows of a query against the server's own database (SQLite or PostgreSQL).
pub async fn query_strings(server: &Server, sql: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.db.url).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter().map(|r| r.0).collect()
}

#[tokio::test]
async fn invitations_on_the_cli_are_checked_listed_and_revoked() {
    let idp = Idp::start();
    let server = start(&provider(&idp, "corp", "oidc", false));
    let refused = |args: &[&str], says: &str| {
        let out = server.admin(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(
        &["invite", "--email", "a@acme.test", "--provider", "nope"],
        "--provider",
    );
    refused(
        &["invite", "--email", "a@acme.test", "--role", "no-such-role"],
        "no-such-role",
    );
    refused(
        &[
            "invite",
            "--email",
            "a@acme.test",
            "--role",
            "limited@no-such-app",
        ],
        "no-such-app",
    );
    refused(&["invite", "--email", "not-an-address"], "--email");
    refused(&["invite"], "--email");
    // Nothing was created by the refusals.
    assert!(!server.admin_ok(&["user", "list"]).contains("a@acme.test"));

    let first = server.admin_ok(&[
        "--json",
        "invite",
        "--email",
        "a@acme.test",
        "--provider",
        "corp",
    ]);
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["mailed"], true);
    assert_eq!(
        first["delivered"], true,
        "the development outbox takes it: {first}"
    );
    let second = server.admin_ok(&[
        "--json",
        "invite",
        "--email",
        "A@acme.test ",
        "--role",
        "limited",
        "--provider",
        "corp",
    ]);
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(first["user_id"], second["user_id"], "the user is reused");
    assert_ne!(first["link"], second["link"]);
    // Only the hash of the link's token is stored.
    let token = query_param(second["link"].as_str().unwrap(), "token").unwrap();
    let stored = query_strings(&server, "SELECT token_hash FROM invitations").await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|h| !h.contains(&token)));
    let list = server.admin_ok(&["invite", "list"]);
    assert!(
        list.contains("a@acme.test") && list.contains("1 pending"),
        "{list}"
    );
    let show: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "a@acme.test",
    ]))
    .unwrap();
    assert_eq!(show["status"], "invited");
    assert_eq!(show["roles"][0]["role"], "limited");

    server.admin_ok(&["invite", "revoke", "--email", "a@acme.test"]);
    assert!(server.admin_ok(&["invite", "list"]).contains("0 pending"));
    refused(
        &["invite", "revoke", "--email", "a@acme.test"],
        "no pending invitation",
    );
    // A revoked invitation links nothing.
    idp.next(Next::claims(
        json!({"sub": "a-1", "email": "a@acme.test", "email_verified": true}),
    ));
    assert_eq!(sso(&mut server.browser(), "corp", "/").await.status, 403);
    let audit = server.admin_ok(&["audit", "--format", "json"]);
    assert!(audit.contains("invitation.create") && audit.contains("invitation.revoke"));
    assert!(
        !audit.contains(&token),
        "the link's token reached the audit trail"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_502_page_with_the_cause_only_in_the_log() {
    let closed = free_port();
    let server = start(&Idp::provider_toml(
        "corp",
        "oidc",
        &format!("http://127.0.0.1:{closed}/realm"),
    ));
    let r = server.browser().get("/.gatehouse/sso/corp?rd=/").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("did not answer properly"), "{}", r.body);
    assert!(
        !r.body.contains(&closed.to_string()),
        "the cause reached the page: {}",
        r.body
    );
    let logs = server.logs();
    assert!(
        logs.contains(&format!("127.0.0.1:{closed}")),
        "the cause is logged"
    );
    assert!(
        !logs.contains(crate::idp::CLIENT_SECRET),
        "the client secret reached the log"
    );
}

/// Attack: one address starts upstream sign-ins in a loop (each leaves a pending request in the
/// database): past `[lockout] ip_max_sso_starts` per window it gets `429` with `Retry-After`,
/// and no more requests are stored; another address is not concerned.
#[tokio::test]
async fn one_address_cannot_start_sign_ins_without_end() {
    let idp = Idp::start();
    let server = start(&format!(
        "[lockout]\nip_max_sso_starts = 3\n{}",
        provider(&idp, "corp", "oidc", false)
    ));
    for _ in 0..3 {
        let r = server.browser().get("/.gatehouse/sso/corp?rd=%2F").await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/.gatehouse/sso/corp?rd=%2F", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0);
    // The log line arrives through the server's output pipe: wait for it (up to 5 s).
    let logged = || {
        server
            .logs()
            .contains("too many upstream sign-ins started from one address")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !logged() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(logged());
}
