//! `[secrets]`: the master key.

use super::reader::Section;
use super::secret::Secret;
use base64::Engine;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum MasterKey {
    Loaded(Secret<Vec<u8>>),
    /// `master_key_file` names a file that does not exist yet and `create_if_missing = true`:
    /// `serve` and `migrate` create it (dev convenience), `check-config` only reports it.
    CreateAt(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SecretsConfig {
    pub master_key: MasterKey,
}

/// Base64 (standard or URL-safe, padded or not) of at least 32 random bytes.
pub fn decode_master_key(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
        .filter(|k| k.len() >= 32)
}

pub(super) fn read_secrets(s: &Section) -> SecretsConfig {
    const HINT: &str = "must be at least 32 random bytes, base64-encoded (generate one with `gatehouse master-key`)";
    let create = s.bool("create_if_missing", false);
    let file = s
        .table_has("master_key_file")
        .then(|| s.opt_string("master_key_file"))
        .flatten();
    let master_key = match &file {
        Some(path) if create && !Path::new(path).exists() => {
            // still let `secret` check that only one source is given
            let _ = s.opt_string("master_key");
            let _ = s.opt_string("master_key_env");
            MasterKey::CreateAt(PathBuf::from(path))
        }
        _ => match s.secret("master_key") {
            Some(v) => match decode_master_key(v.expose()) {
                Some(k) => MasterKey::Loaded(Secret::new(k)),
                None => {
                    s.problem("master_key", HINT);
                    MasterKey::Loaded(Secret::new(vec![0; 32]))
                }
            },
            None => {
                // Said once: a variable that is not set, or a file that cannot be read, was
                // reported already; offline, a source given is all that is checked.
                let given = s.table_has("master_key_env") || s.table_has("master_key_file");
                let said_or_offline = s.reported("master_key") || (s.offline() && given);
                if !said_or_offline {
                    s.problem(
                        "master_key",
                        "required: set master_key_env (e.g. \"GATEHOUSE_MASTER_KEY\") or master_key_file",
                    );
                }
                MasterKey::Loaded(Secret::new(vec![0; 32]))
            }
        },
    };
    s.finish();
    SecretsConfig { master_key }
}
