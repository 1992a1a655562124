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
    pub actor_org_id: Option<String>,
    /// Read, not written: the acting user's address now (see `audit::display`).
    pub actor_email: Option<String>,
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
            "INSERT INTO audit_events (at, actor, actor_kind, actor_name, actor_user_id, actor_org_id, action, target, target_user_id, outcome, ip, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
             u.email AS actor_email, a.action, a.target, a.target_user_id, a.outcome, a.ip, a.details \
             FROM audit_events a LEFT JOIN users u ON u.id = a.actor_user_id WHERE a.at >= $1 \
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
