//! Python test peers (PyPI packages nobody here wrote), each installed by the tests
//! themselves, once per machine and requirements file, into a private virtual environment
//! under the cargo target directory, from a committed requirements file that pins every
//! package with its hashes (`--require-hashes --no-deps`: exactly those files). A file lock
//! keeps parallel tests from installing twice. Missing Python (`python3` with `venv`) fails
//! the test, saying what to install — it never skips.

use std::path::PathBuf;
use std::process::Command;

/// The cargo target directory this test binary was built in (`…/target/debug/deps/it-…`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target directory above the test binary")
        .to_path_buf()
}

/// The Python of the virtual environment `name` holding `requirements`, installed first if
/// needed; `peer` names what it is for in failure messages.
pub fn python(name: &str, requirements: &str, peer: &str) -> PathBuf {
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        requirements.hash(&mut h);
        h.finish()
    };
    let root = target_dir().join("test-peers");
    std::fs::create_dir_all(&root).unwrap();
    let venv = root.join(format!("{name}-{hash:016x}"));
    let python = venv.join("bin/python");
    let lock = std::fs::File::create(root.join(format!("{name}.lock"))).unwrap();
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    if venv.join("ready").exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let need = format!("the {peer} tests need python3 with venv (Debian: python3-venv)");
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| panic!("{need}: {e}"));
    assert!(
        made.status.success(),
        "{need}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let req = venv.join("requirements.txt");
    std::fs::write(&req, requirements).unwrap();
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
        "installing the {peer} test peer failed: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(venv.join("ready"), "").unwrap();
    python
}
