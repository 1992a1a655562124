//! The signature of a provider's JWT (an ID token, a logout token), checked with `ring`
//! against the keys the provider publishes. Only asymmetric algorithms are accepted — RS*,
//! PS*, ES256, ES384, EdDSA: never `none`, never an HMAC (which anyone holding the public key
//! could "sign" with) — and only with a key of that algorithm's type and, when the header names
//! one, that `kid`. Nothing else of the header is trusted; the claims are checked by the caller.
//! (ring's P-256 verification costs a fraction of the portable implementation's.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::Value;

/// The algorithms a signature may use, with the key type each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs(u16),
    Ps(u16),
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs(256),
            "RS384" => Alg::Rs(384),
            "RS512" => Alg::Rs(512),
            "PS256" => Alg::Ps(256),
            "PS384" => Alg::Ps(384),
            "PS512" => Alg::Ps(512),
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (`04 || x || y`).
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Key {
    kid: Option<String>,
    material: Material,
}

/// The usable signing keys of a JWKS document.
#[derive(Debug, Clone, Default)]
pub struct Keys(Vec<Key>);

fn bytes(v: &Value, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(v.get(name)?.as_str()?.trim_end_matches('='))
        .ok()
}

fn point(x: Vec<u8>, y: Vec<u8>, len: usize) -> Option<Vec<u8>> {
    (x.len() == len && y.len() == len).then(|| [&[4u8][..], &x, &y].concat())
}

impl Keys {
    /// The keys of a JWK set fit for signatures (`use` absent or `sig`); others are skipped.
    /// `None`: not a JWK set (no `keys` array).
    pub fn from_jwks(jwks: &Value) -> Option<Keys> {
        let list = jwks.get("keys").and_then(Value::as_array)?;
        let keys = list
            .iter()
            .filter(|k| k.get("use").is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let material = match (
                    k.get("kty")?.as_str()?,
                    k.get("crv").and_then(Value::as_str),
                ) {
                    ("RSA", _) => {
                        let mut n = bytes(k, "n")?;
                        while n.first() == Some(&0) {
                            n.remove(0);
                        }
                        Material::Rsa {
                            n,
                            e: bytes(k, "e")?,
                        }
                    }
                    ("EC", Some("P-256")) => {
                        Material::P256(point(bytes(k, "x")?, bytes(k, "y")?, 32)?)
                    }
                    ("EC", Some("P-384")) => {
                        Material::P384(point(bytes(k, "x")?, bytes(k, "y")?, 48)?)
                    }
                    ("OKP", Some("Ed25519")) => Material::Ed25519(bytes(k, "x")?),
                    _ => return None,
                };
                Some(Key {
                    kid: k.get("kid").and_then(Value::as_str).map(str::to_string),
                    material,
                })
            })
            .collect();
        Some(Keys(keys))
    }

    /// Whether a usable key has this id (an unknown one makes the caller read the set again).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.0.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Checks the signature of the compact JWS `token` (see the module). `Err` names why:
    /// `malformed`, `algorithm` (not one of the allowed), `signature` (no key verifies it).
    pub fn verify(&self, token: &str) -> Result<(), &'static str> {
        let mut parts = token.splitn(3, '.');
        let (Some(head), Some(body), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("malformed");
        };
        if sig.contains('.') {
            return Err("malformed");
        }
        let header: Value = URL_SAFE_NO_PAD
            .decode(head)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or("malformed")?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::parse)
            .ok_or("algorithm")?;
        let kid = header.get("kid").and_then(Value::as_str);
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| "malformed")?;
        let signed = &token.as_bytes()[..head.len() + 1 + body.len()];
        let ok = self
            .0
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .any(|k| check(alg, &k.material, signed, &sig));
        if ok { Ok(()) } else { Err("signature") }
    }
}

fn check(alg: Alg, key: &Material, signed: &[u8], sig: &[u8]) -> bool {
    let ec = |algorithm: &'static dyn VerificationAlgorithm, point: &[u8]| {
        UnparsedPublicKey::new(algorithm, point)
            .verify(signed, sig)
            .is_ok()
    };
    match (alg, key) {
        (Alg::Rs(bits), Material::Rsa { n, e }) => {
            let params = match bits {
                256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, signed, sig)
                .is_ok()
        }
        (Alg::Ps(bits), Material::Rsa { n, e }) => {
            let params = match bits {
                256 => &signature::RSA_PSS_2048_8192_SHA256,
                384 => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, signed, sig)
                .is_ok()
        }
        (Alg::Es256, Material::P256(p)) => ec(&signature::ECDSA_P256_SHA256_FIXED, p),
        (Alg::Es384, Material::P384(p)) => ec(&signature::ECDSA_P384_SHA384_FIXED, p),
        (Alg::EdDsa, Material::Ed25519(x)) => ec(&signature::ED25519, x),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn es256_key() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let p = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])});
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    #[test]
    fn only_a_published_key_of_an_allowed_algorithm_verifies() {
        let (pair, jwk) = es256_key();
        let keys = Keys::from_jwks(&json!({ "keys": [jwk.clone()] })).unwrap();
        let good = sign(
            &pair,
            json!({"alg": "ES256", "kid": "k1"}),
            json!({"sub": "a"}),
        );
        assert_eq!(keys.verify(&good), Ok(()));
        // No kid: any key of the type may verify.
        let no_kid = sign(&pair, json!({"alg": "ES256"}), json!({"sub": "a"}));
        assert_eq!(keys.verify(&no_kid), Ok(()));
        // Another kid than the key's: not verified by it.
        let other = sign(
            &pair,
            json!({"alg": "ES256", "kid": "k2"}),
            json!({"sub": "a"}),
        );
        assert_eq!(keys.verify(&other), Err("signature"));
        // The payload changed after signing.
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(json!({"sub": "b"}).to_string()),
            parts[2]
        );
        assert_eq!(keys.verify(&tampered), Err("signature"));
        // `none`, HMAC (keyed with the public JWK), an algorithm the key does not fit.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            parts[1]
        );
        assert_eq!(keys.verify(&none), Err("algorithm"));
        let hs = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwk.to_string().as_bytes()),
            b"x",
        );
        let hs = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "k1"}).to_string()),
            parts[1],
            URL_SAFE_NO_PAD.encode(hs.as_ref())
        );
        assert_eq!(keys.verify(&hs), Err("algorithm"));
        let rs = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "k1"}).to_string()),
            parts[1],
            parts[2]
        );
        assert_eq!(keys.verify(&rs), Err("signature"));
        // An encryption key is not a signing key.
        let mut enc = jwk;
        enc["use"] = json!("enc");
        assert_eq!(
            Keys::from_jwks(&json!({ "keys": [enc] }))
                .unwrap()
                .verify(&good),
            Err("signature")
        );
        for junk in ["", "a", "a.b", "a.b.c.d", "!!.??.##"] {
            assert!(keys.verify(junk).is_err(), "{junk}");
        }
    }
}
