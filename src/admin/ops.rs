//! Administrative operations shared by every front end (CLI now, REST API later). Each write
//! validates its input, changes the store, writes an audit event with before/after, and ends
//! sessions where the change calls for it; each read returns plain data (no JSON, no text),
//! which the front end renders. They work on a [`Base`] — the config, store, keys, password
//! hashing and revocation publisher — so the CLI opens nothing more (a server's `Core`
//! derefs to its `Base`).

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

    async fn role_exists(&self, role: &str) -> OpResult<()> {
        match self.base.store.role(role).await? {
            Some(_) => Ok(()),
            None => Err(OpError::Invalid(format!(
                "no role named {role:?} (create it with `gatehouse admin role create`)"
            ))),
        }
    }

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
        for (role, _) in roles {
            self.role_exists(role).await?;
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
        let id = uuid::Uuid::now_v7().to_string();
        let now = store::now();
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
                return Err(OpError::Conflict(format!(
                    "a user with email {email} already exists"
                )));
            }
            other => other?,
        }
        for (role, app) in roles {
            self.base.store.grant(&id, role, app, now).await?;
        }
        let roles_json: Vec<String> = roles.iter().map(|(r, a)| format!("{r}@{a}")).collect();
        self.audit(
            "user.create",
            email,
            Some(&id),
            json!({ "after": { "email": email, "name": name.trim(), "status": UserStatus::Active.as_str(), "roles": roles_json, "password_set": password.is_some() } }),
        )
        .await;
        self.user(email).await
    }

    pub async fn set_status(
        &self,
        email: &str,
        status: UserStatus,
    ) -> OpResult<(UserRow, Revoked)> {
        let user = self.user(email).await?;
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

    pub async fn reset_mfa(&self, email: &str) -> OpResult<(UserRow, Revoked)> {
        let user = self.user(email).await?;
        self.base.store.clear_mfa(&user.id, store::now()).await?;
        let revoked = self.end_sessions(&user, "mfa_reset").await?;
        self.audit(
            "mfa.reset",
            &user.email,
            Some(&user.id),
            json!({ "before": { "totp": user.totp_secret.is_some() }, "after": { "totp": false }, "sessions_ended": revoked.sessions }),
        )
        .await;
        Ok((self.user(email).await?, revoked))
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
        let revoked = self.end_sessions(&user, "deleted").await?;
        self.base.store.delete_user(&user.id).await?;
        self.audit(
            "user.delete",
            &user.email,
            Some(&user.id),
            json!({ "before": { "email": user.email, "status": user.status } }),
        )
        .await;
        Ok(revoked)
    }

    pub async fn create_role(&self, name: &str, seat: &str, description: &str) -> OpResult<()> {
        if !crate::config::valid_name(name) {
            return Err(OpError::Invalid(
                "--name: 1-64 of a-z, 0-9, '-', '_'".into(),
            ));
        }
        if SeatKind::parse(seat).is_none() {
            return Err(OpError::Invalid("--seat: must be limited or modify".into()));
        }
        match self
            .base
            .store
            .create_role(name, seat, description, store::now())
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(OpError::Conflict(format!("role {name} already exists")));
            }
            other => other?,
        }
        self.audit(
            "role.create",
            name,
            None,
            json!({ "after": { "name": name, "seat": seat, "description": description } }),
        )
        .await;
        Ok(())
    }

    /// Grants or revokes `role` on `app` (`*` = every app). Returns false if nothing changed.
    pub async fn set_grant(
        &self,
        email: &str,
        role: &str,
        app: &str,
        grant: bool,
    ) -> OpResult<bool> {
        let user = self.user(email).await?;
        self.role_exists(role).await?;
        let now = store::now();
        let changed = if grant {
            self.base.store.grant(&user.id, role, app, now).await?
        } else {
            self.base.store.revoke(&user.id, role, app).await?
        };
        if changed {
            // Cached rights of this user are stale everywhere.
            self.invalidate(Invalidate::User(user.id.clone())).await?;
            self.audit(
                if grant { "grant.add" } else { "grant.remove" },
                &user.email,
                Some(&user.id),
                json!({ "role": role, "app": app }),
            )
            .await;
        }
        Ok(changed)
    }

    pub async fn create_api_token(&self, name: &str) -> OpResult<String> {
        if name.trim().is_empty() {
            return Err(OpError::Invalid("--name: must not be empty".into()));
        }
        let token = format!("gh_{}", crate::crypto::random_token());
        let id = uuid::Uuid::now_v7().to_string();
        match self
            .base
            .store
            .insert_api_token(
                &id,
                name.trim(),
                &crate::crypto::sha256_hex(token.as_bytes()),
                store::now(),
            )
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(OpError::Conflict(format!(
                    "a token named {name} already exists"
                )));
            }
            other => other?,
        }
        self.audit("token.create", name.trim(), None, json!({ "id": id }))
            .await;
        Ok(token)
    }

    pub async fn revoke_session_by_id(&self, id: &str) -> OpResult<Revoked> {
        let Some(row) = self.base.store.session_by_id(id).await? else {
            return Err(OpError::Invalid(format!("--id: no session {id}")));
        };
        let hashes = self
            .base
            .store
            .revoke_session(id, "admin", store::now())
            .await?;
        let mut revoked = Revoked {
            sessions: hashes.len() as u64,
            ..Default::default()
        };
        for hash in hashes {
            revoked.instances_pending = self.invalidate(Invalidate::Session(hash)).await?;
        }
        let email = self
            .base
            .store
            .user_by_id(&row.user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        self.audit(
            "session.revoke",
            &email,
            Some(&row.user_id),
            json!({ "session": id }),
        )
        .await;
        Ok(revoked)
    }

    pub async fn revoke_sessions_of(&self, email: &str) -> OpResult<Revoked> {
        let user = self.user(email).await?;
        let revoked = self.end_sessions(&user, "admin").await?;
        self.audit(
            "session.revoke",
            &user.email,
            Some(&user.id),
            json!({ "sessions": revoked.sessions }),
        )
        .await;
        Ok(revoked)
    }

    fn metered_app(&self, app: &str) -> OpResult<&crate::config::app::AppConfig> {
        let a = self
            .base
            .config
            .apps
            .iter()
            .find(|a| a.id == app)
            .ok_or_else(|| {
                OpError::Invalid(format!("--app: no app {app:?} in the configuration"))
            })?;
        if a.modify_seats.is_none() {
            return Err(OpError::Invalid(format!(
                "--app: app {app:?} has no modify_seats"
            )));
        }
        Ok(a)
    }

    pub async fn seat_holders(&self, app: &str) -> OpResult<Vec<store::SeatRow>> {
        let a = self.metered_app(app)?;
        Ok(self
            .base
            .store
            .seat_holders(app, store::now(), a.seat_idle_timeout.as_secs() as i64)
            .await?)
    }

    /// Frees a user's seat on an app at once, on every instance.
    pub async fn release_seat(&self, app: &str, email: &str) -> OpResult<bool> {
        self.metered_app(app)?;
        let user = self.user(email).await?;
        let released = self.base.store.release_seat(app, &user.id).await?;
        self.invalidate(Invalidate::User(user.id.clone())).await?;
        self.audit(
            "seat.release",
            &user.email,
            Some(&user.id),
            json!({ "app": app, "released": released }),
        )
        .await;
        Ok(released)
    }

    /// Per UTC day: the peak of concurrent modify users, the licensed seats, the minutes over.
    pub async fn seat_report(&self, app: &str, since: i64) -> OpResult<Vec<SeatDay>> {
        let a = self.metered_app(app)?;
        let rows = self.base.store.seat_usage(app, since / 60).await?;
        let mut days: Vec<SeatDay> = Vec::new();
        for r in rows {
            let day = crate::audit::format_time(r.minute * 60)[..10].to_string();
            let licensed = r.licensed.max(0);
            if days.last().is_none_or(|d| d.day != day) {
                days.push(SeatDay {
                    day,
                    peak: 0,
                    licensed: a.modify_seats.unwrap_or(0) as i64,
                    minutes_over: 0,
                });
            }
            let d = days.last_mut().expect("pushed above");
            d.peak = d.peak.max(r.users);
            if r.users > licensed {
                d.minutes_over += 1;
            }
        }
        Ok(days)
    }

    pub fn display_status<'b>(&self, user: &'b UserRow) -> &'b str {
        directory::display_status(&user.status, user.locked_until, store::now())
    }

    // Reads.

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
            sessions: self.base.store.list_sessions(Some(&u.id), now).await?.len(),
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

    /// The live sessions, of one user (by email) or of everyone.
    pub async fn list_sessions(&self, email: Option<&str>) -> OpResult<Vec<SessionSummary>> {
        let user = match email {
            Some(e) => Some(self.user(e).await?),
            None => None,
        };
        let rows = self
            .base
            .store
            .list_sessions(user.as_ref().map(|u| u.id.as_str()), store::now())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for s in rows {
            let email = match &user {
                Some(u) => u.email.clone(),
                None => self
                    .base
                    .store
                    .user_by_id(&s.user_id)
                    .await?
                    .map(|u| u.email)
                    .unwrap_or_default(),
            };
            out.push(SessionSummary {
                id: s.id,
                user_id: s.user_id,
                email,
                stage: s.stage,
                amr: s.amr,
                ip: s.ip,
                user_agent: s.user_agent,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
            });
        }
        Ok(out)
    }

    pub async fn list_api_tokens(&self) -> OpResult<Vec<store::ApiTokenRow>> {
        Ok(self.base.store.list_api_tokens().await?)
    }

    pub async fn list_roles(&self) -> OpResult<Vec<store::RoleRow>> {
        Ok(self.base.store.list_roles().await?)
    }

    /// The audit trail since `since`, of the events where `email` acted or was acted upon (or,
    /// when no user has that address, whose target it is), shown as `viewer_email` would see
    /// it (default: a full access administrator).
    pub async fn audit_trail(
        &self,
        since: Option<i64>,
        email: Option<&str>,
        viewer_email: Option<&str>,
    ) -> OpResult<AuditTrail> {
        let mut filter = AuditFilter {
            since,
            ..Default::default()
        };
        if let Some(e) = email {
            let normalized = normalize_email(e);
            match self.base.store.user_by_email(&normalized).await? {
                Some(u) => filter.user_id = Some(u.id),
                None => filter.target = Some(normalized),
            }
        }
        let viewer = match viewer_email {
            None => Viewer::FullAdmin,
            Some(e) => {
                let Some(u) = self.base.store.user_by_email(&normalize_email(e)).await? else {
                    return Err(OpError::Invalid(format!("--as: no user {}", e.trim())));
                };
                let grants = self.base.store.grants_of(&u.id).await?;
                if grants.iter().any(|g| g.role == "admin") {
                    Viewer::FullAdmin
                } else {
                    Viewer::Other
                }
            }
        };
        Ok(AuditTrail {
            events: self.base.store.query_audit(&filter).await?,
            viewer,
        })
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
    pub grants: Vec<GrantRow>,
    /// Live sessions.
    pub sessions: usize,
    pub created_at: i64,
}

/// A live session as [`Ops::list_sessions`] shows it (no token hash). Times are Unix seconds.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub stage: String,
    pub amr: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Audit events, oldest first, and whom they are shown to.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    pub events: Vec<AuditRow>,
    pub viewer: Viewer,
}

#[derive(Debug, serde::Serialize)]
pub struct SeatDay {
    pub day: String,
    pub peak: i64,
    pub licensed: i64,
    pub minutes_over: i64,
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
