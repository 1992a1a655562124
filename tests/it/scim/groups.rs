//! Groups → roles: `[[identity_provider.group_role]]` maps a provider's group (by name) to a
//! role on an app; membership changes by SCIM reach the proxy at the next request.

use super::*;
use crate::idp::Next;

fn server_with_groups(idp: &Idp) -> Server {
    let entra = Idp::provider_toml("entra", "oidc", &idp.realm("entra", None, false));
    let okta = Idp::provider_toml("okta", "oidc", &idp.realm("okta", None, false));
    Server::start_with(Options {
        sections: format!(
            "{entra}scim_token = \"{ENTRA_TOKEN}\"\n\
             [[identity_provider.group_role]]\ngroup = \"Sales\"\nrole = \"limited\"\napp = \"whoami\"\n\
             [[identity_provider.group_role]]\ngroup = \"Ghosts\"\nrole = \"no-such-role\"\n\
             [[identity_provider.group_role]]\ngroup = \"Admins\"\nrole = \"admin\"\n\
             {okta}scim_token = \"{OKTA_TOKEN}\"\n{WHOAMI}"
        ),
        ..Default::default()
    })
}

async fn signed_in_by_entra(server: &Server, idp: &Idp, email: &str) -> Browser {
    idp.next(Next::claims(
        json!({ "sub": format!("sub-{email}"), "email": email, "email_verified": true }),
    ));
    let mut b = server.browser();
    let r = b.get("/.gatehouse/sso/entra?rd=%2F").await;
    let at_idp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(r.location())
        .send()
        .await
        .unwrap();
    let callback = at_idp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(b.get(&callback).await.status, 303);
    b
}

#[tokio::test]
async fn group_membership_grants_and_takes_away_the_mapped_role_at_the_next_request() {
    let idp = Idp::start();
    let server = server_with_groups(&idp);
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let pat = scim.create("pat@corp.test", "e-pat", "Pat").await;
    let other = scim.create("lee@corp.test", "e-lee", "Lee").await;
    let mut b = signed_in_by_entra(&server, &idp, "pat@corp.test").await;
    assert_eq!(b.get_json("/whoami/").await.status, 403, "no role yet");

    let r = scim
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP_SCHEMA], "displayName": "Sales", "externalId": "g-sales",
                     "members": [{ "value": pat }] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["members"][0]["value"], pat.as_str());
    let seen = b.get_json("/whoami/").await;
    assert_eq!(seen.status, 200, "the group's role, at once: {}", seen.body);
    assert!(seen.body.contains("limited"), "{}", seen.body);
    assert!(
        show(&server, "pat@corp.test")["roles"]
            .to_string()
            .contains("limited")
    );

    let path = format!("/Groups/{gid}");
    // Entra ID removes a member by value ...
    let r = scim
        .patch(
            &path,
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": pat }] }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"], json!([]));
    assert_eq!(
        b.get_json("/whoami/").await.status,
        403,
        "removed: the role is gone"
    );
    // ... and adds members with Add.
    let r = scim
        .patch(&path, json!([{ "op": "Add", "path": "members", "value": [{ "value": pat }, { "value": other }] }]))
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2, "{}", r.body);
    assert_eq!(b.get_json("/whoami/").await.status, 200);
    // A value-path remove, as some clients send it.
    let r = scim
        .patch(
            &path,
            json!([{ "op": "remove", "path": format!("members[value eq \"{other}\"]") }]),
        )
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1, "{}", r.body);
    // A rename to an unmapped name takes the role away; Okta's path-less rename brings it back.
    let r = scim
        .patch(
            &path,
            json!([{ "op": "Replace", "path": "displayName", "value": "Marketing" }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(b.get_json("/whoami/").await.status, 403);
    scim.patch(
        &path,
        json!([{ "op": "replace", "value": { "id": gid, "displayName": "sales" } }]),
    )
    .await;
    assert_eq!(b.get_json("/whoami/").await.status, 200);

    // Lookups.
    let q: String = url::form_urlencoded::byte_serialize(br#"displayName eq "SALES""#).collect();
    let r = scim
        .get(&format!("/Groups?filter={q}&excludedAttributes=members"))
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert!(r.body["Resources"][0].get("members").is_none());
    // Refusals: a duplicate name, a member that is not this provider's user, bad input.
    rfc_error(
        &scim
            .post(
                "/Groups",
                &json!({ "schemas": [GROUP_SCHEMA], "displayName": "Sales" }),
            )
            .await,
        409,
        Some("uniqueness"),
    );
    let okta = Scim::new(&server, OKTA_TOKEN);
    let stranger = okta.create("sam@corp.test", "o-sam", "Sam").await;
    let d = rfc_error(
        &scim
            .patch(
                &path,
                json!([{ "op": "add", "path": "members", "value": [{ "value": stranger }] }]),
            )
            .await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("members"), "{d}");
    rfc_error(&okta.get(&path).await, 404, None);
    rfc_error(
        &scim
            .post("/Groups", &json!({ "schemas": [GROUP_SCHEMA] }))
            .await,
        400,
        Some("invalidValue"),
    );
    rfc_error(
        &scim.get("/Groups?filter=userName%20eq%20%22x%22").await,
        400,
        Some("invalidFilter"),
    );
    // A mapping to a role that does not exist grants nothing.
    let r = scim
        .post("/Groups", &json!({ "schemas": [GROUP_SCHEMA], "displayName": "Ghosts", "members": [{ "value": other }] }))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(show(&server, "lee@corp.test")["roles"], json!([]));

    // Delete: the members lose what it gave.
    assert_eq!(scim.delete(&path).await.status, 204);
    rfc_error(&scim.get(&path).await, 404, None);
    assert_eq!(b.get_json("/whoami/").await.status, 403);
    let actions: Vec<String> = audit(&server)
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .unwrap_or("")
                .starts_with("scim.group.")
        })
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "scim.group.create",
        "scim.group.update",
        "scim.group.delete",
    ] {
        assert!(actions.contains(&want.to_string()), "{want} in {actions:?}");
    }
}

#[tokio::test]
async fn a_group_change_never_takes_away_the_last_full_access_administrator() {
    let idp = Idp::start();
    let server = server_with_groups(&idp);
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let root = scim.create("root@corp.test", "e-root", "Root").await;
    let r = scim
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP_SCHEMA], "displayName": "Admins", "members": [{ "value": root }] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/Groups/{}", r.body["id"].as_str().unwrap());
    assert!(
        show(&server, "root@corp.test")["roles"]
            .to_string()
            .contains("admin")
    );
    for (what, reply) in [
        (
            "remove",
            scim.patch(
                &path,
                json!([{ "op": "Remove", "path": "members", "value": [{ "value": root }] }]),
            )
            .await,
        ),
        (
            "rename",
            scim.patch(
                &path,
                json!([{ "op": "Replace", "path": "displayName", "value": "Former admins" }]),
            )
            .await,
        ),
        ("delete", scim.delete(&path).await),
    ] {
        let d = rfc_error(&reply, 409, None);
        assert!(d.contains("last full access administrator"), "{what}: {d}");
    }
    assert_eq!(
        scim.get(&path).await.body["members"][0]["value"],
        root.as_str()
    );
    // With another full access administrator, the group may let go.
    server.create_user("second@corp.test", GOOD_PASSWORD, &["admin"]);
    let r = scim
        .patch(
            &path,
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": root }] }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !show(&server, "root@corp.test")["roles"]
            .to_string()
            .contains("admin")
    );
}
