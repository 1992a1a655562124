//! The back channel of a sign-in: the code exchanged for tokens (RFC 6749 §4.1.3 with the PKCE
//! verifier, RFC 7636 §4.5), the ID token validated (OpenID Connect Core §3.1.3.7) with the
//! `openidconnect` crate, userinfo read when the token lacks the address or name, and the
//! provider's claims turned into one [`UpstreamIdentity`] by the rules of its kind.

use super::provider::{AuthMethod, Discovered, Provider};
use crate::config::{ProviderKind, Tenant};
use crate::error::AppError;
use base64::Engine;
use openidconnect::core::{
    CoreGenderClaim, CoreIdTokenVerifier, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{AdditionalClaims, ClaimsVerificationError, ClientId, IssuerUrl, Nonce};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Claims beyond the standard ones that some providers' rules rest on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extra {
    /// Google: the Workspace domain of the account (absent for consumer accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hd: Option<String>,
    /// Microsoft: the directory (tenant) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tid: Option<String>,
    /// Microsoft: the account's immutable object id in its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    /// Microsoft's optional claim: the directory owns the domain of `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xms_edov: Option<serde_json::Value>,
    /// The provider's session id (OpenID Connect Back-Channel Logout 1.0 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}
impl AdditionalClaims for Extra {}

type IdToken = openidconnect::IdToken<
    Extra,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Asymmetric algorithms only: never `none`, never a MAC (a MAC "keyed" with the provider's
/// public key would be forgeable by anyone).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A token issued more than this far in the future (clock skew) or the past is refused.
pub(super) const IAT_SKEW: i64 = 300;
pub(super) const IAT_MAX_AGE: i64 = 3600;
/// How our `iat` check marks its refusal (the crate reports it as `Expired`).
const IAT_OUT_OF_RANGE: &str = "iat out of range";

/// The personal-accounts directory of Entra ID: not an organization.
const MSA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Why a sign-in was refused: the audit trail's `reason` (never a token or a claim value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

pub enum Failure {
    Refused(Refusal),
    /// The provider could not be reached or answered nonsense: a 502.
    Upstream(AppError),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        Failure::Upstream(e)
    }
}

fn refused(reason: &'static str) -> Failure {
    Failure::Refused(Refusal(reason))
}

/// Who the provider says signed in, after every rule of its kind.
#[derive(Debug, Clone)]
pub struct UpstreamIdentity {
    pub provider: String,
    /// The provider's stable id of the person (Microsoft: `tid:oid`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches that the person owns `email` (see `email_is_verified`).
    pub email_verified: bool,
    pub name: Option<String>,
    /// Google: the Workspace domain (only from the ID token's `hd` claim).
    pub hosted_domain: Option<String>,
    /// Microsoft: the directory.
    pub tenant: Option<String>,
    /// The ID token's own `sub` (Microsoft's `subject` is `tid:oid`) and `sid`, by which a
    /// back-channel logout names the session.
    pub token_subject: String,
    pub sid: Option<String>,
}

pub struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A request to the token endpoint with client authentication as discovery allows (RFC 6749
/// §2.3.1: the id and secret form-encoded before Basic encoding).
async fn post_token(
    p: &Provider,
    d: &Discovered,
    mut form: Vec<(&str, &str)>,
) -> Result<reqwest::Response, AppError> {
    let c = &p.config;
    let mut req = p.http().post(d.token_endpoint.as_str());
    match d.auth_method {
        AuthMethod::Basic => {
            let pair = format!(
                "{}:{}",
                form_encode(&c.client_id),
                form_encode(c.client_secret.expose())
            );
            req = req.header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        AuthMethod::Post => {
            form.push(("client_id", &c.client_id));
            form.push(("client_secret", c.client_secret.expose()));
        }
    }
    req.header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| AppError::Upstream(format!("token endpoint of {}: {e}", c.id)))
}

/// RFC 6749 §4.1.3 with the PKCE verifier.
pub async fn exchange(
    p: &Provider,
    d: &Discovered,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<Tokens, Failure> {
    let c = &p.config;
    let form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let r = post_token(p, d, form).await?;
    let status = r.status();
    if status.is_client_error() {
        tracing::warn!(provider = %c.id, %status, "the token endpoint refused the code");
        return Err(refused("token_refused"));
    }
    if !status.is_success() {
        return Err(Failure::Upstream(AppError::Upstream(format!(
            "token endpoint of {}: HTTP {status}",
            c.id
        ))));
    }
    let t: TokenResponse = r
        .json()
        .await
        .map_err(|e| AppError::Upstream(format!("token endpoint of {}: {e}", c.id)))?;
    Ok(Tokens {
        id_token: t.id_token.ok_or_else(|| refused("no_id_token"))?,
        access_token: t.access_token,
        refresh_token: t.refresh_token.filter(|r| !r.is_empty()),
    })
}

/// What the provider said of a refresh token (RFC 6749 §6).
pub enum Refreshed {
    /// Still good; the provider may have rotated it.
    Valid { rotated: Option<String> },
    /// `invalid_grant`: the grant is gone (the person removed or disabled, or signed out).
    Revoked,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
}

/// Uses the refresh token once. `Err`: the provider could not be asked, or answered something
/// other than a new token or `invalid_grant` (an outage, or its own misconfiguration).
pub async fn refresh(p: &Provider, refresh_token: &str) -> Result<Refreshed, AppError> {
    let c = &p.config;
    let d = p.metadata().await?;
    let form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let r = post_token(p, &d, form).await?;
    let status = r.status();
    if status.is_success() {
        let t: TokenResponse = r
            .json()
            .await
            .map_err(|e| AppError::Upstream(format!("token endpoint of {}: {e}", c.id)))?;
        return Ok(Refreshed::Valid {
            rotated: t
                .refresh_token
                .filter(|t| !t.is_empty() && t != refresh_token),
        });
    }
    let error = if status.is_client_error() {
        r.json::<ErrorResponse>()
            .await
            .map(|e| e.error)
            .unwrap_or_default()
    } else {
        String::new()
    };
    if error == "invalid_grant" {
        return Ok(Refreshed::Revoked);
    }
    let error: String = error
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .take(40)
        .collect();
    Err(AppError::Upstream(format!(
        "token endpoint of {}: HTTP {status} {error}",
        c.id
    )))
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    kid: Option<String>,
}

/// The `kid` of a compact JWS header, read only to pick (or refresh) keys: nothing else in the
/// header is trusted.
pub(super) fn header_kid(jwt: &str) -> Option<String> {
    let first = jwt.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Header>(&bytes).ok()?.kid
}

fn classify(e: &ClaimsVerificationError) -> &'static str {
    match e {
        ClaimsVerificationError::InvalidIssuer(_) => "id_token_issuer",
        ClaimsVerificationError::InvalidAudience(_) => "id_token_audience",
        ClaimsVerificationError::Expired(m) if m.starts_with(IAT_OUT_OF_RANGE) => "id_token_iat",
        ClaimsVerificationError::Expired(_) => "id_token_expired",
        ClaimsVerificationError::InvalidNonce(_) => "id_token_nonce",
        ClaimsVerificationError::SignatureVerification(_) => "id_token_signature",
        ClaimsVerificationError::Unsupported(_) => "id_token_signature",
        _ => "id_token_invalid",
    }
}

/// Google: `email_verified` plus proof that the address is Google's to vouch for — a Gmail
/// address, or one of the Workspace domain the token's `hd` names. A consumer Google account
/// registered with a company address (no `hd`) proves nothing about that company.
fn google_email_trusted(email: &str, hd: Option<&str>) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    match hd {
        Some(hd) => hd.eq_ignore_ascii_case(&domain),
        None => domain == "gmail.com" || domain == "googlemail.com",
    }
}

/// Validates the ID token (signature with this provider's keys only, algorithm allow-list,
/// `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`) and applies the rules of the provider's kind.
pub async fn verify(
    p: &Provider,
    id_token: &str,
    nonce: &str,
) -> Result<(UpstreamIdentity, String), Failure> {
    let c = &p.config;
    let kid = header_kid(id_token);
    let d = p.keys_for(kid.as_deref()).await?;
    let token = IdToken::from_str(id_token).map_err(|e| {
        tracing::warn!(provider = %c.id, error = %e, "ID token not parseable");
        refused("id_token_malformed")
    })?;
    // The signature, with ring (`jws`: the algorithm allow-list, this provider's keys only);
    // the crate then checks the claims.
    if let Err(why) = d.keys.verify(id_token) {
        tracing::warn!(provider = %c.id, why, "ID token signature refused");
        return Err(refused(if why == "malformed" {
            "id_token_malformed"
        } else {
            "id_token_signature"
        }));
    }
    let ms = c.microsoft.as_ref();
    let multi_tenant = ms.is_some_and(|m| !matches!(m.tenant, Tenant::Single(_)));
    let google_default = c.kind == ProviderKind::Google
        && d.issuer == crate::config::identity_provider::GOOGLE_ISSUER;
    let issuer = IssuerUrl::new(d.issuer.clone()).map_err(|_| {
        AppError::Upstream(format!("identity provider {}: issuer is not a URL", c.id))
    })?;
    let now = crate::store::now();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(c.client_id.clone()),
        issuer,
        // The signature was checked above (`jws`); the crate checks the claims only.
        openidconnect::core::CoreJsonWebKeySet::new(Vec::new()),
    )
    .set_allowed_algs(ALLOWED_ALGS)
    .insecure_disable_signature_check()
    .set_issue_time_verifier_fn(move |iat| {
        let t = iat.timestamp();
        if t > now + IAT_SKEW || t < now - IAT_MAX_AGE {
            Err(format!("{IAT_OUT_OF_RANGE}: issued at {t}, now {now}"))
        } else {
            Ok(())
        }
    })
    // Multi-tenant Microsoft: the issuer is a template, checked below against `tid`; Google
    // writes its issuer with or without the scheme, checked below too.
    .require_issuer_match(!multi_tenant && !google_default);
    let claims = token
        .claims(&verifier, &Nonce::new(nonce.to_string()))
        .map_err(|e| {
            tracing::warn!(provider = %c.id, error = %e, "ID token refused");
            refused(classify(&e))
        })?;
    // Core §3.1.3.7 (4, 5): with several audiences (the verifier already refuses audiences
    // other than ours), `azp` must be present; when present it must be us.
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != c.client_id {
            return Err(refused("id_token_audience"));
        }
    } else if claims.audiences().len() > 1 {
        return Err(refused("id_token_audience"));
    }
    let extra = claims.additional_claims().clone();
    let email = claims.email().map(|e| e.as_str().trim().to_string());
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_string());
    let mut id = UpstreamIdentity {
        provider: c.id.clone(),
        subject: claims.subject().as_str().to_string(),
        email,
        email_verified: claims.email_verified() == Some(true),
        name,
        hosted_domain: None,
        tenant: None,
        token_subject: claims.subject().as_str().to_string(),
        sid: extra
            .sid
            .clone()
            .filter(|s| !s.is_empty() && s.len() <= 255),
    };
    match c.kind {
        ProviderKind::Google => {
            // Google's ID tokens say `https://accounts.google.com` or `accounts.google.com`.
            let iss = claims.issuer().as_str();
            if google_default && iss != d.issuer && iss != "accounts.google.com" {
                return Err(refused("id_token_issuer"));
            }
            id.hosted_domain = extra.hd.clone().map(|h| h.to_ascii_lowercase());
        }
        ProviderKind::Oidc => {}
        ProviderKind::Microsoft => {
            let m = ms.expect("a microsoft provider has its settings");
            let (Some(tid), Some(oid)) = (extra.tid.as_deref(), extra.oid.as_deref()) else {
                return Err(refused("microsoft_no_tid_oid"));
            };
            let tid = tid.to_ascii_lowercase();
            // The issuer template with the token's own tenant: a token of directory A that
            // claims to come from directory B's issuer is refused.
            let expected = d.issuer.replace("{tenantid}", &tid);
            if claims.issuer().as_str().trim_end_matches('/') != expected {
                tracing::warn!(provider = %c.id, "ID token issuer does not match its tid");
                return Err(refused("id_token_issuer"));
            }
            match &m.tenant {
                Tenant::Single(t) if *t != tid => return Err(refused("tenant_not_allowed")),
                Tenant::Organizations if tid == MSA_TENANT => {
                    return Err(refused("tenant_not_allowed"));
                }
                _ => {}
            }
            if !m.allowed_tenants.is_empty() && !m.allowed_tenants.contains(&tid) {
                return Err(refused("tenant_not_allowed"));
            }
            id.subject = format!("{tid}:{}", oid.to_ascii_lowercase());
            // Entra ID sends no email_verified: the address counts only when the directory
            // owns its domain (xms_edov), or when the operator trusts one pinned directory.
            id.email_verified = extra.xms_edov == Some(serde_json::Value::Bool(true))
                || (m.trust_tenant_emails && matches!(m.tenant, Tenant::Single(_)));
            id.tenant = Some(tid);
        }
    }
    let sub = claims.subject().as_str().to_string();
    Ok((id, sub))
}

#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
}

/// Fills the address and name from userinfo (Core §5.3) when the ID token lacks them; its
/// `sub` must be the token's (§5.3.2).
pub async fn complete(
    p: &Provider,
    id: &mut UpstreamIdentity,
    id_token_sub: &str,
    access_token: Option<&str>,
) -> Result<(), Failure> {
    if id.email.is_some() && id.name.is_some() {
        return Ok(());
    }
    let d = p.metadata().await?;
    let (Some(endpoint), Some(token)) = (&d.userinfo_endpoint, access_token) else {
        return Ok(());
    };
    let r = p
        .http()
        .get(endpoint.as_str())
        .bearer_auth(token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| AppError::Upstream(format!("userinfo of {}: {e}", p.config.id)))?;
    if !r.status().is_success() {
        return Err(Failure::Upstream(AppError::Upstream(format!(
            "userinfo of {}: HTTP {}",
            p.config.id,
            r.status()
        ))));
    }
    let info: UserInfo = r
        .json()
        .await
        .map_err(|e| AppError::Upstream(format!("userinfo of {}: {e}", p.config.id)))?;
    if info.sub != id_token_sub {
        return Err(refused("userinfo_subject"));
    }
    if id.name.is_none() {
        id.name = info.name;
    }
    if id.email.is_none()
        && let Some(email) = info.email
    {
        id.email = Some(email.trim().to_string());
        if p.config.kind != ProviderKind::Microsoft {
            id.email_verified = info.email_verified == Some(true);
        }
    }
    Ok(())
}

/// Whether the address counts as the person's, by the rules of the provider's kind (Google:
/// `email_verified` and a Gmail address or `hd` equal to its domain; Microsoft: `xms_edov`
/// or `trust_tenant_emails`, see `verify`; any other provider: `email_verified`).
pub fn email_is_verified(kind: ProviderKind, id: &UpstreamIdentity) -> bool {
    let Some(email) = id.email.as_deref().filter(|e| !e.is_empty()) else {
        return false;
    };
    match kind {
        ProviderKind::Google => {
            id.email_verified && google_email_trusted(email, id.hosted_domain.as_deref())
        }
        _ => id.email_verified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_addresses_need_gmail_or_their_workspace_domain() {
        assert!(google_email_trusted("a@gmail.com", None));
        assert!(google_email_trusted("a@acme.test", Some("acme.test")));
        assert!(!google_email_trusted("a@acme.test", None));
        assert!(!google_email_trusted("a@acme.test", Some("other.test")));
        assert!(!google_email_trusted("not-an-address", None));
    }

    #[test]
    fn the_key_id_is_read_from_the_header_only() {
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"RS256","kid":"k1"}"#);
        assert_eq!(header_kid(&format!("{h}.e30.sig")).as_deref(), Some("k1"));
        assert_eq!(header_kid("garbage"), None);
    }
}
