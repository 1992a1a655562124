use super::{Result, Store};

#[derive(Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub private_sealed: String,
    pub public_jwk: String,
    pub created_at: i64,
}

impl Store {
    /// Keys not retired, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        Ok(sqlx::query_as(
            "SELECT kid, alg, private_sealed, public_jwk, created_at FROM signing_keys \
             WHERE retired_at IS NULL ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_sealed)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
