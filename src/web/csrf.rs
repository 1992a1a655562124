//! CSRF tokens for every form (checked before a handler runs by `auth::CsrfForm`): a signed double-submit token. A random value lives in an
//! HttpOnly cookie; the form carries HMAC(key, value ‖ session cookie). A cross-site page can
//! neither read the cookie nor forge the tag, and a cookie planted from a sibling subdomain
//! fails the HMAC. The tag is also bound to the session the page was rendered for (when there
//! is one): a cookie and tag pair an attacker got for their own session, and planted in a
//! victim's browser, does not sign the victim's forms (OWASP: the signed double-submit cookie
//! is tied to the session).

use super::cookies::{self, CookieSpec};
use crate::crypto::{self, Keys};
use axum::http::HeaderMap;

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
