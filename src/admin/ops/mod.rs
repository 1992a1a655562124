//! Administrative operations shared by every front end (CLI now, REST API later). Each write
//! validates its input, changes the store, writes an audit event with before/after, and ends
//! sessions where the change calls for it; each read returns plain data (no JSON, no text),
//! which the front end renders. They work on a [`Base`] — the config, store, keys, password
//! hashing and revocation publisher — so the CLI opens nothing more (a server's `Core`
//! derefs to its `Base`).

mod invitations;
mod mail;
mod orgs;
mod roles;
mod seats;
mod sessions;
mod tokens;
mod trail;
mod users;

pub use invitations::{Invitation, PendingInvitation};
pub use mail::MailTest;
pub use orgs::{MemberDetail, OrgChanges, OrgDetail, OrgEffects};
pub use seats::SeatDay;
pub use sessions::SessionSummary;
pub use trail::AuditTrail;
pub use users::{UserDetail, UserOrg, generate_temp_password};

use crate::audit::{self, Actor, Viewer};
use crate::core::Base;
use crate::directory::{self, SeatKind, UserStatus, normalize_email, valid_email};
use crate::revocation::{self, Invalidate};
use crate::store::{self, AuditFilter, AuditRow, GrantRow, NewUser, StoreError, UserRow};
use serde_json::json;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Invalid(String),
    #[error("no user with email {0}")]
    NoUser(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

pub type OpResult<T> = Result<T, OpError>;

/// The outcome of an operation that ended sessions: how many, and how many running instances
/// had not confirmed within the wait (0 = effective everywhere).
#[derive(Debug, Default, serde::Serialize)]
pub struct Revoked {
    pub sessions: u64,
    pub instances_pending: i64,
}

pub struct Ops<'a> {
    pub base: &'a Base,
    pub actor: Actor,
}

impl Ops<'_> {
    async fn audit(
        &self,
        action: &str,
        target: &str,
        target_id: Option<&str>,
        details: serde_json::Value,
    ) {
        audit::record(
            &self.base.store,
            audit::Event {
                action,
                outcome: "success",
                actor: &self.actor,
                target,
                target_user_id: target_id,
                ip: "",
                details,
            },
        )
        .await;
    }

    /// An administrator's deprovisioning at the command line, counted in the database for
    /// every instance's `/metrics` (`gatehouse_admin_deprovisioning_total`): `users` people
    /// and the sessions `revoked` ended. A server's own callers (SCIM) count in-process. A
    /// failure to count is logged, never fails the operation.
    async fn count_deprovisioning(&self, step: &str, users: i64, revoked: &Revoked) {
        if self.actor.kind != audit::ActorKind::Cli {
            return;
        }
        let mut counts = vec![("sessions_ended", revoked.sessions as i64)];
        if users > 0 {
            counts.push((step, users));
        }
        for (step, n) in counts {
            if n == 0 {
                continue;
            }
            if let Err(e) = self
                .base
                .store
                .count_deprovisioning("administrator", step, n)
                .await
            {
                tracing::warn!(error = %e, step, "could not count a deprovisioning step");
            }
        }
    }

    pub async fn user(&self, email: &str) -> OpResult<UserRow> {
        self.base
            .store
            .user_by_email(&normalize_email(email))
            .await?
            .ok_or_else(|| OpError::NoUser(email.trim().to_string()))
    }

    /// Publishes the invalidation and waits (up to 3 s) for every running instance to apply it.
    async fn invalidate(&self, what: Invalidate) -> OpResult<i64> {
        let id = self.base.invalidate(what).await?;
        Ok(revocation::await_instances(&self.base.store, id, Duration::from_secs(3)).await?)
    }

    async fn end_sessions(&self, user: &UserRow, reason: &str) -> OpResult<Revoked> {
        let n = self
            .base
            .store
            .revoke_user_sessions(&user.id, reason, store::now())
            .await?;
        let pending = self.invalidate(Invalidate::User(user.id.clone())).await?;
        Ok(Revoked {
            sessions: n,
            instances_pending: pending,
        })
    }

    pub fn check_password(&self, password: &str, email: &str) -> OpResult<()> {
        let unmet =
            crate::credentials::policy::check(&self.base.config.password_policy, password, email);
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(OpError::Invalid(crate::credentials::policy::describe(
                &unmet,
            )))
        }
    }

    /// Refuses to take away the last full access administrator (who could then be replaced
    /// only by hand in the database): `doing` says what was asked, for the message.
    async fn keep_a_full_admin(&self, user: &UserRow, doing: &str) -> OpResult<()> {
        if !UserStatus::is_active(&user.status) {
            return Ok(());
        }
        let held = self
            .base
            .store
            .holdings(&user.id, user.org_id.as_deref())
            .await?;
        if directory::is_full_admin(directory::Holdings::from_rows(held).grants())
            && self.base.store.count_admins().await? <= 1
        {
            return Err(OpError::Conflict(format!(
                "{} is the last full access administrator and cannot be {doing}: first grant \
                 another person the admin role for every app (gatehouse admin grant --user E \
                 --role admin)",
                user.email
            )));
        }
        Ok(())
    }

    /// Clears the cached access of these users everywhere: every invalidation is published,
    /// then the last one awaited (up to 3 s). Returns the instances still behind.
    async fn invalidate_users(&self, ids: &[String]) -> OpResult<i64> {
        let mut last = None;
        for id in ids {
            last = Some(self.base.invalidate(Invalidate::User(id.clone())).await?);
        }
        match last {
            Some(id) => {
                Ok(
                    revocation::await_instances(&self.base.store, id, Duration::from_secs(3))
                        .await?,
                )
            }
            None => Ok(0),
        }
    }

    /// A grant of `role` on `app` may be made: the role exists and the app is configured (or
    /// is `*`, every app). SPEC: grants naming an app that is not configured are refused.
    async fn grantable(&self, option: &str, role: &str, app: &str) -> OpResult<()> {
        self.role_exists(role).await?;
        let apps = &self.base.config.apps;
        if app != "*" && !apps.iter().any(|a| a.id == app) {
            let known: Vec<&str> = apps.iter().map(|a| a.id.as_str()).collect();
            return Err(OpError::Invalid(format!(
                "{option}: no app {app:?} is configured (configured: {}); grants naming an app \
                 that is not configured are refused",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        Ok(())
    }

    async fn role_exists(&self, role: &str) -> OpResult<()> {
        match self.base.store.role(role).await? {
            Some(_) => Ok(()),
            None => Err(OpError::Invalid(format!(
                "no role named {role:?} (create it with `gatehouse admin role create`)"
            ))),
        }
    }

    pub fn display_status<'b>(&self, user: &'b UserRow) -> &'b str {
        directory::display_status(&user.status, user.locked_until, store::now())
    }
}
