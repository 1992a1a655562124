//! Who an upstream identity signs in as — one function, the rules in order:
//!
//! 0. Google and generic providers must say `email_verified = true`, always;
//! 1. a linked (provider, subject) signs in as its user, if that user may sign in (active and
//!    not locked; blocked, deprovisioned, invited-only and locked users are refused);
//! 2. an unlinked identity whose verified address (`token::email_is_verified`) is a user's
//!    with a pending invitation **naming this provider** is linked to that user, the
//!    invitation spent and the user activated;
//! 3. an unlinked identity from provider P whose verified address is that of a user
//!    **provisioned by P** through SCIM (and not deleted there) is linked to that user, who
//!    signs in if they may (a deprovisioned one never does) and if their organization, when
//!    it names providers, allows P: the directory that created the account vouches for it;
//! 4. an organization admits the verified address: the email organization that lists it
//!    (through any provider it allows — all, when it names none), or the domain organization
//!    that owns its domain (through Google, whose `hd` claim must be that domain, or
//!    Microsoft, whose tenant passed `allowed_tenants`; and a provider it allows). The
//!    organization's member signs in, their identity linked (a listed member still `invited`
//!    is activated, their activation link spent); someone without an account yet is created
//!    just in time as its member. An account of that address outside the
//!    organization is never taken over, and an account that exists is never re-created, so a
//!    deprovisioned or blocked person stays out;
//! 5. anything else is refused, with one page that tells nothing of the address.
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
    /// Rule 3: provisioned by this provider (SCIM), linked now.
    Provisioned(UserRow),
    /// Rule 4: an organization's member, linked now.
    Member(UserRow),
    /// Rule 4: created just now as an organization's member.
    JustInTime(UserRow),
}

impl Admission {
    pub fn user(&self) -> &UserRow {
        match self {
            Admission::Linked(u)
            | Admission::Invited(u)
            | Admission::Provisioned(u)
            | Admission::Member(u)
            | Admission::JustInTime(u) => u,
        }
    }

    pub fn rule(&self) -> &'static str {
        match self {
            Admission::Linked(_) => "linked",
            Admission::Invited(_) => "invitation",
            Admission::Provisioned(_) => "scim_provisioned",
            Admission::Member(_) => "organization",
            Admission::JustInTime(_) => "organization_just_in_time",
        }
    }

    /// Whether the identity was linked by this sign-in (audited as `identity.link`).
    pub fn linked_now(&self) -> bool {
        !matches!(self, Admission::Linked(_))
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
    // Rule 3.
    if let Some(admitted) = by_provisioning(core, id, &email, now).await? {
        return Ok(admitted);
    }
    // Rule 4.
    if let Some(admitted) = by_organization(core, kind, id, &email, now).await? {
        return Ok(admitted);
    }
    // Rule 5.
    Ok(Err(Refusal("no_account")))
}

/// Rule 3: `None` when this provider did not provision the address's account.
async fn by_provisioning(
    core: &Core,
    id: &UpstreamIdentity,
    email: &str,
    now: i64,
) -> Result<Option<Result<Admission, Refusal>>, AppError> {
    let Some(record) = core.store.scim_user_by_email(email).await? else {
        return Ok(None);
    };
    if record.provider != id.provider || record.deleted_at.is_some() {
        return Ok(None);
    }
    let Some(user) = core.store.user_by_id(&record.id).await? else {
        return Ok(None);
    };
    if let Err(r) = may_sign_in(&user, now) {
        return Ok(Some(Err(r)));
    }
    if let Some(org) = &user.org_id {
        let allowed = core.store.org_provider_ids(org).await?;
        if !allowed.is_empty() && !allowed.contains(&id.provider) {
            return Ok(Some(Err(Refusal("provider_not_allowed_by_organization"))));
        }
    }
    core.store
        .link_identity(&user.id, &id.provider, &id.subject, email, now)
        .await?;
    Ok(Some(Ok(Admission::Provisioned(user))))
}

/// Rule 4: `None` when no organization concerns the address.
async fn by_organization(
    core: &Core,
    kind: ProviderKind,
    id: &UpstreamIdentity,
    email: &str,
    now: i64,
) -> Result<Option<Result<Admission, Refusal>>, AppError> {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    let orgs = core.store.orgs_of_address(email, domain).await?;
    let org = match (orgs.listing, orgs.by_domain) {
        (Some(listing), _) => listing,
        (None, Some(owner)) => {
            // Only Google's `hd` and Microsoft's tenant prove a domain.
            let proved = match kind {
                ProviderKind::Google => id
                    .hosted_domain
                    .as_deref()
                    .is_some_and(|hd| hd.eq_ignore_ascii_case(domain)),
                // The tenant passed the provider's checks; it must be one the operator chose
                // (a pinned tenant or `allowed_tenants`), not any directory at all.
                ProviderKind::Microsoft => {
                    id.tenant.is_some()
                        && core
                            .config
                            .identity_provider(&id.provider)
                            .and_then(|p| p.microsoft.as_ref())
                            .is_some_and(|m| {
                                !m.allowed_tenants.is_empty()
                                    || matches!(m.tenant, crate::config::Tenant::Single(_))
                            })
                }
                ProviderKind::Oidc => false,
            };
            if !proved {
                return Ok(Some(Err(Refusal("domain_not_proved"))));
            }
            owner
        }
        (None, None) => return Ok(None),
    };
    let allowed = core.store.org_provider_ids(&org.id).await?;
    if !allowed.is_empty() && !allowed.contains(&id.provider) {
        return Ok(Some(Err(Refusal("provider_not_allowed_by_organization"))));
    }
    match core.store.user_by_email(email).await? {
        Some(mut user) if user.org_id.as_deref() == Some(org.id.as_str()) => {
            // A listed member who has not activated yet does so now, through a provider the
            // organization allows: their activation link is spent.
            if user.status == UserStatus::Invited.as_str()
                && core.store.activate_invited(&user.id, now).await?
            {
                match core.store.user_by_id(&user.id).await? {
                    Some(u) => user = u,
                    None => return Ok(Some(Err(Refusal("linked_user_missing")))),
                }
            }
            if let Err(r) = may_sign_in(&user, now) {
                return Ok(Some(Err(r)));
            }
            core.store
                .link_identity(&user.id, &id.provider, &id.subject, email, now)
                .await?;
            Ok(Some(Ok(Admission::Member(user))))
        }
        // The address's account is not the organization's: never taken over by address.
        Some(_) => Ok(Some(Err(Refusal("account_outside_organization")))),
        None => {
            let user_id = uuid::Uuid::now_v7().to_string();
            let name = id.name.as_deref().unwrap_or(email);
            let created = core
                .store
                .insert_upstream_user(
                    &crate::store::NewUser {
                        id: &user_id,
                        email,
                        email_normalized: email,
                        name,
                        status: UserStatus::Active.as_str(),
                        password_hash: None,
                        password_must_change: false,
                    },
                    (org.access_by == "domain").then_some(org.id.as_str()),
                    &id.provider,
                    &id.subject,
                    now,
                )
                .await;
            match created {
                Ok(()) => {}
                Err(crate::store::StoreError::Clash(_)) => {
                    return Ok(Some(Err(Refusal("organization_address"))));
                }
                // Created meanwhile by a parallel sign-in: that one wins, this one asks again.
                Err(crate::store::StoreError::Conflict) => {
                    return Ok(Some(Err(Refusal("created_meanwhile"))));
                }
                Err(e) => return Err(e.into()),
            }
            let Some(user) = core.store.user_by_id(&user_id).await? else {
                return Ok(Some(Err(Refusal("linked_user_missing"))));
            };
            Ok(Some(Ok(Admission::JustInTime(user))))
        }
    }
}
