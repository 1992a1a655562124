//! Revalidation with the upstream's refresh token, against a real OpenID provider
//! (`oidc-provider`, granting refresh tokens): while the provider confirms the grant the
//! session lives on; once the provider disables the person (the refresh answers
//! `invalid_grant`) the next revalidation ends the session; a provider that cannot be reached
//! ends nothing until `revalidate_grace` has passed, then the session ends.

use crate::harness::*;
use crate::peers::oidc::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const SECRET: &str = "gatehouse-upstream-secret-1";

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";

fn gateway_and_provider(grace: &str) -> (Server, OidcPeer) {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/.gatehouse/sso/corp/callback");
    let mut config = PeerConfig::new(PeerClient::new("gatehouse", SECRET, &redirect))
        .account("pat", account("pat-1", "pat@acme.test", "Pat"));
    config.refresh_tokens = true;
    let peer = OidcPeer::start(&config);
    let server = Server::start_with(Options {
        sections: format!(
            "{WHOAMI}\n[[identity_provider]]\nid = \"corp\"\nkind = \"oidc\"\nclient_id = \"gatehouse\"\n\
             client_secret = \"{SECRET}\"\nissuer = \"{}\"\nrevalidate_every = \"1s\"\n\
             revalidate_grace = \"{grace}\"\n",
            peer.issuer
        ),
        port: Some(port),
        ..Default::default()
    });
    server.admin_ok(&[
        "invite",
        "--email",
        "pat@acme.test",
        "--role",
        "limited@whoami",
        "--provider",
        "corp",
    ]);
    (server, peer)
}

async fn sign_in(server: &Server, peer: &OidcPeer) -> Browser {
    let mut b = server.browser();
    let r = b.get("/.gatehouse/sso/corp?rd=%2Fwhoami%2F").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let answer = peer.browser().sign_in(&r.location(), "pat").await;
    let r = b.get(answer.url.as_str()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get_json("/whoami/").await.status, 200);
    b
}

/// Waits (up to `within`) until the browser's session is refused; how long that took.
async fn refused_within(b: &mut Browser, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if b.get_json("/whoami/").await.status != 200 {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

fn revocations(server: &Server, reason: &str) -> usize {
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    trail
        .iter()
        .filter(|e| {
            e["action"] == "session.revoke"
                && e["details"]["source"] == "revalidation"
                && e["details"]["reason"] == reason
        })
        .count()
}

#[tokio::test]
async fn a_person_disabled_upstream_loses_the_session_at_the_next_revalidation() {
    let (server, peer) = gateway_and_provider("1h");
    let mut b = sign_in(&server, &peer).await;
    // Several revalidations pass (the provider confirms the grant, maybe rotating it).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        b.get_json("/whoami/").await.status,
        200,
        "{}",
        server.logs()
    );
    assert_eq!(revocations(&server, "upstream_invalid_grant"), 0);
    assert!(
        !server.logs().contains("cannot revalidate"),
        "the provider answered every check: {}",
        server.logs()
    );

    peer.disable("pat").await;
    let took = refused_within(&mut b, Duration::from_secs(15)).await;
    assert!(took.is_some(), "still signed in; logs:\n{}", server.logs());
    assert_eq!(revocations(&server, "upstream_invalid_grant"), 1);
}

#[tokio::test]
async fn an_unreachable_provider_ends_sessions_only_after_the_grace_period() {
    let (server, peer) = gateway_and_provider("6s");
    let mut b = sign_in(&server, &peer).await;
    drop(peer); // the provider is gone: every revalidation fails to connect
    let gone = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        b.get_json("/whoami/").await.status,
        200,
        "kept within the grace period; logs:\n{}",
        server.logs()
    );
    let took = refused_within(&mut b, Duration::from_secs(20)).await;
    assert!(took.is_some(), "still signed in; logs:\n{}", server.logs());
    assert!(
        gone.elapsed() >= Duration::from_secs(6),
        "{:?}",
        gone.elapsed()
    );
    assert!(server.logs().contains("cannot revalidate the session"));
    assert_eq!(revocations(&server, "revalidation_grace_passed"), 1);
}
