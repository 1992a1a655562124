//! Invitations and activation links: a single-use, expiring link (only its hash is kept),
//! mailed to a person who has no way to sign in yet, leading to `/invite` where they set a
//! password or continue with a provider they may use. `admin invite` makes one (naming, when
//! it likes, the identity provider whose verified identity of the address may link to the
//! account — `sso::admit`, rule 2 — or the email organization the person joins); saving an
//! email organization makes one for every listed member who has no account yet.

use super::*;
use crate::directory::FullAdmin;
use crate::store::OrgRow;

/// A new invitation, with the link shown once.
pub struct Invitation {
    pub user_id: String,
    pub email: String,
    pub provider: Option<String>,
    pub org: Option<String>,
    pub link: String,
    pub expires_at: i64,
    /// The queued message carrying the link.
    pub mail_id: String,
}

pub use store::InvitationRow as PendingInvitation;

/// A link issued: where it leads, until when, and the message that carries it.
struct Issued {
    link: String,
    expires_at: i64,
    mail_id: String,
}

impl Ops<'_> {
    /// Invites `email` (creating an `invited` user named `name` when there is none), grants
    /// `roles`, and
    /// mails the link. With `org`, the address is first listed as a member of that email
    /// organization (only a full access administrator may; a clash is refused before anything
    /// is written).
    pub async fn invite(
        &self,
        email: &str,
        name: &str,
        roles: &[(String, String)],
        provider: Option<&str>,
        org: Option<(&FullAdmin, &str)>,
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
            self.grantable("--role", role, app).await?;
        }
        if let Some(u) = self
            .base
            .store
            .user_by_email(&normalize_email(email))
            .await?
            && matches!(u.status.as_str(), "blocked" | "deprovisioned")
        {
            return Err(OpError::Conflict(format!(
                "{} is {}: unblock the account before inviting them",
                u.email, u.status
            )));
        }
        let org = match org {
            Some((admin, slug)) => {
                let org = self.org(slug).await.map_err(|e| match e {
                    OpError::Invalid(m) => OpError::Invalid(m.replace("--slug", "--org")),
                    other => other,
                })?;
                if org.access_by != "email" {
                    return Err(OpError::Invalid(format!(
                        "--org {}: the organization gives access by domain; its people sign in \
                         with its provider and need no invitation",
                        org.slug
                    )));
                }
                // Listed without an activation mail of its own: this invitation is that mail.
                self.list_member(admin, &org, email, false).await?;
                Some(org)
            }
            None => None,
        };
        let user = self.invited_user(email, name).await?;
        let now = store::now();
        let mut granted = Vec::new();
        for (role, app) in roles {
            if self.base.store.grant(&user.id, role, app, now).await? {
                granted.push(format!("{role}@{app}"));
            }
        }
        if !granted.is_empty() {
            self.invalidate(Invalidate::User(user.id.clone())).await?;
        }
        let issued = self.issue(&user, provider, org.as_ref()).await?;
        self.audit(
            "invitation.create",
            &user.email,
            Some(&user.id),
            json!({
                "provider": provider,
                "org": org.as_ref().map(|o| &o.slug),
                "roles_granted": granted,
                "expires_at": audit::format_time(issued.expires_at),
                "status": user.status,
                "mail": issued.mail_id,
            }),
        )
        .await;
        Ok(Invitation {
            user_id: user.id.clone(),
            email: user.email.clone(),
            provider: provider.map(str::to_string),
            org: org.map(|o| o.slug),
            link: issued.link,
            expires_at: issued.expires_at,
            mail_id: issued.mail_id,
        })
    }

    /// Every listed member of an email organization who has no account yet gets one, status
    /// `invited`, and an activation mail. Returns how many were mailed.
    pub(super) async fn activate_listed(&self, org: &OrgRow) -> OpResult<usize> {
        if org.access_by != "email" {
            return Ok(0);
        }
        let mut sent = 0;
        for m in self.base.store.org_member_rows(&org.id).await? {
            if m.listed == 0 || m.user_id.is_some() {
                continue;
            }
            let user = self.invited_user(&m.email, "").await?;
            let issued = self.issue(&user, None, Some(org)).await?;
            self.audit(
                "invitation.create",
                &user.email,
                Some(&user.id),
                json!({
                    "activation": true,
                    "org": org.slug,
                    "expires_at": audit::format_time(issued.expires_at),
                    "mail": issued.mail_id,
                }),
            )
            .await;
            sent += 1;
        }
        Ok(sent)
    }

    /// People who left an organization before activating lose their pending links (their
    /// access came from the list). Returns how many links were withdrawn.
    pub(super) async fn withdraw_activations(&self, user_ids: &[String]) -> OpResult<u64> {
        let mut n = 0;
        for id in user_ids {
            if let Some(u) = self.base.store.user_by_id(id).await?
                && u.status == UserStatus::Invited.as_str()
            {
                n += self.base.store.revoke_invitations(id, store::now()).await?;
            }
        }
        Ok(n)
    }

    /// The account of `email`, created with status `invited` when there is none (joining the
    /// email organization that lists the address).
    async fn invited_user(&self, email: &str, name: &str) -> OpResult<UserRow> {
        let normalized = normalize_email(email);
        if let Some(u) = self.base.store.user_by_email(&normalized).await? {
            return Ok(u);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let created = self
            .base
            .store
            .insert_user(
                &NewUser {
                    id: &id,
                    email: email.trim(),
                    email_normalized: &normalized,
                    name: name.trim(),
                    status: UserStatus::Invited.as_str(),
                    password_hash: None,
                    password_must_change: false,
                },
                store::now(),
            )
            .await;
        match created {
            // Created by someone else meanwhile: that account is the one.
            Err(StoreError::Conflict) | Ok(()) => self.user(email).await,
            Err(StoreError::Clash(c)) => Err(OpError::Conflict(c.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// A new link for `user` (replacing a pending one), queued in a message to them.
    async fn issue(
        &self,
        user: &UserRow,
        provider: Option<&str>,
        org: Option<&OrgRow>,
    ) -> OpResult<Issued> {
        let token = crate::crypto::random_token();
        let now = store::now();
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
        let base = self.public_base();
        let link = format!("{base}/invite?token={token}");
        let org_allows = match org {
            Some(o) => Some(self.base.store.org_provider_ids(&o.id).await?),
            None => None,
        };
        let providers = crate::directory::invitation_providers(
            &self.base.config.identity_providers,
            provider,
            org_allows,
        );
        let names: Vec<&str> = (self.base.config.identity_providers.iter())
            .filter(|p| providers.contains(&p.id))
            .map(|p| p.name.as_str())
            .collect();
        let body = message(&user.email, org, &names, &link, expires_at, &base);
        let mail_id = self
            .base
            .mail
            .queue(
                &self.base.store,
                &self.base.keys,
                &user.email,
                &match org {
                    Some(o) => format!("Activate your access to {}", o.name),
                    None => "Your invitation to sign in".to_string(),
                },
                &body,
            )
            .await
            .map_err(|e| match e {
                crate::mail::QueueError::Store(s) => OpError::Store(s),
                other => OpError::Invalid(other.to_string()),
            })?;
        Ok(Issued {
            link,
            expires_at,
            mail_id,
        })
    }

    fn public_base(&self) -> String {
        (self.base.config.server.public_url.as_str())
            .trim_end_matches('/')
            .to_string()
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

/// The text of an invitation or activation mail.
fn message(
    email: &str,
    org: Option<&OrgRow>,
    providers: &[&str],
    link: &str,
    expires_at: i64,
    base: &str,
) -> String {
    let mut text = match org {
        Some(o) => format!(
            "Hello,\n\nYou have been given access as {email}, a member of {}, at {base}.\n\n",
            o.name
        ),
        None => format!("Hello,\n\nYou have been invited to sign in as {email} at {base}.\n\n"),
    };
    text.push_str("Open this link to choose your password");
    match providers {
        [] => text.push_str(":\n"),
        [one] => text.push_str(&format!(" or to continue with {one}:\n")),
        many => text.push_str(&format!(
            " or to continue with one of: {}:\n",
            many.join(", ")
        )),
    }
    text.push_str(&format!(
        "\n{link}\n\nThe link works once and expires on {}. If you did not expect this \
         message, ignore it: nothing happens without the link.\n",
        audit::format_time(expires_at)
    ));
    text
}
