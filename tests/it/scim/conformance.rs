//! A real SCIM conformance checker against `/scim/v2`: `scim2-tester` (PyPI, with the
//! `scim2-client` and `scim2-models` it drives), pinned with hashes in
//! `tests/peers/scim/requirements.txt` and installed by the test (`pyvenv`). It reads the
//! discovery endpoints, then creates, reads, queries, replaces, patches and deletes Users and
//! Groups built from the published schemas, and grades each check; every check must pass.

use super::*;

const REQUIREMENTS: &str = include_str!("../../peers/scim/requirements.txt");
const CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/scim/check.py");

/// Runs the checker; every result as (title, status, reason).
fn check(server: &Server, token: &str) -> Vec<Value> {
    let python = crate::pyvenv::python("scim", REQUIREMENTS, "SCIM conformance (scim2-tester)");
    let out = std::process::Command::new(python)
        .arg(CHECK)
        .arg(format!("{}/scim/v2", server.base))
        .env("SCIM_TOKEN", token)
        .output()
        .expect("run scim2-tester");
    assert!(
        out.status.success(),
        "scim2-tester failed to run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scim2-tester output: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v.as_array().cloned().unwrap()
}

#[tokio::test]
async fn scim2_tester_passes_every_check() {
    let idp = Idp::start();
    let server = start(&idp, "");
    let results = check(&server, ENTRA_TOKEN);
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| {
            !["SUCCESS", "COMPLIANT", "ACCEPTABLE", "SKIPPED"]
                .contains(&r["status"].as_str().unwrap_or(""))
        })
        .collect();
    let titles: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{} [{}]",
                r["title"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "failed checks: {failed:#?}\nall: {titles:#?}"
    );
    // It did exercise the Users endpoints (a run that only read discovery proves little).
    for kind in ["User", "Group"] {
        for want in [
            "object_creation",
            "object_query",
            "object_replacement",
            "object_deletion",
            "check_add_attribute",
            "check_replace_attribute",
        ] {
            assert!(
                results.iter().any(|r| r["resource_type"] == kind
                    && r["status"] == "SUCCESS"
                    && r["title"] == want),
                "no successful {kind} {want} check in {titles:#?}"
            );
        }
    }
    assert!(
        results.iter().any(|r| r["resource_type"] == "User"
            && r["status"] == "SUCCESS"
            && r["title"] == "check_remove_attribute"),
        "{titles:#?}"
    );
    // With a wrong token, it gets nowhere (so the run above is the token's doing).
    let refused = check(&server, "not-the-token-at-all");
    // (Only "POST /ServiceProviderConfig is 405" holds without a token.)
    assert!(
        refused
            .iter()
            .any(|r| r["title"] == "service_provider_config_endpoint" && r["status"] == "ERROR")
            && refused
                .iter()
                .all(|r| r["status"] != "SUCCESS"
                    || r["reason"].as_str().unwrap_or("").contains("405")),
        "{refused:#?}"
    );
}
