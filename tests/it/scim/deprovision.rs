//! Deactivation from the attacker's side: a person deactivated upstream keeps no way in — not
//! the session they hold (on a connection kept alive too), not a new SSO sign-in, not
//! just-in-time creation — and reactivation gives back exactly what they had.

use super::*;
use crate::idp::Next;
use crate::raw::Client;

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in through `provider` as the provider's next claims say; returns the callback's page.
async fn sso(b: &mut Browser, provider: &str, rd: &str) -> Page {
    let r = b
        .get(&format!("/.gatehouse/sso/{provider}?rd={}", urlencode(rd)))
        .await;
    assert_eq!(r.status, 303, "start: {}", r.body);
    let at_idp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(r.location())
        .send()
        .await
        .unwrap();
    assert_eq!(at_idp.status(), 303);
    let callback = at_idp.headers()["location"].to_str().unwrap().to_string();
    b.get(&callback).await
}

fn claims(sub: &str, email: &str) -> Next {
    Next::claims(json!({ "sub": sub, "email": email, "email_verified": true, "name": "Pat" }))
}

fn last_sso(server: &Server) -> Value {
    audit(server)
        .into_iter()
        .rev()
        .find(|e| e["action"] == "signin.sso")
        .expect("a signin.sso event")
}

/// One request on the raw connection `c`; the status.
async fn whoami_on(c: &mut Client, cookie: &str) -> u16 {
    let head = c.head(
        "GET",
        "/whoami/",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
    );
    c.send(head).await;
    c.response(false).await.status
}

#[tokio::test]
async fn a_deactivated_user_is_refused_at_the_next_request_on_a_kept_alive_connection() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let id = scim.create("pat@corp.test", "e-pat", "Pat").await;
    server.admin_ok(&[
        "grant",
        "--user",
        "pat@corp.test",
        "--role",
        "limited",
        "--app",
        "whoami",
    ]);

    // Rule 3 of the admission: the provider that provisioned the address links its identity.
    idp.next(claims("entra-pat", "pat@corp.test"));
    let mut b = server.browser();
    let r = sso(&mut b, "entra", "/whoami/").await;
    assert_eq!(r.status, 303, "sign-in: {}", r.body);
    assert_eq!(last_sso(&server)["details"]["rule"], "scim_provisioned");
    let cookie = b.cookie_header();

    let mut c = Client::connect(&server).await;
    assert_eq!(whoami_on(&mut c, &cookie).await, 200);
    assert_eq!(whoami_on(&mut c, &cookie).await, 200, "kept alive");

    // Entra ID deactivates: PATCH with a capitalised op and a string boolean.
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // The very next request, on the same connection, is refused.
    let status = whoami_on(&mut c, &cookie).await;
    assert_eq!(
        status, 401,
        "the kept-alive connection still reached the app"
    );
    assert_eq!(b.get_json("/whoami/").await.status, 401);
    let shown = show(&server, "pat@corp.test");
    assert_eq!(shown["status"], "deprovisioned");
    assert_eq!(shown["sessions"], 0);
    assert!(
        audit(&server)
            .iter()
            .any(|e| e["action"] == "scim.user.deactivate"
                && e["actor"] == "scim:entra"
                && e["details"]["sessions_ended"] == 1)
    );

    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        r#"gatehouse_deprovisioning_total{source="scim",step="users_deactivated"} 1"#,
        r#"gatehouse_deprovisioning_total{source="scim",step="sessions_ended"} 1"#,
    ] {
        assert!(metrics.contains(want), "{want} in {metrics}");
    }

    // No new sign-in: the linked identity, or a new one of the same address.
    for sub in ["entra-pat", "entra-pat-2"] {
        idp.next(claims(sub, "pat@corp.test"));
        let mut again = server.browser();
        let r = sso(&mut again, "entra", "/whoami/").await;
        assert_eq!(r.status, 403, "{sub}: {}", r.body);
        assert_eq!(
            last_sso(&server)["details"]["reason"],
            "status_deprovisioned",
            "{sub}"
        );
    }

    // Reactivation gives the grants back (they were never removed).
    let r = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "Replace", "path": "active", "value": "True" }]),
        )
        .await;
    assert_eq!(r.body["active"], true, "{}", r.body);
    let shown = show(&server, "pat@corp.test");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["roles"][0]["role"], "limited");
    idp.next(claims("entra-pat", "pat@corp.test"));
    let mut back = server.browser();
    assert_eq!(sso(&mut back, "entra", "/whoami/").await.status, 303);
    assert_eq!(back.get_json("/whoami/").await.status, 200);
    assert!(
        audit(&server)
            .iter()
            .any(|e| e["action"] == "scim.user.reactivate")
    );
}

#[tokio::test]
async fn just_in_time_creation_does_not_resurrect_a_deleted_user_and_other_providers_do_not_link() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let id = scim.create("max@partner.test", "e-max", "Max").await;
    // An email organization lists the address and admits every provider.
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "partner",
        "--name",
        "Partner",
        "--email",
        "office@partner.test",
        "--access-by",
        "email",
        "--member",
        "max@partner.test",
        "--role",
        "limited",
    ]);
    // Okta did not provision Max: its identity does not link by rule 3 (the organization's
    // rule 4 admits the listed member, as it would anyone's provider it allows).
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 204);
    let shown = show(&server, "max@partner.test");
    assert_eq!(shown["status"], "deprovisioned", "kept for the audit trail");
    for (provider, sub) in [("entra", "e-1"), ("okta", "o-1")] {
        idp.next(claims(sub, "max@partner.test"));
        let mut b = server.browser();
        let r = sso(&mut b, provider, "/whoami/").await;
        assert_eq!(r.status, 403, "{provider}: {}", r.body);
        assert_eq!(
            last_sso(&server)["details"]["reason"],
            "status_deprovisioned"
        );
    }
    let users: Value = serde_json::from_str(&server.admin_ok(&["--json", "user", "list"])).unwrap();
    let maxes = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == "max@partner.test")
        .count();
    assert_eq!(maxes, 1, "not created again");
}

#[tokio::test]
async fn an_identity_of_another_provider_is_not_linked_by_provisioning() {
    let idp = Idp::start();
    let server = start(&idp, "");
    Scim::new(&server, ENTRA_TOKEN)
        .create("kai@corp.test", "e-kai", "Kai")
        .await;
    // Okta vouches for the same address: Entra provisioned it, so no link (rule 5 refuses).
    idp.next(claims("okta-kai", "kai@corp.test"));
    let mut b = server.browser();
    let r = sso(&mut b, "okta", "/").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(last_sso(&server)["details"]["reason"], "no_account");
    assert_eq!(
        show(&server, "kai@corp.test")["upstream_identities"],
        json!([])
    );
}

#[tokio::test]
async fn the_last_full_access_administrator_is_not_deprovisioned() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let id = scim.create("root@corp.test", "e-root", "Root").await;
    server.admin_ok(&["grant", "--user", "root@corp.test", "--role", "admin"]);
    let path = format!("/Users/{id}");
    let d = rfc_error(
        &scim
            .patch(
                &path,
                json!([{ "op": "replace", "value": { "active": false } }]),
            )
            .await,
        409,
        None,
    );
    assert!(d.contains("last full access administrator"), "{d}");
    let d = rfc_error(
        &scim
            .put(&path, &{
                let mut u = user("root@corp.test", "e-root", "Renamed");
                u["active"] = json!(false);
                u
            })
            .await,
        409,
        None,
    );
    assert!(d.contains("last full access administrator"), "{d}");
    rfc_error(&scim.delete(&path).await, 409, None);
    let shown = show(&server, "root@corp.test");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["name"], "Root", "a refused replace changes nothing");
    assert_eq!(scim.get(&path).await.status, 200);
    // With another full access administrator, it goes through.
    server.create_user("second@corp.test", GOOD_PASSWORD, &["admin"]);
    assert_eq!(scim.delete(&path).await.status, 204);
    assert_eq!(show(&server, "root@corp.test")["status"], "deprovisioned");
}
