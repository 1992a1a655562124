//! A real SMTP server for the mail tests: `aiosmtpd` (PyPI), pinned with hashes in
//! `tests/peers/smtp/requirements.txt` and installed by the tests themselves (`pyvenv`). Messages land in a Maildir the
//! test reads. Missing Python (`python3` with `venv`) fails the test, saying what to install.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUIREMENTS: &str = include_str!("../peers/smtp/requirements.txt");

/// The virtual environment's Python, installing it first if needed.
fn python() -> PathBuf {
    crate::pyvenv::python("smtp", REQUIREMENTS, "mail (aiosmtpd)")
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
