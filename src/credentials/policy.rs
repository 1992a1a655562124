//! Password policy (`[password_policy]`): every unmet rule is named, so a person fixes their
//! password in one go instead of discovering the rules one refusal at a time.

use crate::config::PasswordPolicyConfig;
use std::collections::HashSet;
use std::sync::LazyLock;

/// 30,000 most common passwords (the frequency list shipped by zxcvbn, MIT licence), lowercase,
/// one per line.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// Reverses the usual substitutions (p@ssw0rd → password) before looking a password up.
fn unleet(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '3' => 'e',
            '1' | '!' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' => 't',
            c => c,
        })
        .collect()
}

/// A password is common when, case aside, it is on the list; or is a listed word with a short
/// run of digits or symbols tacked on ("Password123!"); or becomes listed once l33t
/// substitutions are undone.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON.contains(lower.as_str()) || COMMON.contains(unleet(&lower).as_str()) {
        return true;
    }
    let core = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    let tail = lower.len() - core.len();
    tail > 0
        && tail <= 4
        && core.len() >= 4
        && (COMMON.contains(core) || COMMON.contains(unleet(core).as_str()))
}

pub fn common_list_len() -> usize {
    COMMON.len()
}

/// Returns every rule the password breaks (empty = acceptable).
pub fn check(policy: &PasswordPolicyConfig, password: &str, email: &str) -> Vec<String> {
    let mut unmet = Vec::new();
    let len = password.chars().count();
    if len < policy.min_length {
        unmet.push(format!("at least {} characters", policy.min_length));
    }
    if len > policy.max_length {
        unmet.push(format!("at most {} characters", policy.max_length));
    }
    if policy.require_uppercase && !password.chars().any(char::is_uppercase) {
        unmet.push("an uppercase letter".to_string());
    }
    if policy.require_lowercase && !password.chars().any(char::is_lowercase) {
        unmet.push("a lowercase letter".to_string());
    }
    if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
        unmet.push("a digit".to_string());
    }
    if policy.require_symbol && !password.chars().any(|c| !c.is_alphanumeric()) {
        unmet.push("a symbol".to_string());
    }
    let local = email.trim().split('@').next().unwrap_or("").to_lowercase();
    if !local.is_empty() && password.to_lowercase().contains(&local) {
        unmet.push("must not contain your email name".to_string());
    }
    if policy.reject_common && is_common(password) {
        unmet.push("must not be a common password".to_string());
    }
    unmet
}

/// "Password needs: at least 12 characters, a digit." — the one message shown for all rules.
pub fn describe(unmet: &[String]) -> String {
    let (needs, musts): (Vec<&String>, Vec<&String>) =
        unmet.iter().partition(|r| !r.starts_with("must"));
    let mut parts = Vec::new();
    if !needs.is_empty() {
        parts.push(format!(
            "The password needs {}.",
            needs
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for m in musts {
        parts.push(format!("The password {m}."));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicyConfig {
        PasswordPolicyConfig {
            min_length: 12,
            max_length: 128,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_symbol: true,
            reject_common: true,
        }
    }

    #[test]
    fn names_every_unmet_rule() {
        let unmet = check(&policy(), "abc", "alice@example.com");
        assert_eq!(unmet.len(), 4, "{unmet:?}");
        let msg = describe(&unmet);
        for rule in ["12 characters", "uppercase", "digit", "symbol"] {
            assert!(msg.contains(rule), "{msg}");
        }
    }

    #[test]
    fn refuses_email_local_part_and_common_passwords() {
        assert!(
            check(&policy(), "xxAlice.Smith9!xx", "alice.smith@example.com")
                .iter()
                .any(|r| r.contains("email"))
        );
        assert!(common_list_len() >= 10_000);
        assert!(is_common("password"));
        assert!(is_common("Password123!"));
        assert!(is_common("P@ssw0rd"));
        assert!(is_common("Trustno1"));
        assert!(!is_common("Vq8#zL2m!pR4wX"));
        assert!(check(&policy(), "Vq8#zL2m!pR4wX", "bob@example.com").is_empty());
    }
}
