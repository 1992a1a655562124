//! `gatehouse admin org …` and `grant|revoke --org`: every address has one owner (a clash is
//! refused naming it, and changes nothing), shapes and names are checked, grants name
//! configured apps and existing roles, updates replace only what they give, and the audit
//! trail shows members by organization, to each viewer as SPEC says.

use super::*;

/// Runs SQL against the test server's own database (to set up what only a later feature
/// can make through the product; each use says what).
async fn sql(server: &Server, statement: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&server.db.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut c)
        .await
        .unwrap();
}

/// Everything administrators can see of the organizations, to compare before and after.
fn snapshot(server: &Server) -> Value {
    let mut all = admin_json(server, &["org", "list"]);
    for o in all.as_array_mut().unwrap() {
        o.as_object_mut().unwrap().remove("updated_at");
    }
    all
}

/// Attack: an administrator (or a script) saves an organization that claims an address or a
/// domain that already belongs to someone: another organization's listed member, another
/// organization's own address, a user who belongs to another organization, an existing
/// user's address as the organization's own, an address in another organization's domain,
/// that domain itself, a domain in which another organization lists an address — on create
/// and on update, in other cases and with spaces. Must hold: each is refused (exit code 2)
/// with a message naming the address or domain and who holds it, and nothing changed.
#[tokio::test]
async fn an_address_has_one_owner_and_a_clash_is_refused_naming_it() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &["ann@acme.example"], &[], &[]);
    server.admin_ok(&[
        "org",
        "create",
        "--slug",
        "globex",
        "--name",
        "Globex",
        "--email",
        "it@globex.example",
        "--access-by",
        "domain",
        "--domain",
        "globex.example",
    ]);
    server.create_user("sam@corp.example", GOOD_PASSWORD, &[]);
    // A user who belongs to `globex` without being listed: what a domain organization's
    // member is once upstream sign-in (another change) has created them.
    server.create_user("dan@elsewhere.example", GOOD_PASSWORD, &[]);
    sql(
        &server,
        "UPDATE users SET org_id = (SELECT id FROM organizations WHERE slug = 'globex') \
         WHERE email_normalized = 'dan@elsewhere.example'",
    )
    .await;
    let before = snapshot(&server);
    let initech = |extra: &[&str]| {
        let mut a = vec!["org", "create", "--slug", "initech", "--name", "Initech"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let email_org = |email: &str, member: &str| {
        initech(&["--email", email, "--access-by", "email", "--member", member])
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            email_org("it@initech.example", " ANN@Acme.example "),
            "ann@acme.example is listed as a member of organization acme",
        ),
        (
            email_org("it@initech.example", "it@acme.example"),
            "it@acme.example is the address of organization acme",
        ),
        (
            email_org("ann@acme.example", "x@initech.example"),
            "ann@acme.example is listed as a member of organization acme",
        ),
        (
            email_org("It@Acme.example", "x@initech.example"),
            "it@acme.example is the address of organization acme",
        ),
        (
            email_org("it@initech.example", "dan@elsewhere.example"),
            "dan@elsewhere.example is a user who is a member of organization globex",
        ),
        (
            email_org("sam@corp.example", "x@initech.example"),
            "sam@corp.example is the address of an existing user",
        ),
        (
            email_org("it@initech.example", "pat@globex.example"),
            "pat@globex.example is in the domain globex.example of organization globex",
        ),
        (
            email_org("it@initech.example", "it@initech.example"),
            "it@initech.example is listed as a member of organization initech",
        ),
        (
            initech(&[
                "--email",
                "it@initech.example",
                "--access-by",
                "domain",
                "--domain",
                "GLOBEX.example",
            ]),
            "the domain globex.example belongs to organization globex",
        ),
        (
            initech(&[
                "--email",
                "it@initech.example",
                "--access-by",
                "domain",
                "--domain",
                "acme.example",
            ]),
            "organization acme lists ann@acme.example, an address in the domain acme.example",
        ),
        // On update: the same checks against the other organizations.
        (
            [
                "org",
                "update",
                "--slug",
                "acme",
                "--member",
                "ann@acme.example",
                "--member",
                "it@globex.example",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "it@globex.example is the address of organization globex",
        ),
        (
            [
                "org",
                "update",
                "--slug",
                "acme",
                "--email",
                "it@globex.example",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "it@globex.example is the address of organization globex",
        ),
        (
            [
                "org",
                "add-member",
                "--slug",
                "acme",
                "--email",
                "dan@elsewhere.example",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "dan@elsewhere.example is a user who is a member of organization globex",
        ),
        (
            [
                "org",
                "update",
                "--slug",
                "globex",
                "--domain",
                "globex.example",
                "--domain",
                "acme.example",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "organization acme lists ann@acme.example, an address in the domain acme.example",
        ),
    ];
    let mut failures = Vec::new();
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = server.admin(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !err.contains(want) {
            failures.push(format!(
                "{args:?}: exit {:?}, {err:?}, want {want:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(
        snapshot(&server),
        before,
        "a refused save changed something"
    );
    // `sam` is nobody's member, and the slug `initech` is still free.
    let sam = admin_json(&server, &["user", "show", "--email", "sam@corp.example"]);
    assert_eq!(sam["org"], Value::Null);
    create_email_org(&server, "initech", &["x@initech.example"], &[], &[]);
}

/// Shapes, names and addresses are checked before anything is written, each refusal naming
/// the option: a `domain` organization without a domain or with members, an `email`
/// organization with a domain, malformed domains, addresses, slugs and provider ids, a
/// missing name or address, a taken slug.
#[tokio::test]
async fn organization_options_are_checked_naming_the_option() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &[], &[], &[]);
    let base = [
        "org",
        "create",
        "--slug",
        "initech",
        "--name",
        "Initech",
        "--email",
        "it@initech.example",
    ];
    let with = |extra: &[&'static str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            with(&["--access-by", "domain"]),
            "needs at least one --domain",
        ),
        (
            with(&[
                "--access-by",
                "domain",
                "--domain",
                "initech.example",
                "--member",
                "a@initech.example",
            ]),
            "lists no --member",
        ),
        (
            with(&["--access-by", "email", "--domain", "initech.example"]),
            "takes no --domain",
        ),
        (
            with(&["--access-by", "domain", "--domain", "initech"]),
            "--domain: \"initech\" is not a domain name",
        ),
        (
            with(&["--access-by", "domain", "--domain", "*.initech.example"]),
            "--domain",
        ),
        (
            with(&["--access-by", "email", "--member", "not-an-address"]),
            "--member: \"not-an-address\"",
        ),
        (
            with(&["--access-by", "email", "--provider", "Google!"]),
            "--provider",
        ),
        (with(&[]), "--access-by"),
        (
            vec![
                "org",
                "create",
                "--slug",
                "Bad Slug",
                "--name",
                "x",
                "--email",
                "it@x.example",
                "--access-by",
                "email",
            ],
            "--slug",
        ),
        (
            vec![
                "org",
                "create",
                "--slug",
                "x",
                "--email",
                "it@x.example",
                "--access-by",
                "email",
            ],
            "--name",
        ),
        (
            vec![
                "org",
                "create",
                "--slug",
                "x",
                "--name",
                "X",
                "--email",
                "nope",
                "--access-by",
                "email",
            ],
            "--email: \"nope\" is not an email address",
        ),
        (
            vec![
                "org",
                "create",
                "--slug",
                "acme",
                "--name",
                "X",
                "--email",
                "it@x.example",
                "--access-by",
                "email",
            ],
            "the slug \"acme\" is taken",
        ),
        (
            vec!["org", "show", "--slug", "nosuch"],
            "no organization nosuch",
        ),
        (
            vec![
                "org",
                "remove-member",
                "--slug",
                "acme",
                "--email",
                "zed@acme.example",
            ],
            "zed@acme.example is not a member of acme",
        ),
    ];
    let mut failures = Vec::new();
    for (args, want) in &cases {
        let out = server.admin(args);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !err.contains(want) {
            failures.push(format!(
                "{args:?}: exit {:?}, {err:?}, want {want:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let list = admin_json(&server, &["org", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// `org update` replaces what it gives and keeps the rest; `add-member` and `remove-member`
/// change the list (the account joins and leaves); `--role` replaces the organization's
/// grants; every change is audited with before and after; `--json` gives one document.
#[tokio::test]
async fn update_replaces_what_it_gives_and_members_come_and_go() {
    let upstream = Upstream::start();
    // A configured provider (discovery is fetched only at a sign-in, never here).
    let server = org_server(
        &upstream,
        "\n[[identity_provider]]\nid = \"google\"\nkind = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
    );
    // A provider that is not configured is refused, naming the ones that are.
    let err = admin_refused(
        &server,
        &[
            "org",
            "create",
            "--slug",
            "other",
            "--name",
            "Other",
            "--email",
            "it@other.example",
            "--access-by",
            "email",
            "--provider",
            "okta",
        ],
    );
    assert!(
        err.contains("--provider")
            && err.contains("\"okta\"")
            && err.contains("configured: google"),
        "{err}"
    );
    create_email_org(
        &server,
        "acme",
        &["ann@acme.example", "bob@acme.example"],
        &["limited@crm"],
        &["--provider", "google"],
    );
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    let o = admin_json(
        &server,
        &[
            "org",
            "update",
            "--slug",
            "acme",
            "--name",
            "Acme Corporation",
            "--role",
            "modify@crm",
        ],
    );
    let org = &o["org"];
    assert_eq!(org["name"], "Acme Corporation");
    assert_eq!(org["email"], "it@acme.example", "kept");
    assert_eq!(org["providers"], serde_json::json!(["google"]), "kept");
    assert_eq!(
        org["roles"],
        serde_json::json!([{ "role": "modify", "app": "crm" }]),
        "replaced"
    );
    let members: Vec<&str> = org["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["ann@acme.example", "bob@acme.example"], "kept");
    // The list replaced: ann is no longer listed, so no longer a member.
    let o = admin_json(
        &server,
        &[
            "org",
            "update",
            "--slug",
            "acme",
            "--member",
            "bob@acme.example",
            "--member",
            "cy@acme.example",
        ],
    );
    assert_eq!(o["effects"]["left"], 1, "{o}");
    let ann = admin_json(&server, &["user", "show", "--email", "ann@acme.example"]);
    assert_eq!(ann["org"], Value::Null);
    let out = server.admin_ok(&[
        "org",
        "add-member",
        "--slug",
        "acme",
        "--email",
        "ANN@acme.example",
    ]);
    assert!(out.contains("1 user(s) joined"), "{out}");
    let ann = admin_json(&server, &["user", "show", "--email", "ann@acme.example"]);
    assert_eq!(ann["org"]["slug"], "acme");
    assert_eq!(ann["org"]["roles"][0]["role"], "modify");
    let again = admin_json(
        &server,
        &[
            "org",
            "add-member",
            "--slug",
            "acme",
            "--email",
            "ann@acme.example",
        ],
    );
    assert_eq!(again["changed"], false);
    server.admin_ok(&[
        "org",
        "remove-member",
        "--slug",
        "acme",
        "--email",
        "ann@acme.example",
    ]);
    let ann = admin_json(&server, &["user", "show", "--email", "ann@acme.example"]);
    assert_eq!(ann["org"], Value::Null);
    let shown = server.admin_ok(&["org", "show", "--slug", "acme"]);
    assert!(
        shown.contains("Acme Corporation") && !shown.contains("ann@"),
        "{shown}"
    );
    // Audited with before and after.
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    let update = trail
        .iter()
        .find(|e| e["action"] == "org.update")
        .expect("org.update audited");
    assert_eq!(update["details"]["before"]["name"], "Acme Ltd");
    assert_eq!(update["details"]["after"]["name"], "Acme Corporation");
    for action in ["org.create", "org.member.add", "org.member.remove"] {
        assert!(
            trail
                .iter()
                .any(|e| e["action"] == action && e["target"] == "acme"),
            "{action}"
        );
    }
    let text = server.admin_ok(&["org", "update", "--help"]);
    assert!(text.contains("replaces that attribute"), "{text}");
}

/// SPEC: grants naming an app that is not configured are refused, and roles must exist —
/// for a user (`grant --app`, `user create --role R@APP`) and for an organization (`grant
/// --org`, `org create --role`) alike; `--user` and `--org` are exclusive. Nothing is made.
#[tokio::test]
async fn grants_name_configured_apps_and_existing_roles() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &[], &[], &[]);
    server.create_user("sam@corp.example", GOOD_PASSWORD, &[]);
    let nosuch_app = "no app \"nosuch\" is configured (configured: crm)";
    let refusals: [(&[&str], &str); 7] = [
        (
            &[
                "grant",
                "--user",
                "sam@corp.example",
                "--role",
                "modify",
                "--app",
                "nosuch",
            ],
            nosuch_app,
        ),
        (
            &[
                "grant", "--org", "acme", "--role", "modify", "--app", "nosuch",
            ],
            nosuch_app,
        ),
        (
            &["grant", "--org", "acme", "--role", "nosuchrole"],
            "no role named \"nosuchrole\"",
        ),
        (
            &["grant", "--org", "nosuch", "--role", "modify"],
            "no organization nosuch",
        ),
        (
            &[
                "org",
                "create",
                "--slug",
                "initech",
                "--name",
                "I",
                "--email",
                "it@initech.example",
                "--access-by",
                "email",
                "--role",
                "modify@nosuch",
            ],
            nosuch_app,
        ),
        (
            &[
                "user",
                "create",
                "--email",
                "new@corp.example",
                "--role",
                "modify@nosuch",
            ],
            nosuch_app,
        ),
        (
            &[
                "user",
                "create",
                "--email",
                "new@corp.example",
                "--role",
                "nosuchrole@crm",
            ],
            "nosuchrole",
        ),
    ];
    for (args, want) in refusals {
        let err = admin_refused(&server, args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let both = server.admin(&[
        "grant",
        "--user",
        "sam@corp.example",
        "--org",
        "acme",
        "--role",
        "modify",
    ]);
    assert!(!both.status.success(), "--user and --org together");
    let neither = server.admin(&["grant", "--role", "modify"]);
    assert!(
        !neither.status.success(),
        "one of --user and --org is required"
    );
    assert!(
        server
            .admin(&["user", "show", "--email", "new@corp.example"])
            .status
            .code()
            == Some(2)
    );
    assert_eq!(
        admin_json(&server, &["org", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let acme = admin_json(&server, &["org", "show", "--slug", "acme"]);
    assert_eq!(acme["roles"], serde_json::json!([]));
    // What is configured passes.
    server.admin_ok(&["grant", "--org", "acme", "--role", "modify", "--app", "crm"]);
    server.admin_ok(&[
        "grant",
        "--user",
        "sam@corp.example",
        "--role",
        "limited",
        "--app",
        "crm",
    ]);
    let r = admin_json(
        &server,
        &[
            "revoke", "--org", "acme", "--role", "modify", "--app", "crm",
        ],
    );
    assert_eq!(r["changed"], true);
}

/// SPEC: in audit views a full access administrator sees `Org display name (person@domain)`
/// for an organization member's actions, everyone else `Org display name`
/// (`admin audit --as`). What counts is membership when the person acted: ann's sign-in
/// before she was listed shows her address to everyone, and the organization's name stays
/// on her member events after it is deleted; staff are shown by address alike.
#[tokio::test]
async fn the_audit_trail_shows_members_by_organization_to_each_viewer() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    server.create_user("root@corp.example", GOOD_PASSWORD, &["admin"]);
    server.create_user("sam@corp.example", GOOD_PASSWORD, &["limited@crm"]);
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    sign_in(&server, "ann@acme.example").await;
    create_email_org(&server, "acme", &["ann@acme.example"], &["modify@crm"], &[]);
    let mut ann = sign_in(&server, "ann@acme.example").await;
    assert_eq!(ann.get("/crm/admin/x").await.status, 200);
    sign_in(&server, "sam@corp.example").await;
    let actors = |viewer: &str| -> Vec<String> {
        let all: Vec<Value> =
            serde_json::from_str(&server.admin_ok(&["audit", "--as", viewer, "--format", "json"]))
                .unwrap();
        all.iter()
            .filter(|e| e["action"] == "signin" && e["outcome"] == "success")
            .map(|e| e["actor"].as_str().unwrap().to_string())
            .collect()
    };
    let full = [
        "user:ann@acme.example",
        "Acme Ltd (ann@acme.example)",
        "user:sam@corp.example",
    ];
    assert_eq!(actors("root@corp.example"), full);
    assert_eq!(
        actors("sam@corp.example"),
        ["user:ann@acme.example", "Acme Ltd", "user:sam@corp.example"]
    );
    // Nor is her address read off the target of her own events, in JSON or CSV.
    let as_sam: Vec<Value> = serde_json::from_str(&server.admin_ok(&[
        "audit",
        "--as",
        "sam@corp.example",
        "--format",
        "json",
    ]))
    .unwrap();
    let hers: Vec<&Value> = as_sam.iter().filter(|e| e["actor"] == "Acme Ltd").collect();
    assert!(!hers.is_empty());
    for e in hers {
        assert!(!e.to_string().contains("ann@"), "{e}");
    }
    let csv = server.admin_ok(&["audit", "--as", "sam@corp.example", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().filter(|l| l.contains(",Acme Ltd,")).collect();
    assert!(!lines.is_empty(), "{csv}");
    assert!(lines.iter().all(|l| !l.contains("ann@")), "{csv}");
    assert!(!csv.contains("Acme Ltd ("), "{csv}");
    // The organization deleted: its name when she acted.
    server.admin_ok(&["org", "delete", "--slug", "acme"]);
    assert_eq!(actors("root@corp.example"), full);
    assert_eq!(actors("sam@corp.example")[1], "Acme Ltd");
    let err = admin_refused(&server, &["audit", "--as", "ghost@corp.example"]);
    assert!(err.contains("--as"), "{err}");
}

/// Anonymizing a member replaces their address everywhere it is personal data: it leaves the
/// organization's member list and the pseudonym belongs to no organization, while the events
/// they made as a member still show the organization.
#[tokio::test]
async fn anonymizing_a_member_takes_their_address_off_the_list() {
    let upstream = Upstream::start();
    let server = org_server(&upstream, "");
    create_email_org(&server, "acme", &["ann@acme.example"], &[], &[]);
    server.create_user("ann@acme.example", GOOD_PASSWORD, &[]);
    sign_in(&server, "ann@acme.example").await;
    let out = admin_json(
        &server,
        &["user", "anonymize", "--email", "ann@acme.example"],
    );
    let pseudonym = out["pseudonym"].as_str().unwrap().to_string();
    let org = admin_json(&server, &["org", "show", "--slug", "acme"]);
    assert_eq!(org["members"], serde_json::json!([]), "{org}");
    let user = admin_json(&server, &["user", "show", "--email", &pseudonym]);
    assert_eq!(user["org"], Value::Null, "{user}");
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    let signin = trail
        .iter()
        .find(|e| e["action"] == "signin" && e["outcome"] == "success")
        .unwrap();
    assert_eq!(signin["actor"], format!("Acme Ltd ({pseudonym})").as_str());
}
