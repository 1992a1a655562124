//! Who a request must come from, checked before the handler runs, so a handler that takes
//! one of these cannot forget the check:
//! - [`Require<R>`]: a fully signed-in person who meets `R` (today [`FullAdmin`], for the
//!   admin API and console): `401` without such a session, `403` for someone who lacks `R`;
//! - [`At<M>`]: a session at one of the sign-in steps `M` allows (second factor, enrolment,
//!   password change); anyone else is sent to sign-in, keeping the query's `rd`.

use super::{session_at, to_login};
use crate::core::AppState;
use crate::directory::{FullAdmin, Grants};
use crate::error::AppError;
use crate::session::{Session, Stage};
use crate::store::UserRow;
use crate::web::extract::Query;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::marker::PhantomData;
use std::sync::Arc;

/// Something a signed-in person may be required to be.
pub trait Requirement: Sized + Send {
    /// What a refusal says is missing.
    const MISSING: &'static str;
    fn check(user: &UserRow, grants: Grants<'_>) -> Option<Self>;
}

impl Requirement for FullAdmin {
    const MISSING: &'static str = "This needs a full access administrator.";

    fn check(user: &UserRow, grants: Grants<'_>) -> Option<FullAdmin> {
        FullAdmin::check(&user.id, &user.status, grants)
    }
}

/// A fully signed-in person who meets `R`, with the proof, the session and the user.
pub struct Require<R> {
    pub proof: R,
    pub session: Arc<Session>,
    pub user: UserRow,
}

impl<S, R> FromRequestParts<S> for Require<R>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    R: Requirement,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let core = AppState::from_ref(state);
        let Some((session, user)) = session_at(&core, &parts.headers, &[Stage::Active]).await?
        else {
            return Err(AppError::Unauthorized("Sign in first.".into()));
        };
        let held = core
            .store
            .holdings(&user.id, user.org_id.as_deref())
            .await?;
        let held = crate::directory::Holdings::from_rows(held);
        match R::check(&user, held.grants()) {
            Some(proof) => Ok(Require {
                proof,
                session,
                user,
            }),
            None => Err(AppError::Forbidden(R::MISSING.into())),
        }
    }
}

/// The sign-in steps a page serves.
pub trait Steps: Send {
    const STAGES: &'static [Stage];
}

/// The second-factor page: only a session waiting for its code.
pub struct SecondFactor;
impl Steps for SecondFactor {
    const STAGES: &'static [Stage] = &[Stage::Mfa];
}

/// The enrolment page: a session that must enrol, or a signed-in person who chooses to.
pub struct Enrolment;
impl Steps for Enrolment {
    const STAGES: &'static [Stage] = &[Stage::MfaEnroll, Stage::Active];
}

/// The password change page: a session that must change it, or a signed-in person.
pub struct PasswordChange;
impl Steps for PasswordChange {
    const STAGES: &'static [Stage] = &[Stage::PasswordChange, Stage::Active];
}

/// A session at one of the steps of `M`, and its user (active).
pub struct At<M> {
    pub session: Arc<Session>,
    pub user: UserRow,
    steps: PhantomData<M>,
}

#[derive(Deserialize, Default)]
struct Rd {
    #[serde(default)]
    rd: String,
}

/// Anyone not at the page's step goes to sign-in, to come back to the same `rd`.
pub struct ToSignIn(Response);

impl IntoResponse for ToSignIn {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<S, M> FromRequestParts<S> for At<M>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    M: Steps,
{
    type Rejection = ToSignIn;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ToSignIn> {
        let core = AppState::from_ref(state);
        match session_at(&core, &parts.headers, M::STAGES).await {
            Ok(Some((session, user))) => Ok(At {
                session,
                user,
                steps: PhantomData,
            }),
            Ok(None) => {
                let rd = Query::<Rd>::from_request_parts(parts, state)
                    .await
                    .map(|Query(q)| q.rd)
                    .unwrap_or_default();
                Err(ToSignIn(to_login(&rd)))
            }
            Err(e) => Err(ToSignIn(e.into_response())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::NewSession;
    use crate::store::NewUser;
    use axum::http::{Request, StatusCode, header};

    async fn core() -> (AppState, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("gatehouse-require-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "[database]\nurl = \"sqlite://{}/t.db\"\n[secrets]\nmaster_key = \"dGVzdC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE=\"\n",
            dir.display()
        );
        let config = crate::config::Config::from_toml(
            &text,
            std::path::Path::new("test.toml"),
            std::iter::empty(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (crate::core::Core::open(config).await.unwrap(), dir)
    }

    /// A person with `grants`, and the cookie of a session of theirs at `stage`.
    async fn person(core: &AppState, email: &str, grants: &[(&str, &str)], stage: Stage) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let now = crate::store::now();
        core.store
            .insert_user(
                &NewUser {
                    id: &id,
                    email,
                    email_normalized: email,
                    name: email,
                    status: "active",
                    password_hash: None,
                    password_must_change: false,
                },
                now,
            )
            .await
            .unwrap();
        for (role, app) in grants {
            core.store.grant(&id, role, app, now).await.unwrap();
        }
        let (token, _) = core
            .sessions
            .create(
                &core.store,
                NewSession {
                    user_id: &id,
                    stage,
                    amr: &["pwd".to_string()],
                    ip: "127.0.0.1",
                    user_agent: "test",
                    parent: None,
                    upstream: None,
                },
            )
            .await
            .unwrap();
        format!("{}={token}", core.config.session_cookie_name())
    }

    async fn admin_only(Require { user, .. }: Require<FullAdmin>) -> String {
        user.email
    }

    async fn second_factor(At { user, .. }: At<SecondFactor>) -> String {
        user.email
    }

    async fn call(core: &AppState, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
        let router = axum::Router::new()
            .route("/admin-only", axum::routing::get(admin_only))
            .route("/mfa-step", axum::routing::get(second_factor))
            .with_state(core.clone());
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let r = tower::ServiceExt::oneshot(router, req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let location = r
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap();
        let body = String::from_utf8(body.to_bytes().to_vec()).unwrap();
        (status, location.unwrap_or(body))
    }

    #[tokio::test]
    async fn require_full_admin_refuses_strangers_and_everyone_short_of_it() {
        let (core, dir) = core().await;
        let admin = person(&core, "root@example.com", &[("admin", "*")], Stage::Active).await;
        let app_admin = person(&core, "crm@example.com", &[("admin", "crm")], Stage::Active).await;
        let halfway = person(&core, "half@example.com", &[("admin", "*")], Stage::Mfa).await;

        assert_eq!(
            call(&core, "/admin-only", Some(&admin)).await,
            (StatusCode::OK, "root@example.com".into())
        );
        assert_eq!(
            call(&core, "/admin-only", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&core, "/admin-only", Some("gatehouse_session=forged"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        // Not yet through the second factor: not signed in, whatever the grants.
        assert_eq!(
            call(&core, "/admin-only", Some(&halfway)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = call(&core, "/admin-only", Some(&app_admin)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("full access administrator"), "{body}");

        // The sign-in step extractor: only the step's sessions pass; others go to sign-in
        // with their `rd`.
        assert_eq!(
            call(&core, "/mfa-step", Some(&halfway)).await,
            (StatusCode::OK, "half@example.com".into())
        );
        let (status, location) = call(&core, "/mfa-step?rd=%2Fwhoami%2F", Some(&admin)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, "/login?rd=%2Fwhoami%2F");
        core.store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
