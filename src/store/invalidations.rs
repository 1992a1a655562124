//! The invalidations table, which every instance follows, and on PostgreSQL the
//! `LISTEN`/`NOTIFY` channel that tells them at once that a row was added.

use super::{Result, Store, StoreError, redact_connect_error};
use sqlx::postgres::PgListener;

/// The notification channel: its payload is the new row's id (followers read the table).
const CHANNEL: &str = "gatehouse_invalidations";

/// What a listener heard.
pub enum Signal {
    /// A new invalidation was published.
    Notified,
    /// The connection was lost: notifications may have been missed (read the table) and the
    /// listener must be made again.
    Lost(String),
}

/// A connection subscribed to the invalidations channel (PostgreSQL only).
pub struct InvalidationListener(PgListener);

impl InvalidationListener {
    pub async fn next(&mut self) -> Signal {
        match self.0.try_recv().await {
            Ok(Some(_)) => Signal::Notified,
            Ok(None) => Signal::Lost("the connection closed".into()),
            Err(e) => Signal::Lost(redact_connect_error(&e)),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invalidation {
    pub id: i64,
    pub kind: String,
    pub key: String,
}

impl Store {
    /// Publishes a cache invalidation for every instance; returns its sequence number.
    pub async fn publish_invalidation(&self, kind: &str, key: &str, now: i64) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO invalidations (kind, key, at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(kind)
        .bind(key)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        if self.listen_url.is_some() {
            // Followers that miss this still read the row at their next sweep.
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(id.to_string())
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "invalidation notification not sent; followers poll");
            }
        }
        Ok(id)
    }

    /// A new connection listening on the invalidations channel; `None` on SQLite (followers
    /// poll). The error names the cause, never the URL.
    pub async fn listen_invalidations(&self) -> Result<Option<InvalidationListener>> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let connect = async {
            let mut l = PgListener::connect(url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match connect.await {
            Ok(l) => Ok(Some(InvalidationListener(l))),
            Err(e) => Err(StoreError::Connect(format!(
                "cannot listen for invalidations ({})",
                redact_connect_error(&e)
            ))),
        }
    }

    pub async fn invalidations_after(&self, cursor: i64) -> Result<Vec<Invalidation>> {
        Ok(sqlx::query_as(
            "SELECT id, kind, key FROM invalidations WHERE id > $1 ORDER BY id LIMIT 1000",
        )
        .bind(cursor)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn latest_invalidation(&self) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM invalidations")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn prune_invalidations(&self, before: i64) -> Result<()> {
        sqlx::query("DELETE FROM invalidations WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn heartbeat_instance(&self, id: &str, cursor: i64, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, started_at, heartbeat_at, cursor) VALUES ($1, $2, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, cursor = excluded.cursor",
        )
        .bind(id)
        .bind(now)
        .bind(cursor)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_instance(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Live instances (heartbeat since `alive_since`) that have not yet applied `id`.
    pub async fn instances_behind(&self, id: i64, alive_since: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM instances WHERE heartbeat_at >= $2 AND cursor < $1",
        )
        .bind(id)
        .bind(alive_since)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}
