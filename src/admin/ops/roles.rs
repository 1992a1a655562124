//! Roles and grants.

use super::*;

impl Ops<'_> {
    pub async fn create_role(&self, name: &str, seat: &str, description: &str) -> OpResult<()> {
        if !crate::config::valid_name(name) {
            return Err(OpError::Invalid(
                "--name: 1-64 of a-z, 0-9, '-', '_'".into(),
            ));
        }
        if SeatKind::parse(seat).is_none() {
            return Err(OpError::Invalid("--seat: must be limited or modify".into()));
        }
        match self
            .base
            .store
            .create_role(name, seat, description, store::now())
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(OpError::Conflict(format!("role {name} already exists")));
            }
            other => other?,
        }
        self.audit(
            "role.create",
            name,
            None,
            json!({ "after": { "name": name, "seat": seat, "description": description } }),
        )
        .await;
        Ok(())
    }

    /// Grants or revokes `role` on `app` (`*` = every app). Returns false if nothing changed.
    pub async fn set_grant(
        &self,
        email: &str,
        role: &str,
        app: &str,
        grant: bool,
    ) -> OpResult<bool> {
        let user = self.user(email).await?;
        if grant {
            self.grantable("--app", role, app).await?;
        } else {
            // A grant for an app since removed from the config can still be revoked.
            self.role_exists(role).await?;
            if role == directory::ADMIN_ROLE && app == "*" {
                self.keep_a_full_admin(&user, "stripped of the admin role")
                    .await?;
            }
        }
        let now = store::now();
        let changed = if grant {
            self.base.store.grant(&user.id, role, app, now).await?
        } else {
            self.base.store.revoke(&user.id, role, app).await?
        };
        if changed {
            // Cached rights of this user are stale everywhere.
            self.invalidate(Invalidate::User(user.id.clone())).await?;
            self.audit(
                if grant { "grant.add" } else { "grant.remove" },
                &user.email,
                Some(&user.id),
                json!({ "role": role, "app": app }),
            )
            .await;
        }
        Ok(changed)
    }

    pub async fn list_roles(&self) -> OpResult<Vec<store::RoleRow>> {
        Ok(self.base.store.list_roles().await?)
    }
}
