//! A small OpenID provider inside the test binary, for what a real provider would never send:
//! forged, unsigned, HMAC-signed, mis-addressed, expired tokens, Microsoft's multi-tenant
//! issuer template, key rotation. It serves any number of *realms* under one loopback port
//! (`/{realm}/.well-known/openid-configuration`, `/{realm}/authorize`, `/{realm}/token`,
//! `/{realm}/jwks`, `/{realm}/userinfo`), signs with ES256 keys of its own (ring), checks the
//! client's secret, the redirect URI and the PKCE verifier at the token endpoint, and counts
//! discovery and JWKS fetches. What the next sign-in returns is set by the test
//! ([`Idp::next`]): the claims, and how the ID token is (mis)made.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "gatehouse-test";
pub const CLIENT_SECRET: &str = "idp-client-secret-for-tests";

/// How the next ID token is made.
#[derive(Clone, Debug, PartialEq)]
pub enum Forge {
    /// Signed with the current key.
    Honest,
    /// Signed, then one byte of the payload changed.
    TamperedPayload,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 with the provider's public key (its JWK, as published) as the MAC key.
    Hs256PublicKey,
    /// Signed with a key the provider never published, under this `kid`.
    UnpublishedKey(String),
}

/// What the next authorization returns.
#[derive(Clone)]
pub struct Next {
    /// Claims of the ID token over the defaults (`iss`, `aud`, `sub`, `iat`, `exp`, `nonce`);
    /// `null` removes a default.
    pub claims: Value,
    pub forge: Forge,
    /// Claims served at userinfo (with the same `sub` unless set).
    pub userinfo: Option<Value>,
    pub refresh_token: Option<String>,
    /// The `iss` of the authorization response (RFC 9207) instead of the realm's.
    pub response_iss: Option<String>,
}

impl Next {
    pub fn claims(claims: Value) -> Next {
        Next {
            claims,
            forge: Forge::Honest,
            userinfo: None,
            refresh_token: None,
            response_iss: None,
        }
    }
    pub fn forge(mut self, f: Forge) -> Next {
        self.forge = f;
        self
    }
}

#[derive(Clone)]
pub struct Realm {
    /// The issuer discovery announces (Microsoft multi-tenant: the `{tenantid}` template).
    pub issuer: String,
    /// RFC 9207: `authorization_response_iss_parameter_supported`, and `iss` sent.
    pub iss_parameter: bool,
    pub auth_methods: Vec<String>,
}

struct Key {
    kid: String,
    pair: EcdsaKeyPair,
    jwk: Value,
}

struct Grant {
    realm: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
    next: Next,
}

#[derive(Default)]
struct State {
    realms: HashMap<String, Realm>,
    keys: Vec<Key>,
    next: Option<Next>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, Value>,
    pub jwks_fetches: usize,
    pub discovery_fetches: usize,
    /// The authorization requests seen (their query).
    pub authorize_requests: Vec<HashMap<String, String>>,
}

pub struct Idp {
    pub port: u16,
    pub base: String,
    state: Arc<Mutex<State>>,
}

fn new_key(kid: &str) -> Key {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
    });
    Key {
        kid: kid.to_string(),
        pair,
        jwk,
    }
}

fn es256(key: &Key, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = key
        .pair
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

/// A JWS of `claims` with `key`, made as `forge` says (`typ` in the header).
fn make_token(key: &Key, typ: &str, claims: &Value, forge: &Forge) -> String {
    let header = json!({"alg": "ES256", "typ": typ, "kid": key.kid});
    match forge {
        Forge::Honest => es256(key, &header, claims),
        Forge::TamperedPayload => {
            let good = es256(key, &header, claims);
            let parts: Vec<&str> = good.split('.').collect();
            let mut forged = claims.clone();
            forged["sub"] = json!(format!("{}-x", claims["sub"].as_str().unwrap_or("")));
            format!(
                "{}.{}.{}",
                parts[0],
                B64.encode(forged.to_string()),
                parts[2]
            )
        }
        Forge::AlgNone => format!(
            "{}.{}.",
            B64.encode(json!({"alg": "none", "typ": typ}).to_string()),
            B64.encode(claims.to_string())
        ),
        Forge::Hs256PublicKey => {
            let h = json!({"alg": "HS256", "typ": typ, "kid": key.kid});
            let input = format!(
                "{}.{}",
                B64.encode(h.to_string()),
                B64.encode(claims.to_string())
            );
            let mac_key =
                ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.jwk.to_string().as_bytes());
            let tag = ring::hmac::sign(&mac_key, input.as_bytes());
            format!("{input}.{}", B64.encode(tag.as_ref()))
        }
        Forge::UnpublishedKey(kid) => {
            let other = new_key(kid);
            es256(
                &other,
                &json!({"alg": "ES256", "typ": typ, "kid": kid}),
                claims,
            )
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Idp {
    /// Starts the provider on its own thread and runtime (the test's runtime may block on
    /// the CLI while the gateway talks to the provider).
    pub fn start() -> Idp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            keys: vec![new_key("key-1")],
            ..Default::default()
        }));
        let base = format!("http://127.0.0.1:{port}");
        let s = state.clone();
        let b = base.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app =
                    axum::Router::new().fallback(move |req| handle(s.clone(), b.clone(), req));
                axum::serve(listener, app).await.unwrap();
            });
        });
        Idp { port, base, state }
    }

    /// Adds a realm at `/{path}` whose discovery announces `issuer` (default: its own URL).
    pub fn realm(&self, path: &str, issuer: Option<&str>, iss_parameter: bool) -> String {
        let url = format!("{}/{path}", self.base);
        self.state.lock().unwrap().realms.insert(
            path.to_string(),
            Realm {
                issuer: issuer.map(str::to_string).unwrap_or_else(|| url.clone()),
                iss_parameter,
                auth_methods: vec!["client_secret_basic".into(), "client_secret_post".into()],
            },
        );
        url
    }

    pub fn set_auth_methods(&self, path: &str, methods: &[&str]) {
        let mut s = self.state.lock().unwrap();
        s.realms.get_mut(path).unwrap().auth_methods =
            methods.iter().map(|m| m.to_string()).collect();
    }

    /// What the next authorization (any realm) returns.
    pub fn next(&self, next: Next) {
        self.state.lock().unwrap().next = Some(next);
    }

    /// Publishes a new key (new `kid`) and signs with it from now on; the old one is dropped.
    pub fn rotate(&self, kid: &str) {
        let mut s = self.state.lock().unwrap();
        s.keys = vec![new_key(kid)];
    }

    /// A token of `claims` signed (or forged) as a logout token (`typ` `logout+jwt`) with the
    /// current key.
    pub fn logout_token(&self, claims: Value, forge: Forge) -> String {
        let s = self.state.lock().unwrap();
        make_token(s.keys.last().unwrap(), "logout+jwt", &claims, &forge)
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.lock().unwrap().discovery_fetches
    }

    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().authorize_requests.clone()
    }

    /// The `[[identity_provider]]` table of an `oidc`/`google` provider on `realm_url`.
    pub fn provider_toml(id: &str, kind: &str, realm_url: &str) -> String {
        format!(
            "\n[[identity_provider]]\nid = \"{id}\"\nkind = \"{kind}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nissuer = \"{realm_url}\"\n"
        )
    }
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn json_response(status: u16, v: Value) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(v.to_string()))
        .unwrap()
}

async fn handle(
    state: Arc<Mutex<State>>,
    base: String,
    req: axum::extract::Request,
) -> axum::response::Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    let query = req.uri().query().map(str::to_string);
    let auth_header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let endpoints = [
        ".well-known/openid-configuration",
        "authorize",
        "token",
        "jwks",
        "userinfo",
    ];
    let Some((realm, endpoint)) = endpoints.iter().find_map(|e| {
        path.strip_suffix(e)
            .map(|r| (r.trim_end_matches('/').to_string(), *e))
    }) else {
        return json_response(404, json!({"error": "not_found"}));
    };
    let mut s = state.lock().unwrap();
    let Some(r) = s.realms.get(&realm).cloned() else {
        return json_response(404, json!({"error": "no such realm"}));
    };
    let url = format!("{base}/{realm}");
    match endpoint {
        ".well-known/openid-configuration" => {
            s.discovery_fetches += 1;
            json_response(
                200,
                json!({
                    "issuer": r.issuer,
                    "authorization_endpoint": format!("{url}/authorize"),
                    "token_endpoint": format!("{url}/token"),
                    "userinfo_endpoint": format!("{url}/userinfo"),
                    "jwks_uri": format!("{url}/jwks"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                    "token_endpoint_auth_methods_supported": r.auth_methods,
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": r.iss_parameter,
                }),
            )
        }
        "jwks" => {
            s.jwks_fetches += 1;
            json_response(
                200,
                json!({ "keys": s.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }),
            )
        }
        "authorize" => {
            let q = query_map(query.as_deref());
            s.authorize_requests.push(q.clone());
            let next = s
                .next
                .clone()
                .unwrap_or_else(|| Next::claims(json!({"sub": "nobody"})));
            if q.get("response_type").map(String::as_str) != Some("code")
                || q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
                || q.get("code_challenge_method").map(String::as_str) != Some("S256")
            {
                return json_response(400, json!({"error": "invalid_request"}));
            }
            let code = B64.encode(
                ring::rand::generate::<[u8; 16]>(&SystemRandom::new())
                    .unwrap()
                    .expose(),
            );
            let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
            s.codes.insert(
                code.clone(),
                Grant {
                    realm: realm.clone(),
                    redirect_uri: redirect_uri.clone(),
                    challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                    nonce: q.get("nonce").cloned().unwrap_or_default(),
                    next: next.clone(),
                },
            );
            let mut to = url::Url::parse(&redirect_uri).unwrap();
            to.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
            if r.iss_parameter || next.response_iss.is_some() {
                let iss = next.response_iss.clone().unwrap_or(r.issuer.clone());
                to.query_pairs_mut().append_pair("iss", &iss);
            }
            axum::response::Response::builder()
                .status(303)
                .header("location", to.as_str())
                .body(axum::body::Body::empty())
                .unwrap()
        }
        "token" => {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            // Client authentication: Basic (RFC 6749 §2.3.1, form-encoded parts) or post.
            let (id, secret) = match auth_header
                .as_deref()
                .and_then(|h| h.strip_prefix("Basic "))
            {
                Some(b) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .unwrap_or_default();
                    let text = String::from_utf8(decoded).unwrap_or_default();
                    let (i, p) = text.split_once(':').unwrap_or(("", ""));
                    let dec = |v: &str| {
                        url::form_urlencoded::parse(format!("v={v}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default()
                    };
                    if !r.auth_methods.iter().any(|m| m == "client_secret_basic") {
                        return json_response(401, json!({"error": "invalid_client"}));
                    }
                    (dec(i), dec(p))
                }
                None => {
                    if !r.auth_methods.iter().any(|m| m == "client_secret_post") {
                        return json_response(401, json!({"error": "invalid_client"}));
                    }
                    (
                        form.get("client_id").cloned().unwrap_or_default(),
                        form.get("client_secret").cloned().unwrap_or_default(),
                    )
                }
            };
            if id != CLIENT_ID || secret != CLIENT_SECRET {
                return json_response(401, json!({"error": "invalid_client"}));
            }
            let Some(grant) = form.get("code").and_then(|c| s.codes.remove(c)) else {
                return json_response(400, json!({"error": "invalid_grant"}));
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let challenge = B64.encode(ring::digest::digest(
                &ring::digest::SHA256,
                verifier.as_bytes(),
            ));
            if grant.realm != realm
                || form.get("redirect_uri") != Some(&grant.redirect_uri)
                || challenge != grant.challenge
                || form.get("grant_type").map(String::as_str) != Some("authorization_code")
            {
                return json_response(400, json!({"error": "invalid_grant"}));
            }
            let t = now();
            let mut claims = json!({
                "iss": r.issuer, "aud": CLIENT_ID, "sub": "nobody",
                "iat": t, "exp": t + 300, "nonce": grant.nonce,
            });
            for (k, v) in grant.next.claims.as_object().cloned().unwrap_or_default() {
                if v.is_null() {
                    claims.as_object_mut().unwrap().remove(&k);
                } else {
                    claims[k] = v;
                }
            }
            let key = s.keys.last().unwrap();
            let id_token = make_token(key, "JWT", &claims, &grant.next.forge);
            let access = B64.encode(
                ring::rand::generate::<[u8; 16]>(&SystemRandom::new())
                    .unwrap()
                    .expose(),
            );
            let mut info = grant.next.userinfo.clone().unwrap_or(json!({}));
            if info.get("sub").is_none() {
                info["sub"] = claims["sub"].clone();
            }
            s.access.insert(access.clone(), info);
            let mut out = json!({"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token});
            if let Some(rt) = &grant.next.refresh_token {
                out["refresh_token"] = json!(rt);
            }
            json_response(200, out)
        }
        "userinfo" => {
            let token = auth_header
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
                .unwrap_or("");
            match s.access.get(token) {
                Some(info) => json_response(200, info.clone()),
                None => json_response(401, json!({"error": "invalid_token"})),
            }
        }
        _ => json_response(404, json!({})),
    }
}
