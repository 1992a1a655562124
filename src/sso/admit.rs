//! Who an upstream identity signs in as — one function, the rules in order:
//!
//! 0. Google and generic providers must say `email_verified = true`, always;
//! 1. a linked (provider, subject) signs in as its user, if that user may sign in (active and
//!    not locked; blocked, deprovisioned, invited-only and locked users are refused);
//! 2. an unlinked identity whose verified address (`token::email_is_verified`) is a user's
//!    with a pending invitation **naming this provider** is linked to that user, the
//!    invitation spent and the user activated;
//! 3. (organizations, issue 17 item 3, joins here: a domain organization's verified address is
//!    created just in time; an email organization's listed address is admitted);
//! 4. anything else is refused, with one page that tells nothing of the address.
//!
//! An address alone never links an identity to an account: an account made with a password,
//! or linked to another provider, is not reachable by a provider that happens to vouch for the
//! same address unless an administrator's invitation names that provider.

use super::token::{Refusal, UpstreamIdentity, email_is_verified};
use crate::config::ProviderKind;
use crate::core::Core;
use crate::directory::{UserStatus, normalize_email};
use crate::error::AppError;
use crate::store::{self, UserRow};

/// A link's `last_used_at` is kept to this many seconds (not written at every sign-in).
const TOUCH_EVERY: i64 = 3600;

pub enum Admission {
    /// Rule 1: the identity was linked to this user already.
    Linked(UserRow),
    /// Rule 2: linked now by an invitation naming the provider.
    Invited(UserRow),
}

impl Admission {
    pub fn user(&self) -> &UserRow {
        match self {
            Admission::Linked(u) | Admission::Invited(u) => u,
        }
    }

    pub fn rule(&self) -> &'static str {
        match self {
            Admission::Linked(_) => "linked",
            Admission::Invited(_) => "invitation",
        }
    }
}

/// A user who may start a session now.
fn may_sign_in(u: &UserRow, now: i64) -> Result<(), Refusal> {
    if !UserStatus::is_active(&u.status) {
        return Err(Refusal(match u.status.as_str() {
            "blocked" => "status_blocked",
            "deprovisioned" => "status_deprovisioned",
            "locked" => "status_locked",
            "invited" => "status_invited",
            _ => "status_other",
        }));
    }
    if u.locked_until.is_some_and(|t| t > now) {
        return Err(Refusal("locked"));
    }
    Ok(())
}

pub async fn admit(
    core: &Core,
    kind: ProviderKind,
    id: &UpstreamIdentity,
) -> Result<Result<Admission, Refusal>, AppError> {
    let now = store::now();
    // SPEC, Upstream SSO: `email_verified` must be true — for Google and any OpenID provider
    // on every sign-in (Entra ID sends no such claim; its address matters only for rule 2).
    if kind != ProviderKind::Microsoft && !id.email_verified {
        return Ok(Err(Refusal("email_not_verified")));
    }
    // Rule 1.
    if let Some((user, last_used)) = core.store.linked_user(&id.provider, &id.subject).await? {
        if last_used.is_none_or(|t| now - t >= TOUCH_EVERY) {
            core.store
                .touch_identity(&id.provider, &id.subject, now)
                .await?;
        }
        return Ok(may_sign_in(&user, now).map(|()| Admission::Linked(user)));
    }
    // Every rule after this one rests on the address.
    if !email_is_verified(kind, id) {
        return Ok(Err(Refusal("email_not_verified")));
    }
    let email = normalize_email(id.email.as_deref().unwrap_or(""));
    // Rule 2.
    if let Some(user) = core.store.user_by_email(&email).await?
        && matches!(user.status.as_str(), "invited" | "active")
        && core
            .store
            .link_by_invitation(&user.id, &id.provider, &id.subject, &email, now)
            .await?
    {
        let Some(user) = core.store.user_by_id(&user.id).await? else {
            return Ok(Err(Refusal("linked_user_missing")));
        };
        return Ok(may_sign_in(&user, now).map(|()| Admission::Invited(user)));
    }
    // Rule 3: organization rules (issue 17 item 3) are added here.
    // Rule 4.
    Ok(Err(Refusal("no_account")))
}
