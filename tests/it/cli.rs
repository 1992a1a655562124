//! `gatehouse admin …`: human output, `--json`, and clear refusals of bad input.

use crate::harness::*;
use serde_json::Value;

#[tokio::test]
async fn weak_and_common_passwords_are_refused_naming_every_rule() {
    let server = Server::start();
    let out = server.admin_stdin(
        &[
            "user",
            "create",
            "--email",
            "nina@example.com",
            "--password-stdin",
        ],
        Some("abc\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for rule in ["12 characters", "uppercase", "digit"] {
        assert!(err.contains(rule), "{rule} not named: {err}");
    }
    let out = server.admin_stdin(
        &[
            "user",
            "create",
            "--email",
            "nina@example.com",
            "--password-stdin",
        ],
        Some("Password1234\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("common"));
    let out = server.admin_stdin(
        &[
            "user",
            "create",
            "--email",
            "nina@example.com",
            "--password-stdin",
        ],
        Some("Nina-Example-Strong-9\n"),
    );
    assert!(!out.status.success(), "contains the email name");
}

#[tokio::test]
async fn users_roles_grants_tokens_and_json_output() {
    // Grants name configured apps only.
    let server = Server::start_with(Options {
        port: None,
        sections: "[[app]]\nid = \"crm\"\nhost = \"crm.example.com\"\nupstream = \"none\"\nallow_roles = [\"*\"]\n\n\
                   [[app]]\nid = \"wiki\"\nhost = \"wiki.example.com\"\nupstream = \"none\"\nallow_roles = [\"*\"]\n"
            .into(),
        env: vec![],
..Default::default()
});
    server.admin_ok(&[
        "role",
        "create",
        "--name",
        "financial",
        "--seat",
        "limited",
        "--description",
        "Invoices",
    ]);
    let out = server.admin(&["role", "create", "--name", "financial", "--seat", "limited"]);
    assert!(!out.status.success(), "duplicate role");
    server.create_user("Olga@Example.com", GOOD_PASSWORD, &["financial@crm"]);
    let dup = server.admin_stdin(
        &[
            "user",
            "create",
            "--email",
            " olga@example.COM",
            "--password-stdin",
        ],
        Some(&format!("{GOOD_PASSWORD}\n")),
    );
    assert!(
        !dup.status.success(),
        "emails are unique case-insensitively"
    );
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = server.admin(&[
        "grant",
        "--user",
        "olga@example.com",
        "--role",
        "nosuchrole",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuchrole"));
    server.admin_ok(&[
        "grant",
        "--user",
        "olga@example.com",
        "--role",
        "modify",
        "--app",
        "wiki",
    ]);
    let shown: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "show",
        "--email",
        "olga@example.com",
    ]))
    .unwrap();
    assert_eq!(shown["email"], "Olga@Example.com");
    assert_eq!(shown["roles"].as_array().unwrap().len(), 2);
    server.admin_ok(&[
        "revoke",
        "--user",
        "olga@example.com",
        "--role",
        "modify",
        "--app",
        "wiki",
    ]);
    let list: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["--json", "user", "list"])).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["roles"].as_array().unwrap().len(), 1);
    let token: Value =
        serde_json::from_str(&server.admin_ok(&["--json", "token", "create", "--name", "ci"]))
            .unwrap();
    assert!(token["token"].as_str().unwrap().len() > 40);
    let missing = server.admin(&["user", "block", "--email", "ghost@example.com"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ghost@example.com"));
}

#[tokio::test]
async fn block_ends_sessions_and_refuses_sign_in_and_is_audited_with_before_after() {
    let server = Server::start();
    server.create_user("pat@example.com", GOOD_PASSWORD, &[]);
    let mut b = server.browser();
    assert_eq!(b.login("pat@example.com", GOOD_PASSWORD).await.status, 303);
    server.admin_ok(&["user", "block", "--email", "pat@example.com"]);
    assert_eq!(b.get("/").await.status, 303, "blocked: session ended");
    assert_eq!(
        server
            .browser()
            .login("pat@example.com", GOOD_PASSWORD)
            .await
            .status,
        401
    );
    server.admin_ok(&["user", "unblock", "--email", "pat@example.com"]);
    assert_eq!(
        server
            .browser()
            .login("pat@example.com", GOOD_PASSWORD)
            .await
            .status,
        303
    );
    let csv = server.admin_ok(&["audit", "--email", "pat@example.com", "--format", "csv"]);
    assert!(csv.starts_with("id,time,actor,action,target,outcome,ip,details"));
    assert!(csv.contains("user.block") && csv.contains("user.unblock"));
    let events: Vec<Value> = serde_json::from_str(&server.admin_ok(&[
        "audit",
        "--email",
        "pat@example.com",
        "--format",
        "json",
    ]))
    .unwrap();
    let block = events.iter().find(|e| e["action"] == "user.block").unwrap();
    assert_eq!(block["details"]["before"]["status"], "active");
    assert_eq!(block["details"]["after"]["status"], "blocked");
    assert!(block["actor"].as_str().unwrap().starts_with("cli"));
}

#[tokio::test]
async fn reset_mfa_anonymize_and_delete() {
    let server = Server::start();
    server.create_user("quinn@example.com", GOOD_PASSWORD, &[]);
    // Quinn acts once (a sign-in), so the trail has an event with Quinn as its actor.
    let mut b = server.browser();
    assert_eq!(
        b.login("quinn@example.com", GOOD_PASSWORD).await.status,
        303
    );
    server.admin_ok(&["user", "reset-mfa", "--email", "quinn@example.com"]);
    let out: Value = serde_json::from_str(&server.admin_ok(&[
        "--json",
        "user",
        "anonymize",
        "--email",
        "quinn@example.com",
    ]))
    .unwrap();
    let pseudonym = out["pseudonym"].as_str().unwrap().to_string();
    let audit = server.admin_ok(&["audit", "--format", "csv"]);
    assert!(
        !audit.contains("quinn@example.com"),
        "personal data left in the audit trail:\n{audit}"
    );
    assert!(audit.contains(&pseudonym));
    // The actor of Quinn's own sign-in is shown by the pseudonym, read when the trail is read.
    assert!(
        audit.contains(&format!("user:{pseudonym}")),
        "the anonymized actor is not shown by the pseudonym:\n{audit}"
    );
    // `--as` shows the trail as a given person sees it; an unknown person is refused.
    server.create_user("viewer@example.com", GOOD_PASSWORD, &[]);
    let seen = server.admin_ok(&["audit", "--format", "csv", "--as", "viewer@example.com"]);
    assert!(seen.contains(&format!("user:{pseudonym}")), "{seen}");
    let out = server.admin(&["audit", "--as", "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as"));
    server.admin_ok(&["user", "delete", "--email", &pseudonym]);
    server.admin_ok(&["user", "delete", "--email", "viewer@example.com"]);
    let list: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["--json", "user", "list"])).unwrap();
    assert!(list.is_empty());
}
