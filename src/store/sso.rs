//! Upstream sign-in: authorization requests under way (`sso_states`), linked upstream
//! identities, and the provider a session came through (invitations: `invitations`).

use super::{Result, Store, UserRow, conflict};

#[derive(sqlx::FromRow)]
struct LinkedRow {
    #[sqlx(flatten)]
    user: UserRow,
    last_used_at: Option<i64>,
}

/// An authorization request under way, as stored (the PKCE verifier sealed).
#[derive(Clone, sqlx::FromRow)]
pub struct SsoStateRow {
    pub state_hash: String,
    pub provider: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub rd: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct IdentityRow {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: String,
    pub linked_at: i64,
    pub last_used_at: Option<i64>,
}

impl Store {
    /// Requests nobody came back from expire unused (see `sso::Sso::sweep_forever`).
    pub async fn purge_sso_states(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sso_states WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub async fn insert_sso_state(&self, s: &SsoStateRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sso_states (state_hash, provider, browser_hash, nonce, pkce_verifier, rd, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.state_hash)
        .bind(&s.provider)
        .bind(&s.browser_hash)
        .bind(&s.nonce)
        .bind(&s.pkce_verifier)
        .bind(&s.rd)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(conflict)?;
        Ok(())
    }

    /// Spends a state: the row for exactly one caller, while unexpired.
    pub async fn take_sso_state(&self, state_hash: &str, now: i64) -> Result<Option<SsoStateRow>> {
        Ok(sqlx::query_as(
            "DELETE FROM sso_states WHERE state_hash = $1 AND expires_at > $2 \
             RETURNING state_hash, provider, browser_hash, nonce, pkce_verifier, rd, expires_at",
        )
        .bind(state_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The user linked to this upstream identity, and when the link was last used.
    pub async fn linked_user(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(UserRow, Option<i64>)>> {
        let row: Option<LinkedRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.email_normalized, u.name, u.status, u.password_hash, \
             u.password_must_change, u.totp_secret, u.totp_pending_secret, u.totp_last_step, \
             u.failed_count, u.first_failure_at, u.locked_until, u.org_id, u.created_at, u.updated_at, \
             i.last_used_at FROM upstream_identities i JOIN users u ON u.id = i.user_id \
             WHERE i.provider = $1 AND i.subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.user, r.last_used_at)))
    }

    pub async fn touch_identity(&self, provider: &str, subject: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE upstream_identities SET last_used_at = $3 WHERE provider = $1 AND subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn identities_of(&self, user_id: &str) -> Result<Vec<IdentityRow>> {
        Ok(sqlx::query_as(
            "SELECT provider, subject, user_id, email, linked_at, last_used_at \
             FROM upstream_identities WHERE user_id = $1 ORDER BY linked_at, provider",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A session rotated from another (after the second factor, say) keeps what the old one
    /// had of its upstream sign-in.
    pub async fn carry_session_upstream(&self, from_id: &str, to_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET \
             upstream_provider = (SELECT upstream_provider FROM sessions WHERE id = $1), \
             upstream_refresh_token = (SELECT upstream_refresh_token FROM sessions WHERE id = $1), \
             upstream_subject = (SELECT upstream_subject FROM sessions WHERE id = $1), \
             upstream_sid = (SELECT upstream_sid FROM sessions WHERE id = $1) \
             WHERE id = $2 AND EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND upstream_provider IS NOT NULL)",
        )
        .bind(from_id)
        .bind(to_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The organizations an upstream address could belong to (`sso::admit`, rule 3).
pub struct OrgsOfAddress {
    /// The email organization that lists the address.
    pub listing: Option<super::OrgRow>,
    /// The domain organization that owns the address's domain.
    pub by_domain: Option<super::OrgRow>,
}

impl Store {
    pub async fn orgs_of_address(&self, email: &str, domain: &str) -> Result<OrgsOfAddress> {
        let listing = sqlx::query_as(
            "SELECT o.id, o.slug, o.name, o.email, o.access_by, o.enforce_mfa, o.created_at, \
             o.updated_at FROM organizations o JOIN org_members m ON m.org_id = o.id \
             WHERE m.email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        let by_domain = sqlx::query_as(
            "SELECT o.id, o.slug, o.name, o.email, o.access_by, o.enforce_mfa, o.created_at, \
             o.updated_at FROM organizations o JOIN org_domains d ON d.org_id = o.id \
             WHERE d.domain = $1 AND o.access_by = 'domain'",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(OrgsOfAddress { listing, by_domain })
    }

    pub async fn org_provider_ids(&self, org_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT provider FROM org_providers WHERE org_id = $1")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(p,)| p).collect())
    }

    /// Links (provider, subject) to an existing user (an organization admits them); `false`
    /// when the identity is linked already.
    pub async fn link_identity(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        email: &str,
        now: i64,
    ) -> Result<bool> {
        match insert_identity(&self.pool, provider, subject, user_id, email, now).await {
            Ok(_) => Ok(true),
            Err(e) => match conflict(e) {
                super::StoreError::Conflict => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Creates a user just in time for an upstream identity an organization admits, linked to
    /// it, in one transaction under the address lock: the member of `org_id` (a domain
    /// organization), or of the organization listing the address.
    pub async fn insert_upstream_user(
        &self,
        u: &super::NewUser<'_>,
        org_id: Option<&str>,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        super::users::insert_user_in(&mut tx, u, org_id, now).await?;
        insert_identity(&mut *tx, provider, subject, u.id, u.email_normalized, now)
            .await
            .map_err(conflict)?;
        tx.commit().await?;
        Ok(())
    }
}

/// One (provider, subject) → user link.
pub(super) async fn insert_identity<'e, E>(
    ex: E,
    provider: &str,
    subject: &str,
    user_id: &str,
    email: &str,
    now: i64,
) -> std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO upstream_identities (provider, subject, user_id, email, linked_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(provider)
    .bind(subject)
    .bind(user_id)
    .bind(email)
    .bind(now)
    .execute(ex)
    .await
}
