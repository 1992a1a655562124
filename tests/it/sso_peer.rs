//! Upstream sign-in against a real OpenID provider nobody here wrote (`oidc-provider`, the
//! peer of `peers::oidc`): discovery, PKCE S256, RFC 9207 `iss`, RS256 ID tokens, a refresh
//! token, the person's login and consent at the provider — then the app through the proxy.
//!
//! The peer must know the gateway's callback before it starts and the gateway the peer's
//! issuer: the gateway's public URL is a loopback port this test holds (forwarded to the
//! port the gateway listens on), so the callback is known first.

use crate::harness::*;
use crate::peers::oidc::{OidcPeer, PeerClient, PeerConfig, account};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

/// Accepts on a port of its own and forwards each connection to `target` (set later).
fn forwarder() -> (u16, Arc<AtomicU16>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = Arc::new(AtomicU16::new(0));
    let t = target.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let to = t.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
    });
    (port, target)
}

#[tokio::test]
async fn a_real_openid_provider_signs_an_invited_user_in_to_the_app() {
    let (public_port, target) = forwarder();
    let public = format!("http://127.0.0.1:{public_port}");
    let callback = format!("{public}/.gatehouse/sso/peer/callback");
    let mut config = PeerConfig::new(PeerClient::new(
        "gatehouse",
        "peer-client-secret",
        &callback,
    ))
    .account(
        "ada",
        account("ada-sub-1", "ada@example.test", "Ada Lovelace"),
    );
    config.refresh_tokens = true;
    let peer = OidcPeer::start(&config);
    let sections = format!(
        r#"
[[identity_provider]]
id = "peer"
kind = "oidc"
name = "Peer"
client_id = "gatehouse"
client_secret = "peer-client-secret"
issuer = "{issuer}"
scopes = ["openid", "email", "profile", "offline_access"]

[[app]]
id = "whoami"
host = "127.0.0.1:{public_port}"
path_prefix = "/whoami/"
upstream = "builtin:whoami"
allow_roles = ["limited"]
"#,
        issuer = peer.issuer
    );
    let server = Server::start_with(Options {
        sections,
        env: vec![("GATEHOUSE_SERVER__PUBLIC_URL".into(), public.clone())],
        port: None,
        ..Default::default()
    });
    target.store(server.port, Ordering::SeqCst);
    server.admin_ok(&[
        "invite",
        "--email",
        "ada@example.test",
        "--role",
        "limited",
        "--provider",
        "peer",
    ]);

    let mut b = Browser::new(&public);
    let login = b.get("/login?rd=/whoami/").await;
    let html = login.body.replace("&#x2f;", "/");
    assert!(
        html.contains("href=\"/.gatehouse/sso/peer?rd=") && html.contains(">Peer</a>"),
        "no button: {html}"
    );
    let r = b.get("/.gatehouse/sso/peer?rd=/whoami/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let answer = peer.browser().sign_in(&r.location(), "ada").await;
    assert_eq!(answer.error(), None, "{}\n{}", answer.url, peer.logs());
    assert!(answer.iss().is_some(), "the peer sends RFC 9207 iss");
    let r = b.get(answer.url.as_str()).await;
    assert_eq!(r.status, 303, "callback: {}\n{}", r.body, server.logs());
    assert_eq!(r.location(), "/whoami/");
    let page = b.get_json("/whoami/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(seen["headers"]["x-gatehouse-email"], "ada@example.test");
    let jws = seen["headers"]["x-gatehouse-assertion"]
        .as_str()
        .unwrap()
        .to_string();
    let jwks: Value = reqwest::get(format!("{public}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        verify_es256(&jws, &jwks).unwrap()["amr"],
        json!(["sso:peer"])
    );
    // The peer granted a refresh token: kept, sealed.
    let rows = crate::sso::query_strings(
        &server,
        "SELECT upstream_refresh_token FROM sessions WHERE upstream_provider = 'peer'",
    )
    .await;
    assert!(rows.len() == 1 && rows[0].starts_with("v1."), "{rows:?}");

    // A replayed answer is refused.
    let r = b.get(answer.url.as_str()).await;
    assert_eq!(r.status, 400);
}
