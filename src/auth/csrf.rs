//! CSRF protection for every form: a signed double-submit token. A random value lives in an
//! HttpOnly cookie; the form carries HMAC(key, value). A cross-site page can neither read the
//! cookie nor forge the tag, and a cookie planted from a sibling subdomain fails the HMAC.

use crate::crypto::{self, Keys};
use crate::web::cookies::{self, CookieSpec};
use axum::http::HeaderMap;

pub struct Csrf {
    pub cookie_name: String,
}

impl Csrf {
    pub fn new(https: bool) -> Csrf {
        Csrf {
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
        match cookies::get(headers, &self.cookie_name).filter(|v| v.len() == 43) {
            Some(v) => (keys.csrf_tag(v.as_bytes()), None),
            None => {
                let v = crypto::random_token();
                let spec = CookieSpec {
                    secure: spec.secure,
                    domain: None,
                };
                (
                    keys.csrf_tag(v.as_bytes()),
                    Some(cookies::set(&self.cookie_name, &v, &spec)),
                )
            }
        }
    }

    pub fn verify(&self, keys: &Keys, headers: &HeaderMap, form_token: &str) -> bool {
        match cookies::get(headers, &self.cookie_name) {
            Some(v) if v.len() == 43 && !form_token.is_empty() => {
                keys.csrf_verify(v.as_bytes(), form_token)
            }
            _ => false,
        }
    }
}
