//! The running service: router assembly (each feature brings its own routes), the dispatch of
//! every request to the proxy or the router (`Gateway`, the server's `server::Dispatch`), and
//! serving with graceful shutdown.

use crate::config::Config;
use crate::core::{AppState, BoxError, Core};
use crate::crypto;
use crate::proxy::Proxy;
use crate::revocation;
use crate::server::http1::{Conn, Fast, Head};
use crate::store;
use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, StatusCode, header};
use std::sync::Arc;
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

/// Nothing here. A request from this machine for a host that is neither the gateway's nor an
/// app's is told which hosts are configured (the usual first-hour slip: `127.0.0.1` for an app
/// on `localhost`); anyone else — including whatever a proxy on this machine forwards — learns
/// nothing about the configuration.
async fn not_found(
    axum::extract::State(core): axum::extract::State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // From this machine itself, not through a proxy on it (which would forward strangers).
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let local = peer.ip().is_loopback() && !forwarded;
    let known = host == core.config.public_host() || core.config.is_app_host(&host);
    if !local || known {
        return crate::error::AppError::NotFound.into_response();
    }
    let mut hosts = vec![format!(
        "{} (this gateway's public URL)",
        core.config.public_host()
    )];
    hosts.extend(
        core.config
            .apps
            .iter()
            .map(|a| format!("{}{} (app {})", a.host, a.path_prefix, a.id)),
    );
    crate::error::render(
        StatusCode::NOT_FOUND,
        crate::web::request::accepts_html(&headers),
        &format!(
            "No app is configured for the host {host:?}. This gateway answers for: {}. (Shown \
             only to requests from this machine.)",
            hosts.join("; ")
        ),
    )
}

/// What the routers' handlers take their state from: the shared core, and the proxy's state
/// (which holds the core as well) for forward-auth. Each feature's handlers ask only for
/// the part they use (`State<AppState>`, `State<Arc<Proxy>>`).
#[derive(Clone)]
pub struct Shared {
    core: AppState,
    proxy: Arc<Proxy>,
    sso: Arc<crate::sso::Sso>,
}

impl FromRef<Shared> for Arc<crate::sso::Sso> {
    fn from_ref(s: &Shared) -> Arc<crate::sso::Sso> {
        s.sso.clone()
    }
}

impl FromRef<Shared> for AppState {
    fn from_ref(s: &Shared) -> AppState {
        s.core.clone()
    }
}

impl FromRef<Shared> for Arc<Proxy> {
    fn from_ref(s: &Shared) -> Arc<Proxy> {
        s.proxy.clone()
    }
}

impl crate::web::client::TrustedProxies for Shared {
    fn trusted_proxies(&self) -> &[ipnet::IpNet] {
        &self.core.config.server.trusted_proxies
    }
}

/// The gateway's own cookies, which the proxy never passes to an upstream nor lets one set:
/// the session's, the CSRF token's, the handoff state's and the upstream sign-in's.
fn gateway_cookies(core: &Core) -> Vec<String> {
    vec![
        core.config.session_cookie_name().to_string(),
        core.csrf.cookie_name.clone(),
        crate::auth::handoff::STATE_COOKIE.to_string(),
        crate::sso::flow::BROWSER_COOKIE.to_string(),
    ]
}

/// The proxy's state over the shared core, as `serve` builds it (tests build it the same way).
pub fn proxy(core: AppState) -> Arc<Proxy> {
    let cookies = gateway_cookies(&core);
    Arc::new(Proxy::new(core, cookies))
}

/// The gateway's own pages get strict security headers and are never cached.
fn pages(routes: Router<Shared>, policy: HeaderValue) -> Router<Shared> {
    routes
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            policy,
        ))
}

/// The full router: each feature's routes, merged.
pub fn router(proxy: Arc<Proxy>, sso: Arc<crate::sso::Sso>) -> Router {
    let policy = crate::web::policy::page_policy(&proxy.core.config);
    Router::new()
        .merge(crate::ops::routes())
        .merge(pages(crate::auth::routes(), policy.clone()))
        .merge(pages(crate::sso::routes(), policy))
        .merge(crate::proxy::routes())
        .merge(crate::scim::routes())
        .fallback(not_found)
        .with_state(Shared {
            core: proxy.core.clone(),
            proxy,
            sso,
        })
}

/// Answers every request: one for an app (by host and path prefix) goes straight to the
/// proxy, before any routing; the rest to the gateway's own pages and endpoints.
#[derive(Clone)]
pub struct Gateway {
    proxy: Arc<Proxy>,
    router: Router,
}

impl Gateway {
    pub fn new(proxy: Arc<Proxy>, sso: Arc<crate::sso::Sso>) -> Gateway {
        Gateway {
            router: router(proxy.clone(), sso),
            proxy,
        }
    }

    /// Answers one request through the proxy (for an app) or the router.
    pub fn call(
        &self,
        peer: std::net::SocketAddr,
        mut req: hyper::Request<axum::body::Body>,
    ) -> impl Future<Output = hyper::Response<axum::body::Body>> + Send + use<> {
        let proxy = self.proxy.clone();
        enum To {
            App(usize),
            Router(Router),
            Refused(hyper::Response<axum::body::Body>),
        }
        let to = match crate::web::request::admit(&mut req) {
            Err(refusal) => {
                To::Refused(refusal.response(crate::web::request::accepts_html(req.headers())))
            }
            Ok(()) => match proxy.route(&req) {
                Ok(Some(idx)) => To::App(idx),
                Ok(None) => To::Router(self.router.clone()),
                Err(crate::proxy::routes::Ambiguous) => {
                    To::Refused(crate::proxy::forward::gateway_error(
                        StatusCode::BAD_REQUEST,
                        crate::web::request::accepts_html(req.headers()),
                        "The request path reads differently to different servers (case, ;parameters or trailing dots); send it as the application spells it.",
                    ))
                }
            },
        };
        async move {
            match to {
                To::App(idx) => crate::proxy::handle(proxy, idx, peer, req).await,
                To::Refused(r) => r,
                To::Router(router) => {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    match tower::ServiceExt::oneshot(router, req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
            }
        }
    }
}

/// The server's view of the gateway: the proxy's fast path (`proxy::relay`) first, the rest
/// through `call`.
impl crate::server::Dispatch for Gateway {
    type Slot = crate::proxy::relay::Slot;

    fn slot(&self) -> Self::Slot {
        crate::proxy::relay::Slot::default()
    }

    fn canonical_target(target: &str) -> Option<(std::borrow::Cow<'_, str>, usize)> {
        crate::web::target::canonical_split(target).ok()
    }

    /// The head's target is canonical already (`server::http1`). An ambiguous one is bridged
    /// to the router, which refuses it.
    async fn fast(&self, c: &mut Conn<Self::Slot>, head: &Head) -> Fast {
        match self.proxy.routes.route(head.host(), head.path()) {
            Ok(Some(idx)) => crate::proxy::relay::relay(&self.proxy, idx, c, head).await,
            _ => Fast::Bridge,
        }
    }

    fn call(
        &self,
        peer: std::net::SocketAddr,
        req: hyper::Request<axum::body::Body>,
    ) -> impl Future<Output = hyper::Response<axum::body::Body>> + Send + use<> {
        Gateway::call(self, peer, req)
    }

    fn is_app_request(&self, head: &Head) -> bool {
        !matches!(self.proxy.routes.route(head.host(), head.path()), Ok(None))
    }

    fn refusal(
        &self,
        status: StatusCode,
        html: bool,
        message: &'static str,
    ) -> hyper::Response<axum::body::Body> {
        crate::proxy::forward::gateway_error(status, html, message)
    }

    fn release(&self, slot: &mut Self::Slot) {
        slot.release(&self.proxy);
    }
}

/// First run: while no administrator exists, each start prints a fresh one-time setup link.
async fn announce_setup(core: &Core) -> Result<(), BoxError> {
    if core.store.count_admins().await? > 0 {
        return Ok(());
    }
    let token = crypto::random_token();
    let now = store::now();
    core.store
        .insert_setup_token(&crypto::sha256_hex(token.as_bytes()), now, now + 24 * 3600)
        .await?;
    let link = core.public_url(&format!("/setup?token={token}"));
    tracing::warn!(setup_link = %link, "no administrator yet: open the setup link to create the first one (valid 24h, single use)");
    Ok(())
}

/// Once a minute, records how many modify seats each metered app has in use (the licence
/// report's quiet minutes; busy minutes are recorded at each admission).
async fn sample_seats(core: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        for app in core.config.apps.iter().filter(|a| a.modify_seats.is_some()) {
            let licensed = app.modify_seats.unwrap_or(0) as i64;
            let idle = app.seat_idle_timeout.as_secs() as i64;
            if let Err(e) = core
                .store
                .sample_seat_usage(&app.id, licensed, store::now(), idle)
                .await
            {
                tracing::warn!(app = %app.id, error = %e, "seat usage sample failed");
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn serve(config: Config) -> Result<(), BoxError> {
    let grace = config.server.shutdown_grace;
    let listen = config.server.listen;
    // Refused before the database is touched (no migrations, no setup link) when another
    // process serves the address; `bind` checks again just before binding.
    crate::server::ensure_free(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let core = Core::open(config).await?;
    core.metrics.install()?;
    announce_setup(&core).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let instance_id = uuid::Uuid::now_v7().to_string();
    let follower = tokio::spawn(revocation::follow(
        core.store.clone(),
        core.revocation.clone(),
        instance_id,
        stop_rx.clone(),
    ));

    let sampler = tokio::spawn(sample_seats(core.clone()));
    let sso = crate::sso::Sso::new(core.clone())?;
    let sso_refresh = tokio::spawn(sso.providers.clone().refresh_forever());
    let sso_sweep = tokio::spawn(sso.clone().sweep_forever());
    let sso_revalidate = tokio::spawn(sso.clone().revalidate_forever());
    let mailer = {
        let core = core.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move { core.mail.run(core.store.clone(), &core.keys, stop).await })
    };

    let workers = core.config.server.workers;
    let listeners = crate::server::bind(listen, workers)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listeners[0].local_addr()?;
    tracing::info!(%addr, workers, public_url = %core.config.server.public_url, "gatehouse listening");

    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let tls = (core.config.server.tls.as_ref())
        .map(|t| crate::server::tls::server_config(t.certs.clone()));
    let mut running = crate::server::Workers::start(
        listeners,
        Gateway::new(proxy(core.clone()), sso),
        tls,
        drain_rx,
    )?;
    shutdown_signal().await;
    tracing::info!(grace = ?grace, "shutting down: draining in-flight requests");
    let _ = drain_tx.send(true);
    let drained = running.drained(grace).await;
    let _ = stop_tx.send(true);
    sampler.abort();
    sso_refresh.abort();
    sso_sweep.abort();
    sso_revalidate.abort();
    let _ = mailer.await;
    let _ = follower.await;
    if drained {
        tracing::info!("all requests drained");
        // The workers still drive the database connections they opened while the pool closes.
        core.store.close().await;
        let _ = tokio::task::spawn_blocking(move || running.stop()).await;
    } else {
        tracing::warn!("grace period over; closing remaining connections");
        let _ = tokio::task::spawn_blocking(move || running.stop()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), core.store.close()).await;
    }
    Ok(())
}
