//! Invitations and activation, end to end: saving an email organization mails every listed
//! person without an account an activation link (through a real SMTP server, `aiosmtpd`), the
//! link leads to `/invite` where they set a password meeting the policy (or continue with a
//! provider their organization allows, here the real `oidc-provider` peer), the link works
//! once — also against racing submissions — and opening it signed in as someone else changes
//! nothing.

use crate::harness::*;
use crate::peers::oidc::*;
use crate::smtp_peer::SmtpPeer;
use serde_json::Value;
use std::time::Duration;

const SECRET: &str = "gatehouse-upstream-secret-1";

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";

/// A message's text with quoted-printable soft line breaks and `=3D` undone.
fn decoded(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The message to `to` among `messages`.
fn message_to<'a>(messages: &'a [String], to: &str) -> Option<&'a String> {
    messages
        .iter()
        .find(|m| m.lines().any(|l| l.trim() == format!("To: {to}")))
}

/// The `/invite?token=…` path in a message.
fn invite_path(message: &str) -> String {
    let text = decoded(message);
    let at = text
        .find("/invite?token=")
        .unwrap_or_else(|| panic!("no link in: {text}"));
    let token: String = text[at + "/invite?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{text}");
    format!("/invite?token={token}")
}

fn token_of(path: &str) -> String {
    path.trim_start_matches("/invite?token=").to_string()
}

/// Every `.eml` file of the development outbox `dir`.
fn outbox(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(std::fs::read_to_string(e.path()).unwrap());
        }
    }
    out
}

fn wait_outbox(dir: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = outbox(dir);
        if m.len() >= n || std::time::Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn submit_password(b: &mut Browser, path: &str, password: &str, again: &str) -> Page {
    let page = b.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    b.post(
        "/invite",
        &[
            ("csrf", &csrf),
            ("token", &token_of(path)),
            ("new_password", password),
            ("new_password_confirm", again),
        ],
    )
    .await
}

fn org_create(server: &Server, members: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "org",
        "create",
        "--slug",
        "partner",
        "--name",
        "Partner Ltd",
        "--email",
        "office@partner.test",
        "--access-by",
        "email",
        "--role",
        "limited@whoami",
    ];
    for m in members {
        args.push("--member");
        args.push(m);
    }
    serde_json::from_str(&server.admin_ok(&args)).unwrap()
}

#[tokio::test]
async fn listed_people_get_an_activation_mail_and_set_a_password_that_meets_the_policy() {
    let smtp_port = free_port();
    let maildir = TempDir::new();
    let smtp = SmtpPeer::start(smtp_port, &maildir.path("maildir"));
    let server = Server::start_with(Options {
        sections: format!(
            "{WHOAMI}\n[mail]\nsmtp_url = \"smtp://127.0.0.1:{smtp_port}\"\n\
             from = \"Gatehouse <gate@example.test>\"\nretry_after = \"1s\"\n"
        ),
        ..Default::default()
    });
    let saved = org_create(&server, &["alice@partner.test", "Bob@Partner.test"]);
    assert_eq!(saved["effects"]["activations_sent"], 2, "{saved}");
    let mails = smtp.wait_for(2, Duration::from_secs(30));
    assert_eq!(mails.len(), 2, "{mails:?}\n{}", server.logs());
    let alice_mail = message_to(&mails, "alice@partner.test").expect("alice's mail");
    assert!(
        message_to(&mails, "bob@partner.test").is_some(),
        "{mails:?}"
    );
    assert!(alice_mail.contains("Subject: Activate your access to Partner Ltd"));
    assert!(decoded(alice_mail).contains(&format!("{}/invite?token=", server.base)));
    // Only the link's hash is stored; the listed people are `invited` until they act.
    let shown = server.admin_ok(&["--json", "user", "show", "--email", "alice@partner.test"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "invited", "{shown}");
    let path = invite_path(alice_mail);

    // Before activation there is no password to sign in with.
    let mut b = server.browser();
    assert_eq!(
        b.login("alice@partner.test", GOOD_PASSWORD).await.status,
        401
    );

    let mut b = server.browser();
    let page = b.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("alice@partner.test"), "{}", page.body);
    assert!(page.body.contains("name=\"new_password_confirm\""));
    // Typed twice, differently: refused, nothing spent.
    let r = submit_password(&mut b, &path, GOOD_PASSWORD, "Something-Else-42").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("not the same"), "{}", r.body);
    // Below the policy: refused with the rule, nothing spent.
    let r = submit_password(&mut b, &path, "short", "short").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("characters"), "{}", r.body);
    // Meets the policy: the person is signed in and reaches the app as the organization's.
    let r = submit_password(&mut b, &path, GOOD_PASSWORD, GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let who = b.get_json("/whoami/").await;
    assert_eq!(who.status, 200, "{}", who.body);
    let who: Value = serde_json::from_str(&who.body).unwrap();
    assert_eq!(who["headers"]["x-gatehouse-org"], "partner", "{who}");
    assert_eq!(who["headers"]["x-gatehouse-email"], "alice@partner.test");

    // The link is spent: another browser, or a second submission, gets "no longer valid".
    let mut other = server.browser();
    let again = other.get(&path).await;
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.body.contains("no longer valid"), "{}", again.body);
    let csrf = other.get("/login").await.csrf();
    let r = other
        .post(
            "/invite",
            &[
                ("csrf", &csrf),
                ("token", &token_of(&path)),
                ("new_password", "Another-Password-77"),
                ("new_password_confirm", "Another-Password-77"),
            ],
        )
        .await;
    assert_eq!(r.status, 410, "{}", r.body);

    // From now on the local password signs in (the one set through the link, not the other).
    let mut b = server.browser();
    assert_eq!(
        b.login("alice@partner.test", "Another-Password-77")
            .await
            .status,
        401
    );
    let mut b = server.browser();
    assert_eq!(
        b.login("alice@partner.test", GOOD_PASSWORD).await.status,
        303
    );
    // Someone of the same domain who is not listed has nothing to sign in with.
    let mut b = server.browser();
    assert_eq!(
        b.login("carol@partner.test", GOOD_PASSWORD).await.status,
        401
    );

    // Listed later: one more mail. Taken off the list before using it: the link dies.
    server.admin_ok(&[
        "org",
        "add-member",
        "--slug",
        "partner",
        "--email",
        "dan@partner.test",
    ]);
    let mails = smtp.wait_for(3, Duration::from_secs(30));
    let dan_path = invite_path(message_to(&mails, "dan@partner.test").expect("dan's mail"));
    let out = server.admin_ok(&[
        "org",
        "remove-member",
        "--slug",
        "partner",
        "--email",
        "dan@partner.test",
    ]);
    assert!(
        out.contains("1 pending activation link(s) withdrawn"),
        "{out}"
    );
    assert_eq!(server.browser().get(&dan_path).await.status, 410);

    // Saving the organization again sends nothing to people who have an account already.
    let out = server.admin_ok(&[
        "--json",
        "org",
        "update",
        "--slug",
        "partner",
        "--name",
        "Partner Group",
    ]);
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["effects"]["activations_sent"], 0, "{out}");
    let audit = server.admin_ok(&["audit", "--format", "json"]);
    assert!(audit.contains("invitation.accept"), "{audit}");
    assert!(
        audit.contains("link_not_valid"),
        "the spent link's reuse is audited: {audit}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 3);
}

#[tokio::test]
async fn a_link_works_once_against_racing_submissions_and_not_for_someone_else_signed_in() {
    let server = Server::start_with(Options {
        sections: format!("{WHOAMI}\n[mail]\noutbox_dir = \"outbox\"\n"),
        ..Default::default()
    });
    let out = server.admin_ok(&[
        "--json",
        "invite",
        "--email",
        "newbie@example.test",
        "--role",
        "limited@whoami",
    ]);
    let inv: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inv["mailed"], true, "{inv}");
    assert_eq!(inv["delivered"], true, "the outbox takes it at once: {inv}");
    let link = inv["link"].as_str().unwrap();
    let path = link.trim_start_matches(&server.base).to_string();
    let files = wait_outbox(&server.dir.path("outbox"), 1);
    assert_eq!(files.len(), 1);
    assert_eq!(
        invite_path(&files[0]),
        path,
        "the mail carries the printed link"
    );

    // Signed in as someone else: "sign out first", and nothing changes.
    let mut pat = signed_in(&server, "pat@example.test", &["limited@whoami"]).await;
    let r = pat.get(&path).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("Sign out first") && r.body.contains("pat@example.test"));
    let csrf = r.csrf();
    let r = pat
        .post(
            "/invite",
            &[
                ("csrf", &csrf),
                ("token", &token_of(&path)),
                ("new_password", GOOD_PASSWORD),
                ("new_password_confirm", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        pat.get_json("/whoami/").await.status,
        200,
        "pat is still pat"
    );
    let shown = server.admin_ok(&["--json", "user", "show", "--email", "newbie@example.test"]);
    assert!(shown.contains("\"invited\""), "{shown}");

    // Two browsers submit the same link at once: exactly one account comes out of it.
    let mut one = server.browser();
    let mut two = server.browser();
    let (c1, c2) = (one.get(&path).await.csrf(), two.get(&path).await.csrf());
    let form = |csrf: String, pw: &'static str| {
        vec![
            ("csrf".to_string(), csrf),
            ("token".to_string(), token_of(&path)),
            ("new_password".to_string(), pw.to_string()),
            ("new_password_confirm".to_string(), pw.to_string()),
        ]
    };
    let (f1, f2) = (form(c1, GOOD_PASSWORD), form(c2, "Racing-Password-99"));
    let r1 = async {
        let f: Vec<(&str, &str)> = f1.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        one.post("/invite", &f).await
    };
    let r2 = async {
        let f: Vec<(&str, &str)> = f2.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        two.post("/invite", &f).await
    };
    let (r1, r2) = tokio::join!(r1, r2);
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [303, 410], "{} / {}", r1.body, r2.body);
    let winner = if r1.status == 303 {
        GOOD_PASSWORD
    } else {
        "Racing-Password-99"
    };
    let loser = if r1.status == 303 {
        "Racing-Password-99"
    } else {
        GOOD_PASSWORD
    };
    assert_eq!(
        server
            .browser()
            .login("newbie@example.test", winner)
            .await
            .status,
        303
    );
    assert_eq!(
        server
            .browser()
            .login("newbie@example.test", loser)
            .await
            .status,
        401
    );
    let pending = server.admin_ok(&["invite", "list"]);
    assert!(pending.contains("0 pending invitation(s)"), "{pending}");

    // A made-up or mangled token gets the same page as a spent one.
    for bad in [
        "/invite?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/invite?token=x",
        "/invite",
    ] {
        let r = server.browser().get(bad).await;
        assert_eq!(r.status, 410, "{bad}: {}", r.body);
    }

    // `user create --invite` makes an invited user and mails them too.
    let out = server.admin_ok(&[
        "--json",
        "user",
        "create",
        "--email",
        "quinn@example.test",
        "--name",
        "Quinn",
        "--invite",
    ]);
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["status"], "invited", "{created}");
    assert_eq!(created["invitation"]["delivered"], true, "{created}");
    assert_eq!(wait_outbox(&server.dir.path("outbox"), 2).len(), 2);
    let dup = server.admin(&[
        "user",
        "create",
        "--email",
        "quinn@example.test",
        "--invite",
    ]);
    assert!(!dup.status.success());
}

#[tokio::test]
async fn a_listed_member_may_activate_through_a_provider_their_organization_allows() {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/.gatehouse/sso/google/callback");
    let mut dan = account("dan-4", "dan@partner.test", "Dan");
    dan["hd"] = "partner.test".into();
    let peer = OidcPeer::start(
        &PeerConfig::new(PeerClient::new("gatehouse", SECRET, &redirect)).account("dan", dan),
    );
    let server = Server::start_with(Options {
        sections: format!(
            "{WHOAMI}\n[mail]\noutbox_dir = \"outbox\"\n\n[[identity_provider]]\nid = \"google\"\n\
             kind = \"google\"\nname = \"Partner Google\"\nclient_id = \"gatehouse\"\n\
             client_secret = \"{SECRET}\"\nissuer = \"{}\"\n",
            peer.issuer
        ),
        port: Some(port),
        ..Default::default()
    });
    org_create(&server, &["dan@partner.test"]);
    let files = wait_outbox(&server.dir.path("outbox"), 1);
    assert_eq!(files.len(), 1);
    assert!(
        decoded(&files[0]).contains("continue with Partner Google"),
        "{}",
        files[0]
    );
    let path = invite_path(&files[0]);

    // The page offers the provider, with the address as the hint.
    let mut b = server.browser();
    let page = b.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let start = "/.gatehouse/sso/google?login_hint=dan%40partner.test";
    assert!(
        page.body.replace("&#x2f;", "/").contains(start),
        "{}",
        page.body
    );
    let r = b.get(start).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let answer = peer.browser().sign_in(&r.location(), "dan").await;
    let r = b.get(answer.url.as_str()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let who: Value = serde_json::from_str(&b.get_json("/whoami/").await.body).unwrap();
    assert_eq!(who["headers"]["x-gatehouse-org"], "partner", "{who}");
    // Activated by the provider: the link is spent, the account active.
    assert_eq!(server.browser().get(&path).await.status, 410);
    let shown = server.admin_ok(&["--json", "user", "show", "--email", "dan@partner.test"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "active", "{shown}");

    // `invite --org` lists the address and sends one mail, its own (no second activation mail).
    let out = server.admin_ok(&[
        "--json",
        "invite",
        "--email",
        "erin@partner.test",
        "--org",
        "partner",
    ]);
    let inv: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inv["org"], "partner", "{inv}");
    std::thread::sleep(Duration::from_millis(500));
    let files = wait_outbox(&server.dir.path("outbox"), 2);
    assert_eq!(files.len(), 2, "{files:?}");
    let org = server.admin_ok(&["--json", "org", "show", "--slug", "partner"]);
    assert!(org.contains("erin@partner.test"), "{org}");
    let refused = server.admin(&["invite", "--email", "x@partner.test", "--org", "nosuch"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--org"),
        "{refused:?}"
    );
}
