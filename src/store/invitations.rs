//! Invitations and activation links: only the SHA-256 of a link's token is kept; a link is
//! single use (spent in the same statement that checks it) and expires. An invitation may name
//! the identity provider whose verified address links to the account (`sso::admit`, rule 2).

use super::sso::insert_identity;
use super::{Result, Store, conflict};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub user_id: String,
    pub email: String,
    pub provider: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A pending link as its page needs it: whose it is and what the person may do with it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingLink {
    pub user_id: String,
    pub email: String,
    pub status: String,
    pub org_id: Option<String>,
    pub provider: Option<String>,
    pub expires_at: i64,
}

/// Unspent, unrevoked and unexpired (`$2`: now).
macro_rules! pending {
    () => {
        "used_at IS NULL AND revoked_at IS NULL AND expires_at > $2"
    };
}

impl Store {
    /// Rule 2 of the admission (`sso::admit`), in one transaction: spends the user's pending
    /// invitation naming `provider`, links (provider, subject) to the user and activates an
    /// invited user. `false` (and nothing changed) when there is no such invitation or the
    /// identity is linked already.
    pub async fn link_by_invitation(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        email: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE invitations SET used_at = $3 WHERE user_id = $1 AND provider = $2 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(user_id)
        .bind(provider)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            return Ok(false);
        }
        let linked = insert_identity(&mut *tx, provider, subject, user_id, email, now).await;
        if let Err(e) = linked {
            return match conflict(e) {
                super::StoreError::Conflict => Ok(false),
                other => Err(other),
            };
        }
        sqlx::query(
            "UPDATE users SET status = 'active', updated_at = $2 WHERE id = $1 AND status = 'invited'",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a new invitation for the user; any earlier pending one is revoked (one link
    /// valid at a time).
    pub async fn create_invitation(
        &self,
        token_hash: &str,
        user_id: &str,
        provider: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE invitations SET revoked_at = $2 WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO invitations (token_hash, user_id, provider, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(provider)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        tx.commit().await?;
        Ok(())
    }

    /// Pending invitations (unspent, unrevoked, unexpired), oldest first.
    pub async fn pending_invitations(&self, now: i64) -> Result<Vec<InvitationRow>> {
        Ok(sqlx::query_as(
            "SELECT i.user_id, u.email, i.provider, i.created_at, i.expires_at \
             FROM invitations i JOIN users u ON u.id = i.user_id \
             WHERE i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $1 \
             ORDER BY i.created_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes the user's pending invitations; returns how many.
    pub async fn revoke_invitations(&self, user_id: &str, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE invitations SET revoked_at = $2 WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The pending link whose token hashes to `token_hash`, with its user (invited or active:
    /// a blocked or deprovisioned person's link leads nowhere).
    pub async fn pending_link(&self, token_hash: &str, now: i64) -> Result<Option<PendingLink>> {
        Ok(sqlx::query_as(concat!(
            "SELECT i.user_id, u.email, u.status, u.org_id, i.provider, i.expires_at \
             FROM invitations i JOIN users u ON u.id = i.user_id \
             WHERE i.token_hash = $1 AND i.",
            pending!(),
            " AND u.status IN ('invited', 'active')"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Spends the link and sets the person's password, in one transaction: of two racing
    /// submissions exactly one gets the user id; an invited user becomes active. `None`: the
    /// link is unknown, spent, revoked, expired, or its user may not sign in.
    pub async fn accept_link(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let user_id: Option<String> = sqlx::query_scalar(concat!(
            "UPDATE invitations SET used_at = $2 WHERE token_hash = $1 AND ",
            pending!(),
            " AND user_id IN (SELECT id FROM users WHERE status IN ('invited', 'active')) \
             RETURNING user_id"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE users SET password_hash = $2, password_must_change = 0, \
             status = CASE WHEN status = 'invited' THEN 'active' ELSE status END, updated_at = $3 \
             WHERE id = $1",
        )
        .bind(&user_id)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    /// `admin user create` for an address whose account is still `invited` (an email
    /// organization's listed person, say) completes that account: active, named, with the
    /// password when one is given — and then the person's pending links are withdrawn. `false`
    /// when the account is not (or no longer) invited.
    pub async fn complete_invited(
        &self,
        user_id: &str,
        name: &str,
        password_hash: Option<&str>,
        must_change: bool,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET status = 'active', \
             name = CASE WHEN $2 = '' THEN name ELSE $2 END, \
             password_hash = COALESCE($3, password_hash), password_must_change = $4, updated_at = $5 \
             WHERE id = $1 AND status = 'invited'",
        )
        .bind(user_id)
        .bind(name)
        .bind(password_hash)
        .bind(must_change as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done > 0 && password_hash.is_some() {
            sqlx::query(
                "UPDATE invitations SET revoked_at = $2 WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done > 0)
    }

    /// An invited member's first sign-in through a provider their organization allows: their
    /// pending links are spent and they become active. Returns whether they were invited.
    pub async fn activate_invited(&self, user_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(concat!(
            "UPDATE invitations SET used_at = $2 WHERE user_id = $1 AND ",
            pending!()
        ))
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let activated = sqlx::query(
            "UPDATE users SET status = 'active', updated_at = $2 WHERE id = $1 AND status = 'invited'",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(activated > 0)
    }
}
