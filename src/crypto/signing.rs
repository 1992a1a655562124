//! ES256 signing keys (RFC 7518 §3.4) for assertions and, later, ID tokens. Private keys are
//! stored sealed under the master key and shared by every instance through the database; the
//! public halves are published as a JWK set.

use super::{Keys, b64, sha256_hex};
use crate::store::{self, SigningKeyRow, Store};
use ring::signature::{self, EcdsaKeyPair, KeyPair};

pub struct SigningKey {
    pub kid: String,
    pair: EcdsaKeyPair,
    /// `{"alg":"ES256","typ":"JWT","kid":…}`, base64url, ready to prefix a token.
    header_b64: String,
}

pub struct Signer {
    current: SigningKey,
    jwks: serde_json::Value,
}

fn rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}

fn public_jwk(kid: &str, pair: &EcdsaKeyPair) -> serde_json::Value {
    // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
    let p = pair.public_key().as_ref();
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64(&p[1..33]), "y": b64(&p[33..65]),
    })
}

fn load(keys: &Keys, row: &SigningKeyRow) -> Option<SigningKey> {
    let pkcs8 = keys
        .unseal(&format!("signing-key:{}", row.kid), &row.private_sealed)
        .ok()?;
    let pair =
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng())
            .ok()?;
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": row.kid });
    Some(SigningKey {
        kid: row.kid.clone(),
        pair,
        header_b64: b64(header.to_string().as_bytes()),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error(
        "signing key {0} cannot be decrypted with this master key: start with the master key this database was created with ([secrets] master_key_env / master_key_file)"
    )]
    Unsealable(String),
    #[error("key generation failed")]
    Generate,
}

impl Signer {
    /// Loads the newest key, creating one on first start (instances racing at first start each
    /// insert theirs; all then use the newest, and every key stays in the JWK set).
    pub async fn load_or_create(store: &Store, keys: &Keys) -> Result<Signer, SigningError> {
        let mut rows = store.signing_keys().await?;
        if rows.is_empty() {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng())
                    .map_err(|_| SigningError::Generate)?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng(),
            )
            .map_err(|_| SigningError::Generate)?;
            let kid = sha256_hex(pair.public_key().as_ref())[..16].to_string();
            store
                .insert_signing_key(&SigningKeyRow {
                    kid: kid.clone(),
                    alg: "ES256".into(),
                    private_sealed: keys.seal(&format!("signing-key:{kid}"), pkcs8.as_ref()),
                    public_jwk: public_jwk(&kid, &pair).to_string(),
                    created_at: store::now(),
                })
                .await?;
            rows = store.signing_keys().await?;
        }
        let newest = rows.first().ok_or(SigningError::Generate)?;
        let current =
            load(keys, newest).ok_or_else(|| SigningError::Unsealable(newest.kid.clone()))?;
        let jwks: Vec<serde_json::Value> = rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
            .collect();
        Ok(Signer {
            current,
            jwks: serde_json::json!({ "keys": jwks }),
        })
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn kid(&self) -> &str {
        &self.current.kid
    }

    /// A compact JWS (RFC 7515 §7.1) of `claims`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut token = String::with_capacity(512);
        token.push_str(&self.current.header_b64);
        token.push('.');
        token.push_str(&b64(claims.to_string().as_bytes()));
        let sig = self
            .current
            .pair
            .sign(&rng(), token.as_bytes())
            .expect("ECDSA signing does not fail");
        token.push('.');
        token.push_str(&b64(sig.as_ref()));
        token
    }
}
