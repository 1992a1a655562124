//! `gatehouse check-config`: every problem at once, named by key and file, never a secret value.

use crate::harness::*;
use std::process::Command;

fn check(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = TempDir::new();
    let path = dir.path("g.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn unknown_keys_and_invalid_values_are_all_reported() {
    let (ok, out) = check(
        "[server]\nlisten = \"127.0.0.1:8080\"\nlisen = \"typo\"\n\n[lockout]\nmax_failures = \"five\"\nwindow = \"soon\"\n\n[secrets]\nmaster_key_env = \"SOME_KEY\"\n",
        &[("SOME_KEY", MASTER_KEY)],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("g.toml"), "names the file: {out}");
    assert!(out.contains("server.lisen: unknown key"), "{out}");
    assert!(out.contains("lockout.max_failures"), "{out}");
    assert!(out.contains("lockout.window"), "{out}");
}

#[test]
fn address_lists_name_the_entry_that_is_wrong() {
    let (ok, out) = check(
        "[server]\nmetrics_allow = [\"10.0.0.0/8\", \"not-a-network\"]\ntrusted_proxies = [\"10.0.0.1/33\"]\n\n[secrets]\nmaster_key_env = \"SOME_KEY\"\n",
        &[("SOME_KEY", MASTER_KEY)],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("server.metrics_allow[1]"), "{out}");
    assert!(out.contains("server.trusted_proxies[0]"), "{out}");
    assert!(!out.contains("metrics_allow[0]"), "{out}");
}

#[test]
fn secret_values_are_never_echoed() {
    let (ok, out) = check(
        "[secrets]\nmaster_key = \"too-short-but-very-secret-value\"\n\n[database]\nurl = 12\n",
        &[],
    );
    assert!(!ok);
    assert!(out.contains("secrets.master_key"), "{out}");
    assert!(out.contains("database.url"), "{out}");
    assert!(!out.contains("very-secret-value"), "{out}");
    let (ok, out) = check(
        "[secrets]\nmaster_key = \"unterminated-secret-string\n",
        &[],
    );
    assert!(!ok);
    assert!(!out.contains("unterminated-secret-string"), "{out}");
}

#[test]
fn the_shipped_configs_are_valid() {
    for (file, env) in [
        ("config/gatehouse.toml", vec![]),
        (
            "config/gatehouse.example.toml",
            vec![("GATEHOUSE_MASTER_KEY", MASTER_KEY)],
        ),
        (
            "deploy/gatehouse.toml",
            vec![
                ("GATEHOUSE_MASTER_KEY", MASTER_KEY),
                ("GATEHOUSE_DATABASE_URL", "postgres://u@db/gatehouse"),
            ],
        ),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn environment_overrides_apply_and_are_validated() {
    let (ok, out) = check(
        "[secrets]\nmaster_key_env = \"K\"\n",
        &[
            ("K", MASTER_KEY),
            ("GATEHOUSE_LOCKOUT__MAX_FAILURES", "zero"),
        ],
    );
    assert!(!ok);
    assert!(out.contains("lockout.max_failures"), "{out}");
    let (ok, out) = check(
        "[secrets]\nmaster_key_env = \"K\"\n",
        &[("K", MASTER_KEY), ("GATEHOUSE_LOCKOUT__MAX_FAILURES", "3")],
    );
    assert!(ok, "{out}");
}

#[test]
fn app_routes_that_overlap_or_cover_the_gateway_are_refused() {
    let (ok, out) = check(
        r#"
[server]
public_url = "http://login.example.com"
[secrets]
master_key_env = "SOME_KEY"

[[app]]
id = "crm"
host = "crm.example.com"
upstream = "http://127.0.0.1:9000"
allow_roles = ["*"]

[[app]]
id = "crm2"
host = "CRM.example.com"
path_prefix = "/"
upstream = "http://127.0.0.1:9001"
allow_roles = ["*"]

[[app]]
id = "hidden"
host = "shop.example.com"
path_prefix = "/.gatehouse/x"
upstream = "http://127.0.0.1:9002"
allow_roles = ["*"]

[[app]]
id = "grabber"
host = "login.example.com"
path_prefix = "/login"
upstream = "http://127.0.0.1:9003"
allow_roles = ["*"]

[[app]]
id = "bad"
host = "bad.example.com"
upstream = "ftp://127.0.0.1"
allow_roles = []
headers = "apache"
seat_overflow = "maybe"
organization_members = "no"
allow_organizations = ["Acme Ltd"]
[[app.rule]]
path = "admin/*"

[[app]]
id = "showroom"
host = "showroom.example.com"
upstream = "none"
allow_roles = ["*"]
organization_members = false
allow_organizations = ["acme"]
"#,
        &[("SOME_KEY", MASTER_KEY)],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("app[1].path_prefix: overlaps app \"crm\""),
        "{out}"
    );
    assert!(out.contains("/.gatehouse/ is reserved"), "{out}");
    assert!(
        out.contains("app[3].path_prefix: on the public host"),
        "{out}"
    );
    assert!(
        out.contains("\"Acme Ltd\" is not an organization slug"),
        "{out}"
    );
    assert!(
        out.contains("app[5].allow_organizations: has no effect with organization_members = false"),
        "{out}"
    );
    for key in [
        "upstream",
        "allow_roles",
        "headers",
        "seat_overflow",
        "organization_members",
        "allow_organizations",
        "rule[0].path",
    ] {
        assert!(out.contains(key), "{key} not reported: {out}");
    }
    // Each problem names its key: the first, valid app is not blamed.
    assert!(!out.contains("app[0]"), "{out}");
}
