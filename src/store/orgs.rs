//! Organizations: the row, its domains, listed members, providers and grants, and
//! membership (`users.org_id`). Who may hold which address is checked in `addresses`, in the
//! same transaction as the save.

use super::addresses::{check_org, lock_addresses};
use super::{GrantRow, Result, Store, StoreError, conflict};

/// An organization as stored (addresses normalized).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub email: String,
    /// `domain` or `email` (a CHECK constraint holds it to these).
    pub access_by: String,
    pub enforce_mfa: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Everything an organization is, as written by [`Store::save_org`] (addresses and domains
/// already normalized and validated).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrgData {
    pub slug: String,
    pub name: String,
    pub email: String,
    pub access_by: String,
    pub enforce_mfa: bool,
    pub domains: Vec<String>,
    pub members: Vec<String>,
    pub providers: Vec<String>,
    /// (role, app); app `*` = every app.
    pub grants: Vec<(String, String)>,
}

/// A user's own grants and, when they belong to one, their organization and its grants.
#[derive(Debug, Clone)]
pub struct HeldRows {
    pub own: Vec<GrantRow>,
    pub org: Option<(OrgRow, Vec<GrantRow>)>,
}

/// Who belongs to an organization: a listed address (with its account, if there is one) or a
/// user who joined otherwise (a domain organization's).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub email: String,
    pub listed: i64,
    pub user_id: Option<String>,
    pub status: Option<String>,
}

/// What saving an organization changed in membership: users who joined and who left.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub id: String,
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

macro_rules! select_org {
    ($rest:literal) => {
        concat!(
            "SELECT id, slug, name, email, access_by, enforce_mfa, created_at, updated_at \
             FROM organizations ",
            $rest
        )
    };
}

impl Store {
    pub async fn org_by_slug(&self, slug: &str) -> Result<Option<OrgRow>> {
        Ok(sqlx::query_as(select_org!("WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn org_by_id(&self, id: &str) -> Result<Option<OrgRow>> {
        Ok(sqlx::query_as(select_org!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The organization whose own address is `email` (normalized).
    pub async fn org_by_email(&self, email: &str) -> Result<Option<OrgRow>> {
        Ok(sqlx::query_as(select_org!("WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_orgs(&self) -> Result<Vec<OrgRow>> {
        Ok(sqlx::query_as(select_org!("ORDER BY slug"))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The organization's whole record: its row and every list.
    pub async fn org_data(&self, org: &OrgRow) -> Result<OrgData> {
        let list = |sql: &'static str| {
            sqlx::query_scalar::<_, String>(sql)
                .bind(org.id.as_str())
                .fetch_all(&self.pool)
        };
        let domains = list("SELECT domain FROM org_domains WHERE org_id = $1 ORDER BY domain");
        let domains = domains.await?;
        let members = list("SELECT email FROM org_members WHERE org_id = $1 ORDER BY email");
        let members = members.await?;
        let providers =
            list("SELECT provider FROM org_providers WHERE org_id = $1 ORDER BY provider");
        let providers = providers.await?;
        let grants = self
            .org_grants(&org.id)
            .await?
            .into_iter()
            .map(|g| (g.role, g.app))
            .collect();
        Ok(OrgData {
            slug: org.slug.clone(),
            name: org.name.clone(),
            email: org.email.clone(),
            access_by: org.access_by.clone(),
            enforce_mfa: org.enforce_mfa != 0,
            domains,
            members,
            providers,
            grants,
        })
    }

    pub async fn org_grants(&self, org_id: &str) -> Result<Vec<GrantRow>> {
        Ok(sqlx::query_as(
            "SELECT g.role, g.app, r.seat FROM org_grants g JOIN roles r ON r.name = g.role \
             WHERE g.org_id = $1 ORDER BY g.app, g.role",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Listed addresses (with their account, if any) and users who belong otherwise.
    pub async fn org_member_rows(&self, org_id: &str) -> Result<Vec<MemberRow>> {
        Ok(sqlx::query_as(
            "SELECT m.email, CAST(1 AS BIGINT) AS listed, u.id AS user_id, u.status FROM org_members m \
             LEFT JOIN users u ON u.email_normalized = m.email WHERE m.org_id = $1 \
             UNION ALL \
             SELECT u.email_normalized AS email, CAST(0 AS BIGINT) AS listed, u.id AS user_id, u.status FROM users u \
             WHERE u.org_id = $1 AND NOT EXISTS \
               (SELECT 1 FROM org_members m WHERE m.org_id = $1 AND m.email = u.email_normalized) \
             ORDER BY email",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The ids of the users who belong to the organization now.
    pub async fn org_user_ids(&self, org_id: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM users WHERE org_id = $1 ORDER BY id")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// A user's own grants, and their organization with its grants (see `directory::Holdings`).
    pub async fn holdings(&self, user_id: &str, org_id: Option<&str>) -> Result<HeldRows> {
        let own = self.grants_of(user_id).await?;
        let org = match org_id {
            Some(id) => match self.org_by_id(id).await? {
                Some(row) => {
                    let grants = self.org_grants(&row.id).await?;
                    Some((row, grants))
                }
                None => None,
            },
            None => None,
        };
        Ok(HeldRows { own, org })
    }

    /// Creates (`existing = None`) or replaces an organization with `data`, after checking in
    /// the same transaction that every address and domain is its own (see [`Clash`]). Listed
    /// addresses with an account become members; members no longer listed leave.
    pub async fn save_org(
        &self,
        existing: Option<&str>,
        data: &OrgData,
        now: i64,
    ) -> Result<Saved> {
        let mut tx = self.pool.begin().await?;
        lock_addresses(&mut tx, now).await?;
        let own = existing.unwrap_or("");
        check_org(&mut tx, own, data).await?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE organizations SET slug = $2, name = $3, email = $4, access_by = $5, \
                     enforce_mfa = $6, updated_at = $7 WHERE id = $1",
                )
                .bind(id)
                .bind(&data.slug)
                .bind(&data.name)
                .bind(&data.email)
                .bind(&data.access_by)
                .bind(data.enforce_mfa as i64)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
                for sql in [
                    "DELETE FROM org_domains WHERE org_id = $1",
                    "DELETE FROM org_members WHERE org_id = $1",
                    "DELETE FROM org_providers WHERE org_id = $1",
                    "DELETE FROM org_grants WHERE org_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                id.to_string()
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO organizations (id, slug, name, email, access_by, enforce_mfa, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&id)
                .bind(&data.slug)
                .bind(&data.name)
                .bind(&data.email)
                .bind(&data.access_by)
                .bind(data.enforce_mfa as i64)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
                id
            }
        };
        for d in &data.domains {
            sqlx::query("INSERT INTO org_domains (domain, org_id) VALUES ($1, $2)")
                .bind(d)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
        }
        for m in &data.members {
            sqlx::query("INSERT INTO org_members (email, org_id, created_at) VALUES ($1, $2, $3)")
                .bind(m)
                .bind(&id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
        }
        for p in &data.providers {
            sqlx::query("INSERT INTO org_providers (org_id, provider) VALUES ($1, $2)")
                .bind(&id)
                .bind(p)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
        }
        for (role, app) in &data.grants {
            sqlx::query(
                "INSERT INTO org_grants (org_id, role, app, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (org_id, role, app) DO NOTHING",
            )
            .bind(&id)
            .bind(role)
            .bind(app)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // Membership follows the list: an `email` organization's members are exactly the
        // listed addresses that have an account. (A `domain` organization's members join at
        // sign-in and stay.)
        let left: Vec<String> = if data.access_by == "email" {
            sqlx::query_scalar(
                "UPDATE users SET org_id = NULL, updated_at = $2 WHERE org_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM org_members m WHERE m.org_id = $1 AND m.email = users.email_normalized) \
                 RETURNING id",
            )
            .bind(&id)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
        } else {
            Vec::new()
        };
        let joined: Vec<String> = sqlx::query_scalar(
            "UPDATE users SET org_id = $1, updated_at = $2 WHERE org_id IS NULL AND email_normalized IN \
             (SELECT m.email FROM org_members m WHERE m.org_id = $1) RETURNING id",
        )
        .bind(&id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Saved { id, joined, left })
    }

    /// Deletes the organization (its lists and grants go with it); returns the ids of the
    /// users who were its members.
    pub async fn delete_org(&self, id: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let members: Vec<String> = sqlx::query_scalar("SELECT id FROM users WHERE org_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(members)
    }

    /// Takes a user out of their organization: their address leaves its member list and they
    /// no longer belong (`reset-mfa` of a member). Returns the organization they left.
    pub async fn leave_org(&self, user_id: &str, email: &str, now: i64) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let org: Option<Option<String>> =
            sqlx::query_scalar("SELECT org_id FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let org = org.flatten();
        let listed: Option<String> =
            sqlx::query_scalar("DELETE FROM org_members WHERE email = $1 RETURNING org_id")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE users SET org_id = NULL, updated_at = $2 WHERE id = $1 AND org_id IS NOT NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(org.or(listed))
    }

    /// Returns false when the grant already existed.
    pub async fn grant_org(&self, org_id: &str, role: &str, app: &str, now: i64) -> Result<bool> {
        match sqlx::query(
            "INSERT INTO org_grants (org_id, role, app, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(org_id)
        .bind(role)
        .bind(app)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict)
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn revoke_org(&self, org_id: &str, role: &str, app: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM org_grants WHERE org_id = $1 AND role = $2 AND app = $3")
            .bind(org_id)
            .bind(role)
            .bind(app)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
