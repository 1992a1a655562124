//! Return URLs, sessions carried to another host, CSRF tokens carried to another session.

use super::*;

/// Hostile return URLs (defect 6).
const EVIL_RD: &[&str] = &[
    "%2F%09%2Fevil.example",
    "%2F%0A%2Fevil.example",
    "%2F%0D%2Fevil.example",
    "%2F%00%2Fevil.example",
    "%2F%0D%0ALocation%3A%20https%3A%2F%2Fevil.example",
    "%09%2F%2Fevil.example",
    "%20%2F%2Fevil.example",
    "/%5Cevil.example",
    "%2F%5Cevil.example",
    "https%3A%2F%2Fevil.example%2F",
    "https://evil.example/",
    "//evil.example",
    "%2F%2Fevil.example",
    "http%3A%2F%2Fwiki.test%40evil.example%2F",
    "javascript%3Aalert(1)",
];

/// Whether a browser following `location` stays on a configured host.
fn stays_home(location: &str, hosts: &[String]) -> bool {
    if location.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if let Some(rest) = location.strip_prefix('/') {
        return !rest.starts_with('/') && !rest.starts_with('\\');
    }
    ["http://", "https://"].iter().any(|scheme| {
        location.strip_prefix(scheme).is_some_and(|rest| {
            hosts.iter().any(|h| {
                rest.strip_prefix(h.as_str())
                    .is_some_and(|after| after.is_empty() || after.starts_with('/'))
            })
        })
    })
}

/// Attack (defect 6): hostile `rd` values (tab, CR, LF, NUL in a path that browsers would
/// strip into `//evil.example`, backslashes, other hosts, scheme tricks), raw and
/// percent-encoded, on `/login` (signed in and at sign-in), the app host's `/.gatehouse/login`
/// and the `/.gatehouse/callback`. Must hold: every answer is a redirect (never a 500) whose
/// `Location` is a same-origin path or an http(s) URL on a configured host, at every hop.
#[tokio::test]
async fn return_urls_never_leave_the_configured_hosts() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    server.create_user("rd@example.com", GOOD_PASSWORD, &["limited"]);
    let hosts: Vec<String> = [
        format!("127.0.0.1:{}", server.port),
        format!("wiki.test:{}", server.port),
        format!("shop.test:{}", server.port),
    ]
    .into();
    // What is wrong with an answer, if anything: not a redirect, or one that leaves home.
    // (`must_redirect: false`: any answer but a 5xx will do, as long as a Location it has
    // stays home.)
    let verdict = |what: String, r: &Page, must_redirect: bool| -> Option<String> {
        let redirect = (300..400).contains(&r.status);
        let location_ok = if redirect || r.headers.contains_key("location") {
            stays_home(&r.location(), &hosts)
        } else {
            true
        };
        if location_ok && r.status < 500 && (redirect || !must_redirect) {
            return None;
        }
        let body: String = r.body.chars().take(200).collect();
        Some(format!(
            "{what}: {} Location {:?} {body}",
            r.status,
            r.location()
        ))
    };
    let mut wrong: Vec<String> = Vec::new();
    let mut gateway = signed_in(&server, "rd2@example.com", &["limited"]).await;
    // Control: an ordinary callback link with its own rd lands there.
    let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/home").await;
    let r = wiki.get(&callback).await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (303, "/home"),
        "{}",
        r.body
    );

    for evil in EVIL_RD {
        // Signed in: /login?rd= answers straight on.
        let r = gateway.get(&format!("/login?rd={evil}")).await;
        wrong.extend(verdict(format!("GET /login?rd={evil} signed in"), &r, true));

        // At sign-in: the form keeps rd, the POST answers with it.
        let mut b = server.browser();
        let page = b.get(&format!("/login?rd={evil}")).await;
        assert_eq!(page.status, 200, "GET /login?rd={evil}: {}", page.body);
        let csrf = page.csrf();
        let rd = field_value(&page.body, "rd").unwrap_or_default();
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", "rd@example.com"),
                    ("password", GOOD_PASSWORD),
                    ("rd", rd.as_str()),
                ],
            )
            .await;
        wrong.extend(verdict(format!("POST /login rd={evil}"), &r, true));

        // The app host's /.gatehouse/login, every hop to the callback's answer.
        let mut wiki = Browser::for_host(&server, "wiki.test");
        let start = format!(
            "http://wiki.test:{}/.gatehouse/login?rd={evil}",
            server.port
        );
        for (url, r) in walk(&mut gateway, &mut wiki, &start, false).await.0 {
            wrong.extend(verdict(
                format!("{url} (from /.gatehouse/login?rd={evil})"),
                &r,
                true,
            ));
        }
        // The gateway's own /.gatehouse/login.
        let r = gateway.get(&format!("/.gatehouse/login?rd={evil}")).await;
        wrong.extend(verdict(
            format!("gateway /.gatehouse/login?rd={evil}"),
            &r,
            false,
        ));

        // The callback, its rd swapped for the hostile one.
        let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/").await;
        let swapped = format!("{}&rd={evil}", callback.split("&rd=").next().unwrap());
        let r = wiki.get(&swapped).await;
        wrong.extend(verdict(format!("callback rd={evil}"), &r, true));
    }
    assert!(
        wrong.is_empty(),
        "{} answers leave the configured hosts or are no redirect:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Attack (hardening): a session cookie that a callback made for `wiki.test` carried to
/// `shop.test`, to the gateway's own pages, and to forward-auth for `shop.test`. Must hold: it
/// is a session only on `wiki.test` (and forward-auth for `wiki.test`); elsewhere it is no
/// session (302 to sign-in, 401, 303 to `/login`).
#[tokio::test]
async fn an_app_host_session_is_no_session_on_another_host() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut gateway = signed_in(&server, "bound@example.com", &["limited"]).await;
    let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/").await;
    assert_eq!(wiki.get(&callback).await.status, 303);
    let token = session_of(&wiki).expect("wiki session");
    let carried = format!("gatehouse_session={token}");

    // Controls: on wiki.test it works, the gateway's own session works on the gateway.
    assert_eq!(wiki.get("/w").await.status, 200);
    let r = gateway.get("/").await;
    assert_eq!(r.status, 200, "gateway's own session on /: {}", r.body);
    let r = verify(
        &server,
        Some(&carried),
        &forwarded(&format!("wiki.test:{}", server.port), "/w"),
    );
    assert_eq!(
        r.status, 200,
        "forward-auth for wiki.test: {}\n{}",
        r.head, r.body
    );

    // Elsewhere: each answer that treats it as a session is collected.
    let mut wrong: Vec<String> = Vec::new();
    let mut shop = Browser::for_host(&server, "shop.test");
    shop.cookies
        .insert("gatehouse_session".into(), token.clone());
    let r = shop.get("/s").await;
    if r.status != 302 || !r.location().contains("/login?rd=") {
        wrong.push(format!(
            "shop.test page: {} Location {:?} (want 302 to sign-in)",
            r.status,
            r.location()
        ));
    }
    let r = shop
        .client
        .get(format!("{}/s", shop.base))
        .header("accept", "application/json")
        .header("cookie", &carried)
        .send()
        .await
        .unwrap();
    if r.status() != 401 {
        wrong.push(format!("shop.test API: {} (want 401)", r.status()));
    }
    let mut home = server.browser();
    home.cookies
        .insert("gatehouse_session".into(), token.clone());
    let r = home.get("/").await;
    if r.status != 303 || !r.location().contains("/login") {
        wrong.push(format!(
            "gateway /: {} Location {:?} (want 303 to /login)",
            r.status,
            r.location()
        ));
    }
    let r = verify(
        &server,
        Some(&carried),
        &forwarded(&format!("shop.test:{}", server.port), "/s"),
    );
    if r.status != 401 {
        wrong.push(format!(
            "forward-auth for shop.test: {} (want 401)",
            r.status
        ));
    }
    let to_shop: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/s"))
        .map(|s| s.path_and_query)
        .collect();
    if !to_shop.is_empty() {
        wrong.push(format!("the upstream saw {to_shop:?} for shop.test"));
    }
    assert!(
        wrong.is_empty(),
        "wiki.test's session counted elsewhere:\n{}",
        wrong.join("\n")
    );
}

/// Attack (hardening): the CSRF token of a form rendered for browser A, with A's CSRF cookie,
/// posted with browser B's session cookie (a token and cookie obtained once, replayed against
/// every session). Must hold: `POST /logout` is refused (403) and B stays signed in; B's own
/// token signs B out.
#[tokio::test]
async fn a_csrf_token_is_good_only_with_the_session_it_was_rendered_for() {
    let server = Server::start();
    let mut a = signed_in(&server, "csrf-a@example.com", &[]).await;
    let mut b = signed_in(&server, "csrf-b@example.com", &[]).await;
    let page = a.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let a_token = page.csrf();
    let a_csrf_cookie = a.cookies["gatehouse_csrf"].clone();

    let mut mixed = server.browser();
    mixed
        .cookies
        .insert("gatehouse_csrf".into(), a_csrf_cookie.clone());
    mixed.cookies.insert(
        "gatehouse_session".into(),
        b.cookies["gatehouse_session"].clone(),
    );
    let r = mixed.post("/logout", &[("csrf", a_token.as_str())]).await;
    assert_eq!(
        r.status,
        403,
        "A's token + A's CSRF cookie + B's session: {} {:?} {}",
        r.status,
        r.set_cookies(),
        r.body
    );
    let r = b.get("/").await;
    assert_eq!(r.status, 200, "B is still signed in: {}", r.body);

    // Control: B's own token signs B out.
    let b_token = r.csrf();
    let r = b.post("/logout", &[("csrf", b_token.as_str())]).await;
    assert!(
        r.status == 303 || r.status == 200,
        "B's own sign-out: {} {}",
        r.status,
        r.body
    );
    let r = b.get("/").await;
    assert_eq!(r.status, 303, "B signed out: {}", r.body);
}
