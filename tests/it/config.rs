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
        (
            "deploy/compose.toml",
            vec![
                ("GATEHOUSE_MASTER_KEY", MASTER_KEY),
                ("GATEHOUSE_DATABASE_URL", "postgres://u@db/gatehouse"),
                ("GATEHOUSE_SERVER__PUBLIC_URL", "http://localhost:8080"),
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
        out.contains("app[crm2].path_prefix: overlaps app \"crm\""),
        "{out}"
    );
    assert!(out.contains("/.gatehouse/ is reserved"), "{out}");
    assert!(
        out.contains("app[grabber].path_prefix: on the public host"),
        "{out}"
    );
    assert!(
        out.contains("\"Acme Ltd\" is not an organization slug"),
        "{out}"
    );
    assert!(
        out.contains(
            "app[showroom].allow_organizations: has no effect with organization_members = false"
        ),
        "{out}"
    );
    for key in [
        "upstream",
        "allow_roles",
        "headers",
        "seat_overflow",
        "organization_members",
        "allow_organizations",
        "app[bad].rule[admin/*].path",
    ] {
        assert!(out.contains(key), "{key} not reported: {out}");
    }
    // Each problem names its key: the first, valid app is not blamed.
    assert!(!out.contains("app[crm]."), "{out}");
}

fn check_with(config: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let dir = TempDir::new();
    let path = dir.path("g.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .args(args)
        .env_remove("GATEHOUSE_MASTER_KEY")
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

const KEYED: &str = "[secrets]\nmaster_key_env = \"SOME_KEY\"\n";

#[test]
fn a_bad_override_names_the_variable_and_lists_may_be_comma_separated() {
    let (ok, out) = check_with(
        KEYED,
        &[
            ("SOME_KEY", MASTER_KEY),
            ("GATEHOUSE_LOCKOUT__MAX_FAILURES", "five"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        out.contains(
            "lockout.max_failures (set by the environment variable GATEHOUSE_LOCKOUT__MAX_FAILURES): expected an integer, found a string"
        ),
        "{out}"
    );
    let (ok, out) = check_with(
        KEYED,
        &[
            ("SOME_KEY", MASTER_KEY),
            (
                "GATEHOUSE_SERVER__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.0.0/16",
            ),
        ],
        &[],
    );
    assert!(ok, "a comma-separated list is a list: {out}");
    let (ok, out) = check_with(
        KEYED,
        &[
            ("SOME_KEY", MASTER_KEY),
            ("GATEHOUSE_SERVER__TRUSTED_PROXIES", "10.0.0.0/8,nonsense"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        out.contains("(set by the environment variable GATEHOUSE_SERVER__TRUSTED_PROXIES)"),
        "{out}"
    );
}

#[test]
fn a_syntax_error_gives_line_column_and_the_line_but_never_a_secret() {
    let (ok, out) = check_with(
        "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = http://x\n",
        &[],
        &[],
    );
    assert!(!ok);
    assert!(out.contains("line 3, column 14:"), "{out}");
    assert!(out.contains("    3 | public_url = http://x"), "{out}");
    assert!(!out.contains("byte"), "{out}");
    let (ok, out) = check_with("[database]\nurl = postgres://u:hunter2@db/x\n", &[], &[]);
    assert!(!ok);
    assert!(out.contains("line 2, column 7:"), "{out}");
    assert!(out.contains("    2 | url = …"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn a_missing_secret_variable_is_one_problem_on_one_line() {
    let (ok, out) = check_with(KEYED, &[], &[]);
    assert!(!ok);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("master_key")).collect();
    assert_eq!(
        lines,
        ["  - secrets.master_key_env: environment variable SOME_KEY is not set"],
        "{out}"
    );
}

#[test]
fn unknown_keys_get_a_suggestion_and_apps_are_named_by_id() {
    let (ok, out) = check_with(
        &format!(
            "{KEYED}[server]\nlisen = \"127.0.0.1:1\"\npublik_url = \"http://x\"\nzzz = 1\n\n\
             [[app]]\nid = \"crm\"\nhost = \"crm.example.com\"\nupstream = \"ftp://x\"\nallow_roles = [\"*\"]\n"
        ),
        &[("SOME_KEY", MASTER_KEY)],
        &[],
    );
    assert!(!ok);
    assert!(
        out.contains("server.lisen: unknown key (did you mean `listen`?)"),
        "{out}"
    );
    assert!(
        out.contains("server.publik_url: unknown key (did you mean `public_url`?)"),
        "{out}"
    );
    assert!(
        out.contains("server.zzz: unknown key\n") || out.ends_with("server.zzz: unknown key"),
        "{out}"
    );
    assert!(out.contains("app[crm].upstream:"), "{out}");
}

#[test]
fn no_secrets_checks_everything_but_the_secrets_values() {
    let config = "[secrets]\nmaster_key_env = \"UNSET_IN_CI\"\n\n[database]\nurl_env = \"DB_URL_UNSET\"\n\n\
                  [mail]\nsmtp_url_file = \"/nonexistent/smtp-url\"\n";
    let (ok, out) = check_with(config, &[], &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("UNSET_IN_CI") && out.contains("DB_URL_UNSET"),
        "{out}"
    );
    let (ok, out) = check_with(config, &[], &["--no-secrets"]);
    assert!(ok, "{out}");
    assert!(out.contains("secrets' values not checked"), "{out}");
    // Everything else is still checked.
    let (ok, out) = check_with(
        &format!("{config}\n[lockout]\nwindow = \"soon\"\n"),
        &[],
        &["--no-secrets"],
    );
    assert!(!ok);
    assert!(out.contains("lockout.window"), "{out}");
    // And a source must still be given.
    let (ok, out) = check_with("[server]\n", &[], &["--no-secrets"]);
    assert!(!ok);
    assert!(out.contains("secrets.master_key: required"), "{out}");
}

/// The Kubernetes ConfigMap embeds `deploy/gatehouse.toml` exactly (indented by four spaces).
#[test]
fn the_kubernetes_configmap_carries_exactly_the_deploy_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cm = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap();
    let toml = std::fs::read_to_string(root.join("deploy/gatehouse.toml")).unwrap();
    let marker = "  gatehouse.toml: |\n";
    let at = cm
        .find(marker)
        .expect("a gatehouse.toml key in the ConfigMap")
        + marker.len();
    let embedded: String = cm[at..]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        embedded, toml,
        "deploy/kubernetes/configmap.yaml has drifted from deploy/gatehouse.toml"
    );
    // And the ConfigMap's file is what a pod gets: it passes check-config.
    let dir = TempDir::new();
    std::fs::write(dir.path("cm.toml"), &embedded).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(dir.path("cm.toml"))
        .args(["check-config", "--no-secrets"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn master_key_prints_or_writes_a_fresh_private_key() {
    let a = Command::new(BIN).arg("master-key").output().unwrap();
    let b = Command::new(BIN).arg("master-key").output().unwrap();
    assert!(a.status.success() && b.status.success());
    let (a, b) = (
        String::from_utf8(a.stdout).unwrap(),
        String::from_utf8(b.stdout).unwrap(),
    );
    assert_ne!(a, b);
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, a.trim()).unwrap();
    assert_eq!(key.len(), 32);
    let dir = TempDir::new();
    let path = dir.path("master.key");
    let out = Command::new(BIN)
        .args(["master-key", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A config using it is valid; an existing key file is never replaced.
    std::fs::write(
        dir.path("g.toml"),
        format!("[secrets]\nmaster_key_file = \"{}\"\n", path.display()),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(dir.path("g.toml"))
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read(&path).unwrap();
    let again = Command::new(BIN)
        .args(["master-key", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Each wrong `[[identity_provider]]` key, alone in an otherwise valid config, is reported
/// naming that key (and the provider by its id), never the secret's value.
#[test]
fn each_bad_identity_provider_key_is_named() {
    let base = "[secrets]\nmaster_key_env = \"K\"\n";
    let good = "id = \"corp\"\nkind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://idp.example.com\"\n";
    let (ok, out) = check(
        &format!("{base}[[identity_provider]]\n{good}"),
        &[("K", MASTER_KEY)],
    );
    assert!(ok, "a good provider: {out}");
    let cases: &[(&str, &str, &str)] = &[
        (
            "id = \"corp\"",
            "id = \"Corp Id\"",
            "identity_provider[1].id",
        ),
        (
            "kind = \"oidc\"",
            "kind = \"saml\"",
            "identity_provider[corp].kind",
        ),
        ("kind = \"oidc\"\n", "", "identity_provider[corp].kind"),
        (
            "client_id = \"c\"\n",
            "",
            "identity_provider[corp].client_id",
        ),
        (
            "client_secret = \"s3cret-value\"\n",
            "",
            "identity_provider[corp].client_secret",
        ),
        (
            "client_secret = \"s3cret-value\"",
            "client_secret = \"s3cret-value\"\nclient_secret_env = \"X\"",
            "identity_provider[corp].client_secret",
        ),
        (
            "client_secret = \"s3cret-value\"",
            "client_secret_env = \"GATEHOUSE_TEST_UNSET_SECRET\"",
            "identity_provider[corp].client_secret_env",
        ),
        (
            "issuer = \"https://idp.example.com\"\n",
            "",
            "identity_provider[corp].issuer",
        ),
        (
            "issuer = \"https://idp.example.com\"",
            "issuer = \"ftp://idp\"",
            "identity_provider[corp].issuer",
        ),
        (
            "issuer = \"https://idp.example.com\"",
            "issuer = \"https://idp.example.com\"\nscopes = [\"email\"]",
            "identity_provider[corp].scopes",
        ),
        (
            "issuer = \"https://idp.example.com\"",
            "issuer = \"https://idp.example.com\"\ntenant = \"common\"",
            "identity_provider[corp].tenant",
        ),
        (
            "issuer = \"https://idp.example.com\"",
            "issuer = \"https://idp.example.com\"\nname = \"\"",
            "identity_provider[corp].name",
        ),
        (
            "issuer = \"https://idp.example.com\"",
            "issuer = \"https://idp.example.com\"\nclient_secrt = \"x\"",
            "identity_provider[corp].client_secrt",
        ),
        (
            "kind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://idp.example.com\"",
            "kind = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\ntenant = \"contoso\"",
            "identity_provider[corp].tenant",
        ),
        (
            "kind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://idp.example.com\"",
            "kind = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://x\"",
            "identity_provider[corp].issuer",
        ),
        (
            "kind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://idp.example.com\"",
            "kind = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nallowed_tenants = [\"not-a-guid\"]",
            "identity_provider[corp].allowed_tenants[1]",
        ),
        (
            "kind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://idp.example.com\"",
            "kind = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\ntrust_tenant_emails = true",
            "identity_provider[corp].trust_tenant_emails",
        ),
        (
            "kind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nissuer = \"https://idp.example.com\"",
            "kind = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\nauthority = \"not a url\"",
            "identity_provider[corp].authority",
        ),
    ];
    for (from, to, key) in cases {
        assert!(
            good.contains(from),
            "case {key}: {from:?} not in the good config"
        );
        let config = format!(
            "{base}[[identity_provider]]\n{}",
            good.replacen(from, to, 1)
        );
        let (ok, out) = check(&config, &[("K", MASTER_KEY)]);
        assert!(!ok, "{key}: accepted:\n{config}");
        assert!(
            out.contains(&format!("{key}:")) || out.contains(&format!("{key} ")),
            "{key}: not named in:\n{out}\nconfig:\n{config}"
        );
        assert!(!out.contains("s3cret-value"), "{key}: secret echoed: {out}");
    }
    // Two providers with one id.
    let (ok, out) = check(
        &format!("{base}[[identity_provider]]\n{good}[[identity_provider]]\n{good}"),
        &[("K", MASTER_KEY)],
    );
    assert!(
        !ok && out.contains("duplicate identity provider id"),
        "{out}"
    );
    // A bad invitations ttl.
    let (ok, out) = check(
        &format!("{base}[invitations]\nttl = \"soon\"\n"),
        &[("K", MASTER_KEY)],
    );
    assert!(!ok && out.contains("invitations.ttl"), "{out}");
}

/// The example config's commented-out `[[identity_provider]]` tables, uncommented, are valid
/// (checked without reading their secrets): the documentation cannot drift from the reader.
#[test]
fn the_example_identity_providers_are_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gatehouse.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("# [[identity_provider]]") {
            inside = true;
        }
        if inside && line.starts_with('#') {
            out.push(
                line.trim_start_matches('#')
                    .strip_prefix(' ')
                    .unwrap_or("")
                    .to_string(),
            );
        } else {
            inside = false;
            out.push(line.to_string());
        }
    }
    let uncommented = out.join("\n");
    assert_eq!(
        uncommented.matches("[[identity_provider]]").count(),
        3,
        "{uncommented}"
    );
    let (ok, out) = check_with(
        &uncommented,
        &[("GATEHOUSE_MASTER_KEY", MASTER_KEY)],
        &["--no-secrets"],
    );
    assert!(ok, "{out}");
}
