//! SCIM 2.0 at `/scim/v2` from the provisioning client's side (and an attacker's): discovery,
//! bearer tokens, Users create/get/list(filter, pagination)/replace/delete, errors in the RFC
//! format; `deprovision`: what deactivation does to sessions, sign-in and the proxy; `replay`:
//! Entra ID's and Okta's sequences; `groups`: groups mapped to roles; `conformance`: a real
//! SCIM checker.

mod conformance;
mod deprovision;
mod groups;
mod replay;

use crate::harness::*;
use crate::idp::Idp;
use serde_json::{Value, json};

pub const ENTRA_TOKEN: &str = "entra-scim-token-0123456789abcdef";
pub const OKTA_TOKEN: &str = "okta-scim-token-0123456789abcdef";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub const WHOAMI: &str = r#"
[[app]]
id = "whoami"
host = "127.0.0.1:{PORT}"
path_prefix = "/whoami/"
upstream = "builtin:whoami"
allow_roles = ["limited"]
"#;

/// Two providers with SCIM tokens (`entra`, `okta`), on realms of `idp`, and the whoami app.
pub fn start(idp: &Idp, extra: &str) -> Server {
    let entra = Idp::provider_toml("entra", "oidc", &idp.realm("entra", None, false));
    let okta = Idp::provider_toml("okta", "oidc", &idp.realm("okta", None, false));
    Server::start_with(Options {
        sections: format!(
            "{entra}scim_token = \"{ENTRA_TOKEN}\"\n{okta}scim_token_env = \"OKTA_SCIM\"\n{extra}\n{WHOAMI}"
        ),
        env: vec![("OKTA_SCIM".into(), OKTA_TOKEN.into())],
        ..Default::default()
    })
}

/// A SCIM client with one provider's token.
pub struct Scim {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Scim {
    pub fn new(server: &Server, token: &str) -> Scim {
        Scim {
            base: format!("{}/scim/v2", server.base),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let r = rb.send().await.expect("scim request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Reply {
            status,
            body,
            content_type,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(&body.to_string())).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call("PUT", path, Some(&body.to_string())).await
    }
    pub async fn patch(&self, path: &str, ops: Value) -> Reply {
        let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": ops });
        self.call("PATCH", path, Some(&body.to_string())).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, None).await
    }
    /// `GET /Users?filter=…` (encoded here).
    pub async fn filter(&self, filter: &str) -> Reply {
        let q: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        self.get(&format!("/Users?filter={q}")).await
    }

    /// Creates a user; returns its id.
    pub async fn create(&self, user_name: &str, external_id: &str, display: &str) -> String {
        let r = self
            .post("/Users", &user(user_name, external_id, display))
            .await;
        assert_eq!(r.status, 201, "create {user_name}: {}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}

pub fn user(user_name: &str, external_id: &str, display: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": external_id,
        "displayName": display,
        "active": true,
        "emails": [{ "value": user_name, "type": "work", "primary": true }],
    })
}

/// An RFC 7644 §3.12 error: the status (also as a string in the body), the `scimType`, a
/// detail that says something, and the SCIM media type. Returns the detail.
pub fn rfc_error(r: &Reply, status: u16, scim_type: Option<&str>) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.content_type.starts_with("application/scim+json"),
        "{}",
        r.content_type
    );
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{}",
        r.body
    );
    assert_eq!(r.body["status"], status.to_string());
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap_or("").to_string();
    assert!(!detail.is_empty(), "{}", r.body);
    detail
}

pub fn show(server: &Server, email: &str) -> Value {
    serde_json::from_str(&server.admin_ok(&["--json", "user", "show", "--email", email])).unwrap()
}

pub fn audit(server: &Server) -> Vec<Value> {
    let v: Value = serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    v.as_array().cloned().unwrap_or_default()
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("a ListResponse: {}", r.body))
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn discovery_needs_a_providers_token_and_a_wrong_one_gets_401() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let entra = Scim::new(&server, ENTRA_TOKEN);
    for path in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"] {
        let r = entra.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.content_type.starts_with("application/scim+json"));
    }
    let spc = entra.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    let types = entra.get("/ResourceTypes").await.body;
    assert_eq!(types["Resources"][0]["endpoint"], "/Users");
    let schema = entra.get(&format!("/Schemas/{USER_SCHEMA}")).await;
    assert_eq!(schema.status, 200);
    assert_eq!(schema.body["attributes"][0]["name"], "userName");
    rfc_error(&entra.get("/Schemas/urn:nothing").await, 404, None);
    rfc_error(&entra.get("/NoSuchEndpoint").await, 404, None);

    // No token, a wrong one, one off by a character, another scheme: 401 with the challenge.
    let id = entra.create("ann@corp.test", "e-1", "Ann").await;
    for token in [
        "",
        "wrong",
        &ENTRA_TOKEN[..ENTRA_TOKEN.len() - 1],
        &format!("{ENTRA_TOKEN}x"),
    ] {
        let bad = Scim::new(&server, token);
        for path in ["/Users", &format!("/Users/{id}"), "/ServiceProviderConfig"] {
            let r = bad.get(path).await;
            rfc_error(&r, 401, None);
            assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"scim\"");
        }
        let r = bad.delete(&format!("/Users/{id}")).await;
        rfc_error(&r, 401, None);
    }
    let basic = reqwest::Client::new()
        .get(format!("{}/scim/v2/Users", server.base))
        .header("authorization", format!("Basic {ENTRA_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    // Served on the public host only: another host gets nothing, even with the token.
    let other_host = reqwest::Client::new()
        .get(format!("{}/scim/v2/Users", server.base))
        .header("host", format!("localhost:{}", server.port))
        .bearer_auth(ENTRA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other_host.status(), 404);
    // Nothing was deleted by the refused requests.
    assert_eq!(entra.get(&format!("/Users/{id}")).await.status, 200);

    // Another provider's token works, but sees none of Entra's users.
    let okta = Scim::new(&server, OKTA_TOKEN);
    rfc_error(&okta.get(&format!("/Users/{id}")).await, 404, None);
    rfc_error(
        &okta
            .patch(
                &format!("/Users/{id}"),
                json!([{ "op": "replace", "path": "active", "value": false }]),
            )
            .await,
        404,
        None,
    );
    rfc_error(&okta.delete(&format!("/Users/{id}")).await, 404, None);
    assert_eq!(okta.get("/Users").await.body["totalResults"], 0);
    assert_eq!(show(&server, "ann@corp.test")["status"], "active");
    // The token never reaches the logs.
    let logs = server.logs();
    assert!(
        logs.contains("scim request with an unknown bearer token"),
        "logs captured"
    );
    assert!(!logs.contains(ENTRA_TOKEN) && !logs.contains(OKTA_TOKEN));
}

#[tokio::test]
async fn users_are_created_read_listed_with_filters_and_pages_replaced_and_deleted() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let mut ids_made = Vec::new();
    for (i, (u, name)) in [
        ("Ann@Corp.test", "Ann Archer"),
        ("bob@corp.test", "Bob Baker"),
        ("cy@other.test", "Cy Carter"),
        ("dee@corp.test", "Dee Dane"),
        ("eve@other.test", "Eve Evans"),
    ]
    .iter()
    .enumerate()
    {
        ids_made.push(scim.create(u, &format!("ext-{i}"), name).await);
    }
    // Read back: what was sent, with what Gatehouse decides.
    let r = scim.get(&format!("/Users/{}", ids_made[0])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["userName"], "Ann@Corp.test");
    assert_eq!(r.body["externalId"], "ext-0");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["emails"][0]["type"], "work");
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert!(
        r.body["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&ids_made[0])
    );
    assert_eq!(show(&server, "ann@corp.test")["name"], "Ann Archer");

    let cases: &[(&str, &[&str])] = &[
        (r#"userName eq "ann@corp.TEST""#, &["Ann@Corp.test"]),
        (r#"externalId eq "ext-3""#, &["dee@corp.test"]),
        (r#"externalId eq "EXT-3""#, &[]),
        (
            r#"emails.value co "@other""#,
            &["cy@other.test", "eve@other.test"],
        ),
        (
            r#"emails[value ew "corp.test"]"#,
            &["Ann@Corp.test", "bob@corp.test", "dee@corp.test"],
        ),
        (r#"displayName sw "b""#, &["bob@corp.test"]),
        (
            r#"userName ne "bob@corp.test" and emails.value co "corp""#,
            &["Ann@Corp.test", "dee@corp.test"],
        ),
        (
            r#"(externalId eq "ext-1" or externalId eq "ext-4") and active eq true"#,
            &["bob@corp.test", "eve@other.test"],
        ),
        (
            r#"not (emails.value co "corp")"#,
            &["cy@other.test", "eve@other.test"],
        ),
        ("active eq false", &[]),
        (
            "externalId pr",
            &[
                "Ann@Corp.test",
                "bob@corp.test",
                "cy@other.test",
                "dee@corp.test",
                "eve@other.test",
            ],
        ),
        (r#"userName eq "nobody@corp.test""#, &[]),
        // A quote inside the value is a value, not SQL.
        (r#"userName eq "x' OR '1'='1""#, &[]),
    ];
    for (f, want) in cases {
        let r = scim.filter(f).await;
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        assert_eq!(ids(&r), *want, "{f}");
        assert_eq!(r.body["totalResults"], want.len(), "{f}");
    }
    // Pages: startIndex from 1, count per page, the total every time.
    let r = scim.get("/Users?startIndex=2&count=2").await;
    assert_eq!(ids(&r), ["bob@corp.test", "cy@other.test"]);
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["startIndex"], 2);
    assert_eq!(r.body["itemsPerPage"], 2);
    let r = scim.get("/Users?startIndex=5&count=10").await;
    assert_eq!(ids(&r), ["eve@other.test"]);
    let r = scim.get("/Users?count=0").await;
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["Resources"], json!([]));
    // attributes= returns only what is asked (and id).
    let r = scim
        .get(&format!("/Users/{}?attributes=userName", ids_made[1]))
        .await;
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["id", "schemas", "userName"].contains(&k.as_str())),
        "{keys:?}"
    );

    // Replace: the whole resource; the account follows.
    let mut replaced = user("bob@corp.test", "ext-1", "Robert Baker");
    replaced["name"] = json!({ "givenName": "Robert" });
    let r = scim
        .put(&format!("/Users/{}", ids_made[1]), &replaced)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Robert Baker");
    assert_eq!(r.body["name"]["givenName"], "Robert");
    assert_eq!(show(&server, "bob@corp.test")["name"], "Robert Baker");
    // Replacing with another user's userName or externalId: 409 uniqueness.
    let r = scim
        .put(
            &format!("/Users/{}", ids_made[1]),
            &user("bob@corp.test", "ext-0", "B"),
        )
        .await;
    rfc_error(&r, 409, Some("uniqueness"));

    // Duplicates on create.
    rfc_error(
        &scim
            .post("/Users", &user("ann@corp.test", "ext-new", "A"))
            .await,
        409,
        Some("uniqueness"),
    );
    rfc_error(
        &scim
            .post("/Users", &user("new@corp.test", "ext-0", "A"))
            .await,
        409,
        Some("uniqueness"),
    );
    // An account made here (not by this provider) is not taken over.
    server.create_user("local@corp.test", GOOD_PASSWORD, &[]);
    let d = rfc_error(
        &scim
            .post("/Users", &user("local@corp.test", "ext-l", "L"))
            .await,
        409,
        Some("uniqueness"),
    );
    assert!(d.contains("exists already"), "{d}");
    // ... nor one that another provider provisioned.
    let okta = Scim::new(&server, OKTA_TOKEN);
    rfc_error(
        &okta
            .post("/Users", &user("ann@corp.test", "o-1", "A"))
            .await,
        409,
        Some("uniqueness"),
    );

    // Delete: gone for SCIM, kept (deprovisioned) for the audit trail.
    let r = scim.delete(&format!("/Users/{}", ids_made[2])).await;
    assert_eq!(r.status, 204);
    rfc_error(
        &scim.get(&format!("/Users/{}", ids_made[2])).await,
        404,
        None,
    );
    rfc_error(
        &scim.delete(&format!("/Users/{}", ids_made[2])).await,
        404,
        None,
    );
    assert_eq!(scim.get("/Users").await.body["totalResults"], 4);
    assert_eq!(show(&server, "cy@other.test")["status"], "deprovisioned");
    // The same provider creating it again gets the account back, the same id.
    let r = scim
        .post("/Users", &user("cy@other.test", "ext-2b", "Cy"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["id"], ids_made[2].as_str());
    assert_eq!(show(&server, "cy@other.test")["status"], "active");

    let actions: Vec<String> = audit(&server)
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("scim."))
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "scim.user.create scim:entra",
        "scim.user.update scim:entra",
        "scim.user.delete scim:entra",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
}

#[tokio::test]
async fn a_provisioned_user_joins_the_domain_organization_and_organization_addresses_are_refused() {
    let idp = Idp::start();
    let server = start(&idp, "");
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "acme",
        "--name",
        "Acme Ltd",
        "--email",
        "it@acme.test",
        "--access-by",
        "domain",
        "--domain",
        "acme.test",
    ]);
    let scim = Scim::new(&server, ENTRA_TOKEN);
    scim.create("zoe@acme.test", "z-1", "Zoe").await;
    assert_eq!(show(&server, "zoe@acme.test")["org"]["slug"], "acme");
    // The organization's own address can never sign in: no account may have it.
    let d = rfc_error(
        &scim
            .post("/Users", &user("it@acme.test", "z-2", "IT"))
            .await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("organization acme"), "{d}");
    // An Entra userName (a UPN) that is not the address: the primary email is the account's.
    let mut upn = user("zed.upn", "z-3", "Zed");
    upn["emails"] = json!([{ "value": "ZED@acme.test", "type": "work", "primary": true }]);
    let r = scim.post("/Users", &upn).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["userName"], "zed.upn");
    assert_eq!(show(&server, "zed@acme.test")["org"]["slug"], "acme");
    let r = scim.filter(r#"emails.value eq "zed@ACME.test""#).await;
    assert_eq!(ids(&r), ["zed.upn"]);
    // A new address outside the domain leaves the organization (its rights came with the
    // address); back in the domain, the member again.
    let zed = r.body["Resources"][0]["id"].as_str().unwrap().to_string();
    let moved = scim
        .patch(
            &format!("/Users/{zed}"),
            json!([{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "zed@elsewhere.test" }]),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(show(&server, "zed@elsewhere.test")["org"], Value::Null);
    scim.patch(
        &format!("/Users/{zed}"),
        json!([{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "zed@acme.test" }]),
    )
    .await;
    assert_eq!(show(&server, "zed@acme.test")["org"]["slug"], "acme");
}

#[tokio::test]
async fn malformed_filters_and_bodies_get_rfc_400s_never_500s() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let scim = Scim::new(&server, ENTRA_TOKEN);
    let id = scim.create("ann@corp.test", "e-1", "Ann").await;
    for f in [
        "userName",
        r#"userName eq "unterminated"#,
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        r#"userName eq "a" and"#,
        "userName eq 42",
        r#"title eq "CEO""#,
        "active gt true",
        "\u{0}\u{7f}((([[[",
    ] {
        let d = rfc_error(&scim.filter(f).await, 400, Some("invalidFilter"));
        assert!(
            !d.contains("lalrpop") && !d.contains("Unrecognized"),
            "{f}: {d}"
        );
    }
    rfc_error(
        &scim.get("/Users?count=ten").await,
        400,
        Some("invalidValue"),
    );
    rfc_error(
        &scim.get("/Users?startIndex=1.5").await,
        400,
        Some("invalidValue"),
    );
    let raw = |body: &'static str| scim.call("POST", "/Users", Some(body));
    rfc_error(&raw("{not json").await, 400, Some("invalidSyntax"));
    rfc_error(&raw("[1, 2]").await, 400, Some("invalidSyntax"));
    rfc_error(&raw("").await, 400, Some("invalidSyntax"));
    let d = rfc_error(
        &raw(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}"#).await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("userName"), "{d}");
    let d = rfc_error(
        &raw(r#"{"userName": "x@corp.test"}"#).await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("schemas"), "{d}");
    let d = rfc_error(
        &raw(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@corp.test", "active": "maybe"}"#).await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("active"), "{d}");
    let d = rfc_error(
        &raw(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "not-an-address"}"#).await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("email"), "{d}");
    let d = rfc_error(
        &raw(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 7}"#).await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("userName"), "{d}");
    let wrong_type = reqwest::Client::new()
        .post(format!("{}/Users", scim.base))
        .bearer_auth(ENTRA_TOKEN)
        .header("content-type", "text/plain")
        .body(user("y@corp.test", "y", "Y").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);

    // PATCH: the operation named in the error.
    let path = format!("/Users/{id}");
    let d = rfc_error(
        &scim
            .patch(
                &path,
                json!([{ "op": "jump", "path": "active", "value": false }]),
            )
            .await,
        400,
        Some("invalidValue"),
    );
    assert!(d.contains("Operations[0].op"), "{d}");
    rfc_error(
        &scim
            .patch(
                &path,
                json!([{ "op": "replace", "path": "emails[type eq", "value": "x" }]),
            )
            .await,
        400,
        Some("invalidPath"),
    );
    rfc_error(
        &scim.patch(&path, json!([{ "op": "remove" }])).await,
        400,
        Some("noTarget"),
    );
    rfc_error(
        &scim
            .patch(
                &path,
                json!([{ "op": "replace", "path": "userName", "value": "" }]),
            )
            .await,
        400,
        Some("invalidValue"),
    );
    rfc_error(
        &scim
            .call("PATCH", &path, Some(r#"{"Operations": []}"#))
            .await,
        400,
        Some("invalidValue"),
    );
    // Nothing changed through any of them.
    let r = scim.get(&path).await;
    assert_eq!(r.body["userName"], "ann@corp.test");
    assert_eq!(r.body["active"], true);
    assert!(
        !server.logs().contains("internal error") && !server.logs().contains("scim request failed")
    );
}
