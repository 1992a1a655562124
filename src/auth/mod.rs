//! Local sign-in: passwords (policy, hashing), lockout, TOTP, sessions, and the pages that
//! walk a person through them. The sign-in is a small state machine carried by the session's
//! `stage`: second factor → forced password change → forced MFA enrolment → active.

pub mod account;
pub mod csrf;
pub mod enroll;
pub mod lockout;
pub mod login;
pub mod password;
pub mod password_change;
pub mod policy;
pub mod session;
pub mod setup;
pub mod totp;

use crate::app::{AppState, Core};
use crate::audit::{self, Actor};
use crate::error::AppError;
use crate::revocation::Invalidate;
use crate::store::UserRow;
use crate::web::ClientInfo;
use crate::web::cookies;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use session::{NewSession, Session, Stage};
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(account::get_account))
        .route("/login", get(login::get_login).post(login::post_login))
        .route("/login/mfa", get(login::get_mfa).post(login::post_mfa))
        .route("/logout", post(login::post_logout))
        .route(
            "/mfa/enroll",
            get(enroll::get_enroll).post(enroll::post_enroll),
        )
        .route(
            "/password/change",
            get(password_change::get_change).post(password_change::post_change),
        )
        .route("/setup", get(setup::get_setup).post(setup::post_setup))
}

/// A return path as every entry point takes it (`rd` of sign-in, of an app host's sign-in
/// and of the handoff callback): a path on the same origin, else `None`. Refused: anything not
/// starting with one `/` (`//evil`, a scheme), a backslash (`/\evil` is `//evil` to a
/// browser), and control characters or whitespace anywhere — browsers delete tabs and line
/// breaks from URLs, so `/\t/evil` would become `//evil`, and a CR or LF cannot be sent in a
/// `Location` at all. What passes is resolved against a placeholder origin as a browser would
/// resolve it, and must stay there.
pub fn local_path(rd: &str) -> Option<String> {
    if !rd.starts_with('/')
        || rd.starts_with("//")
        || rd
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let base = url::Url::parse("http://origin.invalid/").expect("valid URL");
    let u = base.join(rd).ok()?;
    if u.origin() != base.origin() || !u.username().is_empty() {
        return None;
    }
    Some(rd.to_string())
}

/// Where to go after sign-in: a path on this gateway (see `local_path`), or a URL on its
/// public origin or on a configured app host. Anything else falls back to `/`: no open
/// redirect.
pub fn safe_return(core: &Core, rd: &str) -> String {
    let rd = rd.trim();
    if let Some(p) = local_path(rd) {
        return p;
    }
    if !rd
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && let Ok(u) = url::Url::parse(rd)
        && (u.scheme() == "http" || u.scheme() == "https")
        && u.username().is_empty()
        && u.password().is_none()
        && (u.origin() == core.config.server.public_url.origin()
            || core.proxy.routes.is_app_host(&crate::config::host_of(&u)))
    {
        return u.to_string();
    }
    "/".to_string()
}

fn with_rd(path: &str, rd: &str) -> String {
    if rd.is_empty() || rd == "/" {
        path.to_string()
    } else {
        format!(
            "{path}?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )
    }
}

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
        let grants = core.store.grants_of(&user.id).await?;
        if crate::directory::mfa_required(&grants, &core.config.mfa.required_for_roles) {
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
    let stage = next_stage(core, user, &amr).await?;
    if let Some(old) = replace {
        end_session(core, old, "rotated").await?;
    }
    let ip = client.ip.to_string();
    let (token, _) = core
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
            },
        )
        .await?;
    if stage == Stage::Active {
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
        crate::proxy::handoff::final_location(core, rd)
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

/// The session behind the request's cookie, if live and valid on the host the request was
/// sent to (`Host`, which `web::request::admit` sets on every transport).
pub async fn current_session(
    core: &Core,
    headers: &HeaderMap,
) -> Result<Option<Arc<Session>>, AppError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    current_session_on(core, headers, host).await
}

/// The session behind the request's cookie, if live and valid on `host` (see
/// `Session::fits`).
pub async fn current_session_on(
    core: &Core,
    headers: &HeaderMap,
    host: &str,
) -> Result<Option<Arc<Session>>, AppError> {
    match cookies::get(headers, core.config.session_cookie_name()) {
        Some(token) => Ok(core
            .sessions
            .lookup(&core.store, token)
            .await?
            .filter(|s| s.fits(host))),
        None => Ok(None),
    }
}

/// The session and its user, when the session is at `stage`.
pub async fn session_at(
    core: &Core,
    headers: &HeaderMap,
    stages: &[Stage],
) -> Result<Option<(Arc<Session>, UserRow)>, AppError> {
    let Some(s) = current_session(core, headers).await? else {
        return Ok(None);
    };
    if !stages.contains(&s.stage) {
        return Ok(None);
    }
    match core.store.user_by_id(&s.user_id.to_string()).await? {
        Some(u) if u.status == "active" => Ok(Some((s, u))),
        _ => Ok(None),
    }
}

pub fn see_other(location: &str, set_cookie: Option<String>) -> Response {
    let mut r = Redirect::to(location).into_response();
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub fn to_login(rd: &str) -> Response {
    see_other(&with_rd("/login", rd), None)
}

/// Renders a page with a fresh CSRF token (setting the CSRF cookie when the browser has none).
pub fn page(
    core: &Core,
    headers: &HeaderMap,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Response {
    let (csrf, set) = core.csrf.token(&core.keys, headers, &core.cookie_spec());
    let ctx = minijinja::context! { csrf => csrf, ..ctx };
    let mut r = (status, Html(core.templates.render(name, ctx))).into_response();
    if let Some(c) = set.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub fn check_csrf(core: &Core, headers: &HeaderMap, token: &str) -> Result<(), AppError> {
    if core.csrf.verify(&core.keys, headers, token) {
        Ok(())
    } else {
        Err(AppError::Csrf)
    }
}

pub fn policy_text(core: &Core) -> String {
    let p = &core.config.password_policy;
    let mut rules = vec![format!("at least {} characters", p.min_length)];
    if p.require_uppercase {
        rules.push("an uppercase letter".into());
    }
    if p.require_lowercase {
        rules.push("a lowercase letter".into());
    }
    if p.require_digit {
        rules.push("a digit".into());
    }
    if p.require_symbol {
        rules.push("a symbol".into());
    }
    format!(
        "Use {}; not a common password and not your email name.",
        rules.join(", ")
    )
}
