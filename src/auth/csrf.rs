//! CSRF protection for every form: a signed double-submit token. A random value lives in an
//! HttpOnly cookie; the form carries HMAC(key, value ‖ session cookie). A cross-site page can
//! neither read the cookie nor forge the tag, and a cookie planted from a sibling subdomain
//! fails the HMAC. The tag is also bound to the session the page was rendered for (when there
//! is one): a cookie and tag pair an attacker got for their own session, and planted in a
//! victim's browser, does not sign the victim's forms (OWASP: the signed double-submit cookie
//! is tied to the session).

use crate::core::AppState;
use crate::crypto::{self, Keys};
use crate::error::AppError;
use crate::web::cookies::{self, CookieSpec};
use crate::web::extract::Form;
use axum::extract::FromRequest;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

pub struct Csrf {
    pub cookie_name: String,
    /// The session cookie the tag is bound to.
    session_cookie: String,
}

/// What the tag signs: the CSRF cookie's value, then the session cookie's (empty without one).
fn signed(value: &str, session: Option<&str>) -> Vec<u8> {
    let session = session.unwrap_or("");
    let mut data = Vec::with_capacity(value.len() + 1 + session.len());
    data.extend_from_slice(value.as_bytes());
    data.push(0);
    data.extend_from_slice(session.as_bytes());
    data
}

impl Csrf {
    pub fn new(https: bool, session_cookie: &str) -> Csrf {
        Csrf {
            session_cookie: session_cookie.to_string(),
            cookie_name: if https {
                "__Host-gatehouse_csrf".into()
            } else {
                "gatehouse_csrf".into()
            },
        }
    }

    /// The token for a form on this response, and the cookie to set if the browser has none.
    pub fn token(
        &self,
        keys: &Keys,
        headers: &HeaderMap,
        spec: &CookieSpec,
    ) -> (String, Option<String>) {
        let session = cookies::get(headers, &self.session_cookie);
        match cookies::get(headers, &self.cookie_name).filter(|v| v.len() == 43) {
            Some(v) => (keys.csrf_tag(&signed(v, session)), None),
            None => {
                let v = crypto::random_token();
                let spec = CookieSpec {
                    secure: spec.secure,
                    domain: None,
                };
                (
                    keys.csrf_tag(&signed(&v, session)),
                    Some(cookies::set(&self.cookie_name, &v, &spec)),
                )
            }
        }
    }

    pub fn verify(&self, keys: &Keys, headers: &HeaderMap, form_token: &str) -> bool {
        match cookies::get(headers, &self.cookie_name) {
            Some(v) if v.len() == 43 && !form_token.is_empty() => keys.csrf_verify(
                &signed(v, cookies::get(headers, &self.session_cookie)),
                form_token,
            ),
            _ => false,
        }
    }
}

/// A form that carries the CSRF tag the page was rendered with (a `csrf` field).
pub trait CsrfToken {
    fn csrf_token(&self) -> &str;
}

/// A form body whose CSRF tag has been checked: the extractor reads the form through
/// [`crate::web::extract::Form`] (a form it cannot read is a `400`) and refuses with
/// [`AppError::Csrf`] before the handler runs, so a handler that takes one cannot forget the
/// check.
pub struct CsrfForm<T>(pub T);

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfToken,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, core: &AppState) -> Result<Self, AppError> {
        let headers = req.headers().clone();
        let Form(f) = Form::<T>::from_request(req, core).await?;
        super::check_csrf(core, &headers, f.csrf_token())?;
        Ok(CsrfForm(f))
    }
}
