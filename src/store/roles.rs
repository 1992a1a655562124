use super::{Result, Store, conflict};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RoleRow {
    pub name: String,
    pub seat: String,
    pub description: String,
    pub builtin: i64,
}

/// One grant of a role to a user, for one app or every app (`*`).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct GrantRow {
    pub role: String,
    pub app: String,
    pub seat: String,
}

impl Store {
    pub async fn create_role(
        &self,
        name: &str,
        seat: &str,
        description: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO roles (name, seat, description, builtin, created_at) VALUES ($1, $2, $3, 0, $4)")
            .bind(name)
            .bind(seat)
            .bind(description)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(super::conflict)?;
        Ok(())
    }

    /// Roles declared in the config file are (re)applied at every start.
    pub async fn upsert_role(
        &self,
        name: &str,
        seat: &str,
        description: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO roles (name, seat, description, builtin, created_at) VALUES ($1, $2, $3, 0, $4) \
             ON CONFLICT (name) DO UPDATE SET seat = excluded.seat, description = excluded.description",
        )
        .bind(name)
        .bind(seat)
        .bind(description)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn role(&self, name: &str) -> Result<Option<RoleRow>> {
        Ok(
            sqlx::query_as("SELECT name, seat, description, builtin FROM roles WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn list_roles(&self) -> Result<Vec<RoleRow>> {
        Ok(
            sqlx::query_as("SELECT name, seat, description, builtin FROM roles ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Returns false when the grant already existed.
    pub async fn grant(&self, user_id: &str, role: &str, app: &str, now: i64) -> Result<bool> {
        match sqlx::query(
            "INSERT INTO user_grants (user_id, role, app, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(user_id)
        .bind(role)
        .bind(app)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict)
        {
            Ok(_) => Ok(true),
            Err(super::StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn revoke(&self, user_id: &str, role: &str, app: &str) -> Result<bool> {
        let r =
            sqlx::query("DELETE FROM user_grants WHERE user_id = $1 AND role = $2 AND app = $3")
                .bind(user_id)
                .bind(role)
                .bind(app)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The user's own grants: given to them, and held through the SCIM groups they are a
    /// member of (`scim_group_roles`; a mapped role that does not exist grants nothing).
    pub async fn grants_of(&self, user_id: &str) -> Result<Vec<GrantRow>> {
        Ok(sqlx::query_as(
            "SELECT g.role, g.app, r.seat FROM user_grants g JOIN roles r ON r.name = g.role \
             WHERE g.user_id = $1 \
             UNION SELECT m.role, m.app, r.seat FROM scim_group_members gm \
             JOIN scim_groups sg ON sg.id = gm.group_id \
             JOIN scim_group_roles m ON m.provider = sg.provider AND m.group_lower = sg.display_name_lower \
             JOIN roles r ON r.name = m.role WHERE gm.user_id = $1 ORDER BY 2, 1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Full access administrators (`admin` for every app, granted to them or to their
    /// organization) who can still sign in (first-run detection).
    pub async fn count_admins(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM users u WHERE u.status = 'active' AND (\
             EXISTS (SELECT 1 FROM user_grants g WHERE g.user_id = u.id AND g.role = 'admin' AND g.app = '*') \
             OR EXISTS (SELECT 1 FROM org_grants g WHERE g.org_id = u.org_id AND g.role = 'admin' AND g.app = '*') \
             OR EXISTS (SELECT 1 FROM scim_group_members gm JOIN scim_groups sg ON sg.id = gm.group_id \
             JOIN scim_group_roles m ON m.provider = sg.provider AND m.group_lower = sg.display_name_lower \
             WHERE gm.user_id = u.id AND m.role = 'admin' AND m.app = '*'))",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}
