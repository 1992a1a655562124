//! People and their rights: email rules, statuses, effective roles, who must use MFA.
//! No HTTP and no SQL here: the rules only.

use crate::store::GrantRow;

/// Emails are unique and compared case-insensitively after trimming (SPEC: Concepts → User).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A deliberately simple shape check: one `@`, something on each side, no spaces, a sane length.
pub fn valid_email(email: &str) -> bool {
    let e = email.trim();
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && e.len() <= 254
                && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

pub const STATUSES: &[&str] = &["invited", "active", "blocked", "locked", "deprovisioned"];

/// The status shown to administrators: an account whose lock has not expired reads `locked`.
pub fn display_status(status: &str, locked_until: Option<i64>, now: i64) -> &str {
    if status == "active" && crate::auth::lockout::is_locked(locked_until, now) {
        "locked"
    } else {
        status
    }
}

/// Roles effective for `app` (grants for that app or for every app), deduplicated, sorted.
pub fn roles_for_app(grants: &[GrantRow], app: &str) -> Vec<String> {
    let mut roles: Vec<String> = grants
        .iter()
        .filter(|g| g.app == "*" || g.app == app)
        .map(|g| g.role.clone())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// `[mfa] required_for_roles`: any grant of such a role, for any app, requires a second factor.
pub fn mfa_required(grants: &[GrantRow], required_for_roles: &[String]) -> bool {
    grants.iter().any(|g| required_for_roles.contains(&g.role))
}

/// `--role R[@APP]` → (role, app); app defaults to every app (`*`).
pub fn parse_role_spec(spec: &str) -> (String, String) {
    match spec.split_once('@') {
        Some((r, a)) if !a.is_empty() => (r.to_string(), a.to_string()),
        Some((r, _)) => (r.to_string(), "*".to_string()),
        None => (spec.to_string(), "*".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        assert_eq!(normalize_email("  Alice@Example.COM "), "alice@example.com");
        assert!(valid_email("a@b.example"));
        assert!(!valid_email("no-at-sign"));
        assert!(!valid_email("a@@b"));
        assert!(!valid_email("a b@c.d"));
        assert!(!valid_email("@c.d"));
    }

    #[test]
    fn effective_roles_and_mfa() {
        let g = |role: &str, app: &str| GrantRow {
            role: role.into(),
            app: app.into(),
            seat: "limited".into(),
        };
        let grants = vec![g("limited", "*"), g("financial", "crm"), g("admin", "wiki")];
        assert_eq!(roles_for_app(&grants, "crm"), vec!["financial", "limited"]);
        assert!(mfa_required(&grants, &["admin".into()]));
        assert!(!mfa_required(&grants, &["technical".into()]));
        assert_eq!(parse_role_spec("admin@crm"), ("admin".into(), "crm".into()));
        assert_eq!(parse_role_spec("admin"), ("admin".into(), "*".into()));
    }
}
