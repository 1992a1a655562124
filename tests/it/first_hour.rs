//! What a new operator meets first: private database files, plain logs when not at a
//! terminal, database errors that say where and why.

use crate::harness::*;
use std::process::Command;

fn migrate(dir: &TempDir, url: &str) -> (bool, String) {
    std::fs::write(
        dir.path("g.toml"),
        format!("[database]\nurl = \"{url}\"\n[secrets]\nmaster_key_env = \"K\"\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config", "g.toml", "migrate"])
        .current_dir(&dir.0)
        .env("K", MASTER_KEY)
        .env_remove("GATEHOUSE_LOG")
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

#[cfg(unix)]
#[test]
fn a_new_sqlite_database_and_its_folder_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let (ok, out) = migrate(&dir, "sqlite://data/gatehouse.db");
    assert!(ok, "{out}");
    let mode = |name: &str| {
        std::fs::metadata(dir.path(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/gatehouse.db"), 0o600);
    for extra in ["data/gatehouse.db-wal", "data/gatehouse.db-shm"] {
        if dir.path(extra).exists() {
            assert_eq!(mode(extra), 0o600, "{extra}");
        }
    }
}

#[test]
fn database_errors_name_the_host_and_the_cause_never_the_password() {
    let dir = TempDir::new();
    let closed = free_port();
    let (ok, out) = migrate(
        &dir,
        &format!("postgres://gate:s3cr3t-pw@127.0.0.1:{closed}/gatehouse"),
    );
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "cannot connect to the database at 127.0.0.1:{closed}"
        )) && out.contains("connection refused"),
        "{out}"
    );
    assert!(!out.contains("s3cr3t-pw"), "{out}");
    assert!(!out.contains("timed out"), "{out}");

    let started = std::time::Instant::now();
    let (ok, out) = migrate(
        &dir,
        "postgres://gate:s3cr3t-pw@no-such-host.invalid:5432/gatehouse",
    );
    assert!(!ok);
    assert!(
        out.contains("no-such-host.invalid:5432") && out.contains("unknown host"),
        "{out}"
    );
    assert!(!out.contains("s3cr3t-pw"), "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "answered at once"
    );
}

#[test]
fn logs_carry_no_colour_codes_when_not_written_to_a_terminal() {
    use std::io::BufRead;
    let dir = TempDir::new();
    let port = free_port();
    std::fs::write(
        dir.path("g.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [database]\nurl = \"sqlite://data/g.db\"\n[secrets]\nmaster_key_env = \"K\"\n\
             [log]\nformat = \"text\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", "g.toml", "serve"])
        .current_dir(&dir.0)
        .env("K", MASTER_KEY)
        .env_remove("GATEHOUSE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("gatehouse listening");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let logs = lines.join("\n");
    assert!(
        logs.contains("/setup?token="),
        "the setup link is logged: {logs}"
    );
    assert!(logs.contains("gatehouse listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "escape codes in: {logs:?}");
}

#[test]
fn the_last_full_access_administrator_cannot_be_removed() {
    let server = Server::start_with(Options {
        sections: crm_app("http://127.0.0.1:9", "1s"),
        ..Default::default()
    });
    server.create_user("root@example.com", GOOD_PASSWORD, &["admin"]);
    let refused = |args: &[&str]| {
        let out = server.admin(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("root@example.com is the last full access administrator"),
            "{args:?}: {err}"
        );
    };
    refused(&["user", "delete", "--email", "root@example.com"]);
    refused(&["user", "block", "--email", "root@example.com"]);
    refused(&["user", "anonymize", "--email", "root@example.com"]);
    refused(&["revoke", "--user", "root@example.com", "--role", "admin"]);
    let shown = server.admin_ok(&["--json", "user", "show", "--email", "root@example.com"]);
    assert!(shown.contains("\"active\""), "nothing changed: {shown}");

    // An administrator of one app only is no full access administrator.
    server.create_user("crm-admin@example.com", GOOD_PASSWORD, &[]);
    server.admin_ok(&[
        "grant",
        "--user",
        "crm-admin@example.com",
        "--role",
        "admin",
        "--app",
        "crm",
    ]);
    refused(&["user", "delete", "--email", "root@example.com"]);

    // With a second one, the first may go.
    server.create_user("second@example.com", GOOD_PASSWORD, &["admin"]);
    server.admin_ok(&["user", "block", "--email", "root@example.com"]);
    let out = server.admin(&["user", "delete", "--email", "second@example.com"]);
    assert!(!out.status.success(), "the blocked one does not count");
    server.admin_ok(&["user", "unblock", "--email", "root@example.com"]);
    server.admin_ok(&["user", "delete", "--email", "second@example.com"]);
}

#[tokio::test]
async fn whoami_is_a_page_for_people_and_json_for_programs() {
    let server = Server::start_with(Options {
        sections:
            "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                   upstream = \"builtin:whoami\"\nallow_roles = [\"*\"]\n"
                .into(),
        ..Default::default()
    });
    let mut b = signed_in(&server, "zoe@example.com", &["limited"]).await;
    let page = b.get("/whoami/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.starts_with("<!doctype html><html lang=\"en\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<title>Who am I"), "{}", page.body);
    assert!(page.body.contains("zoe@example.com"), "{}", page.body);
    assert!(
        page.body.contains("&quot;aud&quot;: &quot;whoami&quot;"),
        "claims decoded: {}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/.gatehouse/logout\""),
        "{}",
        page.body
    );
    let api = reqwest::Client::new()
        .get(format!("{}/whoami/", server.base))
        .header("cookie", b.cookie_header())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let v: serde_json::Value = api.json().await.unwrap();
    assert_eq!(v["app"], "whoami");
    assert_eq!(v["headers"]["x-gatehouse-email"], "zoe@example.com");
}

#[tokio::test]
async fn a_host_with_no_app_is_told_which_hosts_are_configured_when_asked_from_this_machine() {
    let server = Server::start_with(Options {
        sections:
            "[[app]]\nid = \"whoami\"\nhost = \"localhost:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                   upstream = \"builtin:whoami\"\nallow_roles = [\"*\"]\n"
                .into(),
        ..Default::default()
    });
    let r = reqwest::Client::new()
        .get(format!("{}/whoami/", server.base))
        .header("host", format!("elsewhere.test:{}", server.port))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(body.contains("No app is configured for the host"), "{body}");
    assert!(
        body.contains(&format!(
            "localhost:{}&#x2f;whoami&#x2f; (app whoami)",
            server.port
        )) || body.contains(&format!("localhost:{}/whoami/ (app whoami)", server.port)),
        "{body}"
    );
    // Forwarded by a proxy on this machine: a stranger's request, told nothing.
    let r = reqwest::Client::new()
        .get(format!("{}/whoami/", server.base))
        .header("host", format!("elsewhere.test:{}", server.port))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("answers for"));
    // On a known host, a missing page is just that.
    let r = reqwest::get(format!("{}/no-such-page", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("answers for"));
}

/// `/` lists the apps the person may use, by their `name` and `description`, linked to the
/// app's address; an app their roles do not open is not listed; names are escaped.
#[tokio::test]
async fn the_account_page_lists_the_apps_the_person_may_use() {
    let server = Server::start_with(Options {
        sections: "[[app]]\nid = \"portal\"\nname = \"Customer <portal>\"\n\
                   description = \"Orders & invoices\"\nhost = \"127.0.0.1:{PORT}\"\n\
                   path_prefix = \"/portal/\"\nupstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n\n\
                   [[app]]\nid = \"books\"\nname = \"Bookkeeping\"\nhost = \"127.0.0.1:{PORT}\"\n\
                   path_prefix = \"/books/\"\nupstream = \"builtin:whoami\"\nallow_roles = [\"modify\"]\n"
            .into(),
        ..Default::default()
    });
    let mut b = signed_in(&server, "pat@example.test", &["limited@portal"]).await;
    let page = b.get("/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = page.body.replace("&#x2f;", "/");
    assert!(body.contains("Customer &lt;portal&gt;"), "{body}");
    assert!(body.contains("Orders &amp; invoices"), "{body}");
    assert!(
        body.contains(&format!(
            "href=\"http://127.0.0.1:{}/portal/\"",
            server.port
        )),
        "{body}"
    );
    assert!(
        !body.contains("Bookkeeping"),
        "not open to this person: {body}"
    );
}
