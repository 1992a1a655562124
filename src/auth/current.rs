//! The session a request carries, on the host it was sent to.

use crate::core::Core;
use crate::directory::UserStatus;
use crate::error::AppError;
use crate::session::{Session, Stage};
use crate::store::UserRow;
use crate::web::cookies;
use axum::http::{HeaderMap, header};
use std::sync::Arc;

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
        Some(u) if UserStatus::is_active(&u.status) => Ok(Some((s, u))),
        _ => Ok(None),
    }
}

/// The fully signed-in session behind the request's cookie, for a request to `host` (a
/// session still at a sign-in step does not pass the proxy; one made for another app host
/// does not count here).
pub async fn active_session(
    core: &Core,
    headers: &HeaderMap,
    host: &str,
) -> Result<Option<Arc<Session>>, AppError> {
    Ok(current_session_on(core, headers, host)
        .await?
        .filter(|s| s.stage == Stage::Active))
}
