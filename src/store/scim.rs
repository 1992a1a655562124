//! SCIM provisioning (`scim`): the users a provider provisioned (`scim_users` beside `users`),
//! and the search behind `GET /Users?filter=`: a filter arrives here as a [`ScimCond`] tree
//! and becomes one parameterised WHERE over indexed columns — never a scan in memory.

use super::{Clash, NewUser, Result, Store, StoreError, conflict};

/// A provisioned user as SCIM shows it: the account's columns and the provider's.
#[derive(Clone, sqlx::FromRow)]
pub struct ScimUserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub org_id: Option<String>,
    pub provider: String,
    pub user_name: String,
    pub external_id: Option<String>,
    /// The resource as the provider last wrote it (JSON).
    pub resource: String,
    pub deleted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

macro_rules! user_columns {
    () => {
        "u.id, u.email, u.name, u.status, u.org_id, s.provider, s.user_name, s.external_id, \
         s.resource, s.deleted_at, s.created_at, s.updated_at, s.version"
    };
}

/// What a provider writes of a user (create and replace).
pub struct ScimUserData<'a> {
    pub user_name: &'a str,
    pub external_id: Option<&'a str>,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub name: &'a str,
    pub resource: &'a str,
}

/// A filterable attribute, by the column that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimColumn {
    /// `userName`, compared lowercased (caseExact false).
    UserName,
    /// `externalId` (caseExact true).
    ExternalId,
    /// `emails.value`: the account's address, lowercased.
    Email,
    /// `displayName`, compared lowercased.
    DisplayName,
    /// `id`.
    Id,
    /// A group's `displayName`, lowercased.
    GroupName,
    /// A group's `externalId`.
    GroupExternalId,
    /// A group's `id`.
    GroupId,
}

impl ScimColumn {
    fn sql(self) -> &'static str {
        match self {
            ScimColumn::UserName => "s.user_name_lower",
            ScimColumn::ExternalId => "s.external_id",
            ScimColumn::Email => "u.email_normalized",
            ScimColumn::DisplayName => "LOWER(u.name)",
            ScimColumn::Id => "u.id",
            ScimColumn::GroupName => "g.display_name_lower",
            ScimColumn::GroupExternalId => "g.external_id",
            ScimColumn::GroupId => "g.id",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A filter over provisioned users, ready for SQL (values already cased as the column is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimCond {
    Text(ScimColumn, ScimOp, String),
    Present(ScimColumn),
    /// `active eq <bool>`: the account is (not) deprovisioned.
    Active(bool),
    And(Vec<ScimCond>),
    Or(Vec<ScimCond>),
    Not(Box<ScimCond>),
    All,
}

/// Renders `c` into `sql`, its values appended to `binds` (parameters `$n` from `binds.len()`).
pub(super) fn render(c: &ScimCond, sql: &mut String, binds: &mut Vec<String>) {
    let param = |v: &str, binds: &mut Vec<String>| {
        binds.push(v.to_string());
        format!("${}", binds.len())
    };
    match c {
        ScimCond::All => sql.push_str("1 = 1"),
        ScimCond::Active(true) => sql.push_str("u.status NOT IN ('deprovisioned', 'blocked')"),
        ScimCond::Active(false) => sql.push_str("u.status IN ('deprovisioned', 'blocked')"),
        ScimCond::Present(col) => match col {
            ScimColumn::ExternalId => sql.push_str("s.external_id IS NOT NULL"),
            ScimColumn::GroupExternalId => sql.push_str("g.external_id IS NOT NULL"),
            ScimColumn::DisplayName => sql.push_str("u.name <> ''"),
            _ => sql.push_str("1 = 1"),
        },
        ScimCond::Text(col, op, v) => {
            let c = col.sql();
            let p = param(v, binds);
            // Case was settled by the caller (both sides lowercased, or exact): substr and
            // replace compare exactly on both backends, unlike LIKE.
            let expr = match op {
                ScimOp::Eq => format!("{c} = {p}"),
                ScimOp::Ne => format!("({c} IS NULL OR {c} <> {p})"),
                ScimOp::Gt => format!("{c} > {p}"),
                ScimOp::Ge => format!("{c} >= {p}"),
                ScimOp::Lt => format!("{c} < {p}"),
                ScimOp::Le => format!("{c} <= {p}"),
                ScimOp::Sw => format!("SUBSTR({c}, 1, LENGTH({p})) = {p}"),
                ScimOp::Ew => format!(
                    "(LENGTH({c}) >= LENGTH({p}) AND SUBSTR({c}, LENGTH({c}) - LENGTH({p}) + 1) = {p})"
                ),
                ScimOp::Co => format!(
                    "({c} IS NOT NULL AND (LENGTH({p}) = 0 OR LENGTH(REPLACE({c}, {p}, '')) < LENGTH({c})))"
                ),
            };
            sql.push_str(&expr);
        }
        ScimCond::And(items) | ScimCond::Or(items) => {
            let joiner = if matches!(c, ScimCond::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                render(item, sql, binds);
            }
            sql.push(')');
        }
        ScimCond::Not(inner) => {
            sql.push_str("NOT (");
            render(inner, sql, binds);
            sql.push(')');
        }
    }
}

impl Store {
    /// A provider's live (not deleted) user.
    pub async fn scim_user(&self, provider: &str, id: &str) -> Result<Option<ScimUserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM scim_users s JOIN users u ON u.id = s.user_id \
             WHERE s.provider = $1 AND s.user_id = $2 AND s.deleted_at IS NULL"
        ))
        .bind(provider)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The provisioning record of the account with this address (deleted ones too), if any
    /// provider provisioned it.
    pub async fn scim_user_by_email(&self, email_normalized: &str) -> Result<Option<ScimUserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM scim_users s JOIN users u ON u.id = s.user_id WHERE u.email_normalized = $1"
        ))
        .bind(email_normalized)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether a live user of `provider` other than `except` has this userName / externalId.
    pub async fn scim_user_taken(
        &self,
        provider: &str,
        user_name_lower: &str,
        external_id: Option<&str>,
        except: &str,
    ) -> Result<Option<&'static str>> {
        let name: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM scim_users WHERE provider = $1 AND user_name_lower = $2 AND user_id <> $3",
        )
        .bind(provider)
        .bind(user_name_lower)
        .bind(except)
        .fetch_optional(&self.pool)
        .await?;
        if name.is_some() {
            return Ok(Some("userName"));
        }
        if let Some(x) = external_id {
            let ext: Option<String> = sqlx::query_scalar(
                "SELECT user_id FROM scim_users WHERE provider = $1 AND external_id = $2 AND user_id <> $3",
            )
            .bind(provider)
            .bind(x)
            .bind(except)
            .fetch_optional(&self.pool)
            .await?;
            if ext.is_some() {
                return Ok(Some("externalId"));
            }
        }
        Ok(None)
    }

    /// Creates an account provisioned by `provider`, in one transaction under the address
    /// lock (`users::insert_user_in`): the member of `org_id` (the domain organization owning
    /// the address) or of the organization listing it.
    pub async fn insert_scim_user(
        &self,
        u: &NewUser<'_>,
        org_id: Option<&str>,
        provider: &str,
        d: &ScimUserData<'_>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        super::users::insert_user_in(&mut tx, u, org_id, now).await?;
        sqlx::query(
            "INSERT INTO scim_users (user_id, provider, user_name, user_name_lower, external_id, \
             resource, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
        )
        .bind(u.id)
        .bind(provider)
        .bind(d.user_name)
        .bind(d.user_name.to_lowercase())
        .bind(d.external_id)
        .bind(d.resource)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces what the provider wrote of its user (a deleted one comes back: re-created by
    /// the same provider). A new address is checked under the address lock: an
    /// organization's own address is refused, another account's is a `Conflict`.
    pub async fn update_scim_user(&self, id: &str, d: &ScimUserData<'_>, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        super::addresses::lock_addresses(&mut tx, now).await?;
        if let Some(slug) = super::addresses::org_of_address(&mut tx, d.email_normalized).await? {
            return Err(StoreError::Clash(Clash::OrgEmail {
                email: d.email_normalized.to_string(),
                slug,
            }));
        }
        // A new address belongs where it would on a create: the domain organization owning
        // its domain, else the email organization listing it, else none (the old address's
        // organization is left: its rights came with that address).
        let domain = d
            .email_normalized
            .rsplit_once('@')
            .map_or("", |(_, dom)| dom);
        sqlx::query(
            "UPDATE users SET email = $2, email_normalized = $3, name = $4, updated_at = $5, \
             org_id = CASE WHEN email_normalized = $3 THEN org_id ELSE COALESCE(\
             (SELECT d.org_id FROM org_domains d JOIN organizations o ON o.id = d.org_id \
              WHERE d.domain = $6 AND o.access_by = 'domain'), \
             (SELECT m.org_id FROM org_members m WHERE m.email = $3)) END WHERE id = $1",
        )
        .bind(id)
        .bind(d.email)
        .bind(d.email_normalized)
        .bind(d.name)
        .bind(now)
        .bind(domain)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        sqlx::query(
            "UPDATE scim_users SET user_name = $2, user_name_lower = $3, external_id = $4, \
             resource = $5, deleted_at = NULL, updated_at = $6, version = version + 1 WHERE user_id = $1",
        )
        .bind(id)
        .bind(d.user_name)
        .bind(d.user_name.to_lowercase())
        .bind(d.external_id)
        .bind(d.resource)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        tx.commit().await?;
        Ok(())
    }

    /// SCIM DELETE: the user is gone for the provider (GET answers 404), their userName and
    /// externalId freed; both rows stay for the audit trail.
    pub async fn mark_scim_user_deleted(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE scim_users SET deleted_at = $2, external_id = NULL, \
             user_name_lower = 'deleted:' || user_id, updated_at = $2, version = version + 1 \
             WHERE user_id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Reactivation (SCIM `active = true`): a deprovisioned account becomes active again (its
    /// grants were never removed). Any other status is left as it is: a block stays.
    pub async fn reactivate_user(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET status = 'active', updated_at = $2 WHERE id = $1 AND status = 'deprovisioned'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The provider's live users matching `cond`, ordered by creation: the total, and the
    /// page of `count` from the 1-based `start_index`.
    pub async fn search_scim_users(
        &self,
        provider: &str,
        cond: &ScimCond,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<ScimUserRow>)> {
        let mut binds = vec![provider.to_string()];
        let mut wh = String::from("s.provider = $1 AND s.deleted_at IS NULL AND ");
        render(cond, &mut wh, &mut binds);
        let count_sql = format!(
            "SELECT COUNT(*) FROM scim_users s JOIN users u ON u.id = s.user_id WHERE {wh}"
        );
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let total = q.fetch_one(&self.pool).await?;
        if count <= 0 || total < start_index {
            return Ok((total, Vec::new()));
        }
        let page_sql = format!(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM scim_users s JOIN users u ON u.id = s.user_id WHERE {} \
                 ORDER BY s.created_at, u.id LIMIT {} OFFSET {}"
            ),
            wh,
            count,
            start_index - 1
        );
        let mut q = sqlx::query_as::<_, ScimUserRow>(sqlx::AssertSqlSafe(page_sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        Ok((total, q.fetch_all(&self.pool).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_render_to_parameters_never_to_text() {
        let c = ScimCond::And(vec![
            ScimCond::Text(ScimColumn::UserName, ScimOp::Eq, "a'b".into()),
            ScimCond::Not(Box::new(ScimCond::Or(vec![
                ScimCond::Active(false),
                ScimCond::Text(ScimColumn::ExternalId, ScimOp::Co, "x".into()),
            ]))),
        ]);
        let mut sql = String::new();
        let mut binds = vec!["provider".to_string()];
        render(&c, &mut sql, &mut binds);
        assert!(!sql.contains("a'b"), "{sql}");
        assert_eq!(binds, ["provider", "a'b", "x"]);
        assert!(sql.starts_with(
            "(s.user_name_lower = $2 AND NOT ((u.status IN ('deprovisioned', 'blocked') OR"
        ));
    }
}
