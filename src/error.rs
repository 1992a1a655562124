//! One error vocabulary for everything the gateway answers itself: a public kind and message
//! the client sees, a private cause only the log sees, and one renderer per body format (an
//! HTML page for browsers, JSON for everyone else; SCIM and OAuth bodies join here when those
//! endpoints come) — so no library error text, and no unescaped message, ever reaches a
//! client. Handlers return `AppError` (an HTML page) or `Json<AppError>`'s [`ApiError`].

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input; the message (public) says what is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No (valid) credentials: no session, an expired one, a missing or unknown token.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Known caller, not allowed; the message says what is missing.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("the form expired or did not come from this site")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// The request clashes with what exists; the message names the clash.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many attempts; try again after this many seconds.
    #[error("rate limited ({retry_after}s)")]
    RateLimited { retry_after: u64 },
    /// An upstream (identity provider, app) failed; the cause goes to the log only.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// Something on our side failed; the cause goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The title and message a client may see; a private cause is logged here instead.
    fn public(&self) -> (&'static str, std::borrow::Cow<'_, str>) {
        match self {
            AppError::BadRequest(m) => ("Bad request", m.into()),
            AppError::Unauthorized(m) => ("Sign-in required", m.into()),
            AppError::Forbidden(m) => ("Access denied", m.into()),
            AppError::Csrf => (
                "Form expired",
                "The form expired or did not come from this site. Go back, reload the page and try again.".into(),
            ),
            AppError::NotFound => ("Not found", "There is nothing here.".into()),
            AppError::Conflict(m) => ("Conflict", m.into()),
            AppError::RateLimited { retry_after } => (
                "Too many attempts",
                format!("Too many attempts. Try again in {retry_after} seconds.").into(),
            ),
            AppError::Upstream(cause) => {
                tracing::warn!(error = %cause, "upstream error");
                (
                    "Upstream unavailable",
                    "A service this request depends on did not answer properly. Try again in a moment.".into(),
                )
            }
            AppError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                (
                    "Something went wrong",
                    "The request could not be completed. Try again in a moment.".into(),
                )
            }
        }
    }

    /// The error as a browser (`wants_html`: an HTML page) or an API client (JSON) reads it.
    pub fn respond(self, wants_html: bool) -> Response<Body> {
        let status = self.status();
        let (title, message) = self.public();
        let mut r = if wants_html {
            page(status, title, &message)
        } else {
            json(status, &message)
        };
        if let AppError::RateLimited { retry_after } = self {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        r
    }
}

/// An [`AppError`] answered as JSON, for API endpoints (`Result<_, ApiError>`; `?` converts).
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> ApiError {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.respond(false)
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// The error page's look: the sign-in pages' card, readable at a phone's width.
const ERROR_STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
     header{max-width:26rem;margin:2rem auto .75rem;padding:0 2.25rem;font-weight:700;color:#1f5ed6}\
     main{max-width:26rem;margin:0 auto 3rem;background:#fff;padding:2rem 2.25rem;border-radius:10px;\
     box-shadow:0 2px 10px rgba(0,0,0,.08);overflow-wrap:anywhere}h1{font-size:1.35rem;margin-top:0}\
     @media (max-width:30rem){header{margin:1.25rem .5rem .6rem;padding:0 1.25rem}\
     main{margin:0 .5rem 2rem;padding:1.5rem 1.25rem}}";

/// An error page: `title`, then `message` (both escaped here), then a way back to sign-in.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    let esc = |s: &str| minijinja::HtmlEscape(s).to_string();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Gatehouse</title><style>{ERROR_STYLE}</style></head>\
         <body><header>Gatehouse</header><main><h1>{}</h1><p>{}</p><p><a href=\"/login\">Back to sign-in</a></p></main></body></html>",
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

/// A handler's error is an HTML page (the gateway's own pages); see [`ApiError`] for JSON.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.respond(true)
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

    #[tokio::test]
    async fn every_kind_has_its_status_and_private_causes_stay_private() {
        let cases = [
            (AppError::BadRequest("x".into()), 400),
            (AppError::Unauthorized("x".into()), 401),
            (AppError::Forbidden("x".into()), 403),
            (AppError::Csrf, 403),
            (AppError::NotFound, 404),
            (AppError::Conflict("x".into()), 409),
            (AppError::RateLimited { retry_after: 7 }, 429),
            (
                AppError::Upstream("token endpoint said secret=s3cr3t".into()),
                502,
            ),
            (AppError::Internal("secret=s3cr3t".into()), 500),
        ];
        for (e, status) in cases {
            let limited = matches!(e, AppError::RateLimited { .. });
            let r = ApiError(e).into_response();
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
            if limited {
                assert_eq!(r.headers()[header::RETRY_AFTER], "7");
            }
            let body = text(r).await;
            assert!(!body.contains("s3cr3t"), "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}
