//! One error vocabulary for everything the gateway answers itself: a public kind and message
//! the client sees, a private cause only the log sees, and one renderer per body format (an
//! HTML page for browsers, JSON for everyone else) — so no library error text, and no
//! unescaped message, ever reaches a client.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input; the message (public) says what is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form expired or did not come from this site")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// Something on our side failed; the cause goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// An error page: `title`, then `message` (both escaped here), then a way back to sign-in.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    let esc = |s: &str| minijinja::HtmlEscape(s).to_string();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Gatehouse</title></head>\
         <body><main><h1>{}</h1><p>{}</p><p><a href=\"/login\">Back to sign-in</a></p></main></body></html>",
        esc(title),
        esc(title),
        esc(message)
    );
    with_type(status, body, "text/html; charset=utf-8")
}

/// A JSON error body: `{"error": <the status's reason>, "message": …}`, never cached.
pub fn json(status: StatusCode, message: &str) -> Response<Body> {
    json_body(
        status,
        serde_json::json!({
            "error": status.canonical_reason().unwrap_or("error"),
            "message": message,
        }),
    )
}

/// A JSON body of the gateway's own (errors with more fields, such as a `login_url`).
pub fn json_body(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    with_type(status, body.to_string(), "application/json")
}

/// An error as a browser (`wants_html`) or an API client reads it.
pub fn render(status: StatusCode, wants_html: bool, message: &str) -> Response<Body> {
    if wants_html {
        page(
            status,
            status.canonical_reason().unwrap_or("Error"),
            message,
        )
    } else {
        json(status, message)
    }
}

fn with_type(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest(m) => page(StatusCode::BAD_REQUEST, "Bad request", &m),
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(r: Response<Body>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn messages_are_escaped_and_causes_stay_in_the_log() {
        let r = render(StatusCode::FORBIDDEN, true, "<script>x</script> & co");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = text(r).await;
        assert!(
            body.contains("&lt;script&gt;x&lt;&#x2f;script&gt; &amp; co"),
            "{body}"
        );
        let r = render(StatusCode::FORBIDDEN, false, "no \"access\"");
        let v: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "Forbidden", "message": "no \"access\""})
        );
        let r = AppError::Internal("database password=hunter2 refused".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!text(r).await.contains("hunter2"));
    }
}
