//! `Form` and `Query` whose rejections speak the gateway's error vocabulary: a bad form or
//! query string gets a `400` page saying so, never the deserializer's own text (which names
//! types and internals), and the detail goes to the log.

use crate::error::AppError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A form body (`application/x-www-form-urlencoded`).
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(v)) => Ok(Form(v)),
            Err(e) => {
                tracing::debug!(error = %e, "form refused");
                Err(AppError::BadRequest(
                    "The form could not be read: a field is missing or malformed. Reload the page and try again.".into(),
                ))
            }
        }
    }
}

/// A query string.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => {
                tracing::debug!(error = %e, "query refused");
                Err(AppError::BadRequest(
                    "The link's parameters could not be read.".into(),
                ))
            }
        }
    }
}
