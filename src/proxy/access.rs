//! Where access to an app is decided for a session: the rules of `directory` (roles, admission,
//! the app's organization checks, per-path rules, back-office paths) applied to the user's
//! grants and their organization's, and the modify-seat meter
//! (a database row lock, so it lives here).
//! Also prepares, once per session and app, who the user is and the signed assertion (and, once
//! per connection, the identity header lines), so the hot path only copies prepared bytes.

use super::Proxy;
use crate::audit::{self, Actor};
use crate::config::app::{AppConfig, SeatOverflow};
use crate::directory::{self, DenyReason, Holdings, Readings, SeatKind, UserStatus};
use crate::error::AppError;
use crate::session::{AppAccess, Session};
use crate::store::{self, SeatGrant};
use axum::http::HeaderValue;
use std::sync::Arc;

/// Assertions live 5 minutes (SPEC) and are re-signed when less than a minute is left.
const ASSERTION_TTL: i64 = 300;
const ASSERTION_RENEW: i64 = 60;
/// A held seat is confirmed in the database at most this often per session and app (more often
/// when `seat_idle_timeout` is under two minutes: every half of it).
const SEAT_REFRESH: i64 = 60;

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

/// The user's access to app `idx`, from their grants and their organization's, with the
/// app's organization checks decided here, once (`None` for a user gone or not active).
async fn build(proxy: &Proxy, idx: usize, user_id: &str) -> Result<Option<AppAccess>, AppError> {
    let app = &proxy.config.apps[idx];
    let Some(user) = proxy.store.user_by_id(user_id).await? else {
        return Ok(None);
    };
    if !UserStatus::is_active(&user.status) {
        return Ok(None);
    }
    let held = Holdings::from_rows(
        proxy
            .store
            .holdings(user_id, user.org_id.as_deref())
            .await?,
    );
    let slug = held.org().map(|o| o.slug.as_str());
    let rights = directory::rights(held.grants(), app, slug);
    Ok(Some(AppAccess::new(
        [
            &user.id,
            &user.email,
            &user.name,
            slug.unwrap_or(""),
            &rights.roles.join(","),
        ],
        rights.seat,
        rights.refusal,
    )))
}

/// The signed assertion header value for `access`, re-signed only near expiry (or when it was
/// dropped to keep the number held in memory bounded, see `session::KeptAssertions`).
pub fn assertion(
    proxy: &Proxy,
    access: &Arc<AppAccess>,
    app: &AppConfig,
    session: &Session,
) -> HeaderValue {
    let now = store::now();
    if let Some(held) = access.held_assertion(now, ASSERTION_RENEW) {
        return held;
    }
    let claims = serde_json::json!({
        "iss": proxy.config.server.public_url.as_str().trim_end_matches('/'),
        "aud": app.id,
        "sub": access.user_id(),
        "email": access.email(),
        "name": access.name(),
        "roles": access.roles().collect::<Vec<_>>(),
        "org": access.org(),
        "seat": access.seat.as_str(),
        "sid": session.id,
        "amr": session.amr(),
        "iat": now,
        "exp": now + ASSERTION_TTL,
    });
    let v = HeaderValue::from_str(&proxy.signer.sign(&claims)).expect("JWS is ASCII");
    if access.hold_assertion(now + ASSERTION_TTL, v.clone()) {
        proxy.kept_assertions.keep(access);
    }
    v
}

/// The session's access to app `idx`, built on first use and kept with the session.
pub async fn access_for(
    proxy: &Proxy,
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
    let Some(access) = build(proxy, idx, &session.user_id.to_string()).await? else {
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
    proxy: &Proxy,
    session: &Session,
    idx: usize,
    path: &str,
) -> Result<Option<Decision>, AppError> {
    let Some(access) = access_for(proxy, session, idx).await? else {
        return Ok(None);
    };
    Ok(Some(match judge(proxy, &access, idx, path).await? {
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
    proxy: &Proxy,
    access: &AppAccess,
    idx: usize,
    path: &str,
) -> Result<Verdict, AppError> {
    let app = &proxy.config.apps[idx];
    if let Some(reason) = access.refusal {
        return Ok(Verdict::Deny(reason));
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
            let grant = proxy
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
                            &proxy.store,
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
