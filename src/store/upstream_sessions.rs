//! Sessions as their upstream sign-in names them: ended by a provider's back-channel logout
//! (by the ID token's `sub` and/or `sid`), and revalidated with their refresh token.

use super::{Result, Store, conflict};

/// A session due for revalidation: its provider and sealed refresh token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueSession {
    pub id: String,
    pub user_id: String,
    pub upstream_provider: String,
    pub upstream_refresh_token: String,
    pub upstream_checked_at: Option<i64>,
    pub upstream_failing_since: Option<i64>,
    pub created_at: i64,
}

impl Store {
    /// Adds `n` to the recorded count of deprovisioning `step`s by `source`.
    pub async fn count_deprovisioning(&self, source: &str, step: &str, n: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO deprovisioning_counts (source, step, n) VALUES ($1, $2, $3) \
             ON CONFLICT (source, step) DO UPDATE SET n = deprovisioning_counts.n + excluded.n",
        )
        .bind(source)
        .bind(step)
        .bind(n)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every recorded count: (source, step, n).
    pub async fn deprovisioning_counts(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT source, step, n FROM deprovisioning_counts ORDER BY source, step",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a logout token's `jti` as acted on until `expires_at`. `false` when it already
    /// was (a replay).
    pub async fn spend_logout_jti(
        &self,
        provider: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO logout_tokens (provider, jti, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(provider)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await;
        match r.map_err(conflict) {
            Ok(_) => Ok(true),
            Err(super::StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn purge_logout_tokens(&self, now: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM logout_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// The live sessions (id, user) signed in through `provider` whose upstream `sub` is
    /// `subject` and/or whose `sid` is `sid` (each `None`: not a condition; never both).
    pub async fn upstream_sessions(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
        now: i64,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id FROM sessions WHERE upstream_provider = $1 \
             AND revoked_at IS NULL AND expires_at > $4 \
             AND ($2 = '' OR upstream_subject = $2) AND ($3 = '' OR upstream_sid = $3) \
             AND NOT ($2 = '' AND $3 = '')",
        )
        .bind(provider)
        .bind(subject.unwrap_or(""))
        .bind(sid.unwrap_or(""))
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sessions with a refresh token last checked before `checked_before` (or, while their
    /// provider fails, before `retry_before`), oldest first; each one claimed for this caller
    /// (its check time moved to `now`), so that instances do not revalidate a session twice.
    pub async fn claim_due_revalidations(
        &self,
        provider: &str,
        checked_before: i64,
        retry_before: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<DueSession>> {
        let due: Vec<DueSession> = sqlx::query_as(
            "SELECT id, user_id, upstream_provider, upstream_refresh_token, upstream_checked_at, \
             upstream_failing_since, created_at FROM sessions \
             WHERE upstream_provider = $1 AND upstream_refresh_token IS NOT NULL \
             AND parent_id IS NULL AND revoked_at IS NULL AND expires_at > $4 \
             AND (COALESCE(upstream_checked_at, created_at) <= $2 \
                  OR (upstream_failing_since IS NOT NULL AND COALESCE(upstream_checked_at, created_at) <= $3)) \
             ORDER BY COALESCE(upstream_checked_at, created_at) LIMIT $5",
        )
        .bind(provider)
        .bind(checked_before)
        .bind(retry_before)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for s in due {
            let won = sqlx::query(
                "UPDATE sessions SET upstream_checked_at = $2 WHERE id = $1 \
                 AND COALESCE(upstream_checked_at, -1) = $3",
            )
            .bind(&s.id)
            .bind(now)
            .bind(s.upstream_checked_at.unwrap_or(-1))
            .execute(&self.pool)
            .await?
            .rows_affected();
            if won == 1 {
                claimed.push(s);
            }
        }
        Ok(claimed)
    }

    /// The provider confirmed the session: a rotated refresh token replaces the old one
    /// (sealed), and it no longer counts as failing.
    pub async fn revalidated(&self, id: &str, sealed_refresh_token: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET upstream_failing_since = NULL, \
             upstream_refresh_token = COALESCE($2, upstream_refresh_token) WHERE id = $1",
        )
        .bind(id)
        .bind(sealed_refresh_token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The provider could not be asked: failing since `since` (the first failure kept).
    pub async fn revalidation_failed(&self, id: &str, since: i64) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET upstream_failing_since = COALESCE(upstream_failing_since, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(since)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
