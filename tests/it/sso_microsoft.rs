//! Microsoft Entra ID's rules, against the test provider serving Entra's multi-tenant issuer
//! template (`{authority}/{tenantid}/v2.0`): the token's `iss` must be the template filled
//! with its own `tid`, `allowed_tenants` restricts directories, an address counts only with
//! `xms_edov` (or `trust_tenant_emails` on a provider pinned to one tenant), and the linked
//! identity is `tid:oid`.

use crate::harness::*;
use crate::idp::{CLIENT_ID, CLIENT_SECRET, Idp, Next};
use serde_json::{Value, json};

const TENANT_A: &str = "11111111-1111-4111-8111-111111111111";
const TENANT_B: &str = "22222222-2222-4222-8222-222222222222";
const TENANT_C: &str = "33333333-3333-4333-8333-333333333333";

/// A multi-tenant provider `entra` (tenant = organizations, A and B allowed) and a provider
/// `pinned` for tenant A alone with trust_tenant_emails.
fn start(idp: &Idp) -> Server {
    let authority = format!("{}/ms", idp.base);
    idp.realm(
        "ms/organizations/v2.0",
        Some(&format!("{authority}/{{tenantid}}/v2.0")),
        false,
    );
    idp.realm(&format!("ms/{TENANT_A}/v2.0"), None, false);
    let sections = format!(
        r#"
[[identity_provider]]
id = "entra"
kind = "microsoft"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
tenant = "organizations"
allowed_tenants = ["{TENANT_A}", "{TENANT_B}"]
authority = "{authority}"

[[identity_provider]]
id = "pinned"
kind = "microsoft"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
tenant = "{TENANT_A}"
trust_tenant_emails = true
authority = "{authority}"

[[app]]
id = "whoami"
host = "127.0.0.1:{{PORT}}"
path_prefix = "/whoami/"
upstream = "builtin:whoami"
allow_roles = ["limited"]
"#
    );
    Server::start_with(Options {
        sections,
        ..Default::default()
    })
}

fn claims(idp: &Idp, iss_tenant: &str, tid: &str, email: &str, edov: Option<bool>) -> Value {
    let mut c = json!({
        "iss": format!("{}/ms/{iss_tenant}/v2.0", idp.base),
        "sub": "pairwise-subject",
        "tid": tid,
        "oid": "aaaaaaaa-0000-4000-8000-000000000001",
        "email": email,
        "name": "Robin Entra",
    });
    if let Some(e) = edov {
        c["xms_edov"] = json!(e);
    }
    c
}

async fn sign_in(server: &Server, provider: &str) -> Page {
    let mut b = server.browser();
    let r = b
        .get(&format!("/.gatehouse/sso/{provider}?rd=/whoami/"))
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

fn last_failure(server: &Server) -> String {
    let v: Value = serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["action"] == "signin.sso" && e["outcome"] == "failure")
        .map(|e| e["details"]["reason"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_allowed_tenant_with_a_verified_domain_passes_and_links_tid_oid() {
    let idp = Idp::start();
    let server = start(&idp);
    server.admin_ok(&[
        "invite",
        "--email",
        "robin@contoso.test",
        "--role",
        "limited",
        "--provider",
        "entra",
    ]);
    idp.next(Next::claims(claims(
        &idp,
        TENANT_A,
        TENANT_A,
        "robin@contoso.test",
        Some(true),
    )));
    let r = sign_in(&server, "entra").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let show: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "robin@contoso.test",
    ]))
    .unwrap();
    assert_eq!(
        show["upstream_identities"][0]["subject"],
        format!("{TENANT_A}:aaaaaaaa-0000-4000-8000-000000000001")
    );
    // The link is by tid + oid: the same oid in another directory is someone else.
    idp.next(Next::claims(claims(
        &idp,
        TENANT_B,
        TENANT_B,
        "robin@contoso.test",
        Some(true),
    )));
    assert_eq!(sign_in(&server, "entra").await.status, 403);
    assert_eq!(last_failure(&server), "no_account");
}

#[tokio::test]
async fn issuer_tenant_and_unverified_address_are_refused() {
    let idp = Idp::start();
    let server = start(&idp);
    server.admin_ok(&[
        "invite",
        "--email",
        "robin@contoso.test",
        "--role",
        "limited",
        "--provider",
        "entra",
    ]);
    // A token of directory B presenting directory A's issuer.
    idp.next(Next::claims(claims(
        &idp,
        TENANT_A,
        TENANT_B,
        "robin@contoso.test",
        Some(true),
    )));
    assert_eq!(sign_in(&server, "entra").await.status, 400);
    assert_eq!(last_failure(&server), "id_token_issuer");
    // A directory that is not allowed, consistent issuer.
    idp.next(Next::claims(claims(
        &idp,
        TENANT_C,
        TENANT_C,
        "robin@contoso.test",
        Some(true),
    )));
    assert_eq!(sign_in(&server, "entra").await.status, 400);
    assert_eq!(last_failure(&server), "tenant_not_allowed");
    // The address without xms_edov, and with xms_edov = false: not proven.
    idp.next(Next::claims(claims(
        &idp,
        TENANT_A,
        TENANT_A,
        "robin@contoso.test",
        None,
    )));
    assert_eq!(sign_in(&server, "entra").await.status, 403);
    assert_eq!(last_failure(&server), "email_not_verified");
    idp.next(Next::claims(claims(
        &idp,
        TENANT_A,
        TENANT_A,
        "robin@contoso.test",
        Some(false),
    )));
    assert_eq!(sign_in(&server, "entra").await.status, 403);
    // No tid/oid at all.
    let mut c = claims(&idp, TENANT_A, TENANT_A, "robin@contoso.test", Some(true));
    c["tid"] = Value::Null;
    idp.next(Next::claims(c));
    assert_eq!(sign_in(&server, "entra").await.status, 400);
    assert_eq!(last_failure(&server), "microsoft_no_tid_oid");
    // Still nothing linked, the invitation still pending.
    assert!(server.admin_ok(&["invite", "list"]).contains("1 pending"));
}

#[tokio::test]
async fn trust_tenant_emails_on_a_single_tenant_provider_admits_without_xms_edov() {
    let idp = Idp::start();
    let server = start(&idp);
    server.admin_ok(&[
        "invite",
        "--email",
        "robin@contoso.test",
        "--role",
        "limited",
        "--provider",
        "pinned",
    ]);
    // Another directory's token at the pinned provider: its issuer is not the pinned one.
    idp.next(Next::claims(claims(
        &idp,
        TENANT_B,
        TENANT_B,
        "robin@contoso.test",
        None,
    )));
    assert_eq!(sign_in(&server, "pinned").await.status, 400);
    assert_eq!(last_failure(&server), "id_token_issuer");
    idp.next(Next::claims(claims(
        &idp,
        TENANT_A,
        TENANT_A,
        "robin@contoso.test",
        None,
    )));
    let r = sign_in(&server, "pinned").await;
    assert_eq!(r.status, 303, "{}", r.body);
}
