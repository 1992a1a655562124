//! Local sign-in: the pages that walk a person through it, with the rules of `credentials`
//! (password, policy, TOTP, lockout), ending in a `session`. The sign-in is a small state machine carried by the session's
//! `stage`: second factor → forced password change → forced MFA enrolment → active
//! (`flow`). Apps on other hosts get their own session through `handoff`. Every return URL
//! passes `return_url`; pages are rendered through `pages`.

pub mod account;
pub mod csrf;
pub mod current;
pub mod discovery;
pub mod enroll;
pub mod flow;
pub mod handoff;
pub mod invite;
pub mod login;
pub mod mfa_page;
pub mod pages;
pub mod password_change;
pub mod require;
pub mod return_url;
pub mod setup;

pub use csrf::{CsrfForm, CsrfToken};
pub use current::{active_session, current_session, current_session_on, session_at};
pub use flow::{
    advance, advance_location, end_session, next_stage, session_cookie, stage_location,
};
pub use pages::{check_csrf, page, policy_text, see_other, to_login};
pub use require::{At, Require, Requirement};
pub use return_url::{local_path, login_url, original_url, safe_return};

use crate::core::AppState;
use axum::Router;
use axum::routing::{get, post};

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + crate::web::client::TrustedProxies + 'static,
    AppState: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/", get(account::get_account))
        .route("/login", get(login::get_login).post(login::post_login))
        .route("/login/mfa", get(mfa_page::get_mfa).post(login::post_mfa))
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
        .route("/invite", get(invite::get_invite).post(invite::post_invite))
        // Cross-host sign-in, on app hosts and the public host (see `handoff`).
        .route("/.gatehouse/login", get(handoff::get_app_login))
        .route("/.gatehouse/handoff", get(handoff::get_handoff))
        .route("/.gatehouse/callback", get(handoff::get_callback))
        .route(
            "/.gatehouse/logout",
            get(handoff::get_logout).post(handoff::post_logout),
        )
}
