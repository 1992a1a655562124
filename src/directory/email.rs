//! Email rules (SPEC: Concepts → User).

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
}
