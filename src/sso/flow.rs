//! The browser's round trip through a provider: the authorization code flow (OpenID Connect
//! Core §3.1) with PKCE S256 (RFC 7636), `state` and `nonce`.
//!
//! `GET /.gatehouse/sso/{provider}?rd=…` keeps the request server-side (`sso_states`: the
//! state's hash, the provider, the nonce, the PKCE verifier sealed under the master key, the
//! return URL, 10 minutes, single use) and binds it to this browser with a short-lived
//! host-only cookie ([`BROWSER_COOKIE`], whose hash the row keeps). On an app host the start
//! first moves to the public host (the callback registered upstream is the public host's);
//! after sign-in the handoff brings the browser back.
//!
//! `GET /.gatehouse/sso/{provider}/callback` refuses, with one 400 page and an audit event,
//! a missing, unknown or spent state, a state whose browser cookie is missing or another, a
//! state started for another provider (mix-up: provider A's code delivered to B's callback),
//! an `error` answer, and — RFC 9207 — an `iss` that is not the provider's, or none when the
//! provider announces it sends one. Then the code is exchanged, the ID token validated
//! (`token`), the identity admitted (`admit`), and the session started like a local sign-in
//! (`auth::flow`: the second factor or enrolment follow when they apply), `amr` `sso:<id>`.

use super::Sso;
use super::admit;
use super::provider::Provider;
use super::token::{self, Failure, Refusal, UpstreamIdentity};
use crate::audit::{self, Actor};
use crate::crypto;
use crate::error::AppError;
use crate::store::{self, SsoStateRow};
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The cookie that binds an authorization request to the browser that started it.
pub const BROWSER_COOKIE: &str = "gatehouse_sso";
const STATE_TTL: i64 = 600;

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A random value as the gateway makes them (43 URL-safe base64 characters).
fn well_formed(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn browser_cookie(sso: &Sso, value: &str, max_age: i64) -> String {
    let mut c = format!(
        "{BROWSER_COOKIE}={value}; Path=/.gatehouse/sso/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    );
    if sso.config.public_is_https() {
        c.push_str("; Secure");
    }
    c
}

fn redirect_uri(sso: &Sso, provider: &str) -> String {
    sso.public_url(&format!("/.gatehouse/sso/{provider}/callback"))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(code_verifier))`.
fn s256(verifier: &str) -> String {
    crypto::b64(&crypto::sha256(verifier.as_bytes()))
}

fn provider<'a>(sso: &'a Sso, id: &str) -> Result<&'a Arc<Provider>, AppError> {
    sso.providers.get(id).ok_or(AppError::NotFound)
}

/// A `login_hint` worth passing on: an email address (OpenID Connect Core §3.1.2.1 leaves
/// its form to the provider; every provider we speak to takes an address).
fn login_hint(hint: &str) -> Option<&str> {
    let hint = hint.trim();
    (hint.len() <= 254 && crate::directory::valid_email(hint)).then_some(hint)
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    rd: String,
    /// The address typed at the sign-in page's email step, passed on to the provider.
    #[serde(default)]
    login_hint: String,
}

/// `GET /.gatehouse/sso/{provider}?rd=…`
pub async fn get_start(
    State(sso): State<Arc<Sso>>,
    Path(id): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<StartQuery>,
) -> Result<Response, AppError> {
    let p = provider(&sso, &id)?;
    let host = crate::web::request::request_host(&uri, &headers);
    if host != sso.config.public_host() {
        if !sso.config.is_app_host(&host) {
            return Err(AppError::NotFound);
        }
        let path = crate::auth::local_path(&q.rd).unwrap_or_else(|| "/".into());
        let back = format!("{}://{host}{path}", sso.config.server.public_url.scheme());
        let mut to = sso.public_url(&format!("/.gatehouse/sso/{id}?rd={}", encode(&back)));
        if let Some(hint) = login_hint(&q.login_hint) {
            to.push_str(&format!("&login_hint={}", encode(hint)));
        }
        return Ok(crate::auth::see_other(&to, None));
    }
    if !sso.lockout.sso_start(client.ip) {
        tracing::warn!(ip = %client.ip, provider = %id, "too many upstream sign-ins started from one address");
        return Err(AppError::RateLimited {
            retry_after: sso.lockout.window_secs(),
        });
    }
    let rd = crate::auth::safe_return(&sso, &q.rd);
    let d = p.metadata().await?;
    let state = crypto::random_token();
    let nonce = crypto::random_token();
    let verifier = crypto::random_token();
    // One binding per browser while sign-ins are under way (several tabs share it).
    let browser = crate::web::cookies::get(&headers, BROWSER_COOKIE)
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(crypto::random_token);
    let state_hash = crypto::sha256_hex(state.as_bytes());
    let now = store::now();
    sso.store
        .insert_sso_state(&SsoStateRow {
            pkce_verifier: sso
                .keys
                .seal(&format!("sso_state:{state_hash}"), verifier.as_bytes()),
            state_hash,
            provider: id.clone(),
            browser_hash: crypto::sha256_hex(browser.as_bytes()),
            nonce: nonce.clone(),
            rd,
            expires_at: now + STATE_TTL,
        })
        .await?;
    let mut to = d.authorization_endpoint.clone();
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &p.config.client_id)
        .append_pair("redirect_uri", &redirect_uri(&sso, &id))
        .append_pair("scope", &p.config.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    if let Some(hint) = login_hint(&q.login_hint) {
        to.query_pairs_mut().append_pair("login_hint", hint);
    }
    Ok(crate::auth::see_other(
        to.as_str(),
        Some(browser_cookie(&sso, &browser, STATE_TTL)),
    ))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

fn message(
    sso: &Sso,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    crate::auth::page(
        sso,
        headers,
        status,
        "message.html",
        minijinja::context! { title => title, message => text, link => "/login", link_text => "Back to sign-in" },
    )
}

async fn audit_failure(sso: &Sso, client: &ClientInfo, provider: &str, reason: &str, email: &str) {
    audit::record(
        &sso.store,
        audit::Event {
            action: "signin.sso",
            outcome: "failure",
            actor: &Actor::anonymous(),
            target: email,
            target_user_id: None,
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "provider": provider, "reason": reason }),
        },
    )
    .await;
}

/// A refused callback: 400, the reason only in the audit trail.
async fn refuse(
    sso: &Sso,
    headers: &HeaderMap,
    client: &ClientInfo,
    provider: &str,
    reason: &str,
) -> Response {
    tracing::warn!(provider, reason, "upstream sign-in refused");
    audit_failure(sso, client, provider, reason, "").await;
    message(
        sso,
        headers,
        StatusCode::BAD_REQUEST,
        "Sign-in not completed",
        "The sign-in could not be completed: it expired, was already used, was started in another browser, or the provider's answer could not be verified. Start again from the sign-in page.",
    )
}

/// `error` from the provider as the audit trail keeps it: an OAuth error code, nothing else.
fn error_code(e: &str) -> String {
    let code: String = e
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .take(40)
        .collect();
    format!("provider_error:{code}")
}

/// `GET /.gatehouse/sso/{provider}/callback`
pub async fn get_callback(
    State(sso): State<Arc<Sso>>,
    Path(id): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let p = provider(&sso, &id)?;
    if crate::web::request::request_host(&uri, &headers) != sso.config.public_host() {
        return Err(AppError::NotFound);
    }
    let Some(state) = q.state.as_deref().filter(|s| well_formed(s)) else {
        return Ok(refuse(&sso, &headers, &client, &id, "state_missing").await);
    };
    // Spent whatever follows: a state shown to the wrong browser or provider is gone.
    let Some(row) = sso
        .store
        .take_sso_state(&crypto::sha256_hex(state.as_bytes()), store::now())
        .await?
    else {
        return Ok(refuse(&sso, &headers, &client, &id, "state_unknown_or_used").await);
    };
    let ours = crate::web::cookies::get(&headers, BROWSER_COOKIE).is_some_and(|b| {
        crypto::ct_eq(
            crypto::sha256_hex(b.as_bytes()).as_bytes(),
            row.browser_hash.as_bytes(),
        )
    });
    if !ours {
        return Ok(refuse(&sso, &headers, &client, &id, "state_other_browser").await);
    }
    if row.provider != id {
        return Ok(refuse(&sso, &headers, &client, &id, "state_other_provider").await);
    }
    if let Some(e) = &q.error {
        return Ok(refuse(&sso, &headers, &client, &id, &error_code(e)).await);
    }
    let d = p.metadata().await?;
    // RFC 9207 §2.4: an `iss` present must be the provider's; absent, it is refused when
    // the provider announces it always sends one. (Microsoft's multi-tenant issuer is a
    // template: there `iss` is compared with the token's own issuer below.)
    let templated = d.issuer.contains("{tenantid}");
    match &q.iss {
        Some(iss) if !templated && iss.trim_end_matches('/') != d.issuer => {
            return Ok(refuse(&sso, &headers, &client, &id, "iss_mismatch").await);
        }
        None if d.iss_parameter => {
            return Ok(refuse(&sso, &headers, &client, &id, "iss_missing").await);
        }
        _ => {}
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(refuse(&sso, &headers, &client, &id, "code_missing").await);
    };
    let verifier = sso
        .keys
        .unseal(&format!("sso_state:{}", row.state_hash), &row.pkce_verifier)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let verifier = String::from_utf8(verifier).map_err(|e| AppError::Internal(e.to_string()))?;
    let identity =
        match sign_in_upstream(&sso, p, code, &verifier, &row.nonce, q.iss.as_deref()).await {
            Ok(i) => i,
            Err(Failure::Upstream(e)) => return Err(e),
            Err(Failure::Refused(Refusal(reason))) => {
                return Ok(refuse(&sso, &headers, &client, &id, reason).await);
            }
        };
    let (identity, refresh_token) = identity;
    let admission = match admit::admit(&sso, p.kind(), &identity).await? {
        Ok(a) => a,
        Err(Refusal(reason)) => {
            tracing::warn!(provider = %id, reason, "upstream identity not admitted");
            audit_failure(
                &sso,
                &client,
                &id,
                reason,
                identity.email.as_deref().unwrap_or(""),
            )
            .await;
            return Ok(message(
                &sso,
                &headers,
                StatusCode::FORBIDDEN,
                "No account",
                "There is no account here for this address. Ask an administrator for an invitation.",
            ));
        }
    };
    let user = admission.user();
    if admission.linked_now() {
        let u = admission.user();
        audit::record(
            &sso.store,
            audit::Event {
                action: "identity.link",
                outcome: "success",
                actor: &Actor::user(&u.id, &u.email),
                target: &u.email,
                target_user_id: Some(&u.id),
                ip: &client.ip.to_string(),
                details: serde_json::json!({ "provider": id, "rule": admission.rule() }),
            },
        )
        .await;
    }
    audit::record(
        &sso.store,
        audit::Event {
            action: "signin.sso",
            outcome: "success",
            actor: &Actor::user(&user.id, &user.email),
            target: &user.email,
            target_user_id: Some(&user.id),
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "provider": id, "rule": admission.rule() }),
        },
    )
    .await;
    let sealed =
        refresh_token.map(|t| sso.keys.seal(&refresh_context(&id, &user.id), t.as_bytes()));
    let replace = crate::auth::current_session(&sso, &headers).await?;
    let (location, cookie) = crate::auth::flow::advance_location_upstream(
        &sso,
        user,
        vec![format!("sso:{id}")],
        replace.as_deref(),
        &client,
        &row.rd,
        Some(crate::session::Upstream {
            provider: &id,
            refresh_token: sealed.as_deref(),
            subject: &identity.token_subject,
            sid: identity.sid.as_deref(),
        }),
    )
    .await?;
    let mut r = crate::auth::see_other(&location, Some(cookie));
    if let Ok(v) = HeaderValue::from_str(&browser_cookie(&sso, "", 0)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// What a sealed refresh token is bound to: a copy moved to another user's or provider's row
/// does not decrypt.
pub fn refresh_context(provider: &str, user_id: &str) -> String {
    format!("upstream_refresh:{provider}:{user_id}")
}

/// Exchange and validation: the identity and the refresh token, if granted.
async fn sign_in_upstream(
    sso: &Sso,
    p: &Provider,
    code: &str,
    verifier: &str,
    nonce: &str,
    iss_param: Option<&str>,
) -> Result<(UpstreamIdentity, Option<String>), Failure> {
    let d = p.metadata().await?;
    let tokens = token::exchange(p, &d, code, verifier, &redirect_uri(sso, &p.config.id)).await?;
    let (mut identity, sub) = token::verify(p, &tokens.id_token, nonce).await?;
    if let Some(iss) = iss_param
        && d.issuer.contains("{tenantid}")
    {
        let tid = identity.tenant.as_deref().unwrap_or("");
        if iss.trim_end_matches('/') != d.issuer.replace("{tenantid}", tid) {
            return Err(Failure::Refused(Refusal("iss_mismatch")));
        }
    }
    token::complete(p, &mut identity, &sub, tokens.access_token.as_deref()).await?;
    Ok((identity, tokens.refresh_token))
}
