//! SCIM groups (`scim`): a provider's groups and their members, and the config's
//! `group_role` mappings (`scim_group_roles`) that `grants_of` reads beside `user_grants`.

use super::scim::render;
use super::{Result, ScimCond, Store, conflict};

#[derive(Clone, sqlx::FromRow)]
pub struct ScimGroupRow {
    pub id: String,
    pub provider: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

macro_rules! group_columns {
    () => {
        "g.id, g.provider, g.display_name, g.external_id, g.created_at, g.updated_at, g.version"
    };
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

async fn set_members(tx: &mut Tx, group_id: &str, members: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1")
        .bind(group_id)
        .execute(&mut **tx)
        .await?;
    for m in members {
        sqlx::query("INSERT INTO scim_group_members (group_id, user_id) VALUES ($1, $2)")
            .bind(group_id)
            .bind(m)
            .execute(&mut **tx)
            .await
            .map_err(conflict)?;
    }
    Ok(())
}

impl Store {
    /// The config's mappings, replacing whatever an earlier start wrote: (provider, group
    /// displayName lowercased, role, app).
    pub async fn replace_group_roles(&self, rows: &[(&str, String, &str, &str)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM scim_group_roles")
            .execute(&mut *tx)
            .await?;
        for (provider, group, role, app) in rows {
            sqlx::query(
                "INSERT INTO scim_group_roles (provider, group_lower, role, app) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(*provider)
            .bind(group)
            .bind(*role)
            .bind(*app)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_scim_group(&self, g: &ScimGroupRow, members: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO scim_groups (id, provider, display_name, display_name_lower, external_id, \
             created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
        )
        .bind(&g.id)
        .bind(&g.provider)
        .bind(&g.display_name)
        .bind(g.display_name.to_lowercase())
        .bind(&g.external_id)
        .bind(g.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        set_members(&mut tx, &g.id, members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a group's name, externalId and members.
    pub async fn replace_scim_group(
        &self,
        id: &str,
        display_name: &str,
        external_id: Option<&str>,
        members: &[String],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE scim_groups SET display_name = $2, display_name_lower = $3, external_id = $4, \
             updated_at = $5, version = version + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(display_name)
        .bind(display_name.to_lowercase())
        .bind(external_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        set_members(&mut tx, id, members).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn scim_group(&self, provider: &str, id: &str) -> Result<Option<ScimGroupRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            group_columns!(),
            " FROM scim_groups g WHERE g.provider = $1 AND g.id = $2"
        ))
        .bind(provider)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A group's members: (user id, address), by address.
    pub async fn scim_group_members(&self, group_id: &str) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT u.id, u.email FROM scim_group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.group_id = $1 ORDER BY u.email_normalized",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn delete_scim_group(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM scim_groups WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The provider's groups matching `cond` (over `g.` columns), by creation: the total and
    /// one page.
    pub async fn search_scim_groups(
        &self,
        provider: &str,
        cond: &ScimCond,
        start_index: i64,
        count: i64,
    ) -> Result<(i64, Vec<ScimGroupRow>)> {
        let mut binds = vec![provider.to_string()];
        let mut wh = String::from("g.provider = $1 AND ");
        render(cond, &mut wh, &mut binds);
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM scim_groups g WHERE {wh}"
        )));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let total = q.fetch_one(&self.pool).await?;
        if count <= 0 || total < start_index {
            return Ok((total, Vec::new()));
        }
        let sql = format!(
            concat!(
                "SELECT ",
                group_columns!(),
                " FROM scim_groups g WHERE {} ORDER BY g.created_at, g.id LIMIT {} OFFSET {}"
            ),
            wh,
            count,
            start_index - 1
        );
        let mut q = sqlx::query_as::<_, ScimGroupRow>(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        Ok((total, q.fetch_all(&self.pool).await?))
    }
}
