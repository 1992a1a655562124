//! One error type for handlers: a public kind the client sees, a private cause only the log sees.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form expired or did not come from this site")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Gatehouse</title></head>\
         <body><main><h1>{title}</h1><p>{message}</p><p><a href=\"/login\">Back to sign-in</a></p></main></body></html>"
    );
    (status, Html(body)).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest(m) => page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                &minijinja::HtmlEscape(&m).to_string(),
            ),
            AppError::Csrf => page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form expired or did not come from this site. Go back, reload the page and try again.",
            ),
            AppError::NotFound => {
                page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
            }
            AppError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The request could not be completed. Try again in a moment.",
                )
            }
        }
    }
}
