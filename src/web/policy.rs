//! The content security policy of the gateway's own pages: nothing may load but their inline
//! styles, `data:` images (the TOTP QR code), the configured logo's origin, and the one inline
//! script of the pages ([`super::templates::MFA_SCRIPT`]), allowed by its SHA-256 (CSP Level 3
//! §8.4 hash-source) so that no other script, injected or not, runs.

use crate::config::Config;
use axum::http::HeaderValue;
use base64::Engine;

/// `'sha256-…'` of a script's exact text.
pub fn script_hash(script: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

pub fn page_policy(config: &Config) -> HeaderValue {
    let logo = config
        .branding
        .logo
        .as_ref()
        .map(|l| format!(" {}", l.csp_source()))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:{logo}; script-src {}; \
         frame-ancestors 'none'; base-uri 'none'",
        script_hash(super::templates::MFA_SCRIPT)
    );
    // A logo source is an origin or 'self' (checked when the config was read): valid here.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    })
}
