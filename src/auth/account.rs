//! `/`: who is signed in, the apps they may use (each app's `name` and `description`, as the
//! proxy's rules would admit them), links to change the password and set up MFA, sign-out.

use super::{page, session_at, stage_location, to_login};
use crate::core::AppState;
use crate::error::AppError;
use crate::session::Stage;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

pub async fn get_account(
    State(core): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let all = [
        Stage::Active,
        Stage::Mfa,
        Stage::MfaEnroll,
        Stage::PasswordChange,
    ];
    let Some((session, user)) = session_at(&core, &headers, &all).await? else {
        return Ok(to_login("/"));
    };
    if session.stage != Stage::Active {
        return Ok(super::see_other(
            &stage_location(&core, session.stage, "/"),
            None,
        ));
    }
    let held = core
        .store
        .holdings(&user.id, user.org_id.as_deref())
        .await?;
    let held = crate::directory::Holdings::from_rows(held);
    let mut roles: Vec<String> = Vec::new();
    for g in held.grants().iter() {
        let r = if g.app == "*" {
            g.role.clone()
        } else {
            format!("{}@{}", g.role, g.app)
        };
        // Own and organization grants may overlap.
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    let org = held.org().map(|o| o.name.clone());
    let slug = held.org().map(|o| o.slug.as_str());
    let scheme = core.config.server.public_url.scheme();
    let apps: Vec<minijinja::Value> = (core.config.apps.iter())
        .filter(|a| {
            crate::directory::rights(held.grants(), a, slug)
                .refusal
                .is_none()
        })
        .map(|a| {
            minijinja::context! {
                name => &a.name, description => &a.description,
                url => format!("{scheme}://{}{}", a.host, a.path_prefix),
            }
        })
        .collect();
    Ok(page(
        &core,
        &headers,
        StatusCode::OK,
        "account.html",
        minijinja::context! {
            email => user.email, name => user.name, roles => roles.join(", "),
            mfa => user.totp_secret.is_some(), org => org, apps => apps,
        },
    ))
}
