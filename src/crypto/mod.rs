//! Random tokens, hashing of bearer secrets, and at-rest encryption under the master key.
//!
//! Everything uses `ring`, the one crypto provider of the build (rustls and reqwest use it too).

pub mod signing;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::{aead, digest, hkdf, hmac, rand::SecureRandom};

static RNG: std::sync::LazyLock<ring::rand::SystemRandom> =
    std::sync::LazyLock::new(ring::rand::SystemRandom::new);

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    RNG.fill(&mut b).expect("the OS random source failed");
    b
}

/// 256 random bits, URL-safe base64: session cookies, setup links, API tokens.
pub fn random_token() -> String {
    B64.encode(random_bytes::<32>())
}

/// SHA-256 as lowercase hex. Bearer secrets (session ids, tokens, recovery codes) are stored only
/// as this hash: they carry 128+ bits of entropy, so a slow hash adds nothing, and a database
/// leak yields no usable cookie.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// A SHA-256 digest back from its hex form (`sha256_hex`).
pub fn digest_from_hex(h: &str) -> Option<[u8; 32]> {
    let h = h.as_bytes();
    if h.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in h.chunks(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

/// Keys derived from the master key, one per purpose (HKDF-SHA256, RFC 5869), so that no two
/// uses ever share key material.
pub struct Keys {
    seal: aead::LessSafeKey,
    csrf: hmac::Key,
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(master: &[u8], label: &[u8]) -> [u8; 32] {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"gatehouse/v1");
    let prk = salt.extract(master);
    let info = [label];
    let okm = prk
        .expand(&info, Len(32))
        .expect("32 bytes is a valid HKDF length");
    let mut out = [0u8; 32];
    okm.fill(&mut out).expect("length matches");
    out
}

#[derive(Debug, thiserror::Error)]
#[error("stored secret cannot be decrypted (wrong master key or corrupted data)")]
pub struct UnsealError;

impl Keys {
    pub fn new(master: &[u8]) -> Keys {
        let seal = aead::UnboundKey::new(&aead::AES_256_GCM, &derive(master, b"seal"))
            .expect("32-byte AES key");
        Keys {
            seal: aead::LessSafeKey::new(seal),
            csrf: hmac::Key::new(hmac::HMAC_SHA256, &derive(master, b"csrf")),
        }
    }

    /// AES-256-GCM with a random nonce; `context` (e.g. "totp:<user id>") is authenticated, so a
    /// ciphertext copied to another row does not decrypt.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes::<12>();
        let mut buf = plaintext.to_vec();
        self.seal
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce_bytes),
                aead::Aad::from(context.as_bytes()),
                &mut buf,
            )
            .expect("sealing cannot fail for in-memory data");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}", B64.encode(out))
    }

    pub fn unseal(&self, context: &str, sealed: &str) -> Result<Vec<u8>, UnsealError> {
        let data = sealed
            .strip_prefix("v1.")
            .and_then(|s| B64.decode(s).ok())
            .ok_or(UnsealError)?;
        if data.len() < 12 + 16 {
            return Err(UnsealError);
        }
        let (nonce, rest) = data.split_at(12);
        let mut buf = rest.to_vec();
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError)?;
        let plain = self
            .seal
            .open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| UnsealError)?;
        Ok(plain.to_vec())
    }

    pub fn csrf_tag(&self, data: &[u8]) -> String {
        B64.encode(hmac::sign(&self.csrf, data).as_ref())
    }

    pub fn csrf_verify(&self, data: &[u8], tag: &str) -> bool {
        match B64.decode(tag) {
            Ok(t) => hmac::verify(&self.csrf, data, &t).is_ok(),
            Err(_) => false,
        }
    }
}

/// Constant-time comparison for secrets of equal public length.
/// The differences of all bytes, eight at a time, are OR-ed together without a branch, and
/// only that one word is compared (with `subtle`): the proxy compares a session cookie per
/// request.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    if a.len() != b.len() {
        return false;
    }
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().expect("chunks of eight"));
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail =
        (wa.remainder().iter().zip(wb.remainder())).fold(0u64, |d, (x, y)| d | u64::from(x ^ y));
    let diff = wa.zip(wb).fold(tail, |d, (x, y)| d | (word(x) ^ word(y)));
    diff.ct_eq(&0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_context_binding() {
        let k = Keys::new(&[7u8; 32]);
        let s = k.seal("totp:a", b"secret");
        assert_eq!(k.unseal("totp:a", &s).unwrap(), b"secret");
        assert!(k.unseal("totp:b", &s).is_err());
        assert!(Keys::new(&[8u8; 32]).unseal("totp:a", &s).is_err());
        assert!(k.unseal("totp:a", "v1.AAAA").is_err());
    }

    #[test]
    fn constant_time_comparison_sees_every_byte() {
        for len in [0, 1, 7, 8, 9, 16, 43] {
            let a: Vec<u8> = (0..len as u8).collect();
            assert!(ct_eq(&a, &a.clone()), "{len}");
            for i in 0..len {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!ct_eq(&a, &b), "{len} bytes, differing at {i}");
            }
            assert!(!ct_eq(&a, &[a.as_slice(), b"x"].concat()));
        }
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
