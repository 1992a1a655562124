use super::{Result, Store};

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
        Ok(id)
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
