//! The audit trail as a viewer may read it.

use super::*;

impl Ops<'_> {
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
                let held = self.base.store.holdings(&u.id, u.org_id.as_deref()).await?;
                let held = directory::Holdings::from_rows(held);
                if directory::FullAdmin::check(&u.id, &u.status, held.grants()).is_some() {
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

/// Audit events, oldest first, and whom they are shown to.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    pub events: Vec<AuditRow>,
    pub viewer: Viewer,
}
