//! SCIM 2.0 service provider (RFC 7643 schema, RFC 7644 protocol) at `/scim/v2` on the public
//! host: upstream directories (Entra ID, Okta, Google) create, change, deactivate and delete
//! the people they manage here, so that access ends when HR offboards someone upstream.
//!
//! - `discovery`: `ServiceProviderConfig`, `Schemas`, `ResourceTypes`;
//! - `users`: the `Users` endpoints; `resource` maps a SCIM User onto an account and back;
//! - `groups`: the `Groups` endpoints; members get the roles `[[identity_provider.group_role]]`
//!   maps the group's name to;
//! - `filter`: `?filter=` (parsed by the `scim_v2` crate) → a `store::ScimCond` (SQL there);
//! - `patch`: PATCH operations as Entra ID and Okta really send them;
//! - `error`: RFC 7644 §3.12 error bodies.
//!
//! Each `[[identity_provider]]` with a `scim_token` is one SCIM client. A request's bearer
//! token is compared in constant time with every provider's; the match names the provider,
//! which sees and changes only the users it provisioned (another provider's are 404 to it).

mod discovery;
pub mod error;
pub mod filter;
mod groups;
mod patch;
mod resource;
mod users;

use crate::core::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use error::{ScimError, ScimResult};
use subtle::ConstantTimeEq;

/// RFC 7644 §3.1: the media type of every SCIM body.
pub const CONTENT_TYPE: &str = "application/scim+json";
pub const BASE: &str = "/scim/v2";

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: axum::extract::FromRef<S>,
{
    let api = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::get_service_provider_config),
        )
        .route("/Schemas", get(discovery::get_schemas))
        .route("/Schemas/{id}", get(discovery::get_schema))
        .route("/ResourceTypes", get(discovery::get_resource_types))
        .route("/ResourceTypes/{id}", get(discovery::get_resource_type))
        .route("/Users", get(users::get_users).post(users::post_user))
        .route("/Users/.search", axum::routing::post(users::post_search))
        .route("/.search", axum::routing::post(search_everything))
        .route("/Groups", get(groups::get_groups).post(groups::post_group))
        .route("/Groups/.search", axum::routing::post(groups::post_search))
        .route(
            "/Groups/{id}",
            get(groups::get_group)
                .put(groups::put_group)
                .patch(groups::patch_group)
                .delete(groups::delete_group),
        )
        .route(
            "/Users/{id}",
            get(users::get_user)
                .put(users::put_user)
                .patch(users::patch_user)
                .delete(users::delete_user),
        )
        .fallback(not_found);
    Router::new().nest(BASE, api)
}

/// RFC 7644 §3.4.3: a search across resource types is optional; `/Users/.search` is served.
async fn search_everything(_p: Provisioner) -> ScimError {
    ScimError::status(
        StatusCode::NOT_IMPLEMENTED,
        "searching every resource type at once is not supported: POST /scim/v2/Users/.search",
    )
}

async fn not_found(_p: Provisioner) -> ScimError {
    ScimError::status(StatusCode::NOT_FOUND, "no such SCIM endpoint")
}

/// The provider whose SCIM token the request carries. Asking for it is what authorizes a
/// handler; a missing or unknown token is a 401 (and a warning in the log, never the token).
pub struct Provisioner {
    pub provider: String,
}

impl<S> FromRequestParts<S> for Provisioner
where
    S: Send + Sync,
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ScimError> {
        let core = <AppState as axum::extract::FromRef<S>>::from_ref(state);
        // Served on the public host only, never on an app's.
        let host = crate::web::request::request_host(&parts.uri, &parts.headers);
        if host != core.config.public_host() {
            return Err(ScimError::status(StatusCode::NOT_FOUND, "not found"));
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            })
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty());
        let Some(presented) = presented else {
            return Err(ScimError::unauthorized());
        };
        match provider_of_token(&core.config.identity_providers, presented) {
            Some(provider) => Ok(Provisioner { provider }),
            None => {
                tracing::warn!(path = %parts.uri.path(), "scim request with an unknown bearer token refused");
                Err(ScimError::unauthorized())
            }
        }
    }
}

/// The provider whose `scim_token` is `presented`. Every configured token is compared, each
/// in constant time over SHA-256 digests (equal lengths), so the timing tells neither which
/// provider nor how much of a token matched.
pub fn provider_of_token(
    providers: &[crate::config::IdentityProviderConfig],
    presented: &str,
) -> Option<String> {
    let digest = crate::crypto::sha256(presented.as_bytes());
    let mut found = None;
    for p in providers {
        if let Some(t) = &p.scim_token {
            let want = crate::crypto::sha256(t.expose().as_bytes());
            if bool::from(want.ct_eq(&digest)) && found.is_none() {
                found = Some(p.id.clone());
            }
        }
    }
    found
}

/// A SCIM request body: a JSON object (`application/scim+json` or `application/json`).
/// Anything else is a 400 `invalidSyntax` that says what was wrong.
pub struct ScimJson(pub serde_json::Map<String, serde_json::Value>);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ScimError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ct.is_empty() && ct != CONTENT_TYPE && ct != "application/json" {
            return Err(ScimError::invalid_syntax(format!(
                "the body must be {CONTENT_TYPE} (or application/json), not {ct}"
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            ScimError::invalid_syntax("the body could not be read (too large or cut off)")
        })?;
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(m)) => Ok(ScimJson(m)),
            Ok(_) => Err(ScimError::invalid_syntax("the body must be a JSON object")),
            Err(e) => Err(ScimError::invalid_syntax(format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))),
        }
    }
}

/// A SCIM response body with its status (and `Location` for a created resource).
pub fn respond(status: StatusCode, body: serde_json::Value) -> Response {
    let location = (status == StatusCode::CREATED)
        .then(|| body["meta"]["location"].as_str().map(str::to_string))
        .flatten();
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    r
}

/// A DELETE's `204`.
pub fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) type Answer = ScimResult<Response>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_names_its_provider_and_nothing_else_matches() {
        let text = r#"
[secrets]
master_key = "dGVzdC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE="
[[identity_provider]]
id = "entra"
kind = "oidc"
issuer = "https://idp.example"
client_id = "c"
client_secret = "s"
scim_token = "entra-token-0123456789"
[[identity_provider]]
id = "okta"
kind = "oidc"
issuer = "https://okta.example"
client_id = "c"
client_secret = "s"
scim_token = "okta-token-0123456789"
"#;
        let c = crate::config::Config::from_toml(
            text,
            std::path::Path::new("t.toml"),
            std::iter::empty(),
        )
        .unwrap();
        let p = &c.identity_providers;
        assert_eq!(
            provider_of_token(p, "entra-token-0123456789").as_deref(),
            Some("entra")
        );
        assert_eq!(
            provider_of_token(p, "okta-token-0123456789").as_deref(),
            Some("okta")
        );
        for wrong in [
            "",
            "entra-token-012345678",
            "entra-token-0123456789x",
            "OKTA-TOKEN-0123456789",
        ] {
            assert_eq!(provider_of_token(p, wrong), None, "{wrong}");
        }
        assert!(!format!("{:?}", p[0]).contains("entra-token"));
    }

    #[test]
    fn group_roles_name_a_configured_app_and_tokens_are_not_trivial() {
        let text = r#"
[secrets]
master_key = "dGVzdC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE="
[[identity_provider]]
id = "entra"
kind = "oidc"
issuer = "https://idp.example"
client_id = "c"
client_secret = "s"
scim_token = "short"
[[identity_provider.group_role]]
group = "Sales"
role = "limited"
app = "nope"
[[identity_provider.group_role]]
group = ""
role = "Not A Role"
colour = "blue"
"#;
        let e = match crate::config::Config::from_toml(
            text,
            std::path::Path::new("t.toml"),
            std::iter::empty(),
        ) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        };
        for want in [
            "identity_provider[entra].scim_token: too short",
            "identity_provider[entra].group_role[1].app: no app \"nope\"",
            "group_role[2].group: required",
            "group_role[2].role: required",
            "group_role[2].colour: unknown key",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        assert!(
            !e.contains("short\""),
            "the token's value is never echoed: {e}"
        );
    }
}
