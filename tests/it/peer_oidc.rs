//! The upstream OpenID provider peer (`peers::oidc`) behaves as a standards provider, checked
//! the way a relying party would, without Gatehouse: discovery, the authorization code flow with
//! PKCE S256 driven as a chosen account, the code exchange with the client's secret, the ID
//! token's signature and claims, RFC 9207 `iss`, refresh tokens, and signing-key rotation.
//! Gatehouse's upstream sign-in tests stand on these properties.

use crate::peers::oidc::*;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SECRET: &str = "peer-client-secret-1";

fn client() -> PeerClient {
    PeerClient::new("gatehouse", SECRET, REDIRECT)
}

/// Alice of example.com (a Google Workspace domain: `hd`), and Bob, whose address is not
/// verified and who has an extra claim.
fn two_accounts(config: PeerConfig) -> PeerConfig {
    let mut alice = account("alice-sub-1", "alice@example.com", "Alice Example");
    alice["hd"] = "example.com".into();
    let mut bob = account("bob-sub-2", "bob@elsewhere.test", "Bob Elsewhere");
    bob["email_verified"] = false.into();
    bob["groups"] = serde_json::json!(["staff"]);
    config.account("alice", alice).account("bob", bob)
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap()
}

async fn discovery(peer: &OidcPeer) -> Value {
    get_json(&peer.discovery_url()).await
}

/// The authorization request a relying party sends (`code_challenge` omitted when `None`).
fn authorization_url(
    disc: &Value,
    client_id: &str,
    state: &str,
    nonce: &str,
    challenge: Option<&str>,
) -> String {
    let mut url = url::Url::parse(disc["authorization_endpoint"].as_str().unwrap()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce);
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", "S256");
        }
    }
    url.to_string()
}

/// A token request authenticated as `client` with `secret`, per its auth method.
async fn token_request(
    disc: &Value,
    client: &PeerClient,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut fields = form.to_vec();
    let http = reqwest::Client::new();
    let mut req = http.post(disc["token_endpoint"].as_str().unwrap());
    match client.token_endpoint_auth_method {
        AuthMethod::ClientSecretBasic => req = req.basic_auth(&client.client_id, Some(secret)),
        AuthMethod::ClientSecretPost => {
            fields.push(("client_id", &client.client_id));
            fields.push(("client_secret", secret));
        }
        AuthMethod::None => fields.push(("client_id", &client.client_id)),
    }
    let r = req.form(&fields).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exchange_code(
    disc: &Value,
    client: &PeerClient,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    token_request(
        disc,
        client,
        client.client_secret.as_deref().unwrap_or_default(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// What a sign-in as `login` gives a relying party: the redirect, the token response, and the
/// ID token's verified header and claims.
struct SignedIn {
    response: AuthResponse,
    tokens: Value,
    header: Value,
    claims: Value,
}

/// The whole flow as a relying party does it, checking what every flow must satisfy.
async fn sign_in(peer: &OidcPeer, login: &str) -> SignedIn {
    let disc = discovery(peer).await;
    let client = &peer.config.clients[0];
    let (verifier, challenge) = pkce_pair();
    let (state, nonce) = (crate::harness::unique("st"), crate::harness::unique("n"));
    let url = authorization_url(&disc, &client.client_id, &state, &nonce, Some(&challenge));
    let response = peer.browser().sign_in(&url, login).await;
    assert_eq!(response.error(), None, "{}", response.url);
    assert_eq!(response.state().as_deref(), Some(state.as_str()));
    let code = response.code().expect("a code");
    let (status, tokens) = exchange_code(&disc, client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}\n{}", peer.logs());
    assert_eq!(tokens["token_type"], "Bearer");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let jwks = get_json(disc["jwks_uri"].as_str().unwrap()).await;
    let (header, claims) = verify_jws(id_token, &jwks).expect("ID token signed by a JWKS key");
    assert_eq!(claims["iss"], peer.issuer.as_str());
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert_eq!(claims["nonce"], nonce.as_str());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(claims["exp"].as_u64().unwrap() > now);
    SignedIn {
        response,
        tokens,
        header,
        claims,
    }
}

#[tokio::test]
async fn discovery_names_the_endpoints_s256_and_iss_and_publishes_only_public_keys() {
    let peer = OidcPeer::start(&two_accounts(PeerConfig::new(client())));
    let disc = discovery(&peer).await;
    assert_eq!(disc["issuer"], peer.issuer.as_str());
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
    ] {
        let url = disc[endpoint].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("{}/", peer.issuer)),
            "{endpoint}: {url:?}"
        );
    }
    assert_eq!(
        disc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert!(
        disc["response_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"code".into())
    );
    assert_eq!(disc["authorization_response_iss_parameter_supported"], true);
    let jwks = get_json(disc["jwks_uri"].as_str().unwrap()).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0]["kid"].as_str().is_some_and(|k| !k.is_empty()));
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(keys[0].get(private).is_none(), "JWKS leaks {private}");
    }
}

#[tokio::test]
async fn code_flow_with_pkce_signs_in_the_chosen_account_with_its_claims() {
    let mut config = two_accounts(PeerConfig::new(client()));
    config.refresh_tokens = true;
    let peer = OidcPeer::start(&config);

    let bob = sign_in(&peer, "bob").await;
    assert_eq!(bob.header["alg"], "RS256");
    assert_eq!(bob.response.iss().as_deref(), Some(peer.issuer.as_str()));
    assert_eq!(bob.claims["sub"], "bob-sub-2");
    assert_eq!(bob.claims["email"], "bob@elsewhere.test");
    assert_eq!(bob.claims["email_verified"], false);
    assert_eq!(bob.claims["name"], "Bob Elsewhere");
    assert_eq!(bob.claims["groups"], serde_json::json!(["staff"]));
    assert!(bob.claims.get("hd").is_none(), "{}", bob.claims);

    let alice = sign_in(&peer, "alice").await;
    assert_eq!(alice.claims["sub"], "alice-sub-1");
    assert_eq!(alice.claims["email"], "alice@example.com");
    assert_eq!(alice.claims["email_verified"], true);
    assert_eq!(alice.claims["hd"], "example.com");

    // The access token is Alice's at userinfo.
    let disc = discovery(&peer).await;
    let r = reqwest::Client::new()
        .get(disc["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(alice.tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], "alice-sub-1");
    assert_eq!(info["email"], "alice@example.com");

    // A refresh token, which the client's secret redeems for Alice's tokens again.
    let refresh = alice.tokens["refresh_token"]
        .as_str()
        .expect("a refresh token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, body) = token_request(&disc, &config.clients[0], "wrong-secret-x", &form).await;
    assert_eq!(
        status, 401,
        "a wrong client secret redeemed a refresh token: {body}"
    );
    let (status, refreshed) = token_request(&disc, &config.clients[0], SECRET, &form).await;
    assert_eq!(status, 200, "{refreshed}");
    let jwks = get_json(disc["jwks_uri"].as_str().unwrap()).await;
    let (_, claims) = verify_jws(refreshed["id_token"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(claims["sub"], "alice-sub-1");
    assert_ne!(refreshed["access_token"], alice.tokens["access_token"]);
}

#[tokio::test]
async fn without_iss_and_refresh_tokens_the_provider_sends_and_advertises_neither() {
    let mut c = client();
    c.token_endpoint_auth_method = AuthMethod::ClientSecretPost;
    let mut config = two_accounts(PeerConfig::new(c));
    config.iss_parameter = false;
    config.signing_alg = "ES256".to_string();
    let peer = OidcPeer::start(&config);
    let disc = discovery(&peer).await;
    assert_ne!(disc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        disc["token_endpoint_auth_methods_supported"]
            .as_array()
            .map(|a| a.contains(&"client_secret_post".into())),
        Some(true)
    );

    let alice = sign_in(&peer, "alice").await;
    assert_eq!(alice.response.iss(), None, "{}", alice.response.url);
    assert_eq!(alice.header["alg"], "ES256");
    assert_eq!(alice.claims["hd"], "example.com");
    assert!(
        alice.tokens.get("refresh_token").is_none(),
        "{}",
        alice.tokens
    );

    // The secret is checked in the form too.
    let (verifier, challenge) = pkce_pair();
    let url = authorization_url(&disc, "gatehouse", "s2", "n2", Some(&challenge));
    let code = peer.browser().sign_in(&url, "alice").await.code().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = token_request(&disc, &config.clients[0], "not-the-secret", &form).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn pkce_is_enforced_at_both_ends_and_codes_are_single_use() {
    let peer = OidcPeer::start(&two_accounts(PeerConfig::new(client())));
    let disc = discovery(&peer).await;
    let client = &peer.config.clients[0];

    // No code_challenge: refused, to the client, with its state.
    let url = authorization_url(&disc, "gatehouse", "s1", "n1", None);
    let r = peer.browser().sign_in(&url, "alice").await;
    assert_eq!(r.error().as_deref(), Some("invalid_request"), "{}", r.url);
    assert_eq!(r.state().as_deref(), Some("s1"));
    assert_eq!(r.code(), None);

    // A verifier that does not match the challenge: no tokens.
    let (_, challenge) = pkce_pair();
    let (other_verifier, _) = pkce_pair();
    let url = authorization_url(&disc, "gatehouse", "s2", "n2", Some(&challenge));
    let code = peer.browser().sign_in(&url, "alice").await.code().unwrap();
    let (status, body) = exchange_code(&disc, client, &code, &other_verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // The right verifier works once; the same code a second time does not.
    let (verifier, challenge) = pkce_pair();
    let url = authorization_url(&disc, "gatehouse", "s3", "n3", Some(&challenge));
    let code = peer.browser().sign_in(&url, "alice").await.code().unwrap();
    let (status, body) = exchange_code(&disc, client, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = exchange_code(&disc, client, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // With PKCE optional, a request without it gets a code.
    let mut config = two_accounts(PeerConfig::new(PeerClient::new(
        "gatehouse",
        SECRET,
        REDIRECT,
    )));
    config.pkce_required = false;
    let lax = OidcPeer::start(&config);
    let url = authorization_url(&discovery(&lax).await, "gatehouse", "s4", "n4", None);
    assert!(lax.browser().sign_in(&url, "bob").await.code().is_some());
}

#[tokio::test]
async fn the_person_can_cancel_and_an_unknown_account_cannot_sign_in() {
    let peer = OidcPeer::start(&two_accounts(PeerConfig::new(client())));
    let disc = discovery(&peer).await;
    let (_, challenge) = pkce_pair();
    let url = authorization_url(&disc, "gatehouse", "s1", "n1", Some(&challenge));

    let r = peer.browser().drive(&url, Choice::Cancel).await.unwrap();
    assert_eq!(r.error().as_deref(), Some("access_denied"), "{}", r.url);
    assert_eq!(r.state().as_deref(), Some("s1"));
    assert_eq!(r.code(), None);

    let err = peer
        .browser()
        .drive(&url, Choice::SignInAs("mallory"))
        .await
        .unwrap_err();
    assert!(err.contains("unknown account mallory"), "{err}");
}

#[tokio::test]
async fn after_rotation_new_tokens_carry_the_new_kid_under_the_same_issuer() {
    let mut config = two_accounts(PeerConfig::new(client()));
    config.refresh_tokens = true;
    let peer = OidcPeer::start(&config);
    let before = sign_in(&peer, "alice").await;
    let old_kid = before.header["kid"].as_str().unwrap().to_string();

    let rotation = peer.rotate_keys(true).await;
    assert_ne!(rotation.kid, old_kid);
    assert_eq!(rotation.kids, vec![rotation.kid.clone(), old_kid.clone()]);
    let disc = discovery(&peer).await;
    assert_eq!(disc["issuer"], peer.issuer.as_str());
    let jwks = get_json(disc["jwks_uri"].as_str().unwrap()).await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(published, vec![rotation.kid.as_str(), old_kid.as_str()]);

    let after = sign_in(&peer, "bob").await;
    assert_eq!(after.header["kid"], rotation.kid.as_str());
    assert_eq!(after.claims["sub"], "bob-sub-2");

    // State survives the rotation: Alice's earlier refresh token still works, signed anew.
    let refresh = before.tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, refreshed) = token_request(&disc, &config.clients[0], SECRET, &form).await;
    assert_eq!(status, 200, "{refreshed}\n{}", peer.logs());
    let (header, claims) = verify_jws(refreshed["id_token"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(header["kid"], rotation.kid.as_str());
    assert_eq!(claims["sub"], "alice-sub-1");

    // Retiring the previous keys: the old token no longer verifies against the new set.
    let second = peer.rotate_keys(false).await;
    assert_eq!(second.kids, vec![second.kid.clone()]);
    let jwks = get_json(disc["jwks_uri"].as_str().unwrap()).await;
    let old_token = before.tokens["id_token"].as_str().unwrap();
    let err = verify_jws(old_token, &jwks).unwrap_err();
    assert!(err.contains("not in the JWKS"), "{err}");
    assert_eq!(
        sign_in(&peer, "alice").await.header["kid"],
        second.kid.as_str()
    );
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_everything_under_it() {
    let mut config = two_accounts(PeerConfig::new(client()));
    config.issuer_path = "/tenant/a".to_string();
    let peer = OidcPeer::start(&config);
    assert!(peer.issuer.ends_with("/tenant/a"));
    let disc = discovery(&peer).await;
    assert_eq!(disc["issuer"], peer.issuer.as_str());
    assert!(
        disc["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/", peer.issuer))
    );
    let at_root = reqwest::get(format!("{}/.well-known/openid-configuration", peer.origin))
        .await
        .unwrap();
    assert_eq!(at_root.status(), 404);
    let alice = sign_in(&peer, "alice").await;
    assert_eq!(alice.response.iss().as_deref(), Some(peer.issuer.as_str()));
}

#[tokio::test]
async fn a_bad_configuration_fails_the_start_naming_each_key() {
    let mut c = client();
    c.client_secret = Some("short".to_string());
    let mut config = PeerConfig::new(c);
    config = config.account("eve", serde_json::json!({ "email_verified": "yes" }));
    let Err(err) = OidcPeer::try_start(&config) else {
        panic!("the provider accepted a 5-character client secret");
    };
    assert!(err.contains("clients[0]`.client_secret"), "{err}");
    assert!(err.contains("accounts.eve`.email_verified"), "{err}");
}

#[test]
fn a_missing_or_old_node_fails_saying_what_to_install() {
    let err = check_node("gatehouse-test-no-such-node").unwrap_err();
    assert!(
        err.contains("install Node.js 20 or later with npm"),
        "{err}"
    );

    let err = node_new_enough("node", "v18.19.0").unwrap_err();
    assert!(
        err.contains("`node` is v18.19.0") && err.contains("install Node.js 20"),
        "{err}"
    );
    let err = node_new_enough("node", "not a version").unwrap_err();
    assert!(err.contains("\"not a version\""), "{err}");
    node_new_enough("node", "v20.0.0").unwrap();
    node_new_enough("node", "v22.12.1").unwrap();

    check_node("node").expect("this machine's Node.js");
}
