//! The second-factor page (`/login/mfa`). Its one `code` field takes an authenticator code or a
//! recovery code (`login::code_is_valid` tells them apart); the page says which it expects and
//! sets the phone keyboard to match: digits for the app's code, letters for a recovery code
//! (`?recovery=1`). A link switches between the two; with JavaScript it switches in place.

use crate::core::{AppState, Core};
use crate::error::AppError;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct MfaQuery {
    #[serde(default)]
    pub rd: String,
    /// `1`: the recovery-code form.
    #[serde(default)]
    pub recovery: String,
}

impl MfaQuery {
    pub fn recovery(&self) -> bool {
        self.recovery == "1"
    }
}

/// `/login/mfa`, for the authenticator code or (`recovery`) a recovery code, back to `rd`.
pub fn url(rd: &str, recovery: bool) -> String {
    let mut query = Vec::new();
    if recovery {
        query.push("recovery=1".to_string());
    }
    if !rd.is_empty() && rd != "/" {
        query.push(format!(
            "rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        ));
    }
    if query.is_empty() {
        "/login/mfa".to_string()
    } else {
        format!("/login/mfa?{}", query.join("&"))
    }
}

/// `GET /login/mfa`: only for a session waiting for its second factor.
pub async fn get_mfa(
    State(core): State<AppState>,
    _at: super::At<super::require::SecondFactor>,
    headers: HeaderMap,
    Query(q): Query<MfaQuery>,
) -> Result<Response, AppError> {
    Ok(render(
        &core,
        &headers,
        StatusCode::OK,
        &q.rd,
        q.recovery(),
        None,
    ))
}

/// The page, with `error` above the form when a code was refused.
pub fn render(
    core: &Core,
    headers: &HeaderMap,
    status: StatusCode,
    rd: &str,
    recovery: bool,
    error: Option<&str>,
) -> Response {
    super::page(
        core,
        headers,
        status,
        "mfa.html",
        minijinja::context! {
            rd => rd,
            recovery => recovery,
            error => error,
            app_url => url(rd, false),
            recovery_url => url(rd, true),
            switch_url => url(rd, !recovery),
        },
    )
}
