//! The hand-written HTTP/1.1 path (`server::http1` and `proxy::relay`) from a peer's side, in raw
//! bytes over TCP so that the framing is exactly what the test writes: pipelining, what reaches
//! the upstream (identity, hop-by-hop headers, cookies), every response framing an upstream may
//! use (with a scripted upstream that writes exact bytes), request smuggling attempts, the
//! hand-over of unusual requests to hyper, and the gateway's own pages on the same connections.

mod gateway_pages;
mod handover;
mod pipelining;
mod smuggling;
mod upstream_framing;

use crate::harness::*;
use crate::raw::*;

/// A gateway with the `crm` app under `/crm/` on its own host, relayed to `upstream`, with
/// `/crm/admin/*` back office.
fn start(upstream: &str) -> Server {
    start_env(upstream, vec![])
}

fn start_env(upstream: &str, env: Vec<(String, String)>) -> Server {
    Server::start_with(Options {
        port: None,
        sections: crm_app(upstream, "5s"),
        env,
        ..Default::default()
    })
}

/// Creates a `modify@crm` user and signs in; returns the session token and the user's id.
async fn session(server: &Server, email: &str) -> (String, String) {
    session_as(server, email, "modify@crm").await
}

async fn session_as(server: &Server, email: &str, role: &str) -> (String, String) {
    let b = signed_in(server, email, &[role]).await;
    let token = b
        .cookies
        .get("gatehouse_session")
        .expect("session cookie")
        .clone();
    (token, user_id(server, email))
}

/// A scripted upstream, a gateway relaying `crm` to it, and a signed-in session token.
async fn scripted_setup(
    script: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
) -> (Scripted, Server, String) {
    let upstream = Scripted::start(script);
    let server = start(&upstream.url);
    let (token, _) = session(&server, "raw@example.com").await;
    (upstream, server, token)
}
