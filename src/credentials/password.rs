//! argon2id hashing, off the async runtime and with bounded concurrency: a burst of sign-ins
//! queues for a few hashing slots instead of occupying every core, so proxied traffic and
//! health checks keep being served (the `[password_hashing] max_concurrent` setting).

use crate::config::PasswordHashingConfig;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

pub struct Passwords {
    params: Params,
    slots: Arc<Semaphore>,
    /// Verified against when the account does not exist, so that an unknown address costs
    /// the same time as a wrong password (no account enumeration by timing).
    dummy_hash: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Correct; `rehash` is true when the stored hash uses other parameters than configured.
    Yes {
        rehash: bool,
    },
    No,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

impl Passwords {
    pub fn new(cfg: &PasswordHashingConfig) -> Result<Passwords, HashError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|_| HashError)?;
        let dummy_hash = argon(&params)
            .hash_password(crate::crypto::random_token().as_bytes())
            .map_err(|_| HashError)?
            .to_string();
        Ok(Passwords {
            params,
            slots: Arc::new(Semaphore::new(cfg.max_concurrent)),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let params = self.params.clone();
        let _slot = self.slots.acquire().await.map_err(|_| HashError)?;
        tokio::task::spawn_blocking(move || {
            argon(&params)
                .hash_password(&password)
                .map(|h| h.to_string())
                .map_err(|_| HashError)
        })
        .await
        .map_err(|_| HashError)?
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is none.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Verified {
        let known = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_string();
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let params = self.params.clone();
        let Ok(_slot) = self.slots.acquire().await else {
            return Verified::No;
        };
        let result = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verified::No;
            };
            if argon(&params).verify_password(&password, &parsed).is_err() {
                return Verified::No;
            }
            let current = Params::try_from(&parsed).ok();
            let rehash = parsed.algorithm.as_str() != "argon2id"
                || current.is_none_or(|p| {
                    p.m_cost() != params.m_cost()
                        || p.t_cost() != params.t_cost()
                        || p.p_cost() != params.p_cost()
                });
            Verified::Yes { rehash }
        })
        .await
        .unwrap_or(Verified::No);
        if known { result } else { Verified::No }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(m: u32) -> PasswordHashingConfig {
        PasswordHashingConfig {
            memory_kib: m,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    #[tokio::test]
    async fn hash_verify_and_rehash_on_parameter_change() {
        let p = Passwords::new(&cfg(8192)).unwrap();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(
            p.verify("correct horse", Some(&h)).await,
            Verified::Yes { rehash: false }
        );
        assert_eq!(p.verify("wrong", Some(&h)).await, Verified::No);
        assert_eq!(p.verify("anything", None).await, Verified::No);
        let stronger = Passwords::new(&cfg(9216)).unwrap();
        assert_eq!(
            stronger.verify("correct horse", Some(&h)).await,
            Verified::Yes { rehash: true }
        );
    }
}
