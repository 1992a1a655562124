//! `/setup?token=…`: the one-time link printed at first start creates the first full access
//! administrator (password meeting the policy, then TOTP enrolment, always).

use super::csrf::CsrfForm;
use super::password_change::policy_refusal;
use super::{page, policy_text, see_other, session_cookie};
use crate::audit::{self, Actor};
use crate::core::{AppState, Core};
use crate::crypto;
use crate::directory::{UserStatus, normalize_email, valid_email};
use crate::error::AppError;
use crate::session::{NewSession, Stage};
use crate::store::{self, NewUser};
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

fn invalid_link(core: &Core, headers: &HeaderMap) -> Response {
    page(
        core,
        headers,
        StatusCode::NOT_FOUND,
        "message.html",
        minijinja::context! {
            title => "Setup link not valid",
            message => "This setup link is unknown, expired or already used. Restart the server to get a new one while no administrator exists.",
            link => "/login", link_text => "Sign in",
        },
    )
}

async fn token_ok(core: &Core, token: &str) -> Result<bool, AppError> {
    Ok(token.len() == 43
        && core
            .store
            .setup_token_valid(&crypto::sha256_hex(token.as_bytes()), store::now())
            .await?)
}

pub async fn get_setup(
    State(core): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SetupQuery>,
) -> Result<Response, AppError> {
    if !token_ok(&core, &q.token).await? {
        return Ok(invalid_link(&core, &headers));
    }
    Ok(page(
        &core,
        &headers,
        StatusCode::OK,
        "setup.html",
        minijinja::context! { token => q.token, rules => policy_text(&core), email => "", name => "" },
    ))
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    new_password: String,
}

impl super::csrf::CsrfToken for SetupForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

pub async fn post_setup(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<SetupForm>,
) -> Result<Response, AppError> {
    if !token_ok(&core, &f.token).await? {
        return Ok(invalid_link(&core, &headers));
    }
    let again = |error: String| {
        let (token, email, name) = (f.token.clone(), f.email.clone(), f.name.clone());
        page(
            &core,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            "setup.html",
            minijinja::context! {
                token => token, rules => policy_text(&core), email => email, name => name, error => error,
            },
        )
    };
    if !valid_email(&f.email) {
        return Ok(again("Enter a valid email address.".into()));
    }
    if let Some(msg) = policy_refusal(&core, &f.new_password, &f.email) {
        return Ok(again(msg));
    }
    let hash = core
        .passwords
        .hash(&f.new_password)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    // Spend the link first: of two racing submissions only one creates an administrator.
    if !core
        .store
        .consume_setup_token(&crypto::sha256_hex(f.token.as_bytes()), store::now())
        .await?
    {
        return Ok(invalid_link(&core, &headers));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let email = f.email.trim().to_string();
    let now = store::now();
    let created = core
        .store
        .insert_user(
            &NewUser {
                id: &id,
                email: &email,
                email_normalized: &normalize_email(&email),
                name: f.name.trim(),
                status: UserStatus::Active.as_str(),
                password_hash: Some(&hash),
                password_must_change: false,
            },
            now,
        )
        .await;
    if let Err(e) = created {
        return match e {
            store::StoreError::Conflict => {
                Ok(again("An account with this email already exists.".into()))
            }
            other => Err(other.into()),
        };
    }
    core.store.grant(&id, "admin", "*", now).await?;
    let actor = Actor::user(&id, &email);
    let ip = client.ip.to_string();
    audit::record(
        &core.store,
        audit::Event {
            action: "setup.admin_created",
            outcome: "success",
            actor: &actor,
            target: &email,
            target_user_id: Some(&id),
            ip: &ip,
            details: serde_json::json!({ "role": "admin" }),
        },
    )
    .await;
    // The first administrator always enrols a second factor before the session is active.
    let (token, _) = core
        .sessions
        .create(
            &core.store,
            NewSession {
                user_id: &id,
                stage: Stage::MfaEnroll,
                amr: &["pwd".to_string()],
                ip: &ip,
                user_agent: &client.user_agent,
                parent: None,
                upstream: None,
            },
        )
        .await?;
    Ok(see_other(
        "/mfa/enroll",
        Some(session_cookie(&core, &token)),
    ))
}
