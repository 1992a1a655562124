//! Organizations: the row, its domains, listed members, providers and grants, membership
//! (`users.org_id`), and the checks that keep every address with one owner. Saving an
//! organization and creating a user both first take `address_lock`, so their checks across
//! tables are serialised; the unique constraints (`organizations.slug`, `.email`,
//! `org_domains.domain`, `org_members.email`, `users.email_normalized`) are the last line.

use super::{GrantRow, Result, Store, StoreError, conflict};
use sqlx::{Any, Transaction};

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

/// Why an address, a domain or a slug cannot be had: it already belongs to someone else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Clash {
    #[error("the slug {slug:?} is taken by another organization")]
    Slug { slug: String },
    #[error("{email} is the address of organization {slug}")]
    OrgEmail { email: String, slug: String },
    #[error("{email} is listed as a member of organization {slug}")]
    Listed { email: String, slug: String },
    #[error("{email} is a user who is a member of organization {slug}")]
    MemberOfOther { email: String, slug: String },
    #[error(
        "{email} is the address of an existing user (an organization's address never signs in)"
    )]
    UserAddress { email: String },
    #[error("{email} is in the domain {domain} of organization {slug}")]
    InDomain {
        email: String,
        domain: String,
        slug: String,
    },
    #[error("the domain {domain} belongs to organization {slug}")]
    Domain { domain: String, slug: String },
    #[error("organization {slug} lists {email}, an address in the domain {domain}")]
    DomainListed {
        domain: String,
        email: String,
        slug: String,
    },
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

/// The domain part of a normalized address.
fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Takes the address lock: the first write of every transaction that claims an address.
pub(super) async fn lock_addresses(tx: &mut Transaction<'static, Any>, now: i64) -> Result<()> {
    sqlx::query("UPDATE address_lock SET touched_at = $1 WHERE id = 1")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The organization whose address `email` is, if any.
pub(super) async fn org_of_address(
    tx: &mut Transaction<'static, Any>,
    email: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT slug FROM organizations WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut **tx)
            .await?,
    )
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
        sqlx::query("UPDATE users SET org_id = NULL, updated_at = $2 WHERE id = $1")
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

/// Every address and domain of `data` is free for organization `own` ('' = a new one).
async fn check_org(tx: &mut Transaction<'static, Any>, own: &str, data: &OrgData) -> Result<()> {
    let clash = |c: Clash| Err(StoreError::Clash(c));
    let other: Option<String> =
        sqlx::query_scalar("SELECT slug FROM organizations WHERE slug = $1 AND id <> $2")
            .bind(&data.slug)
            .bind(own)
            .fetch_optional(&mut **tx)
            .await?;
    if other.is_some() {
        return clash(Clash::Slug {
            slug: data.slug.clone(),
        });
    }
    // The organization's own address: no other organization's, no user's, listed nowhere.
    let email = &data.email;
    if let Some(slug) = org_email_elsewhere(tx, email, own).await? {
        return clash(Clash::OrgEmail {
            email: email.clone(),
            slug,
        });
    }
    let user: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE email_normalized = $1")
            .bind(email)
            .fetch_optional(&mut **tx)
            .await?;
    if user.is_some() {
        return clash(Clash::UserAddress {
            email: email.clone(),
        });
    }
    if let Some(slug) = listed_by(tx, email, "").await? {
        return clash(Clash::Listed {
            email: email.clone(),
            slug,
        });
    }
    if data.members.contains(email) {
        return clash(Clash::Listed {
            email: email.clone(),
            slug: data.slug.clone(),
        });
    }
    // Each listed address: no organization's address, listed by no other organization, no
    // member of another, in no other organization's domain.
    for m in &data.members {
        if let Some(slug) = org_email_elsewhere(tx, m, "").await? {
            return clash(Clash::OrgEmail {
                email: m.clone(),
                slug,
            });
        }
        if let Some(slug) = listed_by(tx, m, own).await? {
            return clash(Clash::Listed {
                email: m.clone(),
                slug,
            });
        }
        let member_of: Option<String> = sqlx::query_scalar(
            "SELECT o.slug FROM users u JOIN organizations o ON o.id = u.org_id \
             WHERE u.email_normalized = $1 AND u.org_id <> $2",
        )
        .bind(m)
        .bind(own)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(slug) = member_of {
            return clash(Clash::MemberOfOther {
                email: m.clone(),
                slug,
            });
        }
        let domain = domain_of(m);
        if let Some(slug) = domain_owner(tx, domain, own).await? {
            return clash(Clash::InDomain {
                email: m.clone(),
                domain: domain.to_string(),
                slug,
            });
        }
    }
    // Each domain: no other organization's, and no other organization lists an address in it.
    for d in &data.domains {
        if let Some(slug) = domain_owner(tx, d, own).await? {
            return clash(Clash::Domain {
                domain: d.clone(),
                slug,
            });
        }
        let listed: Option<(String, String)> = sqlx::query_as(
            "SELECT m.email, o.slug FROM org_members m JOIN organizations o ON o.id = m.org_id \
             WHERE m.org_id <> $2 AND m.email LIKE $1 ORDER BY m.email LIMIT 1",
        )
        .bind(format!("%@{d}"))
        .bind(own)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((email, slug)) = listed {
            return clash(Clash::DomainListed {
                domain: d.clone(),
                email,
                slug,
            });
        }
    }
    Ok(())
}

async fn org_email_elsewhere(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    own: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT slug FROM organizations WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(own)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// The organization (other than `own`) listing `email`.
async fn listed_by(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    own: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT o.slug FROM org_members m JOIN organizations o ON o.id = m.org_id \
         WHERE m.email = $1 AND m.org_id <> $2",
    )
    .bind(email)
    .bind(own)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn domain_owner(
    tx: &mut Transaction<'static, Any>,
    domain: &str,
    own: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT o.slug FROM org_domains d JOIN organizations o ON o.id = d.org_id \
         WHERE d.domain = $1 AND d.org_id <> $2",
    )
    .bind(domain)
    .bind(own)
    .fetch_optional(&mut **tx)
    .await?)
}
