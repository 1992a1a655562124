use super::{Clash, Result, Store, StoreError, conflict};

/// A user as stored. No `Debug`: it carries the password hash and sealed TOTP secrets.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub email_normalized: String,
    pub name: String,
    pub status: String,
    pub password_hash: Option<String>,
    pub password_must_change: i64,
    pub totp_secret: Option<String>,
    pub totp_pending_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub failed_count: i64,
    pub first_failure_at: Option<i64>,
    pub locked_until: Option<i64>,
    /// The organization the user belongs to, if any.
    pub org_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub name: &'a str,
    pub status: &'a str,
    pub password_hash: Option<&'a str>,
    pub password_must_change: bool,
}

macro_rules! columns {
    () => {
        "id, email, email_normalized, name, status, password_hash, password_must_change, \
         totp_secret, totp_pending_secret, totp_last_step, failed_count, first_failure_at, \
         locked_until, org_id, created_at, updated_at"
    };
}

impl Store {
    /// Creates a user. An organization's own address is refused ([`Clash::OrgEmail`]); an
    /// address an organization lists makes the new user its member. Under the address lock
    /// (see `orgs`), so no organization can claim the address meanwhile.
    pub async fn insert_user(&self, u: &NewUser<'_>, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_user_in(&mut tx, u, None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_by_email(&self, email_normalized: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE email_normalized = $1"
        ))
        .bind(email_normalized)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        Ok(
            sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM users ORDER BY email_normalized"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_user_status(&self, id: &str, status: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_password(
        &self,
        id: &str,
        hash: &str,
        must_change: bool,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $2, password_must_change = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(must_change as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Rehash on login: replaces the hash only if it is still the one that was verified.
    pub async fn upgrade_password_hash(&self, id: &str, old: &str, new: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes one attempt slot for a sign-in, atomically. Failures older than the window, or from
    /// before an expired lock, start a fresh count. Returns `None` when the account is locked or
    /// its slots are used up: a single UPDATE, so parallel attempts can never exceed `max`.
    pub async fn take_attempt(
        &self,
        id: &str,
        now: i64,
        window_start: i64,
        max: i64,
    ) -> Result<Option<i64>> {
        // "stale": the previous failures no longer count (window passed, or an old lock expired).
        macro_rules! stale {
            () => {
                "(first_failure_at IS NULL OR first_failure_at < $3 \
                  OR (locked_until IS NOT NULL AND locked_until <= $2))"
            };
        }
        const SQL: &str = concat!(
            "UPDATE users SET failed_count = CASE WHEN ",
            stale!(),
            " THEN 1 ELSE failed_count + 1 END, first_failure_at = CASE WHEN ",
            stale!(),
            " THEN $2 ELSE first_failure_at END, locked_until = CASE WHEN ",
            stale!(),
            " THEN NULL ELSE locked_until END \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) AND (",
            stale!(),
            " OR failed_count < $4) RETURNING failed_count"
        );
        let row: Option<(i64,)> = sqlx::query_as(SQL)
            .bind(id)
            .bind(now)
            .bind(window_start)
            .bind(max)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// A successful sign-in gives back its slot and clears the count.
    pub async fn clear_failures(&self, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_count = 0, first_failure_at = NULL, locked_until = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Locks the account; returns true if this call set the lock (so it is audited once).
    pub async fn lock_user(&self, id: &str, until: i64, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET locked_until = $2 WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $3)",
        )
        .bind(id)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_pending_totp(&self, id: &str, sealed: &str) -> Result<()> {
        sqlx::query("UPDATE users SET totp_pending_secret = $2 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Confirms enrolment: the pending secret becomes the secret, the confirming step is spent.
    pub async fn confirm_totp(&self, id: &str, pending: &str, step: i64, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, \
             totp_last_step = $3, updated_at = $4 WHERE id = $1 AND totp_pending_secret = $2 AND totp_secret IS NULL",
        )
        .bind(id)
        .bind(pending)
        .bind(step)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same OTP". The
    /// step is spent atomically, so two parallel submissions of one code cannot both pass.
    pub async fn spend_totp_step(&self, id: &str, step: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes TOTP and recovery codes (admin `reset-mfa`).
    pub async fn clear_mfa(&self, id: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL, \
             updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn replace_recovery_codes(&self, id: &str, hashes: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for h in hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Spends a recovery code; true only for the one call that spent it.
    pub async fn spend_recovery_code(&self, id: &str, hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn recovery_codes_left(&self, id: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    pub async fn delete_user(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replaces personal data by a pseudonym in the user and in the audit trail; records stay.
    pub async fn anonymize_user(
        &self,
        id: &str,
        old_email: &str,
        pseudonym: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The address leaves any organization's member list (it is personal data too), and
        // the pseudonym belongs to no organization (past events keep the one they were made in).
        sqlx::query(
            "DELETE FROM org_members WHERE email = (SELECT email_normalized FROM users WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE users SET email = $2, email_normalized = $2, name = '', status = 'blocked', org_id = NULL, \
             password_hash = NULL, totp_secret = NULL, totp_pending_secret = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(pseudonym)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Events record their actor by id (shown with the pseudonym from now on); only labels
        // written before actors were structured carry the address and are rewritten.
        let new_actor = format!("user:{pseudonym}");
        sqlx::query(
            "UPDATE audit_events SET actor = $2 WHERE actor_user_id = $1 AND actor_kind = ''",
        )
        .bind(id)
        .bind(&new_actor)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE audit_events SET target = $2, details = '{}' WHERE target_user_id = $1",
        )
        .bind(id)
        .bind(pseudonym)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_events SET target = $2 WHERE target = $1")
            .bind(old_email)
            .bind(pseudonym)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET ip = '', user_agent = '' WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`Store::insert_user`] inside `tx`: the member of `org_id` when given (a domain
/// organization's), else of the organization listing the address, if any.
pub(super) async fn insert_user_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    u: &NewUser<'_>,
    org_id: Option<&str>,
    now: i64,
) -> Result<()> {
    super::addresses::lock_addresses(tx, now).await?;
    if let Some(slug) = super::addresses::org_of_address(tx, u.email_normalized).await? {
        return Err(StoreError::Clash(Clash::OrgEmail {
            email: u.email_normalized.to_string(),
            slug,
        }));
    }
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, name, status, password_hash, \
         password_must_change, org_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         COALESCE($8, (SELECT org_id FROM org_members WHERE email = $3)), $9, $9)",
    )
    .bind(u.id)
    .bind(u.email)
    .bind(u.email_normalized)
    .bind(u.name)
    .bind(u.status)
    .bind(u.password_hash)
    .bind(u.password_must_change as i64)
    .bind(org_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(conflict)?;
    Ok(())
}
