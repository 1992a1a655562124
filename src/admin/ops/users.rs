//! Users: create, status changes, unlock, MFA reset, temporary passwords, anonymize, delete, and reading them.

use super::*;

impl Ops<'_> {
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        roles: &[(String, String)],
        password: Option<&str>,
        must_change: bool,
    ) -> OpResult<UserRow> {
        let email = email.trim();
        if !valid_email(email) {
            return Err(OpError::Invalid(format!(
                "--email: {email:?} is not an email address"
            )));
        }
        for (role, app) in roles {
            self.grantable("--role", role, app).await?;
        }
        let hash = match password {
            Some(p) => {
                self.check_password(p, email)?;
                Some(
                    self.base
                        .passwords
                        .hash(p)
                        .await
                        .map_err(|e| OpError::Invalid(e.to_string()))?,
                )
            }
            None => None,
        };
        let mut id = uuid::Uuid::now_v7().to_string();
        let now = store::now();
        let mut completed = false;
        match self
            .base
            .store
            .insert_user(
                &NewUser {
                    id: &id,
                    email,
                    email_normalized: &normalize_email(email),
                    name: name.trim(),
                    status: UserStatus::Active.as_str(),
                    password_hash: hash.as_deref(),
                    password_must_change: must_change,
                },
                now,
            )
            .await
        {
            Err(StoreError::Conflict) => {
                // An account still `invited` (an email organization's listed person) is
                // completed rather than refused.
                let existing = self.user(email).await?;
                if existing.status != UserStatus::Invited.as_str()
                    || !(self.base.store)
                        .complete_invited(
                            &existing.id,
                            name.trim(),
                            hash.as_deref(),
                            must_change,
                            now,
                        )
                        .await?
                {
                    return Err(OpError::Conflict(format!(
                        "a user with email {email} already exists"
                    )));
                }
                id = existing.id;
                completed = true;
            }
            // An organization's own address can never sign in, so no account may have it.
            Err(StoreError::Clash(c)) => {
                return Err(OpError::Conflict(format!(
                    "--email: {c}, which can never be used to sign in"
                )));
            }
            other => other?,
        }
        for (role, app) in roles {
            self.base.store.grant(&id, role, app, now).await?;
        }
        let roles_json: Vec<String> = roles.iter().map(|(r, a)| format!("{r}@{a}")).collect();
        let user = self.user(email).await?;
        // A listed address joins its organization as the account is made.
        let org = match &user.org_id {
            Some(id) => self.base.store.org_by_id(id).await?.map(|o| o.slug),
            None => None,
        };
        self.audit(
            "user.create",
            email,
            Some(&id),
            json!({ "after": { "email": email, "name": name.trim(), "status": UserStatus::Active.as_str(), "roles": roles_json, "password_set": password.is_some(), "org": org }, "completed_invited": completed }),
        )
        .await;
        Ok(user)
    }

    pub async fn set_status(
        &self,
        email: &str,
        status: UserStatus,
    ) -> OpResult<(UserRow, Revoked)> {
        let user = self.user(email).await?;
        if status != UserStatus::Active {
            self.keep_a_full_admin(&user, status.as_str()).await?;
        }
        self.base
            .store
            .set_user_status(&user.id, status.as_str(), store::now())
            .await?;
        let revoked = if status == UserStatus::Active {
            Revoked::default()
        } else {
            self.end_sessions(&user, status.as_str()).await?
        };
        let action = if status == UserStatus::Active {
            "user.unblock"
        } else {
            self.count_deprovisioning("users_blocked", 1, &revoked)
                .await;
            "user.block"
        };
        self.audit(
            action,
            &user.email,
            Some(&user.id),
            json!({ "before": { "status": user.status }, "after": { "status": status.as_str() }, "sessions_ended": revoked.sessions }),
        )
        .await;
        Ok((self.user(email).await?, revoked))
    }

    /// Whether the user may lose their full access (`doing` says how, for the message): never
    /// the last full access administrator.
    pub async fn may_lose_full_access(&self, user: &UserRow, doing: &str) -> OpResult<()> {
        self.keep_a_full_admin(user, doing).await
    }

    /// Whether the user may be deprovisioned: never the last full access administrator.
    pub async fn may_deprovision(&self, user: &UserRow) -> OpResult<()> {
        self.keep_a_full_admin(user, "deprovisioned").await
    }

    /// Ends a user's access and keeps the account (SCIM `active = false` or DELETE): status
    /// `deprovisioned`, every session ended on every instance (as `block` does), their seats
    /// released. Refuses the last full access administrator. The caller audits (it knows
    /// why); grants stay, so a reactivation restores them.
    pub async fn deprovision(&self, user: &UserRow, reason: &str) -> OpResult<Revoked> {
        self.may_deprovision(user).await?;
        self.base
            .store
            .set_user_status(&user.id, UserStatus::Deprovisioned.as_str(), store::now())
            .await?;
        let revoked = self.end_sessions(user, reason).await?;
        self.base.store.release_user_seats(&user.id).await?;
        Ok(revoked)
    }

    pub async fn unlock(&self, email: &str) -> OpResult<UserRow> {
        let user = self.user(email).await?;
        self.base.store.clear_failures(&user.id).await?;
        self.audit(
            "user.unlock",
            &user.email,
            Some(&user.id),
            json!({ "before": { "failed_count": user.failed_count, "locked_until": user.locked_until }, "after": { "failed_count": 0, "locked_until": null } }),
        )
        .await;
        self.user(email).await
    }

    /// Removes the second factor and ends every session. An organization member also leaves
    /// their organization (SPEC: Organization rules): off its member list and no longer
    /// belonging, so an administrator must grant their access again. Only a full access
    /// administrator may do this (SPEC names resetting a member's MFA among their tasks).
    pub async fn reset_mfa(
        &self,
        _admin: &directory::FullAdmin,
        email: &str,
    ) -> OpResult<(UserRow, Revoked, Option<String>)> {
        let user = self.user(email).await?;
        self.base.store.clear_mfa(&user.id, store::now()).await?;
        let left = self
            .base
            .store
            .leave_org(&user.id, &user.email_normalized, store::now())
            .await?;
        let revoked = self.end_sessions(&user, "mfa_reset").await?;
        self.audit(
            "mfa.reset",
            &user.email,
            Some(&user.id),
            json!({ "before": { "totp": user.totp_secret.is_some() }, "after": { "totp": false }, "sessions_ended": revoked.sessions }),
        )
        .await;
        let left = match left {
            Some(org_id) => self.base.store.org_by_id(&org_id).await?.map(|o| o.slug),
            None => None,
        };
        if let Some(slug) = &left {
            self.audit(
                "org.member.remove",
                slug,
                Some(&user.id),
                json!({ "email": user.email_normalized, "reason": "mfa_reset" }),
            )
            .await;
        }
        Ok((self.user(email).await?, revoked, left))
    }

    /// Sets a temporary password that must be changed at the next sign-in; ends all sessions.
    pub async fn set_temp_password(&self, email: &str, password: &str) -> OpResult<Revoked> {
        let user = self.user(email).await?;
        self.check_password(password, &user.email)?;
        let hash = self
            .base
            .passwords
            .hash(password)
            .await
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        self.base
            .store
            .set_password(&user.id, &hash, true, store::now())
            .await?;
        self.base.store.clear_failures(&user.id).await?;
        let revoked = self.end_sessions(&user, "temporary_password").await?;
        self.audit(
            "password.temporary",
            &user.email,
            Some(&user.id),
            json!({ "after": { "must_change": true }, "sessions_ended": revoked.sessions }),
        )
        .await;
        Ok(revoked)
    }

    pub async fn anonymize(&self, email: &str) -> OpResult<(String, Revoked)> {
        let user = self.user(email).await?;
        self.keep_a_full_admin(&user, "anonymized").await?;
        let revoked = self.end_sessions(&user, "anonymized").await?;
        let pseudonym = format!("anonymized-{}@invalid", &crypto_suffix(&user.id));
        self.audit(
            "user.anonymize",
            &user.email,
            Some(&user.id),
            json!({ "pseudonym": pseudonym }),
        )
        .await;
        self.base
            .store
            .anonymize_user(&user.id, &user.email, &pseudonym, store::now())
            .await?;
        Ok((pseudonym, revoked))
    }

    pub async fn delete(&self, email: &str) -> OpResult<Revoked> {
        let user = self.user(email).await?;
        self.keep_a_full_admin(&user, "deleted").await?;
        let revoked = self.end_sessions(&user, "deleted").await?;
        self.base.store.delete_user(&user.id).await?;
        self.count_deprovisioning("users_deleted", 1, &revoked)
            .await;
        self.audit(
            "user.delete",
            &user.email,
            Some(&user.id),
            json!({ "before": { "email": user.email, "status": user.status } }),
        )
        .await;
        Ok(revoked)
    }

    /// What an administrator is shown of a user: no hash, no secret.
    pub async fn describe(&self, u: &UserRow) -> OpResult<UserDetail> {
        let now = store::now();
        Ok(UserDetail {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            status: self.display_status(u).to_string(),
            password_set: u.password_hash.is_some(),
            password_must_change: u.password_must_change != 0,
            mfa: u.totp_secret.is_some(),
            recovery_codes_left: self.base.store.recovery_codes_left(&u.id).await?,
            failed_attempts: u.failed_count,
            locked_until: u.locked_until.filter(|t| *t > now),
            grants: self.base.store.grants_of(&u.id).await?,
            org: match &u.org_id {
                Some(id) => match self.base.store.org_by_id(id).await? {
                    Some(o) => Some(UserOrg {
                        grants: self.base.store.org_grants(&o.id).await?,
                        slug: o.slug,
                        name: o.name,
                    }),
                    None => None,
                },
                None => None,
            },
            sessions: self.base.store.list_sessions(Some(&u.id), now).await?.len(),
            identities: self.base.store.identities_of(&u.id).await?,
            created_at: u.created_at,
        })
    }

    pub async fn show_user(&self, email: &str) -> OpResult<UserDetail> {
        self.describe(&self.user(email).await?).await
    }

    pub async fn list_users(&self) -> OpResult<Vec<UserDetail>> {
        let mut out = Vec::new();
        for u in self.base.store.list_users().await? {
            out.push(self.describe(&u).await?);
        }
        Ok(out)
    }
}

/// A user as [`Ops::describe`] shows them. Times are Unix seconds.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub id: String,
    pub email: String,
    pub name: String,
    /// As shown: `active`, `blocked`, `locked`, ... (see `directory::display_status`).
    pub status: String,
    pub password_set: bool,
    pub password_must_change: bool,
    pub mfa: bool,
    pub recovery_codes_left: i64,
    pub failed_attempts: i64,
    /// Only while the lock holds; `i64::MAX` = until an administrator unlocks.
    pub locked_until: Option<i64>,
    /// The user's own grants.
    pub grants: Vec<GrantRow>,
    /// The organization they belong to, with the grants they hold through it.
    pub org: Option<UserOrg>,
    /// Live sessions.
    pub sessions: usize,
    /// Linked upstream identities (provider, subject).
    pub identities: Vec<store::IdentityRow>,
    pub created_at: i64,
}

/// A user's organization as [`Ops::describe`] shows it.
#[derive(Debug, Clone)]
pub struct UserOrg {
    pub slug: String,
    pub name: String,
    pub grants: Vec<GrantRow>,
}

fn crypto_suffix(id: &str) -> String {
    crate::crypto::sha256_hex(id.as_bytes())[..12].to_string()
}

/// A temporary password that satisfies any policy: 20 characters with every class.
pub fn generate_temp_password() -> String {
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnpqrstuvwxyz",
        b"23456789",
        b"!#%+-=?@",
    ];
    let bytes = crate::crypto::random_bytes::<20>();
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let set = SETS[i % 4];
            set[*b as usize % set.len()] as char
        })
        .collect()
}
