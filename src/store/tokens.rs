use super::{Result, Store, conflict};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn insert_api_token(&self, id: &str, name: &str, hash: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict)?;
        Ok(())
    }

    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn insert_setup_token(&self, hash: &str, now: i64, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn setup_token_valid(&self, hash: &str, now: i64) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT token_hash FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Spends the setup link: true for exactly one caller. Every other link dies with it.
    pub async fn consume_setup_token(&self, hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
            .bind(hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 1 {
            sqlx::query("DELETE FROM setup_tokens")
                .execute(&self.pool)
                .await?;
            return Ok(true);
        }
        Ok(false)
    }
}
