//! What one session may do on one app, prepared once and kept with the session (see
//! `Session::apps`): who the user is (and their organization), the effective roles, the seat
//! kind, whether the app refuses them outright (no role, or its organization checks), the
//! signed assertion while it is fresh, and the seat meter's stamps.
//! Built and used by `proxy::access`; plain data here, so that it can die with the session.

use crate::directory::{DenyReason, SeatKind};
use crate::store::Stamp;
use axum::http::HeaderValue;
use std::sync::{Arc, Mutex};

/// What one session may do on one app, and who it is.
///
/// One of these lives per session and app, so it is kept compact: the user's id, email, name,
/// organization slug (empty without one) and comma-joined roles in one string; the identity
/// header lines are rendered from them when a connection starts relaying for the session
/// (`proxy::IdentityNames::write_lines`).
pub struct AppAccess {
    text: Box<str>,
    /// Where the id, the email, the name and the organization end in `text`.
    ends: [u32; 4],
    pub seat: SeatKind,
    /// Why the app refuses this user whatever they ask (`None`: admitted), decided when this
    /// is built (`directory::rights`), so no request asks the database again.
    pub refusal: Option<DenyReason>,
    /// The signed assertion and its expiry, while held (see `KeptAssertions`).
    assertion: Mutex<Option<Box<(i64, HeaderValue)>>>,
    /// When the modify seat was last confirmed in the database (see `proxy::access::judge`).
    pub seat_confirmed_at: Stamp,
    /// When an admission over the licence was last audited.
    pub overage_audited_at: Stamp,
}

impl std::fmt::Debug for AppAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAccess")
            .field("user_id", &self.user_id())
            .field("org", &self.org())
            .field("roles", &self.roles_text())
            .field("seat", &self.seat)
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

impl AppAccess {
    /// From the user's id, email, name, organization slug (`""`: none) and comma-joined roles.
    pub fn new(values: [&str; 5], seat: SeatKind, refusal: Option<DenyReason>) -> AppAccess {
        let mut text = String::with_capacity(values.iter().map(|v| v.len()).sum());
        let mut ends = [0; 4];
        for (i, v) in values.iter().enumerate() {
            text.push_str(v);
            if i < 4 {
                ends[i] = text.len() as u32;
            }
        }
        AppAccess {
            text: text.into_boxed_str(),
            ends,
            seat,
            refusal,
            assertion: Mutex::new(None),
            seat_confirmed_at: Stamp::new(0),
            overage_audited_at: Stamp::new(0),
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |e| *e as usize);
        &self.text[start..end]
    }

    pub fn user_id(&self) -> &str {
        self.part(0)
    }
    pub fn email(&self) -> &str {
        self.part(1)
    }
    pub fn name(&self) -> &str {
        self.part(2)
    }
    /// The slug of the user's organization, if they belong to one.
    pub fn org(&self) -> Option<&str> {
        Some(self.part(3)).filter(|s| !s.is_empty())
    }
    /// Effective roles for this app, comma-joined.
    pub fn roles_text(&self) -> &str {
        self.part(4)
    }
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles_text().split(',').filter(|r| !r.is_empty())
    }
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().any(|r| r == role)
    }

    /// The signed assertion held, while more than `renew` seconds of it are left at `now`.
    pub fn held_assertion(&self, now: i64, renew: i64) -> Option<HeaderValue> {
        let slot = self.assertion.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_deref()
            .filter(|held| held.0 - now > renew)
            .map(|held| held.1.clone())
    }

    /// Holds a freshly signed assertion until `expires_at`; true when none was held (it must
    /// then be counted by `KeptAssertions::keep`).
    pub fn hold_assertion(&self, expires_at: i64, value: HeaderValue) -> bool {
        let mut slot = self.assertion.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = slot.is_none();
        *slot = Some(Box::new((expires_at, value)));
        fresh
    }

    fn forget_assertion(&self) {
        *self.assertion.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Bounds the signed assertions held in memory (about 0.7 KB each): when more than `limit`
/// sessions × apps hold one, the longest-held are dropped, to be signed afresh on their next
/// request (one ES256 signature). Touched only when an assertion is signed, never on a hit.
pub struct KeptAssertions {
    limit: usize,
    order: Mutex<std::collections::VecDeque<std::sync::Weak<AppAccess>>>,
}

impl KeptAssertions {
    pub fn new(limit: usize) -> KeptAssertions {
        KeptAssertions {
            limit,
            order: Default::default(),
        }
    }

    pub fn keep(&self, access: &Arc<AppAccess>) {
        let mut evict = Vec::new();
        {
            let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
            order.push_back(Arc::downgrade(access));
            while order.len() > self.limit {
                if let Some(old) = order.pop_front().and_then(|w| w.upgrade()) {
                    evict.push(old);
                }
            }
        }
        for old in evict {
            old.forget_assertion();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn holding_an_assertion() -> Arc<AppAccess> {
        let a = AppAccess::new(
            ["u", "u@example.com", "U", "", "a,b"],
            SeatKind::Limited,
            None,
        );
        a.hold_assertion(i64::MAX, HeaderValue::from_static("jws"));
        Arc::new(a)
    }

    #[test]
    fn compact_access_gives_back_what_it_was_built_from() {
        let a = holding_an_assertion();
        assert_eq!(
            (a.user_id(), a.email(), a.name(), a.roles_text()),
            ("u", "u@example.com", "U", "a,b")
        );
        assert!(a.has_role("a") && a.has_role("b") && !a.has_role("c"));
        assert_eq!(a.org(), None);
        let member = AppAccess::new(
            ["u", "u@example.com", "U", "acme", ""],
            SeatKind::Modify,
            Some(DenyReason::OrganizationMember),
        );
        assert_eq!(
            (member.org(), member.roles_text(), member.roles().count()),
            (Some("acme"), "", 0)
        );
        assert_eq!(member.refusal, Some(DenyReason::OrganizationMember));
    }

    fn holds(a: &AppAccess) -> bool {
        a.assertion.lock().unwrap().is_some()
    }

    #[test]
    fn the_longest_held_assertions_are_dropped_beyond_the_limit() {
        let kept = KeptAssertions::new(2);
        let (a, b, c) = (
            holding_an_assertion(),
            holding_an_assertion(),
            holding_an_assertion(),
        );
        kept.keep(&a);
        kept.keep(&b);
        assert!(holds(&a) && holds(&b));
        kept.keep(&c);
        assert!(!holds(&a) && holds(&b) && holds(&c));
        assert_eq!(kept.len(), 2);
        // Sessions that ended leave nothing behind but their place in line.
        drop(b);
        let d = holding_an_assertion();
        kept.keep(&d);
        assert!(holds(&c) && holds(&d));
    }
}
