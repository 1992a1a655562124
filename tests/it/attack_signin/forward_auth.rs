//! Forward-auth callers that lie: untrusted peers, dot segments and encodings, fragments,
//! descriptions that disagree.

use super::*;

/// Attack: a caller that is not a trusted proxy describes an original request itself (and
/// claims, in `X-Forwarded-For`/`X-Real-IP`, to be the proxy). Must hold: `/.gatehouse/verify`
/// answers only peers in `[server] trusted_proxies`; anyone else gets 403 JSON naming
/// `trusted_proxies`, signed in or not. The same calls from a trusted peer get 200/401, so the
/// refusal is the peer's doing.
#[tokio::test]
async fn verify_answers_only_trusted_proxies() {
    // Loopback is not in this list (nor is there an empty list's "everyone").
    let server = Server::start_with(Options {
        port: None,
        sections: FA_APPS.into(),
        env: trusted(r#"["192.0.2.0/24"]"#),
        ..Default::default()
    });
    let cookie = signed_in(&server, "mo@example.com", &["modify@wide"])
        .await
        .cookie_header();
    let spoof = [("X-Forwarded-For", "192.0.2.1"), ("X-Real-IP", "192.0.2.1")];
    for (who, c) in [("signed in", Some(cookie.as_str())), ("anonymous", None)] {
        for extra in [&[][..], &spoof[..]] {
            let mut h = forwarded("wide.test", "/x");
            h.extend_from_slice(extra);
            let r = verify(&server, c, &h);
            assert_eq!(
                r.status, 403,
                "{who} {extra:?} from an untrusted peer: {}\n{}",
                r.head, r.body
            );
            let v: Value = serde_json::from_str(&r.body)
                .unwrap_or_else(|e| panic!("403 body is not JSON ({e}): {}", r.body));
            assert_eq!(v["error"], "Forbidden", "{}", r.body);
            assert!(
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("trusted_proxies")),
                "{}",
                r.body
            );
            assert!(
                !r.head.to_ascii_lowercase().contains("x-gatehouse-"),
                "identity headers to an untrusted peer: {}",
                r.head
            );
        }
    }

    // Control: the same calls from a trusted peer are answered.
    let (server, _, modify) = fa_gateway().await;
    let r = verify(&server, Some(&modify), &forwarded("wide.test", "/x"));
    assert_eq!(r.status, 200, "trusted, signed in: {}\n{}", r.head, r.body);
    let r = verify(&server, None, &forwarded("wide.test", "/x"));
    assert_eq!(r.status, 401, "trusted, anonymous: {}\n{}", r.head, r.body);
}

/// Attack (defects 2, 3, 4): a limited user describes a path that a lax reading routes to the
/// app or path they may use, while the canonical reading is the staff app or the back office:
/// dot segments, `//`, encoded unreserved characters, a relative `X-Original-URL` that
/// disagrees in spelling with `X-Forwarded-Uri`, a `#fragment`, `;parameters`, case, trailing
/// dots. Must hold: judged on the canonical path (403), or refused as malformed/ambiguous (400);
/// never 200. The plain paths the user may use still give 200, and a modify user's dot-segment
/// path is judged (200) as the staff app.
#[tokio::test]
async fn verify_judges_the_canonical_path_of_every_description() {
    let (server, limited, modify) = fa_gateway().await;
    let (lim, modi) = (Some(limited.as_str()), Some(modify.as_str()));
    let fa = |uri: &'static str| forwarded("fa.test", uri);
    let crm = |uri: &'static str| forwarded("crm.test", uri);
    let mut cases: Vec<Case> = vec![
        // Controls: what the limited user may use, and what they may not, plainly spelled.
        ("limited", lim, fa("/x"), 200),
        ("limited", lim, fa("/staffroom/x"), 200),
        ("limited", lim, fa("/staff/x"), 403),
        ("limited", lim, crm("/crm/page"), 200),
        ("limited", lim, crm("/crm/admin/x"), 403),
    ];
    // Judged as `staff` (no role for the limited user): 403; for the modify user, 200.
    for uri in [
        "//staff/x",
        "/./staff/x",
        "/x/../staff/x",
        "/pub/../staff/x",
        "/%73taff/x",
        "/x/%2e%2e/staff/x",
        "/x/%2E%2E/staff/x",
    ] {
        cases.push(("limited", lim, fa(uri), 403));
        cases.push(("modify", modi, fa(uri), 200));
    }
    // A client's relative X-Original-URL next to the proxy's X-Forwarded-Uri: the same
    // canonical path, so they agree, and that path (staff) is judged.
    let mut h = fa("/staff/x");
    h.push(("X-Original-URL", "/pub/../staff/x"));
    cases.push(("limited", lim, h.clone(), 403));
    cases.push(("modify", modi, h, 200));
    // Malformed, or the loose reading chooses another app than the canonical one: 400.
    for uri in [
        "/%2fstaff/x",
        "/%2Fstaff/x",
        "/STAFF/x",
        "/staff;x=1/y",
        "/staff./x",
        "/x%5c..%5cstaff/x",
        "/x\\..\\staff/x",
        "/x%00/y",
        "/x%09/y",
        "/x%0A/y",
        "/%2561/y",
        "/x%zz/y",
        "/x%4",
        "/x%C0%AF/y",
        "/x%FF/y",
    ] {
        cases.push(("limited", lim, fa(uri), 400));
    }
    // The back office however spelled (a fragment cut off): 403 or 400, never 200.
    for (uri, want) in [
        ("/crm/admin#x", 403),
        ("/crm/admin/x#frag", 403),
        ("/crm/admin%20/x", 403),
        ("/crm/admin./x", 403),
        ("/crm/admin;x=1/y", 403),
        ("/crm/ADMIN/x", 403),
        ("/crm/%61dmin/x", 403),
        ("/crm/x/../admin/x", 403),
        ("/crm/admin%00/x", 400),
        ("/crm/admin%09/x", 400),
        ("/crm/%2561dmin/x", 400),
        ("/crm/admin%C0%AF/x", 400),
        ("/crm/admin%5cx", 400),
        ("/crm/admin%2fx", 400),
    ] {
        cases.push(("limited", lim, crm(uri), want));
    }
    // The fragment in nginx's description too.
    cases.push((
        "limited",
        lim,
        vec![("Host", "crm.test"), ("X-Original-URI", "/crm/admin#x")],
        403,
    ));

    let mut wrong = Vec::new();
    for (who, cookie, headers, want) in &cases {
        let r = verify(&server, *cookie, headers);
        if r.status != *want {
            wrong.push(format!(
                "{who} {headers:?}: {} (want {want}) {}",
                r.status, r.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} descriptions judged wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Attack (defect 5): an nginx-style call (`X-Original-URI` + `Host: narrow.test`) to which a
/// client added `X-Forwarded-Host: wide.test`, an app host where it may go; or an absolute
/// `X-Original-URL` naming another host than `Host`. Must hold: `Host` naming an app host is a
/// description too, so these disagree → 400. Agreeing descriptions (case and default port
/// ignored) are judged, and a `Host` that is no app host (the gateway's own address, as Traefik
/// and Caddy call it) is ignored: those parts already hold today and are kept as regression
/// checks.
#[tokio::test]
async fn verify_refuses_a_host_description_that_disagrees_with_host() {
    let (server, limited, modify) = fa_gateway().await;
    let (lim, modi) = (Some(limited.as_str()), Some(modify.as_str()));
    let own = format!("127.0.0.1:{}", server.port);
    let nginx = |host: &'static str| vec![("Host", host), ("X-Original-URI", "/x")];
    let with = |mut h: Vec<(&'static str, &'static str)>,
                extra: &[(&'static str, &'static str)]| {
        h.extend_from_slice(extra);
        h
    };
    let mut traefik_wide = forwarded("wide.test", "/x");
    traefik_wide.push(("Host", own.as_str()));
    let mut traefik_narrow = forwarded("narrow.test", "/x");
    traefik_narrow.push(("Host", own.as_str()));
    let cases: Vec<Case> = vec![
        // Controls: nginx style alone, for each host and user.
        ("limited", lim, nginx("wide.test"), 200),
        ("limited", lim, nginx("narrow.test"), 403),
        ("modify", modi, nginx("narrow.test"), 200),
        // The attack: Host says narrow.test, a client's X-Forwarded-Host says wide.test.
        (
            "limited",
            lim,
            with(nginx("narrow.test"), &[("X-Forwarded-Host", "wide.test")]),
            400,
        ),
        // Host against an absolute X-Original-URL on another host.
        (
            "limited",
            lim,
            with(
                nginx("narrow.test"),
                &[("X-Original-URL", "http://wide.test/x")],
            ),
            400,
        ),
        // Agreeing descriptions spelled differently (case, default port): judged.
        (
            "limited",
            lim,
            with(
                nginx("WIDE.test:80"),
                &[
                    ("X-Forwarded-Host", "wide.TEST"),
                    ("X-Original-URL", "http://wide.test:80/x"),
                ],
            ),
            200,
        ),
        // The gateway's own address as Host (no app lives there) is ignored.
        ("limited", lim, traefik_wide, 200),
        ("limited", lim, traefik_narrow, 403),
    ];
    let mut wrong = Vec::new();
    for (who, cookie, headers, want) in &cases {
        let r = verify(&server, *cookie, headers);
        if r.status != *want {
            wrong.push(format!(
                "{who} {headers:?}: {} (want {want}) {}",
                r.status, r.body
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} host descriptions judged wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
