//! The running service: shared state, router assembly, serve with graceful shutdown.

use crate::auth::csrf::Csrf;
use crate::auth::lockout::Lockout;
use crate::auth::password::Passwords;
use crate::auth::session::Sessions;
use crate::config::{Config, MasterKey};
use crate::crypto::{self, Keys};
use crate::revocation::{self, Invalidate};
use crate::store::{self, Store};
use crate::web::{Templates, client::TrustedProxies, cookies::CookieSpec};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything a request or a CLI command needs; no HTTP types inside.
pub struct Core {
    pub config: Config,
    pub store: Store,
    pub keys: Keys,
    pub passwords: Passwords,
    pub lockout: Lockout,
    pub sessions: Arc<Sessions>,
    pub templates: Templates,
    pub csrf: Csrf,
    pub signer: crate::crypto::signing::Signer,
    pub proxy: crate::proxy::Proxy,
    pub metrics: crate::metrics::Metrics,
}

pub type AppState = Arc<Core>;

impl TrustedProxies for Core {
    fn trusted_proxies(&self) -> &[ipnet::IpNet] {
        &self.config.server.trusted_proxies
    }
}

/// Resolves the master key, creating the dev key file when the config allows it.
fn master_key(config: &Config) -> Result<Vec<u8>, BoxError> {
    match &config.secrets.master_key {
        MasterKey::Loaded(k) => Ok(k.expose().clone()),
        MasterKey::CreateAt(path) => {
            let key = crypto::random_bytes::<32>();
            let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            std::io::Write::write_all(&mut opts.open(path)?, text.as_bytes())?;
            tracing::warn!(
                path = %path.display(),
                "created a new master key file (secrets.create_if_missing); keep it safe and back it up"
            );
            Ok(key.to_vec())
        }
    }
}

impl Core {
    /// Connects, migrates, applies config-declared roles.
    pub async fn open(config: Config) -> Result<Arc<Core>, BoxError> {
        let key = master_key(&config)?;
        let store = Store::connect(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .await?;
        store.migrate().await?;
        let now = store::now();
        for r in &config.roles {
            store
                .upsert_role(&r.name, &r.seat, &r.description, now)
                .await?;
        }
        let keys = Keys::new(&key);
        let signer = crate::crypto::signing::Signer::load_or_create(&store, &keys).await?;
        let csrf = Csrf::new(config.public_is_https(), config.session_cookie_name());
        let gateway_cookies = vec![
            config.session_cookie_name().to_string(),
            csrf.cookie_name.clone(),
            crate::proxy::handoff::STATE_COOKIE.to_string(),
        ];
        Ok(Arc::new(Core {
            keys,
            signer,
            proxy: crate::proxy::Proxy::new(&config, gateway_cookies),
            metrics: crate::metrics::Metrics::new(config.apps.len(), config.server.workers),
            passwords: Passwords::new(&config.password_hashing)?,
            lockout: Lockout::new(config.lockout.clone()),
            sessions: Arc::new(Sessions::new(config.session.clone())),
            templates: Templates::new(),
            csrf,
            store,
            config,
        }))
    }

    /// Applies an invalidation here at once and publishes it to every other instance.
    pub async fn invalidate(&self, what: Invalidate) -> store::Result<i64> {
        match &what {
            Invalidate::Session(h) => self.sessions.forget_token_hash(h).await,
            Invalidate::User(u) => self.sessions.forget_user(u).await,
        }
        revocation::publish(&self.store, &what).await
    }

    pub fn cookie_spec(&self) -> CookieSpec<'_> {
        CookieSpec {
            secure: self.config.public_is_https(),
            domain: self.config.session.cookie_domain.as_deref(),
        }
    }

    pub fn public_url(&self, path: &str) -> String {
        let mut base = self
            .config
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_string();
        base.push_str(path);
        base
    }
}

async fn not_found() -> crate::error::AppError {
    crate::error::AppError::NotFound
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

/// The full router. Gateway pages get strict security headers and are never cached.
pub fn router(core: AppState) -> Router {
    let pages = crate::auth::routes()
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
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ));
    let gateway = Router::new()
        .route("/.gatehouse/verify", get(crate::proxy::verify::get_verify))
        .route(
            "/.gatehouse/callback",
            get(crate::proxy::handoff::get_callback),
        )
        .route(
            "/.gatehouse/login",
            get(crate::proxy::handoff::get_app_login),
        )
        .route(
            "/.gatehouse/handoff",
            get(crate::proxy::handoff::get_handoff),
        )
        .route(
            "/.gatehouse/logout",
            get(crate::proxy::handoff::get_logout).post(crate::proxy::handoff::post_logout),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::get_metrics))
        .route("/.well-known/jwks.json", get(crate::proxy::get_jwks))
        .merge(pages)
        .merge(gateway)
        .fallback(not_found)
        .with_state(core)
}

/// Answers every request: one for an app (by host and path prefix) goes straight to the
/// proxy, before any routing; the rest to the gateway's own pages and endpoints.
#[derive(Clone)]
pub struct Gateway {
    core: AppState,
    router: Router,
}

impl Gateway {
    pub fn new(core: AppState) -> Gateway {
        Gateway {
            router: router(core.clone()),
            core,
        }
    }

    /// The proxy's fast path for an HTTP/1.1 request (see `web::h1`, `proxy::relay`); its
    /// target is canonical already (`web::h1::parse`). An ambiguous one is bridged to the
    /// router, which refuses it.
    pub async fn fast(
        &self,
        c: &mut crate::web::h1::Conn,
        head: &crate::web::h1::Head,
    ) -> crate::proxy::relay::Fast {
        match self.core.proxy.routes.route(head.host(), head.path()) {
            Ok(Some(idx)) => crate::proxy::relay::relay(&self.core, idx, c, head).await,
            _ => crate::proxy::relay::Fast::Bridge,
        }
    }

    /// Whether a request is for an app (else for the gateway's own pages and APIs).
    pub fn is_app_request(&self, head: &crate::web::h1::Head) -> bool {
        !matches!(
            self.core.proxy.routes.route(head.host(), head.path()),
            Ok(None)
        )
    }

    /// Keeps a fast-path upstream connection for reuse.
    pub fn give_back(&self, idx: usize, up: crate::proxy::relay::UpConn) {
        self.core.proxy.upstreams.give_back(idx, up);
    }

    /// Answers one request through the proxy (for an app) or the router.
    pub fn call(
        &self,
        peer: std::net::SocketAddr,
        mut req: hyper::Request<axum::body::Body>,
    ) -> impl Future<Output = hyper::Response<axum::body::Body>> + Send + use<> {
        let core = self.core.clone();
        enum To {
            App(usize),
            Router(Router),
            Refused(hyper::Response<axum::body::Body>),
        }
        let to = match crate::web::request::admit(&mut req) {
            Err(refusal) => {
                To::Refused(refusal.response(crate::proxy::accepts_html(req.headers())))
            }
            Ok(()) => match core.proxy.route(&req) {
                Ok(Some(idx)) => To::App(idx),
                Ok(None) => To::Router(self.router.clone()),
                Err(crate::proxy::routes::Ambiguous) => {
                    To::Refused(crate::proxy::forward::gateway_error(
                        StatusCode::BAD_REQUEST,
                        crate::proxy::accepts_html(req.headers()),
                        "The request path reads differently to different servers (case, ;parameters or trailing dots); send it as the application spells it.",
                    ))
                }
            },
        };
        async move {
            match to {
                To::App(idx) => crate::proxy::handle(core, idx, peer, req).await,
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
    let core = Core::open(config).await?;
    core.metrics.install()?;
    announce_setup(&core).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let instance_id = uuid::Uuid::now_v7().to_string();
    let follower = tokio::spawn(revocation::follow(
        core.store.clone(),
        core.sessions.clone(),
        instance_id,
        stop_rx,
    ));

    let sampler = tokio::spawn(sample_seats(core.clone()));

    let workers = core.config.server.workers;
    let listeners = crate::web::server::bind(listen, workers)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listeners[0].local_addr()?;
    tracing::info!(%addr, workers, public_url = %core.config.server.public_url, "gatehouse listening");

    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let tls = core.config.server.tls.as_ref().map(|t| t.rustls.clone());
    let mut running =
        crate::web::server::Workers::start(listeners, Gateway::new(core.clone()), tls, drain_rx)?;
    shutdown_signal().await;
    tracing::info!(grace = ?grace, "shutting down: draining in-flight requests");
    let _ = drain_tx.send(true);
    let drained = running.drained(grace).await;
    let _ = stop_tx.send(true);
    sampler.abort();
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
