use super::{Result, Store};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub stage: String,
    pub amr: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// For a session created on an app host by a handoff: the session that signed in.
    pub parent_id: Option<String>,
    /// For a session created on an app host by a handoff: that host, the only one it is
    /// valid on.
    pub host: Option<String>,
    /// Signed in through this upstream provider (written at insert; not read with the
    /// session, see `carry_session_upstream`).
    #[sqlx(default)]
    pub upstream_provider: Option<String>,
    /// Its refresh token, sealed under the master key.
    #[sqlx(default)]
    pub upstream_refresh_token: Option<String>,
    /// The upstream ID token's `sub` and `sid`.
    #[sqlx(default)]
    pub upstream_subject: Option<String>,
    #[sqlx(default)]
    pub upstream_sid: Option<String>,
}

macro_rules! columns {
    () => {
        "id, token_hash, user_id, stage, amr, ip, user_agent, created_at, last_seen_at, expires_at, revoked_at, parent_id, host"
    };
}

impl Store {
    pub async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            columns!(),
            ", upstream_provider, upstream_refresh_token, upstream_subject, upstream_sid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&s.id)
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(&s.stage)
        .bind(&s.amr)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.parent_id)
        .bind(&s.host)
        .bind(&s.upstream_provider)
        .bind(&s.upstream_refresh_token)
        .bind(&s.upstream_subject)
        .bind(&s.upstream_sid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live session: not revoked, not past its absolute expiry (idle is checked by the caller).
    pub async fn session_by_token_hash(&self, hash: &str, now: i64) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2"
        ))
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn session_by_id(&self, id: &str) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn touch_session(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes one session and the app-host sessions handed off from it; returns the token
    /// hashes this call revoked (for cache eviction).
    pub async fn revoke_session(&self, id: &str, reason: &str, now: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
             WHERE (id = $1 OR parent_id = $1) AND revoked_at IS NULL RETURNING token_hash",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The session this one was handed off from, if any.
    pub async fn session_parent(&self, id: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT parent_id FROM sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Stores a handoff code (hashed) for `session_id`, to be spent on `host` by the browser
    /// whose state cookie hashes to `state_hash`.
    pub async fn insert_handoff(
        &self,
        code_hash: &str,
        session_id: &str,
        host: &str,
        state_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        // Codes nobody came back with expire unused: clear them as new ones are made.
        sqlx::query("DELETE FROM handoffs WHERE expires_at <= $1")
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO handoffs (code_hash, session_id, host, state_hash, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(code_hash)
            .bind(session_id)
            .bind(host)
            .bind(state_hash)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Spends a handoff code: (session id, host, state hash) for exactly one caller, while
    /// unexpired.
    pub async fn take_handoff(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<(String, String, String)>> {
        Ok(sqlx::query_as(
            "DELETE FROM handoffs WHERE code_hash = $1 AND expires_at > $2 RETURNING session_id, host, state_hash",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revokes every live session of a user; returns how many.
    pub async fn revoke_user_sessions(&self, user_id: &str, reason: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Live sessions, optionally of one user, newest first.
    pub async fn list_sessions(&self, user_id: Option<&str>, now: i64) -> Result<Vec<SessionRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE revoked_at IS NULL AND expires_at > $1 \
             AND ($2 = '' OR user_id = $2) ORDER BY created_at DESC"
        ))
        .bind(now)
        .bind(user_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?)
    }
}
