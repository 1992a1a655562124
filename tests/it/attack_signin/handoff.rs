//! The cross-host handoff: its hops, and callback links planted in another browser.

use super::*;

/// The five hops of a cross-host sign-in, each with its status and `Location`.
/// Must hold: hop 2 goes to the app host's `/.gatehouse/login` (not straight to a callback),
/// hop 3 binds the handoff to this browser in a host-only cookie, the callback with that cookie
/// signs the app host in (host-only session, handoff cookie cleared) and lands on the exact
/// path; the app sees the user.
#[tokio::test]
async fn cross_host_sign_in_takes_five_hops_bound_to_the_browser() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    server.create_user("five@example.com", GOOD_PASSWORD, &["limited"]);
    let mut wiki = Browser::for_host(&server, "wiki.test");

    // Hop 1: not signed in.
    let r = wiki.get("/path?x=1").await;
    assert_eq!(r.status, 302, "hop 1: {}", r.body);
    let original = format!("http://wiki.test:{}/path?x=1", server.port);
    assert_eq!(
        r.location(),
        format!("{}/login?rd={}", server.base, enc(&original)),
        "hop 1"
    );
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    // Hop 2: sign-in at the gateway.
    let mut gateway = server.browser();
    let page = gateway.get(&r.location()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let rd = field_value(&page.body, "rd").unwrap_or_default();
    assert_eq!(rd, original);
    let r = gateway
        .post(
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("email", "five@example.com"),
                ("password", GOOD_PASSWORD),
                ("rd", rd.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "hop 2: {}", r.body);
    assert_eq!(
        r.location(),
        format!(
            "http://wiki.test:{}/.gatehouse/login?rd=%2Fpath%3Fx%3D1",
            server.port
        ),
        "hop 2 must go to the app host's /.gatehouse/login"
    );

    // Hops 3 and 4 (asserted by the helper), then 5.
    let r = follow_handoff(&mut gateway, &mut wiki, r.location()).await;
    assert_eq!(r.status, 303, "hop 5: {}", r.body);
    assert_eq!(r.location(), "/path?x=1", "hop 5");
    let set = r.set_cookies();
    let session = set
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap_or_else(|| panic!("hop 5 set no session: {set:?}"));
    assert!(
        !session.to_ascii_lowercase().contains("domain="),
        "host-only session: {session}"
    );
    assert!(
        set.iter().any(|c| c.starts_with("gatehouse_handoff=")),
        "hop 5 must clear the handoff cookie: {set:?}"
    );
    assert!(
        !wiki.cookies.contains_key("gatehouse_handoff"),
        "the handoff cookie is cleared: {set:?}"
    );

    let r = wiki.get("/path?x=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = upstream.last("/path");
    assert_eq!(seen.path_and_query, "/path?x=1");
    assert_eq!(
        seen.one("x-gatehouse-email").as_deref(),
        Some("five@example.com")
    );
}

/// An app-host sign-in link (`/.gatehouse/login`) opened by a browser not yet signed in at the
/// gateway. Must hold: hop 4 sends it to sign in with the handoff URL as its return, the
/// sign-in comes back to that handoff, and the handoff then goes on to a callback that signs
/// the app host in.
#[tokio::test]
async fn a_handoff_without_a_gateway_session_goes_through_sign_in_and_back() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    server.create_user("late@example.com", GOOD_PASSWORD, &["limited"]);
    let mut wiki = Browser::for_host(&server, "wiki.test");
    let mut gateway = server.browser();

    let r = wiki.get(&app_login(&server, "wiki.test", "/doc")).await;
    assert_eq!(r.status, 303, "hop 3: {} {}", r.location(), r.body);
    let handoff = r.location();
    assert!(
        handoff.starts_with(&format!("{}/.gatehouse/handoff?", server.base)),
        "hop 3 went to {handoff}"
    );
    assert!(
        wiki.cookies.contains_key("gatehouse_handoff"),
        "{:?}",
        wiki.cookies
    );

    // Hop 4 without a gateway session: sign in first, coming back here.
    let r = gateway.get(&handoff).await;
    assert_eq!(r.status, 303, "hop 4 signed out: {}", r.body);
    let login = r.location();
    let resolve = |l: &str| {
        url::Url::parse(&server.base)
            .unwrap()
            .join(l)
            .unwrap()
            .to_string()
    };
    assert!(
        resolve(&login).starts_with(&format!("{}/login?", server.base)),
        "hop 4 signed out went to {login}"
    );
    let rd = query_param(&login, "rd").unwrap_or_default();
    assert_eq!(resolve(&rd), resolve(&handoff), "sign-in's return: {login}");
    let page = gateway.get(&resolve(&login)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let form_rd = field_value(&page.body, "rd").unwrap_or_default();
    let r = gateway
        .post(
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("email", "late@example.com"),
                ("password", GOOD_PASSWORD),
                ("rd", form_rd.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(resolve(&r.location()), resolve(&handoff), "after sign-in");

    // Hop 4 again, now signed in, then the callback.
    let r = gateway.get(&handoff).await;
    assert_eq!(r.status, 303, "hop 4: {}", r.body);
    let callback = r.location();
    assert!(
        callback.starts_with(&format!(
            "http://wiki.test:{}/.gatehouse/callback?code=",
            server.port
        )),
        "hop 4 went to {callback}"
    );
    let r = wiki.get(&callback).await;
    assert_eq!(r.status, 303, "hop 5: {}", r.body);
    assert_eq!(r.location(), "/doc");
    assert_eq!(wiki.get("/doc").await.status, 200);
    assert_eq!(
        upstream.last("/doc").one("x-gatehouse-email").as_deref(),
        Some("late@example.com")
    );
}

/// Attack (defect 7): the callback link opened without the handoff cookie it is bound to (a
/// fresh browser), or with another browser's handoff cookie. Must hold: 400 "Sign-in link
/// expired", no session cookie, and the code is spent — the right browser cannot use it
/// afterwards either. Control: the same steps, the link opened by the browser that started
/// them, sign in.
#[tokio::test]
async fn a_callback_link_works_only_in_the_browser_that_started_it() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut gateway = signed_in(&server, "own@example.com", &["limited"]).await;

    // Control.
    let (mut wiki, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let r = wiki.get(&callback).await;
    assert_eq!(r.status, 303, "the starting browser: {}", r.body);
    assert!(session_of(&wiki).is_some(), "{:?}", r.set_cookies());

    // No handoff cookie.
    let (mut owner, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let mut fresh = Browser::for_host(&server, "wiki.test");
    let r = fresh.get(&callback).await;
    assert_eq!(r.status, 400, "no handoff cookie: {}", r.body);
    assert!(r.body.contains("Sign-in link expired"), "{}", r.body);
    assert!(
        session_of(&fresh).is_none(),
        "no handoff cookie, yet a session: {:?}",
        r.set_cookies()
    );
    // Spent: not even the browser it was bound to can use it now.
    let r = owner.get(&callback).await;
    assert_eq!(r.status, 400, "spent code: {}", r.body);
    assert!(session_of(&owner).is_none(), "{:?}", r.set_cookies());

    // Another value of the handoff cookie (another browser's, from its own hop 3).
    let (_, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let mut other = Browser::for_host(&server, "wiki.test");
    let r = other.get(&app_login(&server, "wiki.test", "/b")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(other.cookies.contains_key("gatehouse_handoff"));
    let r = other.get(&callback).await;
    assert_eq!(r.status, 400, "another handoff cookie: {}", r.body);
    assert!(session_of(&other).is_none(), "{:?}", r.set_cookies());
    // A forged value neither.
    let (_, callback) = handoff_link(&server, &mut gateway, "wiki.test", "/a").await;
    let mut forged = Browser::for_host(&server, "wiki.test");
    forged
        .cookies
        .insert("gatehouse_handoff".into(), "A".repeat(43));
    let r = forged.get(&callback).await;
    assert_eq!(r.status, 400, "forged handoff cookie: {}", r.body);
    assert!(session_of(&forged).is_none(), "{:?}", r.set_cookies());
    assert!(
        upstream.seen().is_empty(),
        "nothing was proxied: {:?}",
        upstream.seen()
    );
}

/// Attack (defect 7, login CSRF / session swap): the attacker signs in and sends the callback
/// link it got (bound to the attacker's handoff cookie) to a victim who is signed in on the app
/// host as themselves — once with no handoff cookie, once with the victim's own. Must hold: the
/// victim is not signed in as the attacker (400 or 409), keeps their own session cookie, and
/// their next app request reaches the upstream as the victim.
#[tokio::test]
async fn a_planted_callback_link_does_not_sign_the_victim_in_as_the_attacker() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut victim_gw = signed_in(&server, "victim@example.com", &["limited"]).await;
    let mut mallory_gw = signed_in(&server, "mallory@example.com", &["limited"]).await;

    // The victim, signed in on wiki.test.
    let (mut victim, callback) = handoff_link(&server, &mut victim_gw, "wiki.test", "/").await;
    let r = victim.get(&callback).await;
    assert_eq!(r.status, 303, "victim's own sign-in: {}", r.body);
    let victim_session = session_of(&victim).expect("victim's session");
    assert_eq!(victim.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("victim@example.com")
    );

    for with_own_handoff in [false, true] {
        let (_, planted) = handoff_link(&server, &mut mallory_gw, "wiki.test", "/").await;
        if with_own_handoff {
            let r = victim.get(&app_login(&server, "wiki.test", "/")).await;
            assert_eq!(r.status, 303, "{}", r.body);
            assert!(victim.cookies.contains_key("gatehouse_handoff"));
        } else {
            victim.cookies.remove("gatehouse_handoff");
        }
        let r = victim.get(&planted).await;
        assert!(
            r.status == 400 || r.status == 409,
            "victim (own handoff cookie: {with_own_handoff}) opened the attacker's link: {} {:?} {}",
            r.status,
            r.set_cookies(),
            r.body
        );
        assert_eq!(
            session_of(&victim).as_deref(),
            Some(victim_session.as_str()),
            "the victim's session cookie was replaced: {:?}",
            r.set_cookies()
        );
        assert_eq!(victim.get("/me").await.status, 200);
        assert_eq!(
            upstream.last("/me").one("x-gatehouse-email").as_deref(),
            Some("victim@example.com"),
            "own handoff cookie: {with_own_handoff}"
        );
        victim.cookies.remove("gatehouse_handoff");
    }

    // A browser with no cookies at all: 400, no session.
    let (_, planted) = handoff_link(&server, &mut mallory_gw, "wiki.test", "/").await;
    let mut fresh = Browser::for_host(&server, "wiki.test");
    let r = fresh.get(&planted).await;
    assert_eq!(r.status, 400, "fresh browser: {}", r.body);
    assert!(session_of(&fresh).is_none(), "{:?}", r.set_cookies());

    // Control: the attacker's own browser completes the same kind of link.
    let (mut mallory, link) = handoff_link(&server, &mut mallory_gw, "wiki.test", "/").await;
    let r = mallory.get(&link).await;
    assert_eq!(r.status, 303, "the attacker's own browser: {}", r.body);
    assert_eq!(mallory.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("mallory@example.com")
    );
}

/// Someone else signs in on an app host where a browser already holds a live session of
/// another user (a shared computer), with the handoff cookie of this browser. Must hold: the
/// callback answers 409 (someone else is signed in here: sign out first) and keeps the existing
/// session; for the same user the session is simply replaced (303, a new session cookie).
#[tokio::test]
async fn a_callback_for_another_user_does_not_replace_a_live_app_host_session() {
    let upstream = Upstream::start();
    let server = hosts_gateway(&upstream);
    let mut first_gw = signed_in(&server, "first@example.com", &["limited"]).await;
    let mut second_gw = signed_in(&server, "second@example.com", &["limited"]).await;

    let (mut wiki, callback) = handoff_link(&server, &mut first_gw, "wiki.test", "/").await;
    assert_eq!(wiki.get(&callback).await.status, 303);
    let first = session_of(&wiki).expect("first user's session");

    // The second user, signed in at the gateway, signs in on wiki.test in this same browser.
    let link = callback_link(&server, &mut second_gw, &mut wiki, "wiki.test", "/").await;
    let r = wiki.get(&link).await;
    assert_eq!(
        r.status,
        409,
        "another user's callback: {:?} {}",
        r.set_cookies(),
        r.body
    );
    assert!(
        r.body.to_lowercase().contains("sign out"),
        "the page says to sign out first: {}",
        r.body
    );
    assert_eq!(
        session_of(&wiki).as_deref(),
        Some(first.as_str()),
        "the live session was replaced: {:?}",
        r.set_cookies()
    );
    assert_eq!(wiki.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("first@example.com")
    );
    wiki.cookies.remove("gatehouse_handoff");

    // The same user again: replaced.
    let link = callback_link(&server, &mut first_gw, &mut wiki, "wiki.test", "/").await;
    let r = wiki.get(&link).await;
    assert_eq!(r.status, 303, "the same user's callback: {}", r.body);
    let again = session_of(&wiki).expect("a session");
    assert_ne!(again, first, "a new session cookie: {:?}", r.set_cookies());
    assert_eq!(wiki.get("/me").await.status, 200);
    assert_eq!(
        upstream.last("/me").one("x-gatehouse-email").as_deref(),
        Some("first@example.com")
    );
}
