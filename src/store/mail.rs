use super::{Result, Store};

/// A queued message (its body still sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailRow {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_sealed: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

impl Store {
    pub async fn enqueue_mail(
        &self,
        id: &str,
        recipient: &str,
        subject: &str,
        body_sealed: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_queue (id, recipient, subject, body_sealed, created_at, attempts, \
             next_attempt_at) VALUES ($1, $2, $3, $4, $5, 0, $5)",
        )
        .bind(id)
        .bind(recipient)
        .bind(subject)
        .bind(body_sealed)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Messages not yet sent whose next attempt is due at `now` (oldest first).
    pub async fn due_mail(&self, now: i64, limit: i64) -> Result<Vec<MailRow>> {
        Ok(sqlx::query_as(
            "SELECT id, recipient, subject, body_sealed, created_at, attempts, next_attempt_at, \
             sent_at, last_error FROM mail_queue WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Messages not yet sent, for `admin mail queue`.
    pub async fn pending_mail(&self) -> Result<Vec<MailRow>> {
        Ok(sqlx::query_as(
            "SELECT id, recipient, subject, '' AS body_sealed, created_at, attempts, \
             next_attempt_at, sent_at, last_error FROM mail_queue WHERE sent_at IS NULL \
             ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims a due message for one delivery attempt by moving its next attempt to `lease_until`
    /// (so no other instance sends it meanwhile); false when someone else claimed it first.
    pub async fn claim_mail(&self, id: &str, seen_next: i64, lease_until: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE mail_queue SET next_attempt_at = $1 \
             WHERE id = $2 AND next_attempt_at = $3 AND sent_at IS NULL",
        )
        .bind(lease_until)
        .bind(id)
        .bind(seen_next)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Delivered: the body (its links) is not kept.
    pub async fn mail_sent(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE mail_queue SET sent_at = $1, body_sealed = '', attempts = attempts + 1, \
             last_error = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mail_failed(&self, id: &str, next_attempt_at: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE mail_queue SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 \
             WHERE id = $3",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
