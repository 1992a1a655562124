//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step) and single-use recovery codes.

use crate::crypto;
use totp_rs::{Algorithm, Secret as TotpSecret, Totp};

pub const RECOVERY_CODES: usize = 10;

/// A new 160-bit secret (RFC 4226 §4 recommends 160 bits), as base32.
pub fn new_secret() -> String {
    TotpSecret::from(crypto::random_bytes::<20>().to_vec()).to_base32()
}

fn build(secret_b32: &str, issuer: &str, account: &str) -> Option<Totp> {
    let secret = TotpSecret::try_from_base32(secret_b32).ok()?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .ok()
}

/// The `otpauth://totp/...` key URI an authenticator app scans.
pub fn otpauth_uri(secret_b32: &str, issuer: &str, account: &str) -> Option<String> {
    build(secret_b32, issuer, account)?.to_url().ok()
}

/// The key URI as an SVG QR code.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// The time step a code matches (within ±1 step of `now`), if any. Spending the step (so the
/// code cannot be used twice) is the caller's job, done atomically in the store.
pub fn matching_step(secret_b32: &str, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    build(secret_b32, "x", "x")?.check(code, now)
}

/// Ten recovery codes like `k7pq-2mzx-c4rt`, shown once; only their hashes are kept.
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = crypto::random_bytes::<12>();
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12])
        })
        .collect()
}

/// Recovery codes are compared without case, spaces or dashes, as people type them.
pub fn recovery_code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crypto::sha256_hex(format!("recovery:{normal}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_the_neighbours_only() {
        let s = new_secret();
        let t = build(&s, "Gatehouse", "a@b.c").unwrap();
        let now = 1_700_000_000u64;
        let code = t.generate(now).to_string();
        assert_eq!(matching_step(&s, &code, now), Some(now / 30));
        assert!(matching_step(&s, &code, now + 30).is_some());
        assert!(matching_step(&s, &code, now + 95).is_none());
        assert!(matching_step(&s, "12345", now).is_none());
        let uri = otpauth_uri(&s, "Gatehouse", "a@b.c").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Gatehouse:a%40b.c?"),
            "{uri}"
        );
        assert!(qr_svg(&uri).unwrap().contains("<svg"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        assert_eq!(
            recovery_code_hash(&codes[0]),
            recovery_code_hash(&codes[0].to_uppercase().replace('-', " "))
        );
    }
}
