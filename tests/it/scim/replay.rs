//! The provisioning sequences Microsoft Entra ID and Okta really send, replayed request by
//! request (bodies as their documentation and logs show them).

use super::*;

#[tokio::test]
async fn entra_id_lookup_create_update_deactivate_delete() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, ENTRA_TOKEN);
    // 1. Entra looks the user up first (by its matching attribute, userName).
    let r = scim.filter(r#"userName eq "alice@contoso.test""#).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    // 2. Create, with the enterprise extension, `meta` and a title.
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7b2d7e9f1a11",
                "userName": "alice@contoso.test",
                "active": true,
                "displayName": "Alice Smith",
                "emails": [{ "primary": true, "type": "work", "value": "alice@contoso.test" }],
                "meta": { "resourceType": "User" },
                "name": { "formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice" },
                "title": "Engineer",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "R&D" }
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert!(created.headers["location"].to_str().unwrap().ends_with(&id));
    assert_eq!(created.body["title"], "Engineer");
    assert_eq!(
        created.body["schemas"],
        json!([
            USER_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ])
    );
    let path = format!("/Users/{id}");
    // 3. Looked up again by userName, and by externalId.
    let r = scim.filter(r#"userName eq "alice@contoso.test""#).await;
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());
    let r = scim
        .filter(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7b2d7e9f1a11""#)
        .await;
    assert_eq!(r.body["totalResults"], 1);
    // 4. Attribute changes, Entra style: capitalised ops, a value path with a filter.
    let r = scim
        .patch(
            &path,
            json!([
                { "op": "Replace", "path": "displayName", "value": "Alice Jones" },
                { "op": "Replace", "path": "name.familyName", "value": "Jones" },
                { "op": "Add", "path": "emails[type eq \"work\"].value", "value": "alice@contoso.test" },
                { "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Platform" },
                { "op": "Replace", "path": "title", "value": "Staff Engineer" }
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Alice Jones");
    assert_eq!(r.body["name"]["familyName"], "Jones");
    assert_eq!(r.body["name"]["givenName"], "Alice");
    assert_eq!(
        r.body["emails"],
        json!([{ "primary": true, "type": "work", "value": "alice@contoso.test" }])
    );
    assert_eq!(
        r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Platform"
    );
    assert_eq!(show(&server, "alice@contoso.test")["name"], "Alice Jones");
    // 5. Soft delete: active "False".
    let r = scim
        .patch(
            &path,
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(
        show(&server, "alice@contoso.test")["status"],
        "deprovisioned"
    );
    let r = scim.filter("active eq false").await;
    assert_eq!(r.body["totalResults"], 1);
    // 6. Hard delete.
    assert_eq!(scim.delete(&path).await.status, 204);
    rfc_error(&scim.get(&path).await, 404, None);
    assert_eq!(
        scim.filter(r#"userName eq "alice@contoso.test""#)
            .await
            .body["totalResults"],
        0
    );
    assert_eq!(
        show(&server, "alice@contoso.test")["status"],
        "deprovisioned"
    );
    let actions: Vec<String> = audit(&server)
        .iter()
        .filter(|e| e["actor"] == "scim:entra")
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "scim.user.create",
            "scim.user.update",
            "scim.user.update",
            "scim.user.deactivate",
            "scim.user.delete"
        ]
    );
}

#[tokio::test]
async fn okta_create_deactivate_with_a_pathless_value_and_reactivate_by_put() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, OKTA_TOKEN);
    // Okta's lookup carries pagination.
    let q: String =
        url::form_urlencoded::byte_serialize(br#"userName eq "bo@okta.test""#).collect();
    let r = scim
        .get(&format!("/Users?filter={q}&startIndex=1&count=100"))
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // Okta sends a password with the user: never kept, never returned.
    let body = json!({
        "schemas": [USER_SCHEMA],
        "userName": "bo@okta.test",
        "name": { "givenName": "Bo", "familyName": "Diaz" },
        "emails": [{ "primary": true, "value": "bo@okta.test", "type": "work" }],
        "displayName": "Bo Diaz",
        "locale": "en-US",
        "externalId": "00u1ab2cd3EF4gh5i6j7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let r = scim.post("/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("password").is_none(), "{}", r.body);
    assert_eq!(r.body["locale"], "en-US");
    let id = r.body["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");
    assert_eq!(show(&server, "bo@okta.test")["password_set"], false);
    // Profile change and deactivation, the Okta way: no path, an object of attributes.
    let r = scim
        .patch(&path, json!([{ "op": "replace", "value": { "name": { "givenName": "Bob", "familyName": "Diaz" }, "displayName": "Bob Diaz" } }]))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Bob");
    let r = scim
        .patch(
            &path,
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(show(&server, "bo@okta.test")["status"], "deprovisioned");
    // Okta reactivates with a full PUT.
    let mut again = r.body.clone();
    again["active"] = json!(true);
    let r = scim.put(&path, &again).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["displayName"], "Bob Diaz");
    assert_eq!(show(&server, "bo@okta.test")["status"], "active");
}
