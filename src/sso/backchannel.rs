//! OpenID Connect Back-Channel Logout 1.0, receiving side: a provider that signed a person out
//! posts a logout token to `/.gatehouse/sso/{provider}/backchannel-logout`; the token is
//! validated (§2.6: signature with this provider's keys and an asymmetric algorithm only,
//! `iss`, `aud`, `iat`, the back-channel `events` member, `sub` and/or `sid`, no `nonce`, a
//! `jti` never seen before) and every session it names ends, on every instance: the ones
//! signed in through this provider with that `sub` (all of that person's) or that `sid` (that
//! one sign-in), with the sessions handed off from them.

use super::Sso;
use super::provider::Provider;
use super::token::{ALLOWED_ALGS, Failure, IAT_MAX_AGE, IAT_SKEW, Refusal, header_kid};
use crate::audit::{self, Actor};
use crate::core::Core;
use crate::error::AppError;
use crate::revocation::Invalidate;
use crate::store;
use crate::web::ClientInfo;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{JsonWebKey, JwsSigningAlgorithm};
use serde_json::Value;
use std::sync::Arc;

/// The `events` member a logout token must carry (§2.4).
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Larger bodies are not read as logout tokens.
const MAX_TOKEN: usize = 16 * 1024;

/// What a valid logout token asks for.
#[derive(Debug)]
pub struct Logout {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    /// Until when the token could be accepted (its `jti` is remembered that long).
    pub keep_until: i64,
}

fn refused(reason: &'static str) -> Failure {
    Failure::Refused(Refusal(reason))
}

fn b64(part: &str) -> Result<Vec<u8>, Failure> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| refused("logout_token_malformed"))
}

fn string_claim(claims: &Value, name: &str) -> Result<Option<String>, Failure> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s.clone())),
        Some(_) => Err(refused("logout_token_claims")),
    }
}

/// Validates a logout token of provider `p` (see the module).
pub async fn validate(p: &Provider, token: &str, now: i64) -> Result<Logout, Failure> {
    let c = &p.config;
    if token.len() > MAX_TOKEN {
        return Err(refused("logout_token_malformed"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [head, body, signature] = parts[..] else {
        return Err(refused("logout_token_malformed"));
    };
    let header: Value =
        serde_json::from_slice(&b64(head)?).map_err(|_| refused("logout_token_malformed"))?;
    // Only the algorithm, the key id and the type are read from the header; anything that
    // must be understood (`crit`) is not.
    if header.get("crit").is_some() {
        return Err(refused("logout_token_header"));
    }
    if let Some(typ) = header.get("typ") {
        let typ = typ.as_str().unwrap_or("").to_ascii_lowercase();
        if !matches!(
            typ.as_str(),
            "logout+jwt" | "application/logout+jwt" | "jwt"
        ) {
            return Err(refused("logout_token_type"));
        }
    }
    let alg: CoreJwsSigningAlgorithm = header
        .get("alg")
        .cloned()
        .and_then(|a| serde_json::from_value(a).ok())
        .ok_or_else(|| refused("logout_token_algorithm"))?;
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(refused("logout_token_algorithm"));
    }
    let kid = header_kid(token);
    let d = p.keys_for(kid.as_deref()).await?;
    let signed = &token[..head.len() + 1 + body.len()];
    let signature = b64(signature)?;
    let verified = d.jwks.keys().iter().any(|k| {
        kid.as_deref()
            .is_none_or(|kid| k.key_id().is_some_and(|id| id.as_str() == kid))
            && alg.key_type().is_some_and(|t| *k.key_type() == t)
            && k.verify_signature(&alg, signed.as_bytes(), &signature)
                .is_ok()
    });
    if !verified {
        tracing::warn!(provider = %c.id, "logout token signature not valid");
        return Err(refused("logout_token_signature"));
    }
    let claims: Value =
        serde_json::from_slice(&b64(body)?).map_err(|_| refused("logout_token_malformed"))?;
    if !claims.is_object() {
        return Err(refused("logout_token_malformed"));
    }
    let iss = string_claim(&claims, "iss")?.ok_or_else(|| refused("logout_token_issuer"))?;
    let expected = match string_claim(&claims, "tid")? {
        Some(tid) if d.issuer.contains("{tenantid}") => {
            d.issuer.replace("{tenantid}", &tid.to_ascii_lowercase())
        }
        _ => d.issuer.clone(),
    };
    if iss.trim_end_matches('/') != expected.trim_end_matches('/') {
        return Err(refused("logout_token_issuer"));
    }
    let ours = match claims.get("aud") {
        Some(Value::String(a)) => *a == c.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&c.client_id)),
        _ => false,
    };
    if !ours {
        return Err(refused("logout_token_audience"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| refused("logout_token_iat"))?;
    if iat > now + IAT_SKEW || iat < now - IAT_MAX_AGE {
        return Err(refused("logout_token_iat"));
    }
    if let Some(exp) = claims.get("exp") {
        match exp.as_i64() {
            Some(exp) if exp + IAT_SKEW > now => {}
            _ => return Err(refused("logout_token_expired")),
        }
    }
    // §2.4: the member is an object (empty as defined today); an ID token has no such member
    // and must carry a nonce, which a logout token never does (§2.6 step 5).
    if !claims
        .get("events")
        .and_then(|e| e.get(EVENT))
        .is_some_and(Value::is_object)
    {
        return Err(refused("logout_token_events"));
    }
    if claims.get("nonce").is_some() {
        return Err(refused("logout_token_nonce"));
    }
    let sub = string_claim(&claims, "sub")?;
    let sid = string_claim(&claims, "sid")?;
    if sub.is_none() && sid.is_none() {
        return Err(refused("logout_token_no_subject"));
    }
    let jti = string_claim(&claims, "jti")?.ok_or_else(|| refused("logout_token_no_jti"))?;
    Ok(Logout {
        sub,
        sid,
        jti,
        keep_until: iat + IAT_MAX_AGE + IAT_SKEW,
    })
}

/// §2.8: a 400 with an OAuth error body, never cached.
fn bad_request(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
        })),
    )
        .into_response()
}

/// `POST /.gatehouse/sso/{provider}/backchannel-logout`
pub async fn post_backchannel_logout(
    State(sso): State<Arc<Sso>>,
    Path(id): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    let Some(p) = sso.providers.get(&id) else {
        return Err(AppError::NotFound);
    };
    if crate::web::request::request_host(&uri, &headers) != sso.config.public_host() {
        return Err(AppError::NotFound);
    }
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let Some(token) = token.filter(|_| form_encoded) else {
        audit_refusal(&sso, &client, &id, "logout_token_missing").await;
        return Ok(bad_request("a form-encoded logout_token is required"));
    };
    let now = store::now();
    let logout = match validate(p, &token, now).await {
        Ok(l) => l,
        Err(Failure::Upstream(e)) => return Err(e),
        Err(Failure::Refused(Refusal(reason))) => {
            audit_refusal(&sso, &client, &id, reason).await;
            return Ok(bad_request("the logout token is not valid"));
        }
    };
    if !sso
        .store
        .spend_logout_jti(&id, &logout.jti, logout.keep_until)
        .await?
    {
        audit_refusal(&sso, &client, &id, "logout_token_replayed").await;
        return Ok(bad_request("this logout token was already used"));
    }
    let sessions = sso
        .store
        .upstream_sessions(&id, logout.sub.as_deref(), logout.sid.as_deref(), now)
        .await?;
    let ended = end_sessions(&sso, &sessions, "upstream_logout").await?;
    crate::metrics::deprovisioning("backchannel", "sessions_ended", ended);
    audit::record(
        &sso.store,
        audit::Event {
            action: "session.revoke",
            outcome: "success",
            actor: &Actor::system(),
            target: sessions.first().map_or("", |(_, u)| u.as_str()),
            target_user_id: sessions.first().map(|(_, u)| u.as_str()),
            ip: &client.ip.to_string(),
            details: serde_json::json!({
                "source": "backchannel",
                "provider": id,
                "by": if logout.sid.is_some() { "sid" } else { "sub" },
                "sessions_ended": ended,
            }),
        },
    )
    .await;
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], "").into_response())
}

/// Ends each (session, user) with the sessions handed off from it, releases the people's
/// seats and clears what every instance caches of them. Returns how many sessions ended.
pub(super) async fn end_sessions(
    core: &Core,
    sessions: &[(String, String)],
    reason: &str,
) -> Result<u64, AppError> {
    let now = store::now();
    let mut ended = 0;
    let mut users: Vec<&str> = Vec::new();
    for (session, user) in sessions {
        for hash in core.store.revoke_session(session, reason, now).await? {
            core.invalidate(Invalidate::Session(hash)).await?;
            ended += 1;
        }
        if !users.contains(&user.as_str()) {
            users.push(user);
        }
    }
    for user in users {
        core.store.release_user_seats(user).await?;
        core.invalidate(Invalidate::User(user.to_string())).await?;
    }
    Ok(ended)
}

async fn audit_refusal(sso: &Sso, client: &ClientInfo, provider: &str, reason: &str) {
    crate::metrics::deprovisioning("backchannel", "refused", 1);
    audit::record(
        &sso.store,
        audit::Event {
            action: "logout.backchannel",
            outcome: "failure",
            actor: &Actor::anonymous(),
            target: provider,
            target_user_id: None,
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "provider": provider, "reason": reason }),
        },
    )
    .await;
}
