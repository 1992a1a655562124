//! Home-realm discovery: the email step of `/login` answered without reading any account —
//! a domain organization's address goes straight to its provider with `login_hint`, any other
//! address gets the password step with the provider buttons it may use (`directory::realm`
//! decides which); and the buttons themselves.

use super::login::ORG_ADDRESS_REFUSED;
use super::page;
use crate::audit::{self, Actor};
use crate::directory::{Concern, Realm, normalize_email, realm, valid_email};
use crate::error::AppError;
use crate::web::ClientInfo;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The email step again, keeping the return URL ("Use another address").
pub(super) fn again(rd: &str) -> String {
    if rd.is_empty() {
        "/login".into()
    } else {
        format!("/login?rd={}", encode(rd))
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where a provider's sign-in starts, coming back to `rd`, with the address as `login_hint`.
fn start_url(provider: &str, rd: &str, hint: Option<&str>) -> String {
    let mut query = Vec::new();
    if !rd.is_empty() {
        query.push(format!("rd={}", encode(rd)));
    }
    if let Some(hint) = hint {
        query.push(format!("login_hint={}", encode(hint)));
    }
    if query.is_empty() {
        format!("/.gatehouse/sso/{provider}")
    } else {
        format!("/.gatehouse/sso/{provider}?{}", query.join("&"))
    }
}

/// The sign-in page's buttons for these providers (label, start URL), in config order.
pub(super) fn buttons(
    core: &crate::core::Core,
    rd: &str,
    ids: &[String],
    hint: Option<&str>,
) -> Vec<(String, String)> {
    (core.config.identity_providers.iter())
        .filter(|p| ids.contains(&p.id))
        .map(|p| (p.name.clone(), start_url(&p.id, rd, hint)))
        .collect()
}

/// Home-realm discovery for a normalized address: the organization that concerns it (the
/// email organization listing it first, as at admission), never its account.
pub(super) async fn realm_of(core: &crate::core::Core, email: &str) -> Result<Realm, AppError> {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    let orgs = core.store.orgs_of_address(email, domain).await?;
    Ok(match (orgs.listing, orgs.by_domain) {
        (Some(org), _) => {
            let providers = core.store.org_provider_ids(&org.id).await?;
            realm(
                &core.config.identity_providers,
                Concern::Listed {
                    providers: &providers,
                },
            )
        }
        (None, Some(org)) => {
            let providers = core.store.org_provider_ids(&org.id).await?;
            realm(
                &core.config.identity_providers,
                Concern::Domain {
                    providers: &providers,
                },
            )
        }
        (None, None) => realm(&core.config.identity_providers, Concern::None),
    })
}

/// The email step answered (SPEC: Home-realm discovery): a domain organization's address goes
/// straight to its provider with `login_hint`; any other address gets the password step and
/// the buttons it may use. Nothing here reads an account.
pub(super) async fn discover(
    core: &crate::core::Core,
    headers: &HeaderMap,
    client: &ClientInfo,
    typed: &str,
    rd: &str,
) -> Result<Response, AppError> {
    let email = normalize_email(typed);
    let typed = typed.trim();
    if !valid_email(&email) {
        return Ok(page(
            core,
            headers,
            StatusCode::BAD_REQUEST,
            "login.html",
            minijinja::context! { step => "email", rd => rd, email => typed, error => "Enter your email address.", providers => buttons(core, rd, &all_providers(core), None) },
        ));
    }
    if core.store.org_by_email(&email).await?.is_some() {
        audit_org_address(core, client, &email, "email").await;
        return Ok(page(
            core,
            headers,
            StatusCode::UNAUTHORIZED,
            "login.html",
            minijinja::context! { step => "email", rd => rd, email => typed, error => ORG_ADDRESS_REFUSED, providers => buttons(core, rd, &all_providers(core), None) },
        ));
    }
    Ok(match realm_of(core, &email).await? {
        Realm::Upstream(ids) if ids.len() == 1 => {
            super::see_other(&start_url(&ids[0], rd, Some(typed)), None).into_response()
        }
        Realm::Upstream(ids) => {
            let error = ids.is_empty().then_some(
                "Your organization signs in through a provider that is not available here. Ask an administrator.",
            );
            page(
                core,
                headers,
                StatusCode::OK,
                "login.html",
                minijinja::context! { step => "upstream", again => again(rd), rd => rd, email => typed, error => error, providers => buttons(core, rd, &ids, Some(typed)) },
            )
        }
        Realm::Password(ids) => page(
            core,
            headers,
            StatusCode::OK,
            "login.html",
            minijinja::context! { step => "password", again => again(rd), rd => rd, email => typed, providers => buttons(core, rd, &ids, Some(typed)) },
        ),
    })
}

pub(super) fn all_providers(core: &crate::core::Core) -> Vec<String> {
    (core.config.identity_providers.iter())
        .map(|p| p.id.clone())
        .collect()
}

pub(super) async fn audit_org_address(
    core: &crate::core::Core,
    client: &ClientInfo,
    email: &str,
    step: &str,
) {
    audit::record(
        &core.store,
        audit::Event {
            action: "signin",
            outcome: "failure",
            actor: &Actor::anonymous(),
            target: email,
            target_user_id: None,
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "reason": "organization_address", "step": step }),
        },
    )
    .await;
}
