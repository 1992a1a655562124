//! `/invite?token=…`: the page an invitation or activation mail leads to. The person sets a
//! password that meets the policy (typed twice) or continues with a provider they may use;
//! the link is spent by the statement that checks it, so of two racing submissions one wins.
//! An unknown, spent, revoked or expired link gets one page ("no longer valid") whatever the
//! reason; opened while signed in as someone else, the page says "sign out first" and changes
//! nothing.

use super::csrf::CsrfForm;
use super::password_change::policy_refusal;
use super::{advance, current_session, page, policy_text};
use crate::audit::{self, Actor};
use crate::core::{AppState, Core};
use crate::crypto;
use crate::error::AppError;
use crate::revocation::Invalidate;
use crate::store::{self, PendingLink};
use crate::web::ClientInfo;
use crate::web::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct InviteQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

impl super::csrf::CsrfToken for InviteForm {
    fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

fn no_longer_valid(core: &Core, headers: &HeaderMap) -> Response {
    page(
        core,
        headers,
        StatusCode::GONE,
        "message.html",
        minijinja::context! {
            title => "This link is no longer valid",
            message => "An invitation link works once and for a limited time. This one has been used, replaced by a newer one, withdrawn, or has expired. Ask your administrator for a new invitation, or sign in if you already set your password.",
            link => "/login", link_text => "Sign in",
        },
    )
}

/// The pending link of `token` (a token of the wrong shape is not looked up).
async fn pending(core: &Core, token: &str) -> Result<Option<PendingLink>, AppError> {
    if token.len() != 43 {
        return Ok(None);
    }
    Ok(core
        .store
        .pending_link(&crypto::sha256_hex(token.as_bytes()), store::now())
        .await?)
}

/// `Some(page)` when the browser is signed in (at any step) as someone other than the link's
/// person: nothing is changed, they are asked to sign out first.
async fn someone_else(
    core: &Core,
    headers: &HeaderMap,
    link: &PendingLink,
) -> Result<Option<Response>, AppError> {
    let Some(s) = current_session(core, headers).await? else {
        return Ok(None);
    };
    if s.user_id.to_string() == link.user_id {
        return Ok(None);
    }
    let who = core
        .store
        .user_by_id(&s.user_id.to_string())
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    Ok(Some(page(
        core,
        headers,
        StatusCode::CONFLICT,
        "invite.html",
        minijinja::context! { signed_in_as => who },
    )))
}

/// The providers this person may continue with: the one the invitation names, or those of
/// their email organization (every configured one when it names none).
async fn providers(core: &Core, link: &PendingLink) -> Result<Vec<(String, String)>, AppError> {
    let org_allows = match &link.org_id {
        Some(org) => Some(core.store.org_provider_ids(org).await?),
        None => None,
    };
    let ids = crate::directory::invitation_providers(
        &core.config.identity_providers,
        link.provider.as_deref(),
        org_allows,
    );
    Ok(super::discovery::buttons(core, "", &ids, Some(&link.email)))
}

async fn form(
    core: &Core,
    headers: &HeaderMap,
    link: &PendingLink,
    token: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    Ok(page(
        core,
        headers,
        status,
        "invite.html",
        minijinja::context! {
            token => token,
            email => &link.email,
            rules => policy_text(core),
            providers => providers(core, link).await?,
            expires => audit::format_time(link.expires_at),
            error => error,
        },
    ))
}

pub async fn get_invite(
    State(core): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<InviteQuery>,
) -> Result<Response, AppError> {
    let Some(link) = pending(&core, &q.token).await? else {
        return Ok(no_longer_valid(&core, &headers));
    };
    if let Some(refusal) = someone_else(&core, &headers, &link).await? {
        return Ok(refusal);
    }
    form(&core, &headers, &link, &q.token, None, StatusCode::OK).await
}

pub async fn post_invite(
    State(core): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<InviteForm>,
) -> Result<Response, AppError> {
    let Some(link) = pending(&core, &f.token).await? else {
        refused(&core, &client, "link_not_valid").await;
        return Ok(no_longer_valid(&core, &headers));
    };
    if let Some(refusal) = someone_else(&core, &headers, &link).await? {
        return Ok(refusal);
    }
    let unmet = if f.new_password != f.new_password_confirm {
        Some("The two passwords are not the same. Type the new password twice.".to_string())
    } else {
        policy_refusal(&core, &f.new_password, &link.email)
    };
    if let Some(msg) = unmet {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return form(&core, &headers, &link, &f.token, Some(&msg), status).await;
    }
    let hash = core
        .passwords
        .hash(&f.new_password)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let now = store::now();
    // Spent here, in the statement that checks it: a second submission finds it used.
    let Some(user_id) = core
        .store
        .accept_link(&crypto::sha256_hex(f.token.as_bytes()), &hash, now)
        .await?
    else {
        refused(&core, &client, "link_spent_meanwhile").await;
        return Ok(no_longer_valid(&core, &headers));
    };
    // A password set through a link ends every earlier session of the person.
    core.store
        .revoke_user_sessions(&user_id, "invitation_accepted", now)
        .await?;
    core.invalidate(Invalidate::User(user_id.clone())).await?;
    let Some(user) = core.store.user_by_id(&user_id).await? else {
        return Ok(no_longer_valid(&core, &headers));
    };
    audit::record(
        &core.store,
        audit::Event {
            action: "invitation.accept",
            outcome: "success",
            actor: &Actor::user(&user.id, &user.email),
            target: &user.email,
            target_user_id: Some(&user.id),
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "method": "password", "was": link.status }),
        },
    )
    .await;
    advance(&core, &user, vec!["pwd".to_string()], None, &client, "").await
}

/// A submission with a link that leads nowhere, audited (whose it was is not known).
async fn refused(core: &Core, client: &ClientInfo, reason: &str) {
    audit::record(
        &core.store,
        audit::Event {
            action: "invitation.accept",
            outcome: "failure",
            actor: &Actor::anonymous(),
            target: "",
            target_user_id: None,
            ip: &client.ip.to_string(),
            details: serde_json::json!({ "reason": reason }),
        },
    )
    .await;
}
