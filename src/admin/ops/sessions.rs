//! Sessions: revoking them, listing them.

use super::*;

impl Ops<'_> {
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
        self.count_deprovisioning("sessions_revoked", 0, &revoked)
            .await;
        self.audit(
            "session.revoke",
            &user.email,
            Some(&user.id),
            json!({ "sessions": revoked.sessions }),
        )
        .await;
        Ok(revoked)
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
