//! The identity-aware reverse proxy: the route table, the canonical request target, the access
//! decision, identity headers and the signed assertion, forwarding, and forward-auth
//! (`/.gatehouse/verify`).

pub mod access;
pub mod forward;
mod handle;
pub mod headers;
pub mod relay;
pub mod routes;
mod state;
pub use crate::web::target;
pub mod verify;
pub mod whoami;

pub use handle::{audit_denied, forbidden, handle, seats_full, stamp_identity};
pub use state::{IdentityNames, Proxy};

use axum::extract::FromRef;
use axum::http::{HeaderValue, header};
use std::sync::Arc;

/// The gateway's own endpoint on every host that the proxy answers: forward-auth.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + crate::web::client::TrustedProxies + 'static,
    Arc<Proxy>: FromRef<S>,
{
    axum::Router::new()
        .route("/.gatehouse/verify", axum::routing::get(verify::get_verify))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
