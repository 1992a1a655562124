//! argon2id hashing, off the async runtime and with bounded concurrency and memory: a burst
//! of sign-ins queues for a few hashing threads (`[password_hashing] max_concurrent`) instead
//! of occupying every core, so proxied traffic and health checks keep being served. Each of
//! those threads keeps its own argon2 memory (`memory_kib`, 19 MiB by default) and reuses it
//! for every hash, so a storm of sign-ins costs `max_concurrent` blocks of memory, not one
//! freshly allocated block per attempt left behind in some allocator arena.

use crate::config::PasswordHashingConfig;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// Length of the hash in a PHC string we write (argon2's default).
const HASH_LEN: usize = 32;
/// Salt length (the PHC string format's recommendation).
const SALT_LEN: usize = 16;

enum Job {
    Hash {
        password: Zeroizing<Vec<u8>>,
        reply: oneshot::Sender<Result<String, HashError>>,
    },
    Verify {
        password: Zeroizing<Vec<u8>>,
        stored: String,
        reply: oneshot::Sender<Verified>,
    },
}

pub struct Passwords {
    params: Params,
    /// The hashing threads' queue (first come, first served).
    jobs: Mutex<mpsc::Sender<Job>>,
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

/// One hashing thread: takes jobs until the queue closes, always in the same memory.
fn worker(params: Params, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_in(&params, &password, &mut memory));
            }
            Job::Verify {
                password,
                stored,
                reply,
            } => {
                let _ = reply.send(verify_in(&params, &password, &stored, &mut memory));
            }
        }
    }
}

/// `memory` grown (never shrunk) to the blocks `params` needs.
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    &mut memory[..n]
}

/// A new argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
fn hash_in(params: &Params, password: &[u8], memory: &mut Vec<Block>) -> Result<String, HashError> {
    let salt = crate::crypto::random_bytes::<SALT_LEN>();
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    argon(params)
        .hash_password_into_with_memory(password, &salt, &mut out[..], blocks(memory, params))
        .map_err(|_| HashError)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        B64.encode(salt),
        B64.encode(&out[..])
    ))
}

/// Checks `password` against a stored PHC string: argon2id v19 hashes (every hash we write) in
/// this thread's memory, anything else through the crate's own verifier.
fn verify_in(params: &Params, password: &[u8], stored: &str, memory: &mut Vec<Block>) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    let Ok(theirs) = Params::try_from(&parsed) else {
        return Verified::No;
    };
    let ok = match (&parsed.salt, &parsed.hash) {
        (Some(salt), Some(expected))
            if parsed.algorithm.as_str() == "argon2id"
                && parsed.version.is_none_or(|v| v == 0x13)
                && (4..=64).contains(&expected.len()) =>
        {
            let mut out = Zeroizing::new(vec![0u8; expected.len()]);
            let with_len = Params::new(
                theirs.m_cost(),
                theirs.t_cost(),
                theirs.p_cost(),
                Some(expected.len()),
            );
            with_len.is_ok_and(|p| {
                argon(&p)
                    .hash_password_into_with_memory(
                        password,
                        salt.as_ref(),
                        &mut out[..],
                        blocks(memory, &p),
                    )
                    .is_ok()
                    && subtle::ConstantTimeEq::ct_eq(&out[..], expected.as_bytes()).into()
            })
        }
        _ => argon(params).verify_password(password, &parsed).is_ok(),
    };
    if !ok {
        return Verified::No;
    }
    let rehash = parsed.algorithm.as_str() != "argon2id"
        || theirs.m_cost() != params.m_cost()
        || theirs.t_cost() != params.t_cost()
        || theirs.p_cost() != params.p_cost();
    Verified::Yes { rehash }
}

impl Passwords {
    /// Starts `max_concurrent` hashing threads.
    pub fn new(cfg: &PasswordHashingConfig) -> Result<Passwords, HashError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|_| HashError)?;
        let dummy_hash = argon(&params)
            .hash_password(crate::crypto::random_token().as_bytes())
            .map_err(|_| HashError)?
            .to_string();
        let (tx, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cfg.max_concurrent.max(1) {
            let (params, rx) = (params.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("gatehouse-argon2-{i}"))
                .spawn(move || worker(params, rx))
                .map_err(|_| HashError)?;
        }
        Ok(Passwords {
            params,
            jobs: Mutex::new(tx),
            dummy_hash,
        })
    }

    fn submit(&self, job: Job) -> bool {
        self.jobs
            .lock()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let (reply, result) = oneshot::channel();
        let password = Zeroizing::new(password.as_bytes().to_vec());
        if !self.submit(Job::Hash { password, reply }) {
            return Err(HashError);
        }
        result.await.unwrap_or(Err(HashError))
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is none.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Verified {
        let known = stored.is_some();
        let (reply, result) = oneshot::channel();
        let job = Job::Verify {
            password: Zeroizing::new(password.as_bytes().to_vec()),
            stored: stored.unwrap_or(&self.dummy_hash).to_string(),
            reply,
        };
        if !self.submit(job) {
            return Verified::No;
        }
        let verified = result.await.unwrap_or(Verified::No);
        if known { verified } else { Verified::No }
    }

    /// The configured parameters (for tests and the benchmark).
    pub fn params(&self) -> &Params {
        &self.params
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

    #[tokio::test]
    async fn pooled_hashes_are_standard_argon2id_both_ways() {
        let p = Passwords::new(&cfg(8192)).unwrap();
        // Ours, checked by the argon2 crate's own verifier.
        let ours = p.hash("zoë's pass").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon(p.params())
                .verify_password(b"zoe's pass", &parsed)
                .is_err()
        );
        assert!(
            argon(p.params())
                .verify_password("zoë's pass".as_bytes(), &parsed)
                .is_ok()
        );
        // The crate's (as stored before the pool existed, other parameters), checked by ours.
        let params = Params::new(8192, 2, 1, None).unwrap();
        let theirs = argon(&params)
            .hash_password(b"older password")
            .unwrap()
            .to_string();
        assert_eq!(
            p.verify("older password", Some(&theirs)).await,
            Verified::Yes { rehash: true }
        );
        assert_eq!(
            p.verify("older passwore", Some(&theirs)).await,
            Verified::No
        );
        // argon2i and a tampered hash.
        let i = Argon2::new(Algorithm::Argon2i, Version::V0x13, p.params().clone())
            .hash_password(b"legacy")
            .unwrap()
            .to_string();
        assert_eq!(
            p.verify("legacy", Some(&i)).await,
            Verified::Yes { rehash: true }
        );
        // One character of the hash changed (a full 6 bits of it, not trailing padding bits).
        let mut tampered: Vec<char> = ours.chars().collect();
        let at = tampered.len() - 10;
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert_eq!(p.verify("zoë's pass", Some(&tampered)).await, Verified::No);
        assert_eq!(
            p.verify("zoë's pass", Some("not a hash")).await,
            Verified::No
        );
    }
}
