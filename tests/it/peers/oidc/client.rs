//! The other side of the peer: a person at its pages ([`PeerBrowser`]) and what a relying
//! party checks (PKCE pair, JWS signatures).

use base64::Engine;
use serde_json::Value;
use std::time::Duration;

use super::OidcPeer;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("bad base64url: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Driving the sign-in as a person would, over plain HTTP.

/// The provider's answer to the client: the redirect to its `redirect_uri`.
#[derive(Clone, Debug)]
pub struct AuthResponse {
    pub url: url::Url,
}

impl AuthResponse {
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    pub fn code(&self) -> Option<String> {
        self.param("code")
    }
    pub fn state(&self) -> Option<String> {
        self.param("state")
    }
    pub fn iss(&self) -> Option<String> {
        self.param("iss")
    }
    pub fn error(&self) -> Option<String> {
        self.param("error")
    }
}

/// What the person does on the provider's pages.
#[derive(Clone, Copy, Debug)]
pub enum Choice<'a> {
    /// Signs in with this login name (a key of [`PeerConfig::accounts`]) and allows access.
    SignInAs(&'a str),
    /// Presses "Cancel" at the first page: the client gets `error=access_denied`.
    Cancel,
}

/// One cookie of the provider's (its cookies are scoped by path: one per interaction).
#[derive(Clone, Debug)]
struct Cookie {
    name: String,
    path: String,
    value: String,
}

/// A browser at the provider: keeps the provider's cookies (by name and path) across calls, so a
/// second sign-in may find a session there, as a person's browser would.
pub struct PeerBrowser {
    client: reqwest::Client,
    origin: url::Url,
    redirect_uris: Vec<String>,
    cookies: Vec<Cookie>,
}

/// Hops a sign-in may take (authorize, login page, login, resume, consent page, confirm,
/// resume, …) before it is taken for a loop.
const MAX_HOPS: usize = 16;

impl PeerBrowser {
    pub fn new(peer: &OidcPeer) -> PeerBrowser {
        PeerBrowser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            origin: url::Url::parse(&peer.origin).unwrap(),
            redirect_uris: peer
                .config
                .clients
                .iter()
                .flat_map(|c| c.redirect_uris.clone())
                .collect(),
            cookies: Vec::new(),
        }
    }

    /// Opens `authorization_url` (at the provider), signs in as `login`, allows access, and
    /// returns the redirect to the client (which may carry an `error` the provider chose).
    /// A browser that signed in before has a session at the provider, which then asks for
    /// nothing and answers as that account: take a fresh [`OidcPeer::browser`] for another one.
    pub async fn sign_in(&mut self, authorization_url: &str, login: &str) -> AuthResponse {
        self.drive(authorization_url, Choice::SignInAs(login))
            .await
            .unwrap_or_else(|e| panic!("sign-in at the OpenID provider as {login}: {e}"))
    }

    /// Follows the provider's redirects and answers its pages per `choice` until it sends the
    /// browser to a registered `redirect_uri`. `Err` with the page when the provider stops at
    /// anything else (an error page, a refused login).
    pub async fn drive(
        &mut self,
        authorization_url: &str,
        choice: Choice<'_>,
    ) -> Result<AuthResponse, String> {
        let mut url = url::Url::parse(authorization_url)
            .map_err(|e| format!("authorization URL {authorization_url:?}: {e}"))?;
        let mut form: Option<Vec<(&str, &str)>> = None;
        for _ in 0..MAX_HOPS {
            if url.origin() != self.origin.origin() {
                return Err(format!("{url} is not at the provider {}", self.origin));
            }
            let mut req = match &form {
                Some(fields) => self.client.post(url.clone()).form(fields),
                None => self.client.get(url.clone()),
            };
            if let Some(cookie) = self.cookie_header(url.path()) {
                req = req.header("cookie", cookie);
            }
            let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = r.status();
            self.keep_cookies(r.headers());
            if status.is_redirection() {
                let location = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| format!("{status} without Location from {url}"))?;
                let next = url
                    .join(location)
                    .map_err(|e| format!("Location {location:?}: {e}"))?;
                if next.origin() != self.origin.origin() {
                    let target = format!("{}{}", next.origin().ascii_serialization(), next.path());
                    if !self.redirect_uris.contains(&target) {
                        return Err(format!(
                            "the provider redirected to {next}, which is no registered redirect_uri"
                        ));
                    }
                    return Ok(AuthResponse { url: next });
                }
                url = next;
                form = None;
                continue;
            }
            let body = r.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(format!("{status} at {url}:\n{body}"));
            }
            let (id, fields): (&str, Vec<(&str, &str)>) = match choice {
                Choice::Cancel => ("abort", vec![]),
                Choice::SignInAs(login) if body.contains("<form id=\"login\"") => {
                    ("login", vec![("account", login)])
                }
                Choice::SignInAs(_) if body.contains("<form id=\"consent\"") => ("consent", vec![]),
                Choice::SignInAs(_) => {
                    return Err(format!(
                        "a page neither login nor consent at {url}:\n{body}"
                    ));
                }
            };
            let action = form_action(&body, id)
                .ok_or_else(|| format!("no <form id=\"{id}\"> action at {url}:\n{body}"))?;
            url = url
                .join(&action)
                .map_err(|e| format!("form action {action:?}: {e}"))?;
            form = Some(fields);
        }
        Err(format!(
            "no answer to the client after {MAX_HOPS} hops (at {url})"
        ))
    }

    /// Signs out at the provider: its `end_session_endpoint`, the confirmation page's form
    /// (`xsrf`) sent with `logout=yes`. The provider sends its back-channel logout tokens
    /// before it answers. Returns the status of the confirmation.
    pub async fn sign_out(&mut self, end_session_endpoint: &str) -> u16 {
        let url = url::Url::parse(end_session_endpoint).unwrap();
        let mut req = self.client.get(url.clone());
        if let Some(cookie) = self.cookie_header(url.path()) {
            req = req.header("cookie", cookie);
        }
        let r = req.send().await.expect("end_session_endpoint");
        self.keep_cookies(r.headers());
        let body = r.text().await.unwrap_or_default();
        let action = form_action(&body, "logout")
            .unwrap_or_else(|| panic!("no logout form at {url}:\n{body}"));
        let xsrf = body
            .split("name=\"xsrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no xsrf in the logout form:\n{body}"))
            .to_string();
        let confirm = url.join(&action).unwrap();
        let mut req = self
            .client
            .post(confirm.clone())
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")]);
        if let Some(cookie) = self.cookie_header(confirm.path()) {
            req = req.header("cookie", cookie);
        }
        let r = req.send().await.expect("confirm the sign-out");
        self.keep_cookies(r.headers());
        r.status().as_u16()
    }

    /// The cookies a browser sends to `path` of the provider.
    fn cookie_header(&self, path: &str) -> Option<String> {
        let matching: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| path_matches(&c.path, path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!matching.is_empty()).then(|| matching.join("; "))
    }

    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for set in headers.get_all("set-cookie") {
            let Ok(set) = set.to_str() else { continue };
            let mut parts = set.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_string();
            let mut expired = value.is_empty();
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.to_ascii_lowercase().as_str() {
                    "path" => path = v.to_string(),
                    "max-age" => expired |= v.trim() == "0" || v.starts_with('-'),
                    "expires" => expired |= v.contains("1970"),
                    _ => {}
                }
            }
            self.cookies.retain(|c| !(c.name == name && c.path == path));
            if !expired {
                self.cookies.push(Cookie {
                    name: name.to_string(),
                    path,
                    value: value.to_string(),
                });
            }
        }
    }
}

/// RFC 6265 §5.1.4: a cookie's path matches the request's path.
fn path_matches(cookie_path: &str, path: &str) -> bool {
    path == cookie_path
        || (path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
}

/// The `action` of `<form id="ID" … action="…">` in a page of `provider.mjs`.
fn form_action(body: &str, id: &str) -> Option<String> {
    let start = body.find(&format!("<form id=\"{id}\""))?;
    let tag = &body[start..start + body[start..].find('>')?];
    let a = tag.find("action=\"")? + "action=\"".len();
    let end = tag[a..].find('"')? + a;
    Some(tag[a..end].replace("&#38;", "&"))
}

// ---------------------------------------------------------------------------------------------
// PKCE and signatures, as a client does them.

/// RFC 7636: a fresh `code_verifier` and its S256 `code_challenge`.
pub fn pkce_pair() -> (String, String) {
    let verifier = b64(uuid::Uuid::new_v4().as_bytes()) + &b64(uuid::Uuid::new_v4().as_bytes());
    let challenge = b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

/// Verifies a compact JWS (RS256 or ES256) against a JWK set; returns its header and claims.
pub fn verify_jws(jws: &str, jwks: &Value) -> Result<(Value, Value), String> {
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
        UnparsedPublicKey,
    };
    let parts: Vec<&str> = jws.split('.').collect();
    let [head, body, sig] = parts[..] else {
        return Err("not a compact JWS".into());
    };
    let header: Value = serde_json::from_slice(&unb64(head)?).map_err(|e| e.to_string())?;
    let kid = header["kid"].as_str().ok_or("no kid in the header")?;
    let key = jwks["keys"]
        .as_array()
        .ok_or("no keys in the JWKS")?
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let field = |name: &str| unb64(key[name].as_str().unwrap_or_default());
    let signed = format!("{head}.{body}");
    let sig = unb64(sig)?;
    match (header["alg"].as_str(), key["kty"].as_str()) {
        (Some("RS256"), Some("RSA")) => RsaPublicKeyComponents {
            n: field("n")?,
            e: field("e")?,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &sig)
        .map_err(|_| "bad RS256 signature".to_string())?,
        (Some("ES256"), Some("EC")) if key["crv"] == "P-256" => {
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .verify(signed.as_bytes(), &sig)
                .map_err(|_| "bad ES256 signature".to_string())?
        }
        (alg, kty) => return Err(format!("alg {alg:?} with a key of type {kty:?}")),
    }
    let claims: Value = serde_json::from_slice(&unb64(body)?).map_err(|e| e.to_string())?;
    Ok((header, claims))
}
