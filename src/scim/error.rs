//! SCIM errors in the shape RFC 7644 §3.12 prescribes: `{"schemas": [Error URN], "status":
//! "400", "scimType": "invalidFilter", "detail": "…"}`, served as `application/scim+json`.
//! The detail names what is wrong; a private cause (a database error) only reaches the log.

use super::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    /// RFC 7644 §3.12 Table 9 (`invalidFilter`, `uniqueness`, `invalidValue`, …).
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

pub type ScimResult<T> = Result<T, ScimError>;

impl ScimError {
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> ScimError {
        ScimError {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }
    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError::bad("invalidValue", detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> ScimError {
        ScimError::bad("invalidFilter", detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> ScimError {
        ScimError::bad("invalidPath", detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
        ScimError::bad("invalidSyntax", detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> ScimError {
        ScimError {
            status: StatusCode::CONFLICT,
            scim_type: Some("uniqueness"),
            detail: detail.into(),
        }
    }
    /// A refusal that is not about uniqueness (the last full access administrator, say).
    pub fn conflict(detail: impl Into<String>) -> ScimError {
        ScimError {
            status: StatusCode::CONFLICT,
            scim_type: None,
            detail: detail.into(),
        }
    }
    pub fn not_found(what: &str) -> ScimError {
        ScimError {
            status: StatusCode::NOT_FOUND,
            scim_type: None,
            detail: format!("{what} not found"),
        }
    }
    pub fn unauthorized() -> ScimError {
        ScimError {
            status: StatusCode::UNAUTHORIZED,
            scim_type: None,
            detail: "a valid bearer token is required (Authorization: Bearer <the provider's scim_token>)".into(),
        }
    }
    pub fn status(status: StatusCode, detail: impl Into<String>) -> ScimError {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }
    /// Something failed on our side: the cause is logged, the client told nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> ScimError {
        tracing::error!(error = %cause, "scim request failed");
        ScimError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            scim_type: None,
            detail: "the request could not be completed; try again in a moment".into(),
        }
    }
}

impl From<crate::store::StoreError> for ScimError {
    fn from(e: crate::store::StoreError) -> ScimError {
        ScimError::internal(e)
    }
}

impl From<crate::admin::ops::OpError> for ScimError {
    fn from(e: crate::admin::ops::OpError) -> ScimError {
        use crate::admin::ops::OpError;
        match e {
            OpError::Conflict(m) => ScimError::conflict(m),
            OpError::Invalid(m) => ScimError::invalid_value(m),
            OpError::NoUser(_) => ScimError::not_found("User"),
            OpError::Store(e) => ScimError::internal(e),
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = t.into();
        }
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        r
    }
}
