//! Back-channel logout from a real OpenID provider (`oidc-provider`): the person signs out at
//! the provider, which posts its logout token to the gateway (through a relay of the test's
//! that keeps a copy); the gateway ends the session at once, and the same token sent again is
//! refused.

use crate::harness::*;
use crate::peers::oidc::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};

const SECRET: &str = "gatehouse-upstream-secret-1";

const WHOAMI: &str = "[[app]]\nid = \"whoami\"\nhost = \"127.0.0.1:{PORT}\"\npath_prefix = \"/whoami/\"\n\
                      upstream = \"builtin:whoami\"\nallow_roles = [\"limited\"]\n";

/// Relays `POST /bcl` to `target` and keeps each body; answers with the target's status.
fn relay(target: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(
                "/bcl",
                axum::routing::post(move |body: String| {
                    let (target, kept) = (target.clone(), kept.clone());
                    async move {
                        kept.lock().unwrap().push(body.clone());
                        let r = reqwest::Client::new()
                            .post(&target)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        axum::http::StatusCode::from_u16(r.status().as_u16()).unwrap()
                    }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    (port, seen)
}

#[tokio::test]
async fn signing_out_at_the_provider_ends_the_session_here_and_the_token_works_once() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/.gatehouse/sso/corp/backchannel-logout");
    let (relay_port, seen) = relay(endpoint.clone());
    let redirect = format!("http://127.0.0.1:{port}/.gatehouse/sso/corp/callback");
    let peer = OidcPeer::start(
        &PeerConfig::new(
            PeerClient::new("gatehouse", SECRET, &redirect)
                .backchannel(&format!("http://127.0.0.1:{relay_port}/bcl")),
        )
        .account("pat", account("pat-1", "pat@acme.test", "Pat")),
    );
    let server = Server::start_with(Options {
        sections: format!(
            "{WHOAMI}\n[[identity_provider]]\nid = \"corp\"\nkind = \"oidc\"\nclient_id = \"gatehouse\"\n\
             client_secret = \"{SECRET}\"\nissuer = \"{}\"\n",
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
    let mut b = server.browser();
    let r = b.get("/.gatehouse/sso/corp?rd=%2Fwhoami%2F").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut at_provider = peer.browser();
    let answer = at_provider.sign_in(&r.location(), "pat").await;
    let r = b.get(answer.url.as_str()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get_json("/whoami/").await.status, 200);

    // The person signs out at the provider: it posts a logout token before it answers.
    let discovery: Value = reqwest::get(peer.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let end_session = discovery["end_session_endpoint"].as_str().unwrap();
    let status = at_provider.sign_out(end_session).await;
    assert!(
        status < 400,
        "sign-out at the provider: {status}\n{}",
        peer.logs()
    );
    let tokens = seen.lock().unwrap().clone();
    assert_eq!(
        tokens.len(),
        1,
        "one logout token; provider logs:\n{}",
        peer.logs()
    );
    let r = b.get("/whoami/").await;
    assert_eq!(r.status, 302, "the session ended: {}", r.body);

    // The provider's own token, sent again: refused as a replay.
    let again = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(tokens[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let trail: Vec<Value> =
        serde_json::from_str(&server.admin_ok(&["audit", "--format", "json"])).unwrap();
    assert!(
        trail.iter().any(|e| e["action"] == "session.revoke"
            && e["details"]["source"] == "backchannel"
            && e["details"]["by"] == "sid"
            && e["details"]["sessions_ended"] == 1),
        "{trail:#?}"
    );
}
