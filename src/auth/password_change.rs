//! `/password/change`: forced after a temporary password (only `new_password`), or voluntary
//! (current `password` + `new_password`). Either way the policy applies and every other
//! session of the person ends.

use super::csrf::CsrfForm;
use super::{advance, page, policy_text, session_at, to_login};
use crate::audit::{self, Actor};
use crate::core::{AppState, Core};
use crate::credentials::lockout::Slot;
use crate::credentials::password::Verified;
use crate::credentials::policy;
use crate::error::AppError;
use crate::revocation::Invalidate;
use crate::session::Stage;
use crate::store::{self, UserRow};
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::login::RdQuery;

fn change_page(
    core: &Core,
    headers: &HeaderMap,
    forced: bool,
    rd: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    page(
        core,
        headers,
        status,
        "password.html",
        minijinja::context! { forced => forced, rd => rd, error => error, rules => policy_text(core) },
    )
}

pub async fn get_change(
    State(core): State<AppState>,
    super::At { session, .. }: super::At<super::require::PasswordChange>,
    headers: HeaderMap,
    Query(q): Query<RdQuery>,
) -> Result<Response, AppError> {
    Ok(change_page(
        &core,
        &headers,
        session.stage == Stage::PasswordChange,
        &q.rd,
        None,
        StatusCode::OK,
    ))
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    new_password: String,
    /// The new password typed a second time (the page asks for it; a client that posts
    /// `new_password` alone, as the contract allows, is not held to it).
    new_password_confirm: Option<String>,
    #[serde(default)]
    rd: String,
}

impl super::csrf::CsrfToken for ChangeForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

/// Checks the policy; the message names every unmet rule.
pub fn policy_refusal(core: &Core, password: &str, email: &str) -> Option<String> {
    let unmet = policy::check(&core.config.password_policy, password, email);
    (!unmet.is_empty()).then(|| policy::describe(&unmet))
}

pub async fn post_change(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<ChangeForm>,
) -> Result<Response, AppError> {
    let Some((session, user)) =
        session_at(&core, &headers, &[Stage::PasswordChange, Stage::Active]).await?
    else {
        return Ok(to_login(&f.rd));
    };
    let forced = session.stage == Stage::PasswordChange;
    if !forced && !current_password_ok(&core, &user, &f.password).await? {
        return Ok(change_page(
            &core,
            &headers,
            false,
            &f.rd,
            Some("The current password is not correct."),
            StatusCode::UNAUTHORIZED,
        ));
    }
    if f.new_password_confirm
        .as_deref()
        .is_some_and(|again| again != f.new_password)
    {
        return Ok(change_page(
            &core,
            &headers,
            forced,
            &f.rd,
            Some("The two new passwords are not the same. Type the new password twice."),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    if let Some(msg) = policy_refusal(&core, &f.new_password, &user.email) {
        return Ok(change_page(
            &core,
            &headers,
            forced,
            &f.rd,
            Some(&msg),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let hash = core
        .passwords
        .hash(&f.new_password)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let now = store::now();
    core.store.set_password(&user.id, &hash, false, now).await?;
    // Every session of the person ends (a stolen one included); this browser gets a new one.
    core.store
        .revoke_user_sessions(&user.id, "password_changed", now)
        .await?;
    core.invalidate(Invalidate::User(user.id.clone())).await?;
    audit::record(
        &core.store,
        audit::Event {
            action: "password.change",
            outcome: "success",
            actor: &Actor::user(&user.id, &user.email),
            target: &user.email,
            target_user_id: Some(&user.id),
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "forced": forced }),
        },
    )
    .await;
    let Some(user) = core.store.user_by_id(&user.id).await? else {
        return Ok(to_login(&f.rd));
    };
    advance(&core, &user, session.amr(), None, &client, &f.rd).await
}

/// The current password, checked under the same lockout as sign-in (this form must not become
/// a way around it).
async fn current_password_ok(
    core: &Core,
    user: &UserRow,
    password: &str,
) -> Result<bool, AppError> {
    let count = match core.lockout.take_slot(&core.store, &user.id).await? {
        Slot::Refused => return Ok(false),
        Slot::Taken { count } => count,
    };
    match core
        .passwords
        .verify(password, user.password_hash.as_deref())
        .await
    {
        Verified::Yes { .. } => {
            core.lockout.succeeded(&core.store, &user.id).await?;
            Ok(true)
        }
        Verified::No => {
            core.lockout.failed(&core.store, &user.id, count).await?;
            Ok(false)
        }
    }
}
