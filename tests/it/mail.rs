//! Outgoing mail: queued first, delivered to a real SMTP server, retried through its outage;
//! the development outbox; `[mail]` errors.

use crate::harness::*;
use crate::smtp_peer::SmtpPeer;
use std::time::Duration;

#[test]
fn a_message_waits_out_the_mail_servers_outage_and_is_delivered_when_it_returns() {
    let smtp_port = free_port();
    let server = Server::start_with(Options {
        sections: format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"Gatehouse <gate@example.test>\"\nretry_after = \"1s\"\n"
        ),
        ..Default::default()
    });
    // Nobody listens on the SMTP port yet: the first attempt fails, the message stays queued.
    let out = server.admin_ok(&["mail", "test", "--to", "ops@example.test"]);
    assert!(out.contains("queued; delivery to"), "{out}");
    let queue = server.admin_ok(&["--json", "mail", "queue"]);
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(queue[0]["to"], "ops@example.test");
    assert!(queue[0]["attempts"].as_i64().unwrap() >= 1, "{queue}");
    assert!(queue[0]["last_error"].as_str().is_some(), "{queue}");

    // The mail server comes up: the running gateway retries and delivers, once.
    let maildir = server.dir.path("maildir");
    let smtp = SmtpPeer::start(smtp_port, &maildir);
    let got = smtp.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "delivered once; logs:\n{}", server.logs());
    let m = &got[0];
    assert!(m.contains("To: ops@example.test"), "{m}");
    assert!(m.contains("From: Gatehouse <gate@example.test>"), "{m}");
    assert!(m.contains("Subject: Gatehouse test message"), "{m}");
    assert!(m.contains("mail delivery works"), "{m}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let q = server.admin_ok(&["mail", "queue"]);
        if q.contains("no mail waiting") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still queued: {q}");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 1, "sent exactly once");

    // With the server up, a test message goes out at once.
    let out = server.admin_ok(&["mail", "test", "--to", "second@example.test"]);
    assert!(out.contains("delivered to"), "{out}");
    assert_eq!(smtp.wait_for(2, Duration::from_secs(10)).len(), 2);
}

#[test]
fn the_development_outbox_gets_one_private_file_per_message() {
    let server = Server::start_with(Options {
        sections: "[mail]\noutbox_dir = \"outbox\"\n".into(),
        ..Default::default()
    });
    let out = server.admin_ok(&["mail", "test", "--to", "dev@example.test"]);
    assert!(out.contains("delivered to the outbox directory"), "{out}");
    let dir = server.dir.path("outbox");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("To: dev@example.test"), "{text}");
    assert!(files[0].file_name().to_string_lossy().ends_with(".eml"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0].path()), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    let bad = server.admin(&["mail", "test", "--to", "not an address"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--to"));
}

#[test]
fn mail_settings_are_checked_and_the_smtp_password_never_echoed() {
    let dir = TempDir::new();
    let path = dir.path("g.toml");
    std::fs::write(
        &path,
        "[secrets]\nmaster_key_env = \"K\"\n\n[mail]\nsmtp_url = \"ftp://user:hunter2@mail.example\"\noutbox_dir = \"x\"\nfrom = \"nobody at all\"\nretry_after = \"0s\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env("K", MASTER_KEY)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("mail.smtp_url"), "{text}");
    assert!(text.contains("mail.from"), "{text}");
    assert!(text.contains("mail.retry_after"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    std::fs::write(
        &path,
        "[secrets]\nmaster_key_env = \"K\"\n\n[mail]\nsmtp_url_env = \"SMTP\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env("K", MASTER_KEY)
        .env("SMTP", "ftp://user:hunter2@mail.example")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("mail.smtp_url"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
