//! `/login` (the password step; the email step is `discovery`), `/login/mfa` (TOTP or recovery
//! code), `/logout`.

use super::csrf::CsrfForm;
use super::discovery::{again, buttons, discover, realm_of};
use super::{advance, end_session, page, session_at, to_login};
use crate::audit::{self, Actor};
use crate::core::AppState;
use crate::credentials::lockout::Slot;
use crate::credentials::password::Verified;
use crate::credentials::totp;
use crate::directory::{Realm, UserStatus, normalize_email};
use crate::error::AppError;
use crate::session::Stage;
use crate::store::{self, UserRow};
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The only answer to a refused password sign-in, whatever the reason: an unknown address, a
/// wrong password, a locked or blocked account all read (and weigh, byte for byte) the same.
const SIGNIN_REFUSED: &str = "Wrong email or password, or the account cannot sign in right now.";

/// SPEC: Organization rules: "The organization's own email address can never sign in".
pub const ORG_ADDRESS_REFUSED: &str =
    "This address belongs to an organization and cannot be used to sign in.";

#[derive(Deserialize)]
pub struct RdQuery {
    #[serde(default)]
    pub rd: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    /// Absent on the email step (home-realm discovery), present on the password step.
    password: Option<String>,
    #[serde(default)]
    rd: String,
}

impl super::csrf::CsrfToken for LoginForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

pub async fn get_login(
    State(core): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RdQuery>,
) -> Result<Response, AppError> {
    // Already signed in: straight on (through a handoff when the target is another app host).
    if session_at(&core, &headers, &[Stage::Active])
        .await?
        .is_some()
    {
        let to = crate::auth::handoff::final_location(&core, &q.rd);
        return Ok(super::see_other(&to, None));
    }
    let all: Vec<String> = (core.config.identity_providers.iter())
        .map(|p| p.id.clone())
        .collect();
    Ok(page(
        &core,
        &headers,
        StatusCode::OK,
        "login.html",
        minijinja::context! { step => "email", providers => buttons(&core, &q.rd, &all, None), rd => q.rd },
    ))
}

async fn refuse(
    core: &crate::core::Core,
    headers: &HeaderMap,
    client: &ClientInfo,
    email: &str,
    user: Option<&UserRow>,
    reason: &str,
    rd: &str,
) -> Response {
    refuse_saying(
        core,
        headers,
        client,
        email,
        user,
        reason,
        rd,
        SIGNIN_REFUSED,
    )
    .await
}

/// A refused sign-in: counted against the client's address, audited, and the sign-in page
/// again with `message`.
#[allow(clippy::too_many_arguments)]
async fn refuse_saying(
    core: &crate::core::Core,
    headers: &HeaderMap,
    client: &ClientInfo,
    email: &str,
    user: Option<&UserRow>,
    reason: &str,
    rd: &str,
    message: &str,
) -> Response {
    core.lockout.record_ip_failure(client.ip);
    audit::record(
        &core.store,
        audit::Event {
            action: "signin",
            outcome: "failure",
            actor: &Actor::anonymous(),
            target: email,
            target_user_id: user.map(|u| u.id.as_str()),
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "reason": reason, "step": "password" }),
        },
    )
    .await;
    // The buttons the email step would offer: the same page for an unknown address and for a
    // known one outside every organization.
    let ids = match realm_of(core, email).await {
        Ok(Realm::Password(ids) | Realm::Upstream(ids)) => ids,
        Err(_) => Vec::new(),
    };
    page(
        core,
        headers,
        StatusCode::UNAUTHORIZED,
        "login.html",
        minijinja::context! { step => "password", again => again(rd), rd => rd, error => message, email => email, providers => buttons(core, rd, &ids, Some(email)) },
    )
}

/// The password step's fields.
struct PasswordForm {
    email: String,
    password: String,
    rd: String,
}

pub async fn post_login(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let Some(password) = f.password.clone() else {
        return discover(&core, &headers, &client, &f.email, &f.rd).await;
    };
    let f = PasswordForm {
        email: f.email,
        password,
        rd: f.rd,
    };
    let email = normalize_email(&f.email);
    if core.lockout.ip_blocked(client.ip) {
        // Same work as a real attempt, so the throttle is not visible in the timing either.
        let _ = core.passwords.verify(&f.password, None).await;
        return Ok(refuse(
            &core,
            &headers,
            &client,
            &email,
            None,
            "ip_throttled",
            &f.rd,
        )
        .await);
    }
    if core.store.org_by_email(&email).await?.is_some() {
        // No account can have this address (creating one is refused), so this says nothing
        // about accounts; the password work is done all the same.
        let _ = core.passwords.verify(&f.password, None).await;
        return Ok(refuse_saying(
            &core,
            &headers,
            &client,
            &email,
            None,
            "organization_address",
            &f.rd,
            ORG_ADDRESS_REFUSED,
        )
        .await);
    }
    let Some(user) = core.store.user_by_email(&email).await? else {
        let _ = core.passwords.verify(&f.password, None).await;
        return Ok(refuse(
            &core,
            &headers,
            &client,
            &email,
            None,
            "unknown_account",
            &f.rd,
        )
        .await);
    };
    if !UserStatus::is_active(&user.status) {
        let _ = core.passwords.verify(&f.password, None).await;
        let reason = format!("status_{}", user.status);
        return Ok(refuse(
            &core,
            &headers,
            &client,
            &email,
            Some(&user),
            &reason,
            &f.rd,
        )
        .await);
    }
    let count = match core.lockout.take_slot(&core.store, &user.id).await? {
        Slot::Refused => {
            let _ = core.passwords.verify(&f.password, None).await;
            return Ok(refuse(
                &core,
                &headers,
                &client,
                &email,
                Some(&user),
                "locked",
                &f.rd,
            )
            .await);
        }
        Slot::Taken { count } => count,
    };
    match core
        .passwords
        .verify(&f.password, user.password_hash.as_deref())
        .await
    {
        Verified::No => {
            let response = refuse(
                &core,
                &headers,
                &client,
                &email,
                Some(&user),
                "bad_password",
                &f.rd,
            )
            .await;
            if core.lockout.failed(&core.store, &user.id, count).await? {
                audit_lockout(&core, &user, &client).await;
            }
            Ok(response)
        }
        Verified::Yes { rehash } => {
            core.lockout.succeeded(&core.store, &user.id).await?;
            if rehash
                && let (Ok(new), Some(old)) =
                    (core.passwords.hash(&f.password).await, &user.password_hash)
            {
                core.store
                    .upgrade_password_hash(&user.id, old, &new)
                    .await?;
            }
            advance(&core, &user, vec!["pwd".into()], None, &client, &f.rd).await
        }
    }
}

async fn audit_lockout(core: &crate::core::Core, user: &UserRow, client: &ClientInfo) {
    let until = match core.config.lockout.lock_for {
        Some(d) => serde_json::json!(audit::format_time(store::now() + d.as_secs() as i64)),
        None => serde_json::json!("manual unlock"),
    };
    audit::record(
        &core.store,
        audit::Event {
            action: "lockout",
            outcome: "success",
            actor: &Actor::system(),
            target: &user.email,
            target_user_id: Some(&user.id),
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "failures": core.config.lockout.max_failures, "until": until }),
        },
    )
    .await;
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    rd: String,
    /// `1` from the recovery-code form: shown again on a refusal.
    #[serde(default)]
    recovery: String,
}

impl super::csrf::CsrfToken for CodeForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

/// Checks a TOTP code (spending its time step) or a recovery code (spending the code).
async fn code_is_valid(
    core: &crate::core::Core,
    user: &UserRow,
    code: &str,
) -> Result<bool, AppError> {
    let now = store::now();
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let Some(sealed) = &user.totp_secret else {
            return Ok(false);
        };
        let secret = core
            .keys
            .unseal(&format!("totp:{}", user.id), sealed)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let secret =
            String::from_utf8(secret).map_err(|_| AppError::Internal("bad TOTP secret".into()))?;
        return match totp::matching_step(&secret, &digits, now as u64) {
            Some(step) => Ok(core.store.spend_totp_step(&user.id, step as i64).await?),
            None => Ok(false),
        };
    }
    Ok(core
        .store
        .spend_recovery_code(&user.id, &totp::recovery_code_hash(code), now)
        .await?)
}

pub async fn post_mfa(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    let Some((session, user)) = session_at(&core, &headers, &[Stage::Mfa]).await? else {
        return Ok(to_login(&f.rd));
    };
    let ip = client.ip.to_string();
    let fail = |reason: &'static str| {
        let core = core.clone();
        let user_id = user.id.clone();
        let email = user.email.clone();
        let ip = ip.clone();
        async move {
            audit::record(
                &core.store,
                audit::Event {
                    action: "signin",
                    outcome: "failure",
                    actor: &Actor::anonymous(),
                    target: &email,
                    target_user_id: Some(&user_id),
                    ip: &ip,
                    details: serde_json::json!({ "reason": reason, "step": "mfa" }),
                },
            )
            .await;
        }
    };
    let count = match core.lockout.take_slot(&core.store, &user.id).await? {
        Slot::Refused => {
            fail("locked").await;
            end_session(&core, &session, "locked").await?;
            return Ok(to_login(&f.rd));
        }
        Slot::Taken { count } => count,
    };
    if code_is_valid(&core, &user, &f.code).await? {
        core.lockout.succeeded(&core.store, &user.id).await?;
        let mut amr = session.amr();
        amr.push("otp".into());
        return advance(&core, &user, amr, Some(&session), &client, &f.rd).await;
    }
    fail("bad_code").await;
    if core.lockout.failed(&core.store, &user.id, count).await? {
        audit_lockout(&core, &user, &client).await;
        end_session(&core, &session, "locked").await?;
        return Ok(to_login(&f.rd));
    }
    Ok(super::mfa_page::render(
        &core,
        &headers,
        StatusCode::UNAUTHORIZED,
        &f.rd,
        f.recovery == "1",
        Some("That code is not valid. Codes work once; wait for the next one."),
    ))
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    pub csrf: String,
}

impl super::csrf::CsrfToken for LogoutForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

pub async fn post_logout(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    _checked: CsrfForm<LogoutForm>,
) -> Result<Response, AppError> {
    sign_out(&core, &headers, &client).await?;
    let clear = crate::web::cookies::clear(core.config.session_cookie_name(), &core.cookie_spec());
    Ok(super::see_other("/login", Some(clear)).into_response())
}

/// Ends the request's session (on the gateway or an app host), the sign-in it was handed off
/// from with every sibling, and the person's seats; audited.
pub async fn sign_out(
    core: &crate::core::Core,
    headers: &HeaderMap,
    client: &ClientInfo,
) -> Result<(), AppError> {
    if let Some(s) = super::current_session(core, headers).await? {
        let parent = core.store.session_parent(&s.id.to_string()).await?;
        end_session(core, &s, "signout").await?;
        // Signing out on an app host ends the sign-in it was handed off from (and so every
        // sibling app-host session); signing out anywhere releases the person's seats.
        if let Some(parent) = parent {
            for h in core
                .store
                .revoke_session(&parent, "signout", store::now())
                .await?
            {
                core.invalidate(crate::revocation::Invalidate::Session(h))
                    .await?;
            }
        }
        let user_id = s.user_id.to_string();
        if core.store.release_user_seats(&user_id).await? > 0 {
            core.invalidate(crate::revocation::Invalidate::User(user_id.clone()))
                .await?;
        }
        let email = core
            .store
            .user_by_id(&user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        audit::record(
            &core.store,
            audit::Event {
                action: "signout",
                outcome: "success",
                actor: &Actor::user(&user_id, &email),
                target: &email,
                target_user_id: Some(&user_id),
                ip: &client.ip.to_string(),
                details: serde_json::json!({ "session": s.id }),
            },
        )
        .await;
    }
    Ok(())
}
