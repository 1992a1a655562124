//! OpenID Connect Back-Channel Logout, receiving side, against the test provider of `idp.rs`
//! (which signs logout tokens with its published key, or forges them): a logout token naming
//! a `sid` ends that sign-in only, one naming the `sub` ends every session of the person
//! through that provider; the same token twice, and every forged, misaddressed or malformed
//! token, is refused with a 400 and changes nothing.

use crate::harness::*;
use crate::idp::{Forge, Idp, Next};
use serde_json::{Value, json};

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn gateway(idp: &Idp) -> (Server, String) {
    let realm = idp.realm("corp", None, false);
    let server = Server::start_with(Options {
        sections: format!("{WHOAMI}{}", Idp::provider_toml("corp", "oidc", &realm)),
        ..Default::default()
    });
    server.admin_ok(&[
        "invite",
        "--email",
        "pat@acme.test",
        "--role",
        "limited@whoami",
        "--provider",
        "corp",
    ]);
    (server, realm)
}

/// Signs in through the provider with upstream session `sid`; the browser.
async fn signed_in_upstream(server: &Server, idp: &Idp, sid: &str) -> Browser {
    idp.next(Next::claims(json!({
        "sub": "pat-1", "email": "pat@acme.test", "email_verified": true, "sid": sid,
    })));
    let mut b = server.browser();
    let r = b.get("/.gatehouse/sso/corp?rd=%2Fwhoami%2F").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let at_idp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(r.location())
        .send()
        .await
        .unwrap();
    let callback = at_idp.headers()["location"].to_str().unwrap().to_string();
    let r = b.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get_json("/whoami/").await.status, 200);
    b
}

fn claims(realm: &str, extra: Value) -> Value {
    let now = crate::idp::now();
    let mut c = json!({
        "iss": realm, "aud": crate::idp::CLIENT_ID, "iat": now, "exp": now + 120,
        "jti": format!("jti-{}", unique("")), "events": { EVENT: {} },
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn post_logout(server: &Server, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!(
            "{}/.gatehouse/sso/corp/backchannel-logout",
            server.base
        ))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    (status, r.text().await.unwrap())
}

fn signed_in(status: u16) -> bool {
    status == 200
}

#[tokio::test]
async fn a_logout_token_ends_the_sign_in_it_names_once() {
    let idp = Idp::start();
    let (server, realm) = gateway(&idp);
    let mut first = signed_in_upstream(&server, &idp, "sid-1").await;
    let mut second = signed_in_upstream(&server, &idp, "sid-2").await;

    // By `sid`: that sign-in ends (its next request is not let through), the other stays.
    let token = idp.logout_token(claims(&realm, json!({"sid": "sid-1"})), Forge::Honest);
    let (status, body) = post_logout(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(!signed_in(first.get_json("/whoami/").await.status));
    assert!(signed_in(second.get_json("/whoami/").await.status));
    // The same token again: refused as a replay.
    let (status, body) = post_logout(&server, &token).await;
    assert_eq!(status, 400, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_request");

    // By `sub`: every session of the person through this provider ends.
    let mut third = signed_in_upstream(&server, &idp, "sid-3").await;
    let token = idp.logout_token(claims(&realm, json!({"sub": "pat-1"})), Forge::Honest);
    assert_eq!(post_logout(&server, &token).await.0, 200);
    assert!(!signed_in(second.get_json("/whoami/").await.status));
    assert!(!signed_in(third.get_json("/whoami/").await.status));
    // The person may sign in again: it was the sign-in that ended, not the account.
    signed_in_upstream(&server, &idp, "sid-4").await;

    let trail = server.admin_ok(&["audit", "--format", "json"]);
    let trail: Vec<Value> = serde_json::from_str(&trail).unwrap();
    let ended: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "session.revoke" && e["details"]["source"] == "backchannel")
        .collect();
    assert_eq!(ended.len(), 2, "{trail:#?}");
    assert_eq!(
        ended
            .iter()
            .map(|e| e["details"]["sessions_ended"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    let trail = serde_json::to_string(&trail).unwrap();
    assert!(trail.contains("logout_token_replayed"), "{trail}");
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "gatehouse_deprovisioning_total{source=\"backchannel\",step=\"sessions_ended\"} 3"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn forged_misaddressed_and_malformed_logout_tokens_are_refused() {
    let idp = Idp::start();
    let (server, realm) = gateway(&idp);
    let mut b = signed_in_upstream(&server, &idp, "sid-1").await;
    let sid = json!({"sid": "sid-1"});
    let cases: Vec<(&str, String)> = vec![
        (
            "tampered",
            idp.logout_token(claims(&realm, sid.clone()), Forge::TamperedPayload),
        ),
        (
            "alg none",
            idp.logout_token(claims(&realm, sid.clone()), Forge::AlgNone),
        ),
        (
            "HS256 keyed with the public key",
            idp.logout_token(claims(&realm, sid.clone()), Forge::Hs256PublicKey),
        ),
        (
            "a key never published",
            idp.logout_token(
                claims(&realm, sid.clone()),
                Forge::UnpublishedKey("other".into()),
            ),
        ),
        (
            "wrong iss",
            idp.logout_token(
                claims(
                    &realm,
                    json!({"sid": "sid-1", "iss": "http://127.0.0.1:1/evil"}),
                ),
                Forge::Honest,
            ),
        ),
        (
            "wrong aud",
            idp.logout_token(
                claims(&realm, json!({"sid": "sid-1", "aud": "someone-else"})),
                Forge::Honest,
            ),
        ),
        (
            "an ID token (nonce)",
            idp.logout_token(
                claims(&realm, json!({"sid": "sid-1", "nonce": "n"})),
                Forge::Honest,
            ),
        ),
        (
            "no events",
            idp.logout_token(
                claims(&realm, json!({"sid": "sid-1", "events": null})),
                Forge::Honest,
            ),
        ),
        (
            "other event",
            idp.logout_token(
                claims(&realm, json!({"sid": "sid-1", "events": {"urn:other": {}}})),
                Forge::Honest,
            ),
        ),
        (
            "issued long ago",
            idp.logout_token(
                claims(
                    &realm,
                    json!({"sid": "sid-1", "iat": crate::idp::now() - 7200, "exp": null}),
                ),
                Forge::Honest,
            ),
        ),
        (
            "issued in the future",
            idp.logout_token(
                claims(
                    &realm,
                    json!({"sid": "sid-1", "iat": crate::idp::now() + 3600}),
                ),
                Forge::Honest,
            ),
        ),
        (
            "expired",
            idp.logout_token(
                claims(
                    &realm,
                    json!({"sid": "sid-1", "exp": crate::idp::now() - 600}),
                ),
                Forge::Honest,
            ),
        ),
        (
            "neither sub nor sid",
            idp.logout_token(claims(&realm, json!({})), Forge::Honest),
        ),
        (
            "no jti",
            idp.logout_token(
                claims(&realm, json!({"sid": "sid-1", "jti": null})),
                Forge::Honest,
            ),
        ),
        (
            "sid not a string",
            idp.logout_token(claims(&realm, json!({"sid": 7})), Forge::Honest),
        ),
        ("not a JWT", "not.a.jwt".to_string()),
        ("garbage", "x".repeat(20_000)),
        ("empty", String::new()),
    ];
    for (what, token) in &cases {
        let (status, body) = post_logout(&server, token).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            signed_in(b.get_json("/whoami/").await.status),
            "{what} ended the session"
        );
    }
    // Not form-encoded, or no token at all.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/.gatehouse/sso/corp/backchannel-logout",
            server.base
        ))
        .header("content-type", "application/json")
        .body(json!({"logout_token": cases[0].1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An unknown provider.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/.gatehouse/sso/nosuch/backchannel-logout",
            server.base
        ))
        .form(&[("logout_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(signed_in(b.get_json("/whoami/").await.status));
    // And the honest token still works after all of that.
    let token = idp.logout_token(claims(&realm, sid), Forge::Honest);
    assert_eq!(post_logout(&server, &token).await.0, 200);
    assert!(!signed_in(b.get_json("/whoami/").await.status));
}
