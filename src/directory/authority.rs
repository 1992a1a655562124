//! Who may manage the directory itself. A [`FullAdmin`] is proof that the caller is a full
//! access administrator; operations that only they may perform (organizations, users, roles,
//! invitations, sessions of others) take one as an argument, so no caller can reach them
//! without the check. It is made in two places only: [`FullAdmin::check`] (a person: active,
//! holding the `admin` role for every app) and [`FullAdmin::operator`] (the `gatehouse admin`
//! CLI, whose user already holds the database and the master key).

use super::{Grants, UserStatus};

/// The role that makes a full access administrator when granted for every app (`*`).
pub const ADMIN_ROLE: &str = "admin";

/// Whether these grants make a full access administrator (`admin` for every app).
pub fn is_full_admin(grants: Grants<'_>) -> bool {
    grants.iter().any(|g| g.role == ADMIN_ROLE && g.app == "*")
}

/// Proof that the caller is a full access administrator (see the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullAdmin {
    /// The administrator's user id; `None` for the CLI operator.
    user_id: Option<String>,
}

impl FullAdmin {
    /// A person is a full access administrator when active and holding `admin` on `*`.
    pub fn check(user_id: &str, status: &str, grants: Grants<'_>) -> Option<FullAdmin> {
        (UserStatus::is_active(status) && is_full_admin(grants)).then(|| FullAdmin {
            user_id: Some(user_id.to_string()),
        })
    }

    /// The `gatehouse admin` CLI: whoever runs it has the database and the master key.
    pub fn operator() -> FullAdmin {
        FullAdmin { user_id: None }
    }

    /// The administrator's user id (`None` for the CLI operator).
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::GrantRow;

    fn g(role: &str, app: &str) -> GrantRow {
        GrantRow {
            role: role.into(),
            app: app.into(),
            seat: "modify".into(),
        }
    }

    #[test]
    fn only_an_active_admin_for_every_app_is_a_full_admin() {
        let full = [g("admin", "*"), g("limited", "crm")];
        let app_admin = [g("admin", "crm")];
        assert_eq!(
            FullAdmin::check("u1", "active", Grants::of_user(&full))
                .unwrap()
                .user_id(),
            Some("u1")
        );
        assert!(FullAdmin::check("u1", "blocked", Grants::of_user(&full)).is_none());
        assert!(FullAdmin::check("u1", "deprovisioned", Grants::of_user(&full)).is_none());
        assert!(FullAdmin::check("u2", "active", Grants::of_user(&app_admin)).is_none());
        assert!(FullAdmin::check("u3", "active", Grants::of_user(&[])).is_none());
        assert_eq!(FullAdmin::operator().user_id(), None);
    }
}
