//! Local sign-in from a browser's (and an attacker's) side.

use crate::harness::*;
use serde_json::Value;

/// Signs `email` in with password and, when the account has TOTP, the current code.
async fn sign_in(server: &Server, email: &str, password: &str, secret: Option<&str>) -> Browser {
    let mut b = server.browser();
    let r = b.login(email, password).await;
    assert_eq!(r.status, 303, "password step: {}", r.body);
    if let Some(secret) = secret {
        assert!(r.location().starts_with("/login/mfa"), "{}", r.location());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // The current step may already be spent by an earlier sign-in: the next one is valid too.
        let mut ok = false;
        for t in [now, now + 30] {
            let r = b
                .submit("/login/mfa", &[("code", &totp_code_at(secret, t))])
                .await;
            if r.status == 303 {
                ok = true;
                break;
            }
        }
        assert!(ok, "no TOTP code accepted");
    }
    b
}

/// Enrols TOTP for a browser that is at (or may visit) the enrolment page; returns the secret
/// and the recovery codes.
async fn enrol(b: &mut Browser) -> (String, Vec<String>) {
    let page = b.get("/mfa/enroll").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.replace("&#x2f;", "/").contains("otpauth://totp/"),
        "no otpauth URI"
    );
    assert!(page.body.contains("<svg"), "no QR code");
    let secret = enrolment_secret(&page.body);
    // Shown to people in groups of four, which authenticator apps accept as typed.
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(
        page.body
            .contains(&format!("<code class=\"key\">{}</code>", grouped.join(" "))),
        "key not grouped in fours: {}",
        page.body
    );
    let r = b
        .post(
            "/mfa/enroll",
            &[("csrf", &page.csrf()), ("code", &totp_code(&secret))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let codes = recovery_codes(&r.body);
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[tokio::test]
async fn first_run_setup_link_creates_an_admin_who_signs_in_with_password_and_totp() {
    let server = Server::start();
    let link = server.setup_link();
    assert!(
        link.starts_with(&format!("{}/setup?token=", server.base)),
        "{link}"
    );
    let mut b = server.browser();
    let page = b.get(&link).await;
    assert_eq!(page.status, 200);
    let token = field_value(&page.body, "token").unwrap();
    let r = b
        .post(
            "/setup",
            &[
                ("csrf", &page.csrf()),
                ("token", &token),
                ("email", "root@example.com"),
                ("name", "Root"),
                ("new_password", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/mfa/enroll");
    // Not usable before the second factor is set up.
    assert_eq!(b.get("/").await.status, 303);
    let (secret, _) = enrol(&mut b).await;
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("root@example.com") && home.body.contains("admin"));

    // The link is single-use.
    let again = server.browser().get(&link).await;
    assert_eq!(again.status, 404);

    // A fresh browser: password alone is not enough; password + TOTP is.
    let mut fresh = server.browser();
    let r = fresh.login("root@example.com", GOOD_PASSWORD).await;
    assert_eq!(r.location(), "/login/mfa");
    assert_eq!(
        fresh.get("/").await.status,
        303,
        "half signed-in session must not be active"
    );
    drop(fresh);
    let mut b2 = sign_in(&server, "ROOT@example.com ", GOOD_PASSWORD, Some(&secret)).await;
    let home = b2.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("root@example.com"));
}

#[tokio::test]
async fn session_id_changes_at_sign_in_and_at_mfa_completion() {
    let server = Server::start();
    server.create_user("carol@example.com", GOOD_PASSWORD, &["admin"]);
    let mut b = server.browser();
    b.cookies.insert(
        "gatehouse_session".into(),
        "attacker-chosen-fixed-value-xxxxxxxxxxxxxxx".into(),
    );
    let r = b.login("carol@example.com", GOOD_PASSWORD).await;
    let first = b.cookies["gatehouse_session"].clone();
    assert_ne!(first, "attacker-chosen-fixed-value-xxxxxxxxxxxxxxx");
    assert_eq!(
        r.location(),
        "/mfa/enroll",
        "admin role requires MFA enrolment"
    );
    enrol(&mut b).await;
    assert_ne!(b.cookies["gatehouse_session"], first, "new id after MFA");
    // The pre-MFA cookie is dead.
    let mut old = server.browser();
    old.cookies.insert("gatehouse_session".into(), first);
    assert_eq!(old.get("/").await.status, 303);
}

#[tokio::test]
async fn totp_codes_work_once_and_recovery_codes_work_once() {
    let server = Server::start();
    server.create_user("dave@example.com", GOOD_PASSWORD, &["admin"]);
    let mut b = server.browser();
    b.login("dave@example.com", GOOD_PASSWORD).await;
    let (secret, codes) = enrol(&mut b).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Sign in with the next step's code, then replay that same code in another sign-in.
    let next = totp_code_at(&secret, now + 30);
    let mut b1 = server.browser();
    b1.login("dave@example.com", GOOD_PASSWORD).await;
    let r = b1.submit("/login/mfa", &[("code", &next)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut b2 = server.browser();
    b2.login("dave@example.com", GOOD_PASSWORD).await;
    let r = b2.submit("/login/mfa", &[("code", &next)]).await;
    assert_eq!(r.status, 401, "a TOTP code must not be accepted twice");

    // A recovery code works once (typed in upper case with spaces).
    let typed = codes[3].to_uppercase().replace('-', " ");
    let r = b2.submit("/login/mfa", &[("code", &typed)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b2.get("/").await.status, 200);
    let mut b3 = server.browser();
    b3.login("dave@example.com", GOOD_PASSWORD).await;
    let r = b3.submit("/login/mfa", &[("code", &codes[3])]).await;
    assert_eq!(r.status, 401, "a recovery code must not work twice");
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_until_unlock() {
    let server = Server::start();
    server.create_user("erin@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    for i in 0..5 {
        let r = b
            .login("erin@example.com", &format!("Wrong-password-{i}"))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = b.login("erin@example.com", GOOD_PASSWORD).await;
    assert_eq!(r.status, 401, "the right password is refused while locked");
    let shown: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "erin@example.com",
    ]))
    .unwrap();
    assert_eq!(shown["status"], "locked");
    server.admin_ok(&["user", "unlock", "--email", "erin@example.com"]);
    let r = b.login("erin@example.com", GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let audit = server.admin_ok(&["audit", "--email", "erin@example.com", "--format", "json"]);
    let events: Vec<Value> = serde_json::from_str(&audit).unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"lockout"), "{actions:?}");
    assert!(actions.contains(&"user.unlock"), "{actions:?}");
    assert!(actions.contains(&"signin"), "{actions:?}");
}

#[tokio::test]
async fn parallel_wrong_attempts_never_exceed_the_limit() {
    let server = Server::start();
    server.create_user("frank@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    let csrf = b.get("/login").await.csrf();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let b = b.clone();
        let csrf = csrf.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = b;
            b.post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", "Frank@Example.com"),
                    ("password", &format!("Guess-{i}-xyz")),
                ],
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    let events: Vec<Value> = serde_json::from_str(&server.admin_ok(&[
        "audit",
        "--email",
        "frank@example.com",
        "--format",
        "json",
    ]))
    .unwrap();
    let checked = events
        .iter()
        .filter(|e| e["action"] == "signin" && e["details"]["reason"] == "bad_password")
        .count();
    assert_eq!(checked, 5, "exactly max_failures passwords may be checked");
    let locked = events
        .iter()
        .filter(|e| e["details"]["reason"] == "locked")
        .count();
    assert_eq!(locked, 45);
    assert_eq!(
        events.iter().filter(|e| e["action"] == "lockout").count(),
        1
    );
    assert_eq!(
        b.login("frank@example.com", GOOD_PASSWORD).await.status,
        401
    );
}

#[tokio::test]
async fn unknown_account_wrong_password_and_locked_account_look_the_same() {
    let server = Server::start();
    server.create_user("grace@example.com", GOOD_PASSWORD, &[]);
    server.create_user("heidi@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    for _ in 0..5 {
        b.login("heidi@example.com", "Not-her-password-1").await;
    }
    let unknown = b.login("nobody@example.com", "Whatever-123").await;
    let wrong = b.login("grace@example.com", "Whatever-123").await;
    let locked = b.login("heidi@example.com", GOOD_PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(locked.status, unknown.status);
    // The page keeps the address the person typed; apart from it, byte for byte the same.
    let unknown_body = unknown.body.replace("nobody@example.com", "ADDRESS");
    assert_eq!(
        wrong.body.replace("grace@example.com", "ADDRESS"),
        unknown_body,
        "wrong password vs unknown account"
    );
    assert_eq!(
        locked.body.replace("heidi@example.com", "ADDRESS"),
        unknown_body,
        "locked account vs unknown account"
    );
    assert!(
        unknown.body.contains("value=\"nobody@example.com\""),
        "the address is kept"
    );
    assert_eq!(unknown.set_cookies(), wrong.set_cookies());
    assert_eq!(unknown.set_cookies(), locked.set_cookies());
}

#[tokio::test]
async fn posts_without_a_valid_csrf_token_are_refused() {
    let server = Server::start();
    server.create_user("ivan@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    b.get("/login").await;
    let none = b
        .post(
            "/login",
            &[("email", "ivan@example.com"), ("password", GOOD_PASSWORD)],
        )
        .await;
    assert_eq!(none.status, 403);
    let forged = b
        .post(
            "/login",
            &[
                ("csrf", "forged"),
                ("email", "ivan@example.com"),
                ("password", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    // A token minted for another browser's cookie does not fit this one.
    let mut other = server.browser();
    let foreign = other.get("/login").await.csrf();
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &foreign),
                ("email", "ivan@example.com"),
                ("password", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!b.cookies.contains_key("gatehouse_session"));
    // Logout needs the token too.
    let mut signed = sign_in(&server, "ivan@example.com", GOOD_PASSWORD, None).await;
    assert_eq!(signed.post("/logout", &[]).await.status, 403);
    assert_eq!(signed.get("/").await.status, 200, "still signed in");
}

/// Every form handler takes `auth::CsrfForm`: a forged token is refused (403) before the
/// handler runs, whatever the endpoint and whether or not anyone is signed in.
#[tokio::test]
async fn every_form_endpoint_refuses_a_forged_csrf_token() {
    let server = Server::start();
    server.create_user("judy@example.com", GOOD_PASSWORD, &[]);
    let mut anonymous = server.browser();
    anonymous.get("/login").await;
    let mut signed = sign_in(&server, "judy@example.com", GOOD_PASSWORD, None).await;
    for b in [&mut anonymous, &mut signed] {
        for path in [
            "/login",
            "/login/mfa",
            "/logout",
            "/mfa/enroll",
            "/password/change",
            "/setup",
            "/.gatehouse/logout",
        ] {
            let r = b.post(path, &[("csrf", "forged")]).await;
            assert_eq!(r.status, 403, "POST {path}: {}", r.body);
        }
    }
    assert_eq!(signed.get("/").await.status, 200, "still signed in");
}

#[tokio::test]
async fn session_cookie_flags_and_admin_revocation() {
    let server = Server::start();
    server.create_user("judy@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    let r = b.login("judy@example.com", GOOD_PASSWORD).await;
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http public URL: {cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    assert!(value.len() >= 43, "256-bit id");
    assert_eq!(b.get("/").await.status, 200);

    let listed: Vec<Value> = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "session",
        "list",
        "--email",
        "judy@example.com",
    ]))
    .unwrap();
    assert_eq!(listed.len(), 1);
    server.admin_ok(&["session", "revoke", "--email", "judy@example.com"]);
    let r = b.get("/").await;
    assert_eq!(
        r.status, 303,
        "the next request after revocation is signed out"
    );
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn https_public_url_uses_host_prefixed_secure_cookies() {
    let server = Server::start_with(Options {
        env: vec![(
            "GATEHOUSE_SERVER__PUBLIC_URL".into(),
            "https://login.example.test".into(),
        )],
        ..Default::default()
    });
    server.create_user("kim@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    let page = b.get("/login").await;
    let csrf_cookie = page.set_cookies().join("\n");
    assert!(
        csrf_cookie.contains("__Host-gatehouse_csrf=") && csrf_cookie.contains("Secure"),
        "{csrf_cookie}"
    );
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &page.csrf()),
                ("email", "kim@example.com"),
                ("password", GOOD_PASSWORD),
            ],
        )
        .await;
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-gatehouse_session="))
        .unwrap_or_else(|| panic!("{:?}", r.set_cookies()));
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"));
    assert!(
        !cookie.contains("Domain="),
        "__Host- cookies carry no Domain"
    );
}

#[tokio::test]
async fn temporary_password_must_be_changed_at_next_sign_in() {
    let server = Server::start();
    server.create_user("leo@example.com", GOOD_PASSWORD, &[]);
    let out: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "set-temp-password",
        "--email",
        "leo@example.com",
    ]))
    .unwrap();
    let temp = out["temporary_password"].as_str().unwrap().to_string();
    let mut b = server.browser();
    assert_eq!(
        b.login("leo@example.com", GOOD_PASSWORD).await.status,
        401,
        "old password is gone"
    );
    let r = b.login("leo@example.com", &temp).await;
    assert_eq!(r.location(), "/password/change");
    assert_eq!(b.get("/").await.status, 303, "not active before the change");
    let weak = b
        .submit("/password/change", &[("new_password", "short")])
        .await;
    assert_eq!(weak.status, 422);
    for rule in ["12 characters", "uppercase", "digit"] {
        assert!(weak.body.contains(rule), "{rule} missing in {}", weak.body);
    }
    let common = b
        .submit("/password/change", &[("new_password", "Password1234")])
        .await;
    assert_eq!(common.status, 422);
    assert!(common.body.contains("common"), "{}", common.body);
    // The page asks twice; two different entries change nothing.
    let page = b.get("/password/change").await;
    assert!(
        page.body.contains("name=\"new_password_confirm\""),
        "{}",
        page.body
    );
    let typo = b
        .submit(
            "/password/change",
            &[
                ("new_password", "Another-Good-Pass-42"),
                ("new_password_confirm", "Another-Good-Pass-24"),
            ],
        )
        .await;
    assert_eq!(typo.status, 422);
    assert!(typo.body.contains("not the same"), "{}", typo.body);
    assert_eq!(b.get("/").await.status, 303, "still not changed");
    let r = b
        .submit(
            "/password/change",
            &[
                ("new_password", "Another-Good-Pass-42"),
                ("new_password_confirm", "Another-Good-Pass-42"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get("/").await.status, 200);
    assert_eq!(
        server
            .browser()
            .login("leo@example.com", "Another-Good-Pass-42")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let secret_key = "c2VjcmV0LW1hc3Rlci1rZXktdmFsdWUtZm9yLWxvZy10ZXN0";
    let server = Server::start_with(Options {
        env: vec![("GATEHOUSE_TEST_MASTER_KEY".into(), secret_key.into())],
        ..Default::default()
    });
    let typed_password = "Typed-Secret-Password-77";
    server.create_user("mia@example.com", typed_password, &[]);
    let mut b = server.browser();
    b.login("mia@example.com", "Wrong-But-Secret-99").await;
    b.login("mia@example.com", typed_password).await;
    let cookie = b.cookies.get("gatehouse_session").cloned().unwrap();
    b.get("/").await;
    let logs = server.stop();
    assert!(logs.contains("gatehouse listening"), "logs were captured");
    for secret in [
        secret_key,
        typed_password,
        "Wrong-But-Secret-99",
        cookie.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

/// A form the gateway cannot read (here: a JSON body posted to the sign-in form) gets the
/// gateway's own `400` page, never the form decoder's text (which names its internals).
#[tokio::test]
async fn unreadable_forms_get_the_gateways_own_400() {
    let server = Server::start();
    let r = reqwest::Client::new()
        .post(format!("{}/login", server.base))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("The form could not be read"), "{body}");
    for leak in ["Content-Type", "urlencoded", "deserialize", "Form requests"] {
        assert!(
            !body.contains(leak),
            "decoder text {leak:?} reached the client: {body}"
        );
    }
}
