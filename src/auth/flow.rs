//! The sign-in state machine: which stage a session is at, what comes next, and starting or
//! rotating into the session for it.

use super::pages::see_other;
use super::return_url::{safe_return, with_rd};
use crate::audit::{self, Actor};
use crate::core::Core;
use crate::directory::{self, Holdings};
use crate::error::AppError;
use crate::revocation::Invalidate;
use crate::session::{NewSession, Session, Stage, Upstream};
use crate::store::UserRow;
use crate::web::ClientInfo;
use crate::web::cookies;
use axum::response::Response;

/// The page that handles a stage.
pub fn stage_location(core: &Core, stage: Stage, rd: &str) -> String {
    match stage {
        Stage::Mfa => with_rd("/login/mfa", rd),
        Stage::PasswordChange => with_rd("/password/change", rd),
        Stage::MfaEnroll => with_rd("/mfa/enroll", rd),
        Stage::Active => safe_return(core, rd),
    }
}

/// What a user still has to do before their session is active.
pub async fn next_stage(core: &Core, user: &UserRow, amr: &[String]) -> Result<Stage, AppError> {
    if user.totp_secret.is_some() && !amr.iter().any(|a| a == "otp") {
        return Ok(Stage::Mfa);
    }
    if user.password_must_change != 0 && amr.iter().any(|a| a == "pwd") {
        return Ok(Stage::PasswordChange);
    }
    if user.totp_secret.is_none() {
        let held = core
            .store
            .holdings(&user.id, user.org_id.as_deref())
            .await?;
        let held = Holdings::from_rows(held);
        let required_for = &core.config.mfa.required_for_roles;
        // A role that needs MFA, or an organization with `enforce_mfa`: enrol first.
        if directory::mfa_required(held.grants(), required_for, held.org()) {
            return Ok(Stage::MfaEnroll);
        }
    }
    Ok(Stage::Active)
}

pub fn session_cookie(core: &Core, token: &str) -> String {
    cookies::set(
        core.config.session_cookie_name(),
        token,
        &core.cookie_spec(),
    )
}

/// Starts (or, with `replace`, rotates into) a session at the right stage and redirects there.
/// A new session id at every step defeats session fixation.
pub async fn advance(
    core: &Core,
    user: &UserRow,
    amr: Vec<String>,
    replace: Option<&Session>,
    client: &ClientInfo,
    rd: &str,
) -> Result<Response, AppError> {
    let (location, cookie) = advance_location(core, user, amr, replace, client, rd).await?;
    Ok(see_other(&location, Some(cookie)))
}

/// As [`advance`], returning where to go next and the new session's `Set-Cookie`.
pub async fn advance_location(
    core: &Core,
    user: &UserRow,
    amr: Vec<String>,
    replace: Option<&Session>,
    client: &ClientInfo,
    rd: &str,
) -> Result<(String, String), AppError> {
    advance_location_upstream(core, user, amr, replace, client, rd, None).await
}

/// As [`advance_location`], for a sign-in through an upstream provider: the session records
/// what `upstream` says of it (provider, sealed refresh token, `sub` and `sid`). A session
/// rotated from another (after the second factor) keeps what the old one had.
pub async fn advance_location_upstream(
    core: &Core,
    user: &UserRow,
    amr: Vec<String>,
    replace: Option<&Session>,
    client: &ClientInfo,
    rd: &str,
    upstream: Option<Upstream<'_>>,
) -> Result<(String, String), AppError> {
    let stage = next_stage(core, user, &amr).await?;
    if let Some(old) = replace {
        end_session(core, old, "rotated").await?;
    }
    let ip = client.ip.to_string();
    let (token, session) = core
        .sessions
        .create(
            &core.store,
            NewSession {
                user_id: &user.id,
                stage,
                amr: &amr,
                ip: &ip,
                user_agent: &client.user_agent,
                parent: None,
                upstream,
            },
        )
        .await?;
    if let (None, Some(old)) = (upstream, replace) {
        core.store
            .carry_session_upstream(&old.id.to_string(), &session.id.to_string())
            .await?;
    }
    // An upstream sign-in was audited (`signin.sso`) when its identity was admitted.
    if stage == Stage::Active && upstream.is_none() {
        audit::record(
            &core.store,
            audit::Event {
                action: "signin",
                outcome: "success",
                actor: &Actor::user(&user.id, &user.email),
                target: &user.email,
                target_user_id: Some(&user.id),
                ip: &ip,
                details: serde_json::json!({ "amr": amr }),
            },
        )
        .await;
    }
    let location = if stage == Stage::Active {
        crate::auth::handoff::final_location(core, rd)
    } else {
        stage_location(core, stage, rd)
    };
    Ok((location, session_cookie(core, &token)))
}

pub async fn end_session(core: &Core, s: &Session, reason: &str) -> Result<(), AppError> {
    let hashes = core
        .store
        .revoke_session(&s.id.to_string(), reason, crate::store::now())
        .await?;
    core.invalidate(Invalidate::Session(s.token_hash())).await?;
    let own = s.token_hash();
    for h in hashes.into_iter().filter(|h| *h != own) {
        core.invalidate(Invalidate::Session(h)).await?;
    }
    Ok(())
}
