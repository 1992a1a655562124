//! `[password_policy]` and `[password_hashing]`.

use super::reader::Section;

#[derive(Debug, Clone)]
pub struct PasswordPolicyConfig {
    pub min_length: usize,
    pub max_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub reject_common: bool,
}

#[derive(Debug, Clone)]
pub struct PasswordHashingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait, so sign-in bursts never take every core.
    pub max_concurrent: usize,
}

pub(super) fn read_policy(s: &Section) -> PasswordPolicyConfig {
    let p = PasswordPolicyConfig {
        min_length: s.int("min_length", 12, 8, 128) as usize,
        max_length: s.int("max_length", 128, 64, 4096) as usize,
        require_uppercase: s.bool("require_uppercase", true),
        require_lowercase: s.bool("require_lowercase", true),
        require_digit: s.bool("require_digit", true),
        require_symbol: s.bool("require_symbol", false),
        reject_common: s.bool("reject_common", true),
    };
    if p.min_length > p.max_length {
        s.problem("min_length", "must not exceed password_policy.max_length");
    }
    s.finish();
    p
}

pub(super) fn read_hashing(s: &Section) -> PasswordHashingConfig {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let p = PasswordHashingConfig {
        memory_kib: s.int("memory_kib", 19456, 8 * 1024, 4 * 1024 * 1024) as u32,
        iterations: s.int("iterations", 2, 1, 100) as u32,
        parallelism: s.int("parallelism", 1, 1, 64) as u32,
        max_concurrent: s.int(
            "max_concurrent",
            cores.saturating_sub(1).max(1) as u64,
            1,
            1024,
        ) as usize,
    };
    s.finish();
    p
}
