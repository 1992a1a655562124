//! Organizations: create, update, delete, add and remove members, their grants, and reading
//! them. Every change takes a [`FullAdmin`] (SPEC: only full access administrators manage
//! organizations), is checked whole before anything is written (the shape by
//! `directory::shape_problem`, every address and domain by the store, in one transaction),
//! is audited with before and after, and clears the cached access of every member, so the
//! proxy applies the new rights at once.

use super::*;
use crate::directory::{AccessBy, FullAdmin, shape_problem, valid_domain};
use crate::store::{OrgData, OrgRow};

/// What `org create` or `org update` gives; `None` (or, for lists, `None`) leaves an
/// attribute as it is on update. On create, `name`, `email` and `access_by` are required.
#[derive(Debug, Clone, Default)]
pub struct OrgChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub access_by: Option<AccessBy>,
    pub domains: Option<Vec<String>>,
    pub members: Option<Vec<String>>,
    pub enforce_mfa: Option<bool>,
    pub providers: Option<Vec<String>>,
    /// (role, app) pairs, app `*` = every app.
    pub roles: Option<Vec<(String, String)>>,
}

/// An organization as administrators are shown it.
#[derive(Debug, Clone)]
pub struct OrgDetail {
    pub id: String,
    pub data: OrgData,
    pub members: Vec<MemberDetail>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One member: a listed address (with or without an account yet) or a user who belongs
/// through the organization's domain.
#[derive(Debug, Clone)]
pub struct MemberDetail {
    pub email: String,
    pub listed: bool,
    /// The account's status; `None`: no account yet.
    pub status: Option<String>,
}

/// What a change did beyond the organization itself.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OrgEffects {
    /// Users who became members.
    pub joined: usize,
    /// Users who are members no more.
    pub left: usize,
    /// Sessions ended because `enforce_mfa` now applies to someone without a second factor.
    pub sessions_ended: u64,
    /// Listed members without an account who were sent an activation mail.
    pub activations_sent: usize,
    /// Pending activation links withdrawn from people who left before using them.
    pub invitations_revoked: u64,
    pub instances_pending: i64,
}

fn bad(option: &str, what: impl std::fmt::Display) -> OpError {
    OpError::Invalid(format!("{option}: {what}"))
}

/// Lower-cased, deduplicated, each checked by `valid`.
fn normalized(
    option: &str,
    items: &[String],
    valid: impl Fn(&str) -> bool,
    what: &str,
) -> OpResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let n = normalize_email(item);
        if !valid(&n) {
            return Err(bad(option, format!("{:?} is not {what}", item.trim())));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

impl Ops<'_> {
    pub(super) async fn org(&self, slug: &str) -> OpResult<OrgRow> {
        self.base
            .store
            .org_by_slug(slug.trim())
            .await?
            .ok_or_else(|| OpError::Invalid(format!("--slug: no organization {}", slug.trim())))
    }

    /// `data` with `changes` applied, validated (names, addresses, domains, shape, roles and
    /// apps); the store checks who else holds the addresses.
    async fn changed(&self, mut data: OrgData, changes: OrgChanges) -> OpResult<OrgData> {
        if let Some(name) = changes.name {
            data.name = name.trim().to_string();
        }
        if data.name.is_empty() {
            return Err(bad("--name", "required: the organization's display name"));
        }
        if let Some(email) = changes.email {
            if !valid_email(&email) {
                return Err(bad(
                    "--email",
                    format!("{:?} is not an email address", email.trim()),
                ));
            }
            data.email = normalize_email(&email);
        }
        if let Some(a) = changes.access_by {
            data.access_by = a.as_str().to_string();
        }
        if let Some(d) = changes.domains {
            data.domains = normalized("--domain", &d, valid_domain, "a domain name")?;
        }
        if let Some(m) = changes.members {
            data.members = normalized("--member", &m, valid_email, "an email address")?;
        }
        if let Some(e) = changes.enforce_mfa {
            data.enforce_mfa = e;
        }
        if let Some(p) = changes.providers {
            data.providers = Vec::new();
            for id in p {
                let id = id.trim().to_string();
                if !crate::config::valid_name(&id) {
                    return Err(bad(
                        "--provider",
                        format!("{id:?} is not a provider id (1-64 of a-z, 0-9, '-', '_')"),
                    ));
                }
                if self.base.config.identity_provider(&id).is_none() {
                    let known: Vec<&str> = self
                        .base
                        .config
                        .identity_providers
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect();
                    return Err(bad(
                        "--provider",
                        format!(
                            "no identity provider {id:?} is configured (configured: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                if !data.providers.contains(&id) {
                    data.providers.push(id);
                }
            }
        }
        if let Some(roles) = changes.roles {
            for (role, app) in &roles {
                self.grantable("--role", role, app).await?;
            }
            data.grants = Vec::new();
            for g in roles {
                if !data.grants.contains(&g) {
                    data.grants.push(g);
                }
            }
        }
        let access_by = AccessBy::parse(&data.access_by)
            .ok_or_else(|| bad("--access-by", "required: domain or email"))?;
        if let Some(problem) = shape_problem(access_by, &data.domains, &data.members) {
            return Err(OpError::Invalid(problem));
        }
        // A domain is proved only by Google's `hd` or Microsoft's tenant (SPEC): a domain
        // organization's members sign in through those providers alone.
        if access_by == AccessBy::Domain {
            for id in &data.providers {
                let kind = self.base.config.identity_provider(id).map(|p| p.kind);
                if !matches!(
                    kind,
                    Some(
                        crate::config::ProviderKind::Google
                            | crate::config::ProviderKind::Microsoft
                    )
                ) {
                    return Err(bad(
                        "--provider",
                        format!(
                            "{id:?} is not a Google or Microsoft provider: an organization with \
                             access by domain signs in only through those (they prove the domain)"
                        ),
                    ));
                }
            }
        }
        Ok(data)
    }

    /// Saves `data` (new when `before` is `None`), then clears the cached access of everyone
    /// it concerns and ends the sessions of members that `enforce_mfa` now applies to and who
    /// have no second factor (they enrol at their next sign-in). With `activate`, every listed
    /// member who has no account yet is mailed an activation link; people who left lose
    /// theirs.
    async fn save(
        &self,
        existing: Option<&OrgRow>,
        before: Option<&OrgData>,
        data: &OrgData,
        activate: bool,
    ) -> OpResult<(String, OrgEffects)> {
        let saved = match self
            .base
            .store
            .save_org(existing.map(|o| o.id.as_str()), data, store::now())
            .await
        {
            Err(StoreError::Clash(c)) => return Err(OpError::Conflict(c.to_string())),
            Err(StoreError::Conflict) => {
                return Err(OpError::Conflict(
                    "another organization holds one of these addresses, domains or the slug \
                     (a change was made meanwhile): try again"
                        .into(),
                ));
            }
            other => other?,
        };
        let members = self.base.store.org_user_ids(&saved.id).await?;
        let newly_enforced = data.enforce_mfa && !before.is_some_and(|b| b.enforce_mfa);
        let mut effects = OrgEffects {
            joined: saved.joined.len(),
            left: saved.left.len(),
            ..Default::default()
        };
        if data.enforce_mfa {
            for id in &members {
                if !newly_enforced && !saved.joined.contains(id) {
                    continue;
                }
                match self.base.store.user_by_id(id).await? {
                    Some(u) if u.totp_secret.is_none() => {
                        effects.sessions_ended += self
                            .base
                            .store
                            .revoke_user_sessions(id, "enforce_mfa", store::now())
                            .await?;
                    }
                    _ => {}
                }
            }
        }
        effects.invitations_revoked = self.withdraw_activations(&saved.left).await?;
        let concerned: Vec<String> = members.into_iter().chain(saved.left).collect();
        effects.instances_pending = self.invalidate_users(&concerned).await?;
        if activate {
            effects.activations_sent = self.activate_listed(&self.org(&data.slug).await?).await?;
        }
        Ok((saved.id, effects))
    }

    pub async fn create_org(
        &self,
        _admin: &FullAdmin,
        slug: &str,
        changes: OrgChanges,
    ) -> OpResult<(OrgDetail, OrgEffects)> {
        let slug = slug.trim();
        if !crate::config::valid_name(slug) {
            return Err(bad("--slug", "1-64 of a-z, 0-9, '-', '_'"));
        }
        if changes.email.is_none() {
            return Err(bad("--email", "required: the organization's own address"));
        }
        let data = OrgData {
            slug: slug.to_string(),
            ..Default::default()
        };
        let data = self.changed(data, changes).await?;
        let (_, effects) = self.save(None, None, &data, true).await?;
        self.audit(
            "org.create",
            slug,
            None,
            json!({ "after": data, "effects": effects }),
        )
        .await;
        Ok((self.show_org(slug).await?, effects))
    }

    /// Replaces the attributes `changes` gives; the rest stay.
    pub async fn update_org(
        &self,
        _admin: &FullAdmin,
        slug: &str,
        changes: OrgChanges,
    ) -> OpResult<(OrgDetail, OrgEffects)> {
        let org = self.org(slug).await?;
        let before = self.base.store.org_data(&org).await?;
        let data = self.changed(before.clone(), changes).await?;
        let (_, effects) = self.save(Some(&org), Some(&before), &data, true).await?;
        self.audit(
            "org.update",
            &org.slug,
            None,
            json!({ "before": before, "after": data, "effects": effects }),
        )
        .await;
        Ok((self.show_org(&org.slug).await?, effects))
    }

    /// Lists `email` as a member (an `email` organization's); an existing account joins, and
    /// a person without one is mailed an activation link.
    pub async fn add_org_member(
        &self,
        admin: &FullAdmin,
        slug: &str,
        email: &str,
    ) -> OpResult<(bool, OrgEffects)> {
        let org = self.org(slug).await?;
        self.list_member(admin, &org, email, true).await
    }

    /// [`Ops::add_org_member`]; `activate`: whether a person without an account is mailed an
    /// activation link (an invitation carries its own).
    pub(super) async fn list_member(
        &self,
        _admin: &FullAdmin,
        org: &OrgRow,
        email: &str,
        activate: bool,
    ) -> OpResult<(bool, OrgEffects)> {
        let before = self.base.store.org_data(org).await?;
        let e = normalize_email(email);
        if before.members.contains(&e) {
            return Ok((false, OrgEffects::default()));
        }
        let mut members = before.members.clone();
        members.push(email.to_string());
        let changes = OrgChanges {
            members: Some(members),
            ..Default::default()
        };
        let data = self
            .changed(before.clone(), changes)
            .await
            .map_err(|e| match e {
                OpError::Invalid(m) => OpError::Invalid(m.replace("--member", "--email")),
                other => other,
            })?;
        let (_, effects) = self.save(Some(org), Some(&before), &data, activate).await?;
        let user = self
            .base
            .store
            .user_by_email(&normalize_email(email))
            .await?;
        self.audit(
            "org.member.add",
            &org.slug,
            user.as_ref().map(|u| u.id.as_str()),
            json!({ "email": normalize_email(email), "before": { "members": before.members }, "after": { "members": data.members }, "effects": effects }),
        )
        .await;
        Ok((true, effects))
    }

    /// Takes `email` out: off the member list, and the user (if any) no longer belongs.
    pub async fn remove_org_member(
        &self,
        _admin: &FullAdmin,
        slug: &str,
        email: &str,
    ) -> OpResult<OrgEffects> {
        let org = self.org(slug).await?;
        let before = self.base.store.org_data(&org).await?;
        let e = normalize_email(email);
        let user = self.base.store.user_by_email(&e).await?;
        let effects = if before.members.contains(&e) {
            let mut data = before.clone();
            data.members.retain(|m| *m != e);
            self.save(Some(&org), Some(&before), &data, false).await?.1
        } else if let Some(u) = user
            .as_ref()
            .filter(|u| u.org_id.as_deref() == Some(org.id.as_str()))
        {
            self.base.store.leave_org(&u.id, &e, store::now()).await?;
            OrgEffects {
                left: 1,
                invitations_revoked: self
                    .withdraw_activations(std::slice::from_ref(&u.id))
                    .await?,
                instances_pending: self.invalidate_users(std::slice::from_ref(&u.id)).await?,
                ..Default::default()
            }
        } else {
            return Err(bad(
                "--email",
                format!("{e} is not a member of {}", org.slug),
            ));
        };
        self.audit(
            "org.member.remove",
            &org.slug,
            user.as_ref().map(|u| u.id.as_str()),
            json!({ "email": e, "before": { "members": before.members }, "effects": effects }),
        )
        .await;
        Ok(effects)
    }

    /// Deletes the organization; its members stay users, without an organization.
    pub async fn delete_org(&self, _admin: &FullAdmin, slug: &str) -> OpResult<OrgEffects> {
        let org = self.org(slug).await?;
        let before = self.base.store.org_data(&org).await?;
        let former = self.base.store.delete_org(&org.id).await?;
        let effects = OrgEffects {
            left: former.len(),
            invitations_revoked: self.withdraw_activations(&former).await?,
            instances_pending: self.invalidate_users(&former).await?,
            ..Default::default()
        };
        self.audit(
            "org.delete",
            &org.slug,
            None,
            json!({ "before": before, "effects": effects }),
        )
        .await;
        Ok(effects)
    }

    /// Grants or revokes `role` on `app` (`*` = every app) for every member of organization
    /// `slug`. Returns false if nothing changed.
    pub async fn set_org_grant(
        &self,
        _admin: &FullAdmin,
        slug: &str,
        role: &str,
        app: &str,
        grant: bool,
    ) -> OpResult<bool> {
        let org = self.org(slug).await?;
        if grant {
            self.grantable("--role", role, app).await?;
        } else {
            self.role_exists(role).await?;
        }
        let now = store::now();
        let changed = if grant {
            self.base.store.grant_org(&org.id, role, app, now).await?
        } else {
            self.base.store.revoke_org(&org.id, role, app).await?
        };
        if changed {
            let members = self.base.store.org_user_ids(&org.id).await?;
            self.invalidate_users(&members).await?;
            self.audit(
                if grant { "grant.add" } else { "grant.remove" },
                &org.slug,
                None,
                json!({ "org": org.slug, "role": role, "app": app, "members": members.len() }),
            )
            .await;
        }
        Ok(changed)
    }

    pub async fn show_org(&self, slug: &str) -> OpResult<OrgDetail> {
        let org = self.org(slug).await?;
        self.describe_org(&org).await
    }

    pub async fn list_orgs(&self) -> OpResult<Vec<OrgDetail>> {
        let mut out = Vec::new();
        for org in self.base.store.list_orgs().await? {
            out.push(self.describe_org(&org).await?);
        }
        Ok(out)
    }

    async fn describe_org(&self, org: &OrgRow) -> OpResult<OrgDetail> {
        let members = self
            .base
            .store
            .org_member_rows(&org.id)
            .await?
            .into_iter()
            .map(|m| MemberDetail {
                email: m.email,
                listed: m.listed != 0,
                status: m.status,
            })
            .collect();
        Ok(OrgDetail {
            id: org.id.clone(),
            data: self.base.store.org_data(org).await?,
            members,
            created_at: org.created_at,
            updated_at: org.updated_at,
        })
    }
}
