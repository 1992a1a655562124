//! What operators and machines ask the gateway about itself: liveness (`/healthz`), readiness
//! (`/readyz`: the database answers), Prometheus metrics (`/metrics`, see `metrics`), and the
//! keys that verify assertions (`/.well-known/jwks.json`).

use crate::core::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::get_metrics))
        .route("/.well-known/jwks.json", get(get_jwks))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(core): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), core.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// `/.well-known/jwks.json`: the keys that verify assertions.
async fn get_jwks(State(core): State<AppState>) -> Response {
    let mut r = (StatusCode::OK, core.signer.jwks().to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
