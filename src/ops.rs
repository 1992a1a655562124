//! What operators and machines ask the gateway about itself: liveness (`/healthz`), readiness
//! (`/readyz`: the database answers), Prometheus metrics (`/metrics`, see `metrics`), and the
//! keys that verify assertions (`/.well-known/jwks.json`).

use crate::core::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + crate::web::client::TrustedProxies + 'static,
    AppState: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(get_metrics))
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

/// `GET /metrics`. A request whose peer address is unknown is refused (never taken for
/// loopback).
pub async fn get_metrics(State(core): State<AppState>, req: Request) -> Response {
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let xff = req.headers().get("x-forwarded-for");
    if !crate::metrics::may_read(
        &core.config.server,
        peer.map(|c| c.0.ip()),
        xff.and_then(|v| v.to_str().ok()),
    ) {
        return crate::error::json(
            StatusCode::FORBIDDEN,
            "Metrics are served only to the addresses in server.metrics_allow.",
        );
    }
    let Some(handle) = core.metrics.handle.get() else {
        return crate::error::json(StatusCode::SERVICE_UNAVAILABLE, "No metrics recorder.");
    };
    publish(&core).await;
    handle.run_upkeep();
    let mut r = handle.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Hands the recorder what is read at scrape time.
async fn publish(core: &crate::core::Core) {
    let m = &core.metrics;
    for (idx, app) in core.config.apps.iter().enumerate() {
        for o in crate::metrics::Outcome::PROXIED {
            metrics::counter!(
                "gatehouse_proxy_requests_total",
                "app" => app.id.clone(),
                "outcome" => o.label()
            )
            .absolute(m.proxy.total(idx, o));
        }
        for o in crate::metrics::Outcome::VERIFIED {
            metrics::counter!(
                "gatehouse_verify_requests_total",
                "app" => app.id.clone(),
                "outcome" => o.label()
            )
            .absolute(m.verify.total(idx, o));
        }
        if let Some(licensed) = app.modify_seats {
            let idle = app.seat_idle_timeout.as_secs() as i64;
            let now = crate::store::now();
            match core.store.seats_in_use(&app.id, now, idle).await {
                Ok(n) => {
                    metrics::gauge!("gatehouse_seats_in_use", "app" => app.id.clone()).set(n as f64)
                }
                Err(e) => {
                    tracing::warn!(app = %app.id, error = %e, "could not count the seats in use for /metrics")
                }
            }
            metrics::gauge!("gatehouse_seats_licensed", "app" => app.id.clone())
                .set(f64::from(licensed));
        }
    }
    match core.store.deprovisioning_counts().await {
        Ok(rows) => {
            for (_, step, n) in rows.into_iter().filter(|r| r.0 == "administrator") {
                metrics::counter!("gatehouse_admin_deprovisioning_total", "step" => step)
                    .absolute(n.max(0) as u64);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the deprovisioning counts for /metrics")
        }
    }
    metrics::gauge!("gatehouse_sessions_cached").set(core.sessions.cached_count().await as f64);
    metrics::gauge!("gatehouse_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!("gatehouse_start_time_seconds").set(m.started as f64);
}
