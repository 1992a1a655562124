//! Signing a browser in on an app's own host. When an app lives on another host than the
//! public URL and no shared cookie domain covers it, the gateway's cookie cannot reach it, so
//! that host gets a session of its own (a child of the gateway's: it ends with it), bound to
//! that host (`Session::fits`), through a handoff bound to the browser that asked for it:
//!
//! 1. `/.gatehouse/login?rd=/path` on the app host sets a random state cookie there
//!    (`gatehouse_handoff`, host-only) and sends the browser to the gateway's
//!    `/.gatehouse/handoff?host=…&state=…&rd=/path`;
//! 2. there, once signed in (else via `/login` and back), the gateway issues a single-use,
//!    60-second code bound to the session, the app host and the state, and sends the browser to
//!    `/.gatehouse/callback?code=…&rd=/path` on the app host;
//! 3. the callback spends the code only together with the state cookie it was issued for.
//!
//! So a callback link taken from one browser signs no other browser in (login CSRF: an
//! attacker's own code, opened by a victim, would otherwise put the victim in the attacker's
//! account), and a browser already signed in on the app host as someone else is never switched
//! to another person silently.

use crate::audit::{self, Actor};
use crate::config::host_of;
use crate::core::{AppState, Core};
use crate::crypto;
use crate::error::AppError;
use crate::session::{NewSession, Stage};
use crate::store;
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

const HANDOFF_TTL: i64 = 60;
/// The state cookie on an app host, alive while a sign-in is under way.
pub const STATE_COOKIE: &str = "gatehouse_handoff";
const STATE_TTL: i64 = 600;

fn cookie_domain_covers(core: &Core, host: &str) -> bool {
    let Some(domain) = &core.config.session.cookie_domain else {
        return false;
    };
    let h = host.split(':').next().unwrap_or(host);
    let d = domain.trim_start_matches('.');
    h == d || h.ends_with(&format!(".{d}"))
}

/// A host the gateway's own cookie does not reach: sign-in there goes through a handoff.
fn needs_handoff(core: &Core, host: &str) -> bool {
    host != core.config.public_host() && !cookie_domain_covers(core, host)
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where a fully signed-in session goes next: `rd` itself, or, for an app host the session
/// cookie does not reach, that host's sign-in start (which binds the handoff to the browser).
pub fn final_location(core: &Core, rd: &str) -> String {
    let target = super::safe_return(core, rd);
    let Ok(url) = url::Url::parse(&target) else {
        return target;
    };
    let host = host_of(&url);
    if !needs_handoff(core, &host) {
        return target;
    }
    let back = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    format!(
        "{}://{host}/.gatehouse/login?rd={}",
        url.scheme(),
        encode(&back)
    )
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    rd: String,
}

/// A state value as the gateway makes them (43 URL-safe base64 characters).
fn well_formed(state: &str) -> bool {
    state.len() == 43
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn state_cookie(core: &Core, value: &str, max_age: i64) -> String {
    let mut c = format!(
        "{STATE_COOKIE}={value}; Path=/.gatehouse/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    );
    if core.config.public_is_https() {
        c.push_str("; Secure");
    }
    c
}

/// `/.gatehouse/login` on an app host: sign in at the gateway, then come back here.
pub async fn get_app_login(
    State(core): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<LoginQuery>,
) -> Response {
    let host = crate::web::request::request_host(&uri, &headers);
    let path = super::local_path(&q.rd).unwrap_or_else(|| "/".into());
    let scheme = core.config.server.public_url.scheme();
    if !needs_handoff(&core, &host) || !core.config.is_app_host(&host) {
        let back = format!("{scheme}://{host}{path}");
        return super::see_other(&crate::auth::login_url(&core, &back), None);
    }
    // One state per browser and app host while sign-ins are under way (several tabs share it).
    let state = crate::web::cookies::get(&headers, STATE_COOKIE)
        .filter(|s| well_formed(s))
        .map(str::to_string)
        .unwrap_or_else(crypto::random_token);
    let next = core.public_url(&format!(
        "/.gatehouse/handoff?host={}&state={state}&rd={}",
        encode(&host),
        encode(&path)
    ));
    super::see_other(&next, Some(state_cookie(&core, &state, STATE_TTL)))
}

#[derive(Deserialize)]
pub struct HandoffQuery {
    #[serde(default)]
    host: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    rd: String,
}

fn message(
    core: &Core,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    super::page(
        core,
        headers,
        status,
        "message.html",
        minijinja::context! { title => title, message => text },
    )
}

/// `/.gatehouse/handoff` on the gateway's public host: a code for the app host that asked
/// (step 2), once the browser is signed in here.
pub async fn get_handoff(
    State(core): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<HandoffQuery>,
) -> Result<Response, AppError> {
    if crate::web::request::request_host(&uri, &headers) != core.config.public_host() {
        return Err(AppError::NotFound);
    }
    let host = q.host.to_ascii_lowercase();
    if !well_formed(&q.state) || !core.config.is_app_host(&host) || !needs_handoff(&core, &host) {
        return Ok(message(
            &core,
            &headers,
            StatusCode::BAD_REQUEST,
            "Sign-in link not valid",
            "This sign-in link is not valid. Open the application again to sign in.",
        ));
    }
    let rd = super::local_path(&q.rd).unwrap_or_else(|| "/".into());
    let public = core.config.public_host();
    let Some(session) = crate::auth::active_session(&core, &headers, &public).await? else {
        let here = core.public_url(&format!(
            "/.gatehouse/handoff?host={}&state={}&rd={}",
            encode(&host),
            q.state,
            encode(&rd)
        ));
        return Ok(super::see_other(
            &crate::auth::login_url(&core, &here),
            None,
        ));
    };
    let code = crypto::random_token();
    core.store
        .insert_handoff(
            &crypto::sha256_hex(code.as_bytes()),
            &session.id.to_string(),
            &host,
            &crypto::sha256_hex(q.state.as_bytes()),
            store::now() + HANDOFF_TTL,
        )
        .await?;
    Ok(super::see_other(
        &format!(
            "{}://{host}/.gatehouse/callback?code={code}&rd={}",
            core.config.server.public_url.scheme(),
            encode(&rd)
        ),
        None,
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
    message(
        core,
        headers,
        StatusCode::BAD_REQUEST,
        "Sign-in link expired",
        "This sign-in link was already used, has expired, or belongs to another site or browser. Open the application again to sign in.",
    )
}

/// `/.gatehouse/callback` on an app host (step 3).
pub async fn get_callback(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let host = crate::web::request::request_host(&uri, &headers);
    let now = store::now();
    if q.code.len() != 43 {
        return Ok(expired(&core, &headers));
    }
    // Spent whatever follows: a code shown to the wrong browser is gone.
    let Some((session_id, bound_host, state_hash)) = core
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
    let state = crate::web::cookies::get(&headers, STATE_COOKIE).filter(|s| well_formed(s));
    let ours = state.is_some_and(|s| {
        crypto::ct_eq(
            crypto::sha256_hex(s.as_bytes()).as_bytes(),
            state_hash.as_bytes(),
        )
    });
    if !ours {
        tracing::warn!(%host, "handoff code presented by another browser than the one that asked for it");
        return Ok(expired(&core, &headers));
    }
    let parent = match core.store.session_by_id(&session_id).await? {
        Some(p)
            if p.revoked_at.is_none()
                && p.expires_at > now
                && p.stage == Stage::Active.as_str()
                && p.host.is_none() =>
        {
            p
        }
        _ => return Ok(expired(&core, &headers)),
    };
    let ip = client.ip.to_string();
    // Signed in here already: as the same person, the new session replaces the old one; as
    // someone else, nothing changes until they sign out.
    if let Some(existing) = super::current_session_on(&core, &headers, &host).await? {
        if existing.user_id.to_string() != parent.user_id {
            let user = core.store.user_by_id(&parent.user_id).await?;
            let email = user.map(|u| u.email).unwrap_or_default();
            audit::record(
                &core.store,
                audit::Event {
                    action: "handoff.refused",
                    outcome: "denied",
                    actor: &Actor::user(&parent.user_id, &email),
                    target: &host,
                    target_user_id: Some(&parent.user_id),
                    ip: &ip,
                    details: serde_json::json!({ "reason": "another_user_signed_in" }),
                },
            )
            .await;
            return Ok(message(
                &core,
                &headers,
                StatusCode::CONFLICT,
                "Someone else is signed in here",
                "Another person is signed in to this application in this browser. Sign out here first (/.gatehouse/logout), then sign in again.",
            ));
        }
        if existing.id.to_string() != parent.id {
            super::end_session(&core, &existing, "replaced").await?;
        }
    }
    let amr: Vec<String> = parent
        .amr
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
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
                parent: Some((&parent.id, parent.expires_at, &host)),
                upstream: None,
            },
        )
        .await?;
    // Host-only cookie for this app host.
    let spec = crate::web::cookies::CookieSpec {
        secure: core.config.public_is_https(),
        domain: None,
    };
    let cookie = crate::web::cookies::set(core.config.session_cookie_name(), &token, &spec);
    let rd = super::local_path(&q.rd).unwrap_or_else(|| "/".into());
    let mut r = super::see_other(&rd, Some(cookie));
    if let Ok(v) = HeaderValue::from_str(&state_cookie(&core, "", 0)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `GET /.gatehouse/logout` on any host: a sign-out button (a POST with a CSRF token, so that
/// no cross-site link or image can sign anyone out).
pub async fn get_logout(
    State(core): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let host = crate::web::request::request_host(&uri, &headers);
    super::page(
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
    _checked: super::CsrfForm<super::login::LogoutForm>,
) -> Result<Response, AppError> {
    super::login::sign_out(&core, &headers, &client).await?;
    let host = crate::web::request::request_host(&uri, &headers);
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
    Ok(super::see_other(&core.public_url("/login"), Some(clear)))
}
