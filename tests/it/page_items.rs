//! Page details a person notices in the first hour, over HTTP: the second-factor page's switch
//! to a recovery code (without JavaScript a link to another form; the one inline script allowed
//! by its hash and nothing else), and `[branding]` (the organization's name and logo on the
//! pages, escaped; the product's name still shown; bad values refused naming the key).

use crate::harness::*;
use base64::Engine;
use std::process::Command;

const MFA_FOR_ALL: &str = "[mfa]\nrequired_for_roles = [\"limited\"]\n\n\
                           [[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                           upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";

/// A user with TOTP enrolled, and a browser at the second-factor step; the recovery codes.
async fn at_second_factor(server: &Server, email: &str) -> (Browser, Vec<String>) {
    server.create_user(email, GOOD_PASSWORD, &["limited@whoami"]);
    let mut b = server.browser();
    let r = b.login(email, GOOD_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&r.location()).await;
    let secret = enrolment_secret(&page.body);
    let r = b
        .post(
            "/mfa/enroll",
            &[("csrf", &page.csrf()), ("code", &totp_code(&secret))],
        )
        .await;
    let codes = recovery_codes(&r.body);
    assert_eq!(codes.len(), 10, "{}", r.body);
    let mut again = server.browser();
    let r = again.login(email, GOOD_PASSWORD).await;
    assert_eq!(r.location(), "/login/mfa", "{}", r.body);
    (again, codes)
}

/// The `<input>` tag whose `id` is `id`.
fn input_tag(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("<input id=\"{id}\""))
        .unwrap_or_else(|| panic!("no input #{id} in {body}"));
    body[at..at + body[at..].find('>').unwrap() + 1].to_string()
}

#[tokio::test]
async fn the_second_factor_page_switches_to_a_recovery_code_without_javascript() {
    let server = Server::start_with(Options {
        sections: MFA_FOR_ALL.into(),
        ..Default::default()
    });
    let (mut b, codes) = at_second_factor(&server, "pat@example.test").await;

    // The authenticator's code: digits keyboard, one-time-code autofill, a link to the other.
    let page = b.get("/login/mfa?rd=%2Fwhoami%2F").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let field = input_tag(&page.body, "code");
    assert!(field.contains("inputmode=\"numeric\""), "{field}");
    assert!(field.contains("autocomplete=\"one-time-code\""), "{field}");
    assert!(
        page.body
            .contains("Code from your authenticator app</label>")
    );
    let link = "href=\"&#x2f;login&#x2f;mfa?recovery=1&amp;rd=%2Fwhoami%2F\"";
    assert!(page.body.contains(link), "{}", page.body);
    assert!(page.body.contains("Use a recovery code instead</a>"));

    // The recovery form: letters keyboard, no autofill, the hidden mode, a link back.
    let page = b.get("/login/mfa?recovery=1&rd=%2Fwhoami%2F").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let field = input_tag(&page.body, "code");
    assert!(field.contains("inputmode=\"text\""), "{field}");
    assert!(field.contains("autocomplete=\"off\""), "{field}");
    assert!(!field.contains("numeric"), "{field}");
    assert!(page.body.contains("Recovery code</label>"), "{}", page.body);
    assert_eq!(field_value(&page.body, "recovery").as_deref(), Some("1"));
    assert!(
        page.body
            .contains("href=\"&#x2f;login&#x2f;mfa?rd=%2Fwhoami%2F\""),
        "{}",
        page.body
    );

    // A wrong code from the recovery form: refused, and the recovery form again.
    let r = b
        .post(
            "/login/mfa",
            &[
                ("csrf", &page.csrf()),
                ("code", "aaaa-bbbb-cccc"),
                ("recovery", "1"),
                ("rd", "/whoami/"),
            ],
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        input_tag(&r.body, "code").contains("inputmode=\"text\""),
        "{}",
        r.body
    );
    // ... and a real one signs in.
    let r = b
        .post(
            "/login/mfa",
            &[
                ("csrf", &page.csrf()),
                ("code", &codes[0]),
                ("recovery", "1"),
                ("rd", "/whoami/"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/whoami/");
}

/// The text of the page's inline `<script>`.
fn inline_script(body: &str) -> String {
    let start = body.find("<script>").expect("an inline script") + "<script>".len();
    let end = body[start..].find("</script>").unwrap() + start;
    body[start..end].to_string()
}

#[tokio::test]
async fn the_pages_run_only_the_script_they_ship() {
    let server = Server::start_with(Options {
        sections: MFA_FOR_ALL.into(),
        ..Default::default()
    });
    let (mut b, _) = at_second_factor(&server, "sam@example.test").await;
    let page = b.get("/login/mfa").await;
    let policy = page
        .headers
        .get("content-security-policy")
        .expect("a content security policy")
        .to_str()
        .unwrap()
        .to_string();
    let script = inline_script(&page.body);
    assert!(script.contains("code-switch"), "{script}");
    let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let script_src = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("no script-src in {policy}"));
    // Exactly the page's script, by its hash: no 'unsafe-inline', no host, no 'self'.
    assert_eq!(
        script_src,
        format!("script-src 'sha256-{hash}'"),
        "{policy}"
    );
    assert!(policy.contains("default-src 'none'"), "{policy}");
    // Without a logo, images only from data: URLs (the QR code).
    assert!(policy.contains("img-src data:;"), "{policy}");
    // The sign-in page needs no script at all.
    let login = server.browser().get("/login").await;
    assert!(!login.body.contains("<script"), "{}", login.body);
}

#[tokio::test]
async fn branding_shows_the_organizations_name_and_logo_escaped_and_keeps_the_product_name() {
    let server = Server::start_with(Options {
        sections: "[branding]\nname = \"Acme & <Sons>\"\nlogo_url = \"https://cdn.example.com/acme/logo.svg?v=\\\"2\\\"\"\n".into(),
        ..Default::default()
    });
    let page = server.browser().get("/login").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<span id=\"brand-name\">Acme &amp; &lt;Sons&gt;</span>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<Sons>"), "{}", page.body);
    assert!(
        page.body.contains(
            "<img class=\"logo\" src=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;acme&#x2f;logo.svg?v=%222%22\" alt=\"\">"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains("Sign-in by Gatehouse"), "{}", page.body);
    assert!(page.body.contains("· Gatehouse</title>"), "{}", page.body);
    // The policy lets the logo's origin in, and no other.
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("img-src data: https://cdn.example.com;"),
        "{policy}"
    );

    // Without [branding]: the product's name where the organization's would be.
    let plain = Server::start();
    let page = plain.browser().get("/login").await;
    assert!(
        page.body
            .contains("<header class=\"brand\">Gatehouse</header>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<img"), "{}", page.body);
}

#[tokio::test]
async fn a_logo_on_the_gateways_own_host_is_allowed_as_self() {
    let server = Server::start_with(Options {
        sections: "[branding]\nlogo_url = \"/brand/logo.png\"\n".into(),
        ..Default::default()
    });
    let page = server.browser().get("/login").await;
    assert!(
        page.body
            .contains("<img class=\"logo\" src=\"&#x2f;brand&#x2f;logo.png\" alt=\"\">Gatehouse"),
        "{}",
        page.body
    );
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("img-src data: 'self';"), "{policy}");
}

#[test]
fn bad_branding_values_are_refused_naming_the_key() {
    let dir = TempDir::new();
    let path = dir.path("g.toml");
    let check = |branding: &str| {
        std::fs::write(
            &path,
            format!("[secrets]\nmaster_key_env = \"SOME_KEY\"\n\n[branding]\n{branding}"),
        )
        .unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .env("SOME_KEY", MASTER_KEY)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = check("name = \"Acme\"\nlogo_url = \"https://cdn.example.com/l.png\"\n");
    assert!(ok, "{out}");
    let (ok, out) = check("name = \"Acme\"\nlogo_url = \"/l.png\"\n");
    assert!(ok, "{out}");
    for (bad, key) in [
        (
            "logo_url = \"http://cdn.example.com/l.png\"\n",
            "branding.logo_url",
        ),
        ("logo_url = \"javascript:alert(1)\"\n", "branding.logo_url"),
        ("logo_url = \"//evil.example/l.png\"\n", "branding.logo_url"),
        ("name = \"\"\n", "branding.name"),
        ("name = \"two\\nlines\"\n", "branding.name"),
        ("name = 7\n", "branding.name"),
        ("logo = \"/l.png\"\n", "branding.logo"),
    ] {
        let (ok, out) = check(bad);
        assert!(!ok, "{bad} accepted: {out}");
        assert!(out.contains(key), "{bad}: {out}");
        assert!(out.contains("g.toml"), "{out}");
    }
    let (_, out) = check("logo_url = \"http://cdn.example.com/l.png\"\n");
    assert!(out.contains("must be an https:// URL"), "{out}");
    let (_, out) = check("logo = \"/l.png\"\n");
    assert!(out.contains("unknown key"), "{out}");
}
