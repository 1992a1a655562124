//! A real SMTP server for the mail tests: `aiosmtpd` (PyPI), pinned with hashes in
//! `tests/peers/smtp/requirements.txt` and installed by the tests themselves, once per machine
//! and requirements file, into a private virtual environment under the cargo target directory
//! (a file lock keeps parallel tests from installing twice). Messages land in a Maildir the
//! test reads. Missing Python (`python3` with `venv`) fails the test, saying what to install.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUIREMENTS: &str = include_str!("../peers/smtp/requirements.txt");

/// The cargo target directory this test binary was built in (`…/target/debug/deps/it-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target directory above the test binary")
        .to_path_buf()
}

/// The virtual environment's Python, installing it first if needed.
fn python() -> PathBuf {
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        REQUIREMENTS.hash(&mut h);
        h.finish()
    };
    let root = target_dir().join("test-peers");
    std::fs::create_dir_all(&root).unwrap();
    let venv = root.join(format!("smtp-{hash:016x}"));
    let python = venv.join("bin/python");
    let lock = std::fs::File::create(root.join("smtp.lock")).unwrap();
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    if venv.join("ready").exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| {
            panic!("the mail tests need python3 with venv (Debian: python3-venv): {e}")
        });
    assert!(
        made.status.success(),
        "the mail tests need python3 with venv (Debian: python3-venv): {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let req = venv.join("requirements.txt");
    std::fs::write(&req, REQUIREMENTS).unwrap();
    let pip = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "-r",
        ])
        .arg(&req)
        .output()
        .unwrap();
    assert!(
        pip.status.success(),
        "installing the SMTP test peer (aiosmtpd) failed: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(venv.join("ready"), "").unwrap();
    python
}

/// `aiosmtpd` listening on 127.0.0.1:`port`, storing what it receives in a Maildir.
pub struct SmtpPeer {
    child: Child,
    pub maildir: PathBuf,
}

impl SmtpPeer {
    pub fn start(port: u16, maildir: &Path) -> SmtpPeer {
        let python = python();
        let mut child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("aiosmtpd exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpPeer {
            child,
            maildir: maildir.to_path_buf(),
        }
    }

    /// Every message received so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// Waits up to `within` for `n` messages.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
