//! Invitations: a single-use, expiring link (only its hash is kept) for a person who has no
//! way to sign in yet; when it names an identity provider, that provider's verified identity
//! of the address may link to the account (`sso::admit`, rule 2).

use super::*;

/// A new invitation, with the link shown once.
pub struct Invitation {
    pub user_id: String,
    pub email: String,
    pub provider: Option<String>,
    pub link: String,
    pub expires_at: i64,
}

pub use store::InvitationRow as PendingInvitation;

impl Ops<'_> {
    pub async fn invite(
        &self,
        email: &str,
        roles: &[(String, String)],
        provider: Option<&str>,
    ) -> OpResult<Invitation> {
        let email = email.trim();
        if !valid_email(email) {
            return Err(OpError::Invalid(format!(
                "--email: {email:?} is not an email address"
            )));
        }
        if let Some(p) = provider
            && self.base.config.identity_provider(p).is_none()
        {
            let known: Vec<&str> = (self.base.config.identity_providers.iter())
                .map(|p| p.id.as_str())
                .collect();
            return Err(OpError::Invalid(format!(
                "--provider: no identity provider {p:?} is configured ([[identity_provider]] ids: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        for (role, app) in roles {
            self.role_exists(role).await?;
            if app != "*" && !self.base.config.apps.iter().any(|a| a.id == *app) {
                return Err(OpError::Invalid(format!(
                    "--role {role}@{app}: no app {app:?} is configured"
                )));
            }
        }
        let now = store::now();
        let user = match self
            .base
            .store
            .user_by_email(&normalize_email(email))
            .await?
        {
            Some(u) if matches!(u.status.as_str(), "blocked" | "deprovisioned") => {
                return Err(OpError::Conflict(format!(
                    "{} is {}: unblock the account before inviting them",
                    u.email, u.status
                )));
            }
            Some(u) => u,
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                match self
                    .base
                    .store
                    .insert_user(
                        &NewUser {
                            id: &id,
                            email,
                            email_normalized: &normalize_email(email),
                            name: "",
                            status: UserStatus::Invited.as_str(),
                            password_hash: None,
                            password_must_change: false,
                        },
                        now,
                    )
                    .await
                {
                    // Created by someone else meanwhile: invite that user.
                    Err(StoreError::Conflict) | Ok(()) => {}
                    Err(e) => return Err(e.into()),
                }
                self.user(email).await?
            }
        };
        let mut granted = Vec::new();
        for (role, app) in roles {
            if self.base.store.grant(&user.id, role, app, now).await? {
                granted.push(format!("{role}@{app}"));
            }
        }
        if !granted.is_empty() {
            self.invalidate(Invalidate::User(user.id.clone())).await?;
        }
        let token = crate::crypto::random_token();
        let expires_at = now + self.base.config.invitations.ttl.as_secs() as i64;
        self.base
            .store
            .create_invitation(
                &crate::crypto::sha256_hex(token.as_bytes()),
                &user.id,
                provider,
                now,
                expires_at,
            )
            .await?;
        self.audit(
            "invitation.create",
            &user.email,
            Some(&user.id),
            json!({ "provider": provider, "roles_granted": granted, "expires_at": audit::format_time(expires_at), "status": user.status }),
        )
        .await;
        let base = self
            .base
            .config
            .server
            .public_url
            .as_str()
            .trim_end_matches('/');
        Ok(Invitation {
            user_id: user.id.clone(),
            email: user.email.clone(),
            provider: provider.map(str::to_string),
            link: format!("{base}/invite?token={token}"),
            expires_at,
        })
    }

    pub async fn list_invitations(&self) -> OpResult<Vec<PendingInvitation>> {
        Ok(self.base.store.pending_invitations(store::now()).await?)
    }

    pub async fn revoke_invitation(&self, email: &str) -> OpResult<u64> {
        let user = self.user(email).await?;
        let n = self
            .base
            .store
            .revoke_invitations(&user.id, store::now())
            .await?;
        if n == 0 {
            return Err(OpError::Invalid(format!(
                "{} has no pending invitation",
                user.email
            )));
        }
        self.audit(
            "invitation.revoke",
            &user.email,
            Some(&user.id),
            json!({ "revoked": n }),
        )
        .await;
        Ok(n)
    }
}
