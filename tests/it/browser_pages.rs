//! The pages a person meets from `/login` to `/whoami/`, walked in Chromium with JavaScript on
//! and off: every page is screenshotted at 1280 px and at a phone's 390 px (under
//! `target/test-artifacts/pages/js|nojs/`) and checked with axe-core, which must find nothing of
//! impact `serious` or `critical`. The walk itself must work without JavaScript: each step is a
//! plain form or link.

use crate::harness::*;
use crate::peers::browser::*;

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n\n\
                      [mfa]\nrequired_for_roles = [\"limited\"]\n\n\
                      [branding]\nname = \"Acme Ltd\"\n\n\
                      [[identity_provider]]\nid = \"partner\"\nkind = \"oidc\"\nname = \"Partner ID\"\n\
                      client_id = \"gatehouse\"\nclient_secret = \"gatehouse-upstream-secret-1\"\n\
                      issuer = \"http://127.0.0.1:9/never-asked\"\n";

/// Every page's grave findings, named by page, for one failure message.
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, browser: &mut Chromium, page: &str) {
        let snap = browser.snap(page);
        assert_eq!(snap.files.len(), 3, "{snap:?}");
        for f in snap
            .files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "png"))
        {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            assert!(size > 1000, "screenshot {} is empty", f.display());
        }
        for v in snap.violations.iter().filter(|v| v.grave()) {
            self.0.push(format!(
                "{page} (JavaScript {}, {} px): {} [{}] {} at {:?}",
                if browser.javascript { "on" } else { "off" },
                v.width,
                v.id,
                v.impact.as_deref().unwrap_or("?"),
                v.help,
                v.targets
            ));
        }
    }
}

/// The walk, in one browser: returns the pages' grave findings.
fn walk(server: &Server, javascript: bool, email: &str) -> Vec<String> {
    server.create_user(email, GOOD_PASSWORD, &["limited@whoami"]);
    let sub = if javascript { "js" } else { "nojs" };
    let mut b = Chromium::start(javascript, &artifacts(sub));
    let mut found = Findings(Vec::new());
    let base = &server.base;

    // An invitation's page (someone else's), before and after this person signs in.
    let out = server.admin_ok(&[
        "--json",
        "invite",
        "--email",
        &format!("invited-{sub}@example.test"),
        "--role",
        "limited@whoami",
    ]);
    let invitation: serde_json::Value = serde_json::from_str(&out).unwrap();
    let invite_link = invitation["link"].as_str().expect("the link").to_string();
    let shown = b.goto(&invite_link);
    assert_eq!(shown.status, Some(200), "{shown:?}");
    assert!(
        shown.html.contains("name=\"new_password\""),
        "{}",
        shown.html
    );
    found.check(&mut b, "invite");

    // The email step, then the password step.
    let shown = b.goto(&format!("{base}/login?rd=%2Fwhoami%2F"));
    assert_eq!(shown.status, Some(200), "{shown:?}");
    // A provider's button (the provider itself is never asked: nobody presses it).
    assert!(shown.text.contains("Partner ID"), "{}", shown.text);
    found.check(&mut b, "login-email");
    b.fill("#email", email);
    b.click("button[type=submit]");
    let shown = b.state();
    assert!(shown.html.contains("name=\"password\""), "{}", shown.html);
    found.check(&mut b, "login-password");

    // A wrong password: the refusal, on the same form.
    b.fill("#password", "Wrong-password-9!");
    b.click("button[type=submit]");
    let shown = b.state();
    assert_eq!(shown.status, Some(401), "{}", shown.text);
    assert!(
        shown
            .text
            .contains("Wrong email or password, or the account cannot sign in right now."),
        "{}",
        shown.text
    );
    found.check(&mut b, "login-wrong-password");

    // The right one: the role requires a second factor, so enrolment comes first.
    b.fill("#password", GOOD_PASSWORD);
    b.click("button[type=submit]");
    let shown = b.state();
    assert!(
        shown.url.starts_with(&format!("{base}/mfa/enroll")),
        "{shown:?}"
    );
    found.check(&mut b, "mfa-enroll");
    let secret = enrolment_secret(&shown.html);
    b.fill("#code", &totp_code(&secret));
    b.click("button[type=submit]");
    let shown = b.state();
    let codes = recovery_codes(&shown.html);
    assert_eq!(codes.len(), 10, "{}", shown.text);
    found.check(&mut b, "recovery-codes");
    b.click("#continue");
    let shown = b.state();
    assert_eq!(shown.url, format!("{base}/whoami/"), "{shown:?}");
    assert!(shown.text.contains(email), "{}", shown.text);
    found.check(&mut b, "whoami");

    b.goto(&format!("{base}/"));
    found.check(&mut b, "account");
    let shown = b.goto(&invite_link);
    assert_eq!(shown.status, Some(409), "{shown:?}");
    found.check(&mut b, "invite-signed-in");
    let shown = b.goto(&format!("{base}/password/change"));
    assert_eq!(shown.status, Some(200), "{shown:?}");
    assert!(
        shown.html.contains("name=\"new_password\""),
        "{}",
        shown.html
    );
    found.check(&mut b, "password-change");
    // A refused new password: every unmet rule named, above the form.
    b.fill("#password", GOOD_PASSWORD);
    b.fill("#new_password", "short");
    b.fill("#new_password_confirm", "short");
    b.click("button[type=submit]");
    let shown = b.state();
    assert_eq!(shown.status, Some(422), "{}", shown.text);
    assert!(shown.html.contains("class=\"error\""), "{}", shown.html);
    found.check(&mut b, "password-change-refused");

    // An error page (an unknown provider's sign-in).
    let shown = b.goto(&format!("{base}/.gatehouse/sso/no-such-provider"));
    assert_eq!(shown.status, Some(404), "{shown:?}");
    assert!(shown.text.contains("Gatehouse"), "{}", shown.text);
    found.check(&mut b, "error");

    // Sign-out, from the app's link.
    b.goto(&format!("{base}/whoami/"));
    b.click("a[href='/.gatehouse/logout']");
    let shown = b.state();
    assert!(shown.text.contains("Sign out"), "{}", shown.text);
    found.check(&mut b, "signout");
    b.click("button[type=submit]");
    let shown = b.state();
    assert!(shown.url.starts_with(&format!("{base}/login")), "{shown:?}");
    let shown = b.goto(&format!("{base}/whoami/"));
    assert!(
        shown.url.starts_with(&format!("{base}/login")),
        "signed out: {shown:?}"
    );

    // Signing in again asks for the second factor; a recovery code answers it.
    b.fill("#email", email);
    b.click("button[type=submit]");
    b.fill("#password", GOOD_PASSWORD);
    b.click("button[type=submit]");
    let shown = b.state();
    assert!(
        shown.url.starts_with(&format!("{base}/login/mfa")),
        "{shown:?}"
    );
    assert!(shown.text.contains("Acme Ltd"), "{}", shown.text);
    assert!(
        shown.text.contains("Sign-in by Gatehouse"),
        "{}",
        shown.text
    );
    found.check(&mut b, "mfa");

    // The switch to a recovery code: in place with JavaScript (the page's one script, allowed
    // by its hash), another form without.
    let before = shown.url.clone();
    if javascript {
        b.click_here("#code-switch");
        let shown = b.state();
        assert_eq!(shown.url, before, "switched in place");
        assert!(
            shown.html.contains("inputmode=\"text\""),
            "the script switched the field: {}",
            shown.html
        );
    } else {
        b.click("#code-switch");
        let shown = b.state();
        assert!(shown.url.contains("recovery=1"), "{shown:?}");
        assert!(shown.html.contains("inputmode=\"text\""), "{}", shown.html);
    }
    found.check(&mut b, "mfa-recovery");
    b.fill("#code", &codes[0]);
    b.click("button[type=submit]");
    let shown = b.state();
    assert_eq!(shown.url, format!("{base}/whoami/"), "{shown:?}");
    found.0
}

#[test]
fn the_sign_in_pages_pass_axe_at_both_widths_with_and_without_javascript() {
    let server = Server::start_with(Options {
        sections: WHOAMI.to_string(),
        ..Default::default()
    });
    let mut found = walk(&server, true, "pat@example.test");
    found.extend(walk(&server, false, "sam@example.test"));
    assert!(
        found.is_empty(),
        "axe found {} serious or critical problems (screenshots under {}):\n{}",
        found.len(),
        artifacts("").display(),
        found.join("\n")
    );
}

#[test]
fn a_missing_chromium_fails_saying_what_to_install() {
    let empty = TempDir::new();
    let err = find_chromium(empty.0.as_os_str()).unwrap_err();
    assert!(err.contains("apt-get install -y chromium"), "{err}");
    find_chromium(&std::env::var_os("PATH").unwrap_or_default()).expect("this machine's Chromium");
}

/// Serves `html` to every request on a loopback port, in a thread that ends with the process.
fn serve_page(html: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/page", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    url
}

/// The checker itself can fail: a page with an image without text, an unlabelled field and no
/// language is reported, with JavaScript on and (through the copy) off.
#[test]
fn axe_reports_what_is_wrong_with_javascript_on_and_off() {
    let url = serve_page(
        "<!doctype html><html><head><title>Bad</title></head><body><main><h1>Bad</h1>\
         <img src=\"/x.png\"><input name=\"q\"></main></body></html>",
    );
    for javascript in [true, false] {
        let mut b = Chromium::start(javascript, &artifacts("self-test"));
        b.goto(&url);
        let snap = b.snap(if javascript { "bad-js" } else { "bad-nojs" });
        let grave: Vec<&str> = snap
            .violations
            .iter()
            .filter(|v| v.grave())
            .map(|v| v.id.as_str())
            .collect();
        for id in ["image-alt", "label", "html-has-lang"] {
            assert!(
                grave.contains(&id),
                "JavaScript {javascript}: {id} not reported: {:?}",
                snap.violations
            );
        }
    }
}
