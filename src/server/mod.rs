//! The front door: the serving workers and their listeners (`workers`), TLS (`tls`), and the
//! HTTP/1.1 engine (`http1`); HTTP/2, upgrades and everything out of the ordinary are hyper's.
//!
//! The server knows nothing of apps, sessions or the router: it hands every request to a
//! [`Dispatch`] (the gateway, `app::Gateway`), which answers it. Dependencies point one way:
//! `app` and `proxy` use `server`, never the reverse.

pub mod http1;
pub mod tls;
mod workers;

pub use workers::{
    ALREADY_SERVED, Workers, bind, ensure_free, limit_allocator_arenas, serve_with_hyper,
    worker_slot,
};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http1::{Conn, Fast, Head};
use std::borrow::Cow;
use std::net::SocketAddr;

/// What answers the requests the server reads: the gateway.
pub trait Dispatch: Clone + Send + Sync + 'static {
    /// The dispatcher's own state for one client connection, carried by it and opaque to the
    /// engine (the relay's kept upstream connection, remembered session, scratch buffers).
    type Slot: Send;

    /// A fresh slot for a new connection.
    fn slot(&self) -> Self::Slot;

    /// The request target the dispatcher routes, judges and forwards, with where its path ends;
    /// `None` when the target must be refused (hyper then serves the connection, and refuses it
    /// as it would on every other transport).
    fn canonical_target(target: &str) -> Option<(Cow<'_, str>, usize)>;

    /// The fast path for an ordinary HTTP/1.1 request: answered on the connection, or sent on
    /// to `call` (bridged) or to hyper. The head's target is canonical already.
    fn fast(&self, c: &mut Conn<Self::Slot>, head: &Head) -> impl Future<Output = Fast> + Send;

    /// Answers one request (bridged from the engine, or read by hyper).
    fn call(
        &self,
        peer: SocketAddr,
        req: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + use<Self>;

    /// Whether a request is for an app (else for the gateway's own pages and APIs).
    fn is_app_request(&self, head: &Head) -> bool;

    /// A refusal of the gateway's own (a page or a short text), for what the engine refuses
    /// itself: an oversized body, an unreadable target.
    fn refusal(&self, status: StatusCode, html: bool, message: &'static str) -> Response<Body>;

    /// The connection is done with its slot (closed, or handed to hyper): keep what can be
    /// reused (an upstream connection) elsewhere.
    fn release(&self, slot: &mut Self::Slot);
}
