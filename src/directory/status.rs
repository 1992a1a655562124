//! A user's status, as stored (`users.status`) and as shown to administrators.

/// Where an account stands. Only `Active` accounts sign in or reach apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Invited,
    Active,
    Blocked,
    /// Shown, not stored: an active account whose lock has not expired (`display_status`).
    Locked,
    Deprovisioned,
}

impl UserStatus {
    pub const ALL: [UserStatus; 5] = [
        UserStatus::Invited,
        UserStatus::Active,
        UserStatus::Blocked,
        UserStatus::Locked,
        UserStatus::Deprovisioned,
    ];

    /// The stored spelling; anything else is `None`.
    pub fn parse(s: &str) -> Option<UserStatus> {
        Some(match s {
            "invited" => UserStatus::Invited,
            "active" => UserStatus::Active,
            "blocked" => UserStatus::Blocked,
            "locked" => UserStatus::Locked,
            "deprovisioned" => UserStatus::Deprovisioned,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Blocked => "blocked",
            UserStatus::Locked => "locked",
            UserStatus::Deprovisioned => "deprovisioned",
        }
    }

    /// Whether a stored status reads `active` (an unknown one never does).
    pub fn is_active(stored: &str) -> bool {
        UserStatus::parse(stored) == Some(UserStatus::Active)
    }
}

/// The status shown to administrators: an account whose lock has not expired reads `locked`.
/// An unknown stored status is shown as it is.
pub fn display_status(status: &str, locked_until: Option<i64>, now: i64) -> &str {
    if UserStatus::is_active(status) && is_locked(locked_until, now) {
        UserStatus::Locked.as_str()
    } else {
        status
    }
}

/// A lock holds until its time (`i64::MAX`: until an administrator unlocks).
pub fn is_locked(locked_until: Option<i64>, now: i64) -> bool {
    locked_until.is_some_and(|t| t > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_as_written() {
        for s in UserStatus::ALL {
            assert_eq!(UserStatus::parse(s.as_str()), Some(s));
        }
        let spelled: Vec<_> = UserStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            spelled,
            ["invited", "active", "blocked", "locked", "deprovisioned"]
        );
        assert_eq!(UserStatus::parse("Active"), None);
        assert_eq!(UserStatus::parse(""), None);
        assert!(UserStatus::is_active("active"));
        assert!(!UserStatus::is_active("blocked") && !UserStatus::is_active("ACTIVE"));
    }

    #[test]
    fn a_lock_in_force_reads_locked() {
        assert_eq!(display_status("active", Some(200), 100), "locked");
        assert_eq!(display_status("active", Some(50), 100), "active");
        assert_eq!(display_status("active", None, 100), "active");
        assert_eq!(display_status("blocked", Some(200), 100), "blocked");
        assert_eq!(display_status("odd", None, 100), "odd");
    }
}
