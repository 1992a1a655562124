//! Rendering the sign-in pages: templates with a CSRF token, redirects, the CSRF check.

use super::return_url::with_rd;
use crate::core::Core;
use crate::error::AppError;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

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

/// The CSRF check by hand. Form handlers do not call it: they take [`super::CsrfForm`],
/// which calls it before the handler runs; it is here for a handler whose token does not
/// arrive in a form body (none so far).
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
