//! The CSRF check as an extractor: a form handler that takes a [`CsrfForm`] cannot run on a
//! forged request (the token itself: `web::csrf`).

use crate::core::AppState;
use crate::error::AppError;
use crate::web::extract::Form;
use axum::extract::{FromRef, FromRequest};
use serde::de::DeserializeOwned;

/// A form that carries the CSRF tag the page was rendered with (a `csrf` field).
pub trait CsrfToken {
    fn csrf_token(&self) -> &str;
}

/// A form body whose CSRF tag has been checked: the extractor reads the form through
/// [`crate::web::extract::Form`] (a form it cannot read is a `400`) and refuses with
/// [`AppError::Csrf`] before the handler runs, so a handler that takes one cannot forget the
/// check.
pub struct CsrfForm<T>(pub T);

impl<T, S> FromRequest<S> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfToken,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        let headers = req.headers().clone();
        let Form(f) = Form::<T>::from_request(req, state).await?;
        super::check_csrf(&AppState::from_ref(state), &headers, f.csrf_token())?;
        Ok(CsrfForm(f))
    }
}
