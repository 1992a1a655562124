//! Signing a browser in on an app's own host. When an app lives on another host than the
//! public URL and no shared cookie domain is configured, the gateway's cookie cannot reach it:
//! after sign-in the browser is sent to `/.gatehouse/callback` on the app host with a
//! single-use, host-bound, 60-second code, which that host exchanges for its own session
//! (a child of the signed-in one: it ends with it).

use crate::app::{AppState, Core};
use crate::auth::session::{NewSession, Session, Stage};
use crate::config::host_of;
use crate::crypto;
use crate::error::AppError;
use crate::store;
use crate::web::ClientInfo;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

const HANDOFF_TTL: i64 = 60;

fn cookie_domain_covers(core: &Core, host: &str) -> bool {
    let Some(domain) = &core.config.session.cookie_domain else {
        return false;
    };
    let h = host.split(':').next().unwrap_or(host);
    let d = domain.trim_start_matches('.');
    h == d || h.ends_with(&format!(".{d}"))
}

/// Where a fully signed-in session goes next: `rd` itself, or, for an app host the session
/// cookie does not reach, that host's callback with a fresh handoff code.
pub async fn final_location(core: &Core, session: &Session, rd: &str) -> Result<String, AppError> {
    let target = crate::auth::safe_return(core, rd);
    let Ok(url) = url::Url::parse(&target) else {
        return Ok(target);
    };
    let host = host_of(&url);
    if host == core.config.public_host() || cookie_domain_covers(core, &host) {
        return Ok(target);
    }
    let code = crypto::random_token();
    core.store
        .insert_handoff(
            &crypto::sha256_hex(code.as_bytes()),
            &session.id.to_string(),
            &host,
            store::now() + HANDOFF_TTL,
        )
        .await?;
    let back = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    Ok(format!(
        "{}://{host}/.gatehouse/callback?code={code}&rd={}",
        url.scheme(),
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    ))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    rd: String,
}

fn expired(core: &Core, headers: &HeaderMap) -> Response {
    crate::auth::page(
        core,
        headers,
        axum::http::StatusCode::BAD_REQUEST,
        "message.html",
        minijinja::context! {
            title => "Sign-in link expired",
            message => "This sign-in link was already used, has expired, or belongs to another site. Open the application again to sign in.",
        },
    )
}

/// `/.gatehouse/callback` on an app host.
pub async fn get_callback(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let host = super::request_host(&uri, &headers);
    let now = store::now();
    if q.code.len() != 43 {
        return Ok(expired(&core, &headers));
    }
    let Some((session_id, bound_host)) = core
        .store
        .take_handoff(&crypto::sha256_hex(q.code.as_bytes()), now)
        .await?
    else {
        return Ok(expired(&core, &headers));
    };
    if bound_host != host {
        tracing::warn!(%host, "handoff code presented on another host than it was issued for");
        return Ok(expired(&core, &headers));
    }
    let parent = match core.store.session_by_id(&session_id).await? {
        Some(p)
            if p.revoked_at.is_none()
                && p.expires_at > now
                && p.stage == Stage::Active.as_str() =>
        {
            p
        }
        _ => return Ok(expired(&core, &headers)),
    };
    let amr: Vec<String> = parent
        .amr
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let ip = client.ip.to_string();
    let (token, _) = core
        .sessions
        .create(
            &core.store,
            NewSession {
                user_id: &parent.user_id,
                stage: Stage::Active,
                amr: &amr,
                ip: &ip,
                user_agent: &client.user_agent,
                parent: Some((&parent.id, parent.expires_at)),
            },
        )
        .await?;
    // Host-only cookie for this app host.
    let spec = crate::web::cookies::CookieSpec {
        secure: core.config.public_is_https(),
        domain: None,
    };
    let cookie = crate::web::cookies::set(core.config.session_cookie_name(), &token, &spec);
    let rd = if q.rd.starts_with('/') && !q.rd.starts_with("//") && !q.rd.contains('\\') {
        q.rd
    } else {
        "/".into()
    };
    Ok(crate::auth::see_other(&rd, Some(cookie)))
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    rd: String,
}

/// `/.gatehouse/login` on an app host: sign in at the gateway, then come back here.
pub async fn get_app_login(
    State(core): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<LoginQuery>,
) -> Response {
    let host = super::request_host(&uri, &headers);
    let path = if q.rd.starts_with('/') && !q.rd.starts_with("//") {
        q.rd
    } else {
        "/".into()
    };
    let back = format!("{}://{host}{path}", core.config.server.public_url.scheme());
    crate::auth::see_other(&super::login_url(&core, &back), None)
}

/// `GET /.gatehouse/logout` on any host: a sign-out button (a POST with a CSRF token, so that
/// no cross-site link or image can sign anyone out).
pub async fn get_logout(
    State(core): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let host = super::request_host(&uri, &headers);
    crate::auth::page(
        &core,
        &headers,
        axum::http::StatusCode::OK,
        "signout.html",
        minijinja::context! { title => "Sign out", host => host },
    )
}

/// `POST /.gatehouse/logout` on any host: ends this host's session, the sign-in it came from
/// and every sibling app-host session, releases seats, and clears this host's cookie.
pub async fn post_logout(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    uri: axum::http::Uri,
    axum::extract::Form(f): axum::extract::Form<crate::auth::login::LogoutForm>,
) -> Result<Response, AppError> {
    crate::auth::check_csrf(&core, &headers, &f.csrf)?;
    crate::auth::login::sign_out(&core, &headers, &client).await?;
    let host = super::request_host(&uri, &headers);
    // The cookie as this host got it: host-only on an app host, the configured spec on the
    // gateway's own host or under the shared cookie domain.
    let spec = if host == core.config.public_host() || cookie_domain_covers(&core, &host) {
        core.cookie_spec()
    } else {
        crate::web::cookies::CookieSpec {
            secure: core.config.public_is_https(),
            domain: None,
        }
    };
    let clear = crate::web::cookies::clear(core.config.session_cookie_name(), &spec);
    Ok(crate::auth::see_other(
        &core.public_url("/login"),
        Some(clear),
    ))
}
