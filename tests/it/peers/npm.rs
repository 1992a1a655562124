//! Installing a peer that is a committed Node.js script over npm packages (`tests/peers/<folder>`:
//! `package.json`, `package-lock.json`, `.npmrc` and the script), shared by every such peer.
//!
//! [`install`] runs `npm ci` once per machine and lockfile, into
//! `$CARGO_TARGET_TMPDIR/peers/<folder>-<lockfile hash>/`, under a file lock so that parallel
//! test processes do not install twice; afterwards no test needs the registry. Without Node.js
//! ≥ 20 or npm every test that needs the peer fails with what to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::unique;

/// Oldest Node.js the pinned packages support.
pub const NODE_MAJOR_MIN: u32 = 20;

/// A peer under `tests/peers/<folder>`.
pub struct NpmPeer {
    /// The folder under `tests/peers/`.
    pub folder: &'static str,
    /// What the peer is, for messages ("the OpenID provider peer").
    pub title: &'static str,
    /// The script Node.js runs, in that folder.
    pub script: &'static str,
}

pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl NpmPeer {
    fn source(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers")
            .join(self.folder)
    }

    /// What to tell someone whose machine lacks a tool the peer needs.
    pub fn install_hint(&self, what: &str) -> String {
        format!(
            "{} (tests/peers/{}) needs {what}: install Node.js {NODE_MAJOR_MIN} \
             or later with npm (both on PATH), then run the tests again; they install the peer's \
             npm packages themselves",
            self.title, self.folder
        )
    }

    /// `program --version`, or why it cannot be run.
    pub fn tool_version(&self, program: &str) -> Result<String, String> {
        let out = Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.install_hint(&format!("`{program}`, which cannot be run ({e})")))?;
        if !out.status.success() {
            return Err(self.install_hint(&format!(
                "a working `{program}` (`{program} --version` exited with {})",
                out.status
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Node.js at `program`, at least version [`NODE_MAJOR_MIN`].
    pub fn check_node(&self, program: &str) -> Result<(), String> {
        self.node_new_enough(program, &self.tool_version(program)?)
    }

    /// `version` (what `program --version` printed) is Node.js [`NODE_MAJOR_MIN`] or later.
    pub fn node_new_enough(&self, program: &str, version: &str) -> Result<(), String> {
        let major = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| {
                self.install_hint(&format!("Node.js; `{program} --version` said {version:?}"))
            })?;
        if major < NODE_MAJOR_MIN {
            return Err(self.install_hint(&format!(
                "Node.js {NODE_MAJOR_MIN} or later, and `{program}` is {version}"
            )));
        }
        Ok(())
    }

    /// Installs the peer's packages (once per lockfile) and copies its script beside them.
    pub fn install(&self) -> Result<Installed, String> {
        self.check_node("node")?;
        let source = self.source();
        let folder = self.folder;
        let read = |name: &str| {
            std::fs::read(source.join(name))
                .map_err(|e| format!("tests/peers/{folder}/{name}: {e}"))
        };
        let lock = read("package-lock.json")?;
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers");
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let key = &sha256_hex(&lock)[..16];
        let dir = root.join(format!("{folder}-{key}"));
        let guard = std::fs::File::create(root.join(format!("{folder}-{key}.lock")))
            .map_err(|e| format!("peer install lock: {e}"))?;
        // Held until `guard` drops: one installer at a time; the others then find it done.
        guard
            .lock()
            .map_err(|e| format!("peer install lock: {e}"))?;
        let done = dir.join(".installed");
        if !done.exists() {
            self.tool_version("npm")?;
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for name in ["package.json", "package-lock.json", ".npmrc"] {
                std::fs::write(dir.join(name), read(name)?)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let out = Command::new("npm")
                .args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--loglevel=error",
                ])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| self.install_hint(&format!("npm, which cannot be run ({e})")))?;
            if !out.status.success() {
                return Err(format!(
                    "`npm ci` for {} failed ({}) in {}:\n{}{}",
                    self.title,
                    out.status,
                    dir.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::write(&done, key).map_err(|e| format!("{}: {e}", done.display()))?;
        }
        let script = read(self.script)?;
        let stem = self.script.trim_end_matches(".mjs");
        let path = dir.join(format!("{stem}-{}.mjs", &sha256_hex(&script)[..16]));
        if !path.exists() {
            let tmp = dir.join(unique(&format!("{stem}-tmp-")));
            std::fs::write(&tmp, &script).map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(Installed { dir, script: path })
    }
}

/// An installed peer.
pub struct Installed {
    /// Holds `node_modules` (and the lockfile it was installed from).
    pub dir: PathBuf,
    /// The script, copied beside `node_modules` (so that Node.js resolves the packages from it)
    /// under a name taken from its content: an edited script runs at once without a reinstall,
    /// and no test process sees another's half-written copy.
    pub script: PathBuf,
}
