//! `/mfa/enroll`: TOTP enrolment (key URI + QR code), confirmed by a first valid code, then ten
//! recovery codes shown once. Forced when MFA is required and the user has none.

use super::csrf::CsrfForm;
use super::{advance_location, page, session_at, to_login};
use crate::audit::{self, Actor};
use crate::core::{AppState, Core};
use crate::credentials::totp;
use crate::error::AppError;
use crate::session::Stage;
use crate::store::{self, UserRow};
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::login::RdQuery;

/// The pending secret of this enrolment, created on first view and kept until confirmed, so
/// reloading the page does not invalidate an already scanned code.
async fn pending_secret(core: &Core, user: &UserRow) -> Result<String, AppError> {
    // Sealed for the user's TOTP slot from the start: confirming moves it there unchanged.
    let ctx = format!("totp:{}", user.id);
    if let Some(sealed) = &user.totp_pending_secret
        && let Ok(bytes) = core.keys.unseal(&ctx, sealed)
        && let Ok(s) = String::from_utf8(bytes)
    {
        return Ok(s);
    }
    let secret = totp::new_secret();
    core.store
        .set_pending_totp(&user.id, &core.keys.seal(&ctx, secret.as_bytes()))
        .await?;
    Ok(secret)
}

fn enroll_page(
    core: &Core,
    headers: &HeaderMap,
    user: &UserRow,
    secret: &str,
    stage: Stage,
    rd: &str,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let uri = totp::otpauth_uri(secret, &core.config.mfa.issuer, &user.email)
        .ok_or_else(|| AppError::Internal("cannot build otpauth URI".into()))?;
    let qr = totp::qr_svg(&uri).unwrap_or_default();
    Ok(page(
        core,
        headers,
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "enroll.html",
        minijinja::context! {
            rd => rd, secret => secret, secret_groups => groups_of_four(secret), otpauth_uri => uri, qr_svg => qr,
            required => stage == Stage::MfaEnroll, error => error,
        },
    ))
}

pub async fn get_enroll(
    State(core): State<AppState>,
    super::At { session, user, .. }: super::At<super::require::Enrolment>,
    headers: HeaderMap,
    Query(q): Query<RdQuery>,
) -> Result<Response, AppError> {
    if user.totp_secret.is_some() {
        return Ok(super::see_other("/", None));
    }
    let secret = pending_secret(&core, &user).await?;
    enroll_page(&core, &headers, &user, &secret, session.stage, &q.rd, None)
}

#[derive(Deserialize)]
pub struct EnrollForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    rd: String,
}

impl super::csrf::CsrfToken for EnrollForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

pub async fn post_enroll(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<EnrollForm>,
) -> Result<Response, AppError> {
    let Some((session, user)) =
        session_at(&core, &headers, &[Stage::MfaEnroll, Stage::Active]).await?
    else {
        return Ok(to_login(&f.rd));
    };
    let (Some(sealed), None) = (&user.totp_pending_secret, &user.totp_secret) else {
        return Ok(super::see_other("/mfa/enroll", None));
    };
    let secret = pending_secret(&core, &user).await?;
    let step = totp::matching_step(&secret, &f.code, store::now() as u64);
    let confirmed = match step {
        Some(step) => {
            core.store
                .confirm_totp(&user.id, sealed, step as i64, store::now())
                .await?
        }
        None => false,
    };
    if !confirmed {
        return enroll_page(
            &core,
            &headers,
            &user,
            &secret,
            session.stage,
            &f.rd,
            Some("That code does not match. Check the time on your phone and try the next code."),
        );
    }
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    core.store.replace_recovery_codes(&user.id, &hashes).await?;
    audit::record(
        &core.store,
        audit::Event {
            action: "mfa.enroll",
            outcome: "success",
            actor: &Actor::user(&user.id, &user.email),
            target: &user.email,
            target_user_id: Some(&user.id),
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "method": "totp", "recovery_codes": codes.len() }),
        },
    )
    .await;
    let Some(user) = core.store.user_by_id(&user.id).await? else {
        return Ok(to_login(&f.rd));
    };
    let mut amr = session.amr();
    if !amr.iter().any(|a| a == "otp") {
        amr.push("otp".into());
    }
    let (location, cookie) =
        advance_location(&core, &user, amr, Some(&session), &client, &f.rd).await?;
    let mut r = page(
        &core,
        &headers,
        StatusCode::OK,
        "recovery_codes.html",
        minijinja::context! { codes => codes, next => location },
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        r.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The key as people type it: groups of four (`ABCD EFGH …`).
fn groups_of_four(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
