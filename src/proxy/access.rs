//! Where access to an app is decided for a session: the rules of `directory` (roles, admission,
//! per-path rules, back-office paths) applied to the user's grants, and the modify-seat meter
//! (a database row lock, so it lives here).
//! Also prepares, once per session and app, who the user is and the signed assertion (and, once
//! per connection, the identity header lines), so the hot path only copies prepared bytes.

use super::IdentityNames;
use super::headers::{encode_value, put_encoded};
use crate::audit::{self, Actor};
use crate::auth::session::Session;
use crate::config::app::{AppConfig, SeatOverflow};
use crate::core::Core;
use crate::directory::{self, DenyReason, Grants, Readings, SeatKind, UserStatus};
use crate::error::AppError;
use crate::store::{self, SeatGrant, Stamp};
use axum::http::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::sync::Mutex;

/// Assertions live 5 minutes (SPEC) and are re-signed when less than a minute is left.
const ASSERTION_TTL: i64 = 300;
const ASSERTION_RENEW: i64 = 60;
/// A held seat is confirmed in the database at most this often per session and app (more often
/// when `seat_idle_timeout` is under two minutes: every half of it).
const SEAT_REFRESH: i64 = 60;

/// What one session may do on one app, and who it is.
///
/// One of these lives per session and app, so it is kept compact: the user's id, email, name
/// and comma-joined roles in one string; the identity header lines are rendered from them
/// when a connection starts relaying for the session (`write_lines`).
pub struct AppAccess {
    text: Box<str>,
    /// Where the id, the email and the name end in `text`.
    ends: [u32; 3],
    pub seat: SeatKind,
    /// Holds one of the app's `allow_roles`.
    pub admitted: bool,
    /// The signed assertion and its expiry, while held (see `KeptAssertions`).
    assertion: Mutex<Option<Box<(i64, HeaderValue)>>>,
    seat_confirmed_at: Stamp,
    overage_audited_at: Stamp,
}

impl std::fmt::Debug for AppAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAccess")
            .field("user_id", &self.user_id())
            .field("roles", &self.roles_text())
            .field("seat", &self.seat)
            .field("admitted", &self.admitted)
            .finish_non_exhaustive()
    }
}

pub enum Decision {
    Allow(Arc<AppAccess>),
    Deny {
        reason: DenyReason,
        access: Arc<AppAccess>,
    },
    SeatsFull {
        frees_at: i64,
        licensed: u32,
    },
}

impl AppAccess {
    async fn build(core: &Core, idx: usize, user_id: &str) -> Result<Option<AppAccess>, AppError> {
        let app = &core.config.apps[idx];
        let Some(user) = core.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        if !UserStatus::is_active(&user.status) {
            return Ok(None);
        }
        let grants = core.store.grants_of(user_id).await?;
        let rights = directory::rights(Grants::of_user(&grants), app);
        Ok(Some(AppAccess::new(
            [&user.id, &user.email, &user.name, &rights.roles.join(",")],
            rights.seat,
            rights.admitted,
        )))
    }

    fn new(values: [&str; 4], seat: SeatKind, admitted: bool) -> AppAccess {
        let mut text = String::with_capacity(values.iter().map(|v| v.len()).sum());
        let mut ends = [0; 3];
        for (i, v) in values.iter().enumerate() {
            text.push_str(v);
            if i < 3 {
                ends[i] = text.len() as u32;
            }
        }
        AppAccess {
            text: text.into_boxed_str(),
            ends,
            seat,
            admitted,
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
    /// Effective roles for this app, comma-joined.
    pub fn roles_text(&self) -> &str {
        self.part(3)
    }
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles_text().split(',').filter(|r| !r.is_empty())
    }
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().any(|r| r == role)
    }

    /// The identity headers except the assertion, as they go on the wire
    /// (`name: value\r\n` each), appended to `out`.
    pub fn write_lines(&self, names: &IdentityNames, out: &mut Vec<u8>) {
        for (name, value) in names.identity().into_iter().zip(self.identity()) {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            put_encoded(out, value);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The identity headers except the assertion (for the hyper path and forward-auth).
    pub fn headers(&self, names: &IdentityNames) -> [(HeaderName, HeaderValue); 5] {
        let (names, values) = (names.identity(), self.identity());
        std::array::from_fn(|i| (names[i].clone(), encode_value(values[i])))
    }

    /// The identity header values, in the order of `IdentityNames::identity`: user id, email,
    /// name, roles, seat.
    fn identity(&self) -> [&str; 5] {
        [
            self.user_id(),
            self.email(),
            self.name(),
            self.roles_text(),
            self.seat.as_str(),
        ]
    }

    /// The signed assertion header value, re-signed only near expiry (or when it was dropped
    /// to keep the number held in memory bounded, see `KeptAssertions`).
    pub fn assertion(
        self: &Arc<Self>,
        core: &Core,
        app: &AppConfig,
        session: &Session,
    ) -> HeaderValue {
        let now = store::now();
        let mut slot = self.assertion.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = slot.as_deref()
            && held.0 - now > ASSERTION_RENEW
        {
            return held.1.clone();
        }
        let claims = serde_json::json!({
            "iss": core.config.server.public_url.as_str().trim_end_matches('/'),
            "aud": app.id,
            "sub": self.user_id(),
            "email": self.email(),
            "name": self.name(),
            "roles": self.roles().collect::<Vec<_>>(),
            "org": serde_json::Value::Null,
            "seat": self.seat.as_str(),
            "sid": session.id,
            "amr": session.amr(),
            "iat": now,
            "exp": now + ASSERTION_TTL,
        });
        let v = HeaderValue::from_str(&core.signer.sign(&claims)).expect("JWS is ASCII");
        let fresh = slot.is_none();
        *slot = Some(Box::new((now + ASSERTION_TTL, v.clone())));
        drop(slot);
        if fresh {
            core.proxy.kept_assertions.keep(self);
        }
        v
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

    fn keep(&self, access: &Arc<AppAccess>) {
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

/// The session's access to app `idx`, built on first use and kept with the session.
pub async fn access_for(
    core: &Core,
    session: &Session,
    idx: usize,
) -> Result<Option<Arc<AppAccess>>, AppError> {
    if let Some((_, a)) = session
        .apps
        .lock()
        .expect("apps lock")
        .iter()
        .find(|(i, _)| *i == idx)
    {
        return Ok(Some(a.clone()));
    }
    let Some(access) = AppAccess::build(core, idx, &session.user_id.to_string()).await? else {
        return Ok(None);
    };
    let access = Arc::new(access);
    let mut apps = session.apps.lock().expect("apps lock");
    if let Some((_, a)) = apps.iter().find(|(i, _)| *i == idx) {
        return Ok(Some(a.clone()));
    }
    apps.push((idx, access.clone()));
    Ok(Some(access))
}

/// The access decision for one request of a signed-in session.
pub async fn decide(
    core: &Core,
    session: &Session,
    idx: usize,
    path: &str,
) -> Result<Option<Decision>, AppError> {
    let Some(access) = access_for(core, session, idx).await? else {
        return Ok(None);
    };
    Ok(Some(match judge(core, &access, idx, path).await? {
        Verdict::Allow => Decision::Allow(access),
        Verdict::Deny(reason) => Decision::Deny { reason, access },
        Verdict::SeatsFull { frees_at, licensed } => Decision::SeatsFull { frees_at, licensed },
    }))
}

/// The decision for a request, once the session's access to the app is known.
pub enum Verdict {
    Allow,
    Deny(DenyReason),
    SeatsFull { frees_at: i64, licensed: u32 },
}

/// Roles, per-path rules, back-office paths (`directory::path_refusal`) and seats, for one
/// request. Runs per request (`AppAccess` is built once per session and app) and allocates
/// nothing, unless the path has a loose reading of its own to make.
pub async fn judge(
    core: &Core,
    access: &AppAccess,
    idx: usize,
    path: &str,
) -> Result<Verdict, AppError> {
    let app = &core.config.apps[idx];
    if !access.admitted {
        return Ok(Verdict::Deny(DenyReason::NoRole));
    }
    // `path` is canonical (`proxy::target`); the rules also read it loosely (see
    // `directory::Readings`). No rules, nothing to read: the loose reading is borrowed unless
    // the path has something to fold.
    let loose = (!app.rules.is_empty()).then(|| super::target::loose(path));
    let readings = Readings {
        canonical: path,
        loose: loose.as_deref(),
    };
    let has_role = |r: &str| access.has_role(r);
    if let Some(reason) = directory::path_refusal(&app.rules, readings, has_role, access.seat) {
        return Ok(Verdict::Deny(reason));
    }
    if let (Some(licensed), SeatKind::Modify) = (app.modify_seats, access.seat) {
        let now = store::now();
        // Re-confirmed well within the idle timeout, so a seat that lapsed in the database
        // (and went to someone else) is never kept alive from this cache.
        let refresh = SEAT_REFRESH.min(app.seat_idle_timeout.as_secs() as i64 / 2);
        if now - access.seat_confirmed_at.get() >= refresh {
            let grant = core
                .store
                .take_seat(
                    &app.id,
                    access.user_id(),
                    licensed as i64,
                    app.seat_overflow == SeatOverflow::Admit,
                    now,
                    app.seat_idle_timeout.as_secs() as i64,
                )
                .await?;
            match grant {
                SeatGrant::Held => access.seat_confirmed_at.set(now),
                SeatGrant::Over { in_use } => {
                    access.seat_confirmed_at.set(now);
                    if now - access.overage_audited_at.replace(now) > 3600 {
                        audit::record(
                            &core.store,
                            audit::Event {
                                action: "seat.overage",
                                outcome: "success",
                                actor: &Actor::user(access.user_id(), access.email()),
                                target: &app.id,
                                target_user_id: Some(access.user_id()),
                                ip: "",
                                details: serde_json::json!({ "in_use": in_use, "licensed": licensed }),
                            },
                        )
                        .await;
                    }
                }
                SeatGrant::Full { frees_at } => {
                    return Ok(Verdict::SeatsFull { frees_at, licensed });
                }
            }
        }
    }
    Ok(Verdict::Allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding_an_assertion() -> Arc<AppAccess> {
        let a = AppAccess::new(["u", "u@example.com", "U", "a,b"], SeatKind::Limited, true);
        *a.assertion.lock().unwrap() = Some(Box::new((i64::MAX, HeaderValue::from_static("jws"))));
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
    }

    #[test]
    fn wire_lines_say_what_the_headers_say() {
        let names = IdentityNames::new(&crate::config::app::preset("oauth2-proxy").unwrap());
        let a = AppAccess::new(
            ["u-1", "zoë@example.com", "Zoë 100%", "admin,modify"],
            SeatKind::Modify,
            true,
        );
        let mut lines = Vec::new();
        a.write_lines(&names, &mut lines);
        let mut expected = Vec::new();
        for (n, v) in a.headers(&names) {
            expected.extend_from_slice(format!("{}: ", n.as_str()).as_bytes());
            expected.extend_from_slice(v.as_bytes());
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(
            String::from_utf8(lines).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert_eq!(
            encode_value("Zoë 100%").to_str().unwrap(),
            "Zo%C3%AB 100%25"
        );
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
