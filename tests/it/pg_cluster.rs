//! A private PostgreSQL server for the tests that must restart one (the machine's shared
//! server cannot be restarted under the other tests): `initdb` into a fresh folder, `pg_ctl`
//! on a free loopback port, trust authentication, removed at the end. It needs PostgreSQL's
//! server programs (Debian: `postgresql`); without them the test fails saying so. Run as
//! root, the server runs as the `postgres` system user (PostgreSQL refuses root).

use crate::harness::*;
use std::path::PathBuf;
use std::process::Command;

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// `Some(uid, gid)` of `postgres` when we are root.
    run_as: Option<(u32, u32)>,
}

/// The newest `…/postgresql/<version>/bin` holding `initdb`, or `pg_config --bindir`.
fn server_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if bin.join("initdb").exists() {
            return bin;
        }
    }
    panic!(
        "this test runs a PostgreSQL server of its own and needs its programs (initdb, pg_ctl; \
         Debian: apt-get install postgresql)"
    );
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "running as root, this test needs the `postgres` system user (Debian: postgresql)"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = server_bin();
        let dir = std::env::temp_dir().join(unique("gatehouse-pg-"));
        std::fs::create_dir_all(&dir).unwrap();
        // As root, the server and its files belong to `postgres`.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let run_as = root.then(|| (id_of("-u"), id_of("-g")));
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let c = PgCluster {
            dir,
            bin,
            port: free_port(),
            run_as,
        };
        c.run(
            "initdb",
            &[
                "-D",
                c.data().to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        c.ctl("start");
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (connections dropped at once) and starts it again on the same port.
    pub fn restart(&self) {
        self.ctl("restart");
    }

    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-m",
                "fast",
                "-w",
                action,
            ],
        );
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let path = self.bin.join("pg_ctl");
            let data = self.data();
            let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
            let _ = match self.run_as {
                Some(_) => Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&path)
                    .args(args)
                    .output(),
                None => Command::new(&path).args(args).output(),
            };
        }));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
