use super::{Result, Store};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    /// The label of an event written before actors were structured ('' since).
    pub actor: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub actor_user_id: Option<String>,
    /// The acting user's organization at the time of the event (filled in when written).
    pub actor_org_id: Option<String>,
    /// Read, not written: the acting user's address now (see `audit::display`).
    pub actor_email: Option<String>,
    /// Read, not written: the name of that organization now (`None` once it is deleted).
    pub actor_org_name: Option<String>,
    pub action: String,
    pub target: String,
    pub target_user_id: Option<String>,
    pub outcome: String,
    pub ip: String,
    pub details: String,
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub since: Option<i64>,
    /// Events where this user acted or was acted upon.
    pub user_id: Option<String>,
    /// Events whose target is this text (e.g. a failed sign-in for an unknown address).
    pub target: Option<String>,
    pub limit: i64,
}

impl Store {
    pub async fn insert_audit(&self, e: &AuditRow) -> Result<()> {
        sqlx::query(
            // A person's organization is the one they belong to as the event is written, and
            // its name is kept in `actor_name` in case the organization is deleted later.
            "INSERT INTO audit_events (at, actor, actor_kind, actor_name, actor_user_id, actor_org_id, action, target, target_user_id, outcome, ip, details) \
             VALUES ($1, $2, $3, \
             CASE WHEN $3 = 'user' AND $4 = '' THEN COALESCE((SELECT o.name FROM users u JOIN organizations o ON o.id = u.org_id WHERE u.id = $5), '') ELSE $4 END, \
             $5, COALESCE(CAST($6 AS TEXT), (SELECT org_id FROM users WHERE id = $5)), $7, $8, $9, $10, $11, $12)",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.actor_kind)
        .bind(&e.actor_name)
        .bind(&e.actor_user_id)
        .bind(&e.actor_org_id)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.target_user_id)
        .bind(&e.outcome)
        .bind(&e.ip)
        .bind(&e.details)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Oldest first, so an export reads as a timeline.
    pub async fn query_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        let user = f.user_id.clone().unwrap_or_default();
        let target = f.target.clone().unwrap_or_default();
        Ok(sqlx::query_as(
            "SELECT a.id, a.at, a.actor, a.actor_kind, a.actor_name, a.actor_user_id, a.actor_org_id, \
             u.email AS actor_email, o.name AS actor_org_name, a.action, a.target, a.target_user_id, \
             a.outcome, a.ip, a.details FROM audit_events a LEFT JOIN users u ON u.id = a.actor_user_id \
             LEFT JOIN organizations o ON o.id = a.actor_org_id WHERE a.at >= $1 \
             AND ($2 = '' OR a.actor_user_id = $2 OR a.target_user_id = $2 OR ($3 <> '' AND a.target = $3)) \
             AND ($2 <> '' OR $3 = '' OR a.target = $3) \
             ORDER BY a.id LIMIT $4",
        )
        .bind(f.since.unwrap_or(0))
        .bind(user)
        .bind(target)
        .bind(if f.limit > 0 { f.limit } else { i64::MAX })
        .fetch_all(&self.pool)
        .await?)
    }
}
