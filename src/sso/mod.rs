//! Upstream sign-in: Google, Microsoft Entra ID and any OpenID Connect provider
//! (`[[identity_provider]]`). The registry of providers with their cached discovery and keys
//! (`provider`), the browser's round trip — start and callback (`flow`) —, the code exchange
//! and ID token validation (`token`), and who the identity signs in as (`admit`).

pub mod admit;
pub mod backchannel;
pub mod flow;
pub mod provider;
pub mod revalidate;
pub mod token;

pub use provider::Registry;

use crate::core::{AppState, Core};
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// The state of upstream sign-in: the shared core and the providers.
pub struct Sso {
    pub core: AppState,
    pub providers: Registry,
}

impl std::ops::Deref for Sso {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Sso {
    pub fn new(core: AppState) -> Result<Arc<Sso>, String> {
        let providers = Registry::new(&core.config.identity_providers)?;
        Ok(Arc::new(Sso { core, providers }))
    }

    /// Clears expired authorization requests once a minute (a request nobody came back from
    /// stays at most `flow::STATE_TTL` plus a minute).
    pub async fn sweep_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = self.store.purge_sso_states(crate::store::now()).await {
                tracing::warn!(error = %e, "could not clear expired sign-in requests");
            }
            if let Err(e) = self.store.purge_logout_tokens(crate::store::now()).await {
                tracing::warn!(error = %e, "could not clear expired logout token ids");
            }
        }
    }
}

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + crate::web::client::TrustedProxies + 'static,
    Arc<Sso>: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/.gatehouse/sso/{provider}", get(flow::get_start))
        .route(
            "/.gatehouse/sso/{provider}/callback",
            get(flow::get_callback),
        )
        .route(
            "/.gatehouse/sso/{provider}/backchannel-logout",
            post(backchannel::post_backchannel_logout),
        )
}
