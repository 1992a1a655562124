//! The configured upstream providers and what the gateway knows of each: its discovery
//! document (OpenID Connect Discovery 1.0) and its signing keys (JWKS), fetched once, cached,
//! and refreshed in the background every few hours — never per sign-in. A token signed with a
//! key id the cache does not know triggers one JWKS refresh, at most once per
//! [`KID_REFRESH_EVERY`] per provider: an upstream key rotation needs no restart, and a flood
//! of forged key ids cannot make the gateway hammer the provider.

use crate::config::{IdentityProviderConfig, ProviderKind};
use crate::error::AppError;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use url::Url;

/// How often discovery and keys are read again while all is well.
pub const REFRESH_EVERY: Duration = Duration::from_secs(6 * 3600);
/// At most one JWKS refresh for an unknown key id per provider in this time.
pub const KID_REFRESH_EVERY: Duration = Duration::from_secs(30);
/// After a failed load (provider down), the next attempt waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How the client authenticates at the token endpoint (OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
}

/// What discovery said, plus the keys of `jwks_uri`.
pub struct Discovered {
    /// As the provider spells it; for Microsoft's multi-tenant endpoints a template holding
    /// `{tenantid}`.
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Url,
    /// RFC 9207 §3: the provider sends `iss` with every authorization response.
    pub iss_parameter: bool,
    pub auth_method: AuthMethod,
    /// The signing keys of `jwks_uri`, as signatures are checked (`sso::jws`).
    pub keys: super::jws::Keys,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    #[serde(default)]
    userinfo_endpoint: Option<Url>,
    jwks_uri: Url,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

pub struct Provider {
    pub config: IdentityProviderConfig,
    http: reqwest::Client,
    current: RwLock<Option<Arc<Discovered>>>,
    /// The last load attempt (serialises loads; spaces out retries while the provider is down).
    loading: tokio::sync::Mutex<Option<Instant>>,
    /// The last refresh for an unknown key id.
    kid_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Provider {
    fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.as_str().trim_end_matches('/')
        )
    }

    /// The issuer discovery must announce (OpenID Connect Discovery §4.3: exactly the one it
    /// was fetched for); Microsoft's multi-tenant endpoints announce the `{tenantid}` template.
    fn issuer_ok(&self, announced: &str) -> bool {
        let configured = self.config.issuer.as_str().trim_end_matches('/');
        let announced = announced.trim_end_matches('/');
        match &self.config.microsoft {
            Some(ms) if !matches!(ms.tenant, crate::config::Tenant::Single(_)) => {
                let authority = ms.authority.as_str().trim_end_matches('/');
                announced == format!("{authority}/{{tenantid}}/v2.0")
            }
            _ => announced == configured,
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let r = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url}: HTTP {}", r.status()));
        }
        r.json().await.map_err(|e| format!("{url}: {e}"))
    }

    async fn fetch_jwks(&self, url: &Url) -> Result<super::jws::Keys, String> {
        let value: serde_json::Value = self.get_json(url.as_str()).await?;
        super::jws::Keys::from_jwks(&value)
            .ok_or_else(|| format!("{url}: not a JWK set (no \"keys\" array)"))
    }

    /// Reads discovery and the keys, and caches them.
    async fn load(&self) -> Result<Arc<Discovered>, String> {
        let m: Metadata = self.get_json(&self.discovery_url()).await?;
        if !self.issuer_ok(&m.issuer) {
            return Err(format!(
                "discovery announces the issuer {:?}, expected {:?}",
                m.issuer,
                self.config.issuer.as_str()
            ));
        }
        let auth_method = match m.token_endpoint_auth_methods_supported.as_deref() {
            // Core §9: client_secret_basic is the default.
            None => AuthMethod::Basic,
            Some(list) if list.iter().any(|a| a == "client_secret_basic") => AuthMethod::Basic,
            Some(list) if list.iter().any(|a| a == "client_secret_post") => AuthMethod::Post,
            Some(_) => {
                return Err(
                    "the token endpoint supports neither client_secret_basic nor client_secret_post"
                        .into(),
                );
            }
        };
        let keys = self.fetch_jwks(&m.jwks_uri).await?;
        let d = Arc::new(Discovered {
            issuer: m.issuer.trim_end_matches('/').to_string(),
            authorization_endpoint: m.authorization_endpoint,
            token_endpoint: m.token_endpoint,
            userinfo_endpoint: m.userinfo_endpoint,
            jwks_uri: m.jwks_uri,
            iss_parameter: m.authorization_response_iss_parameter_supported,
            auth_method,
            keys,
        });
        *self.current.write().expect("provider lock") = Some(d.clone());
        Ok(d)
    }

    fn cached(&self) -> Option<Arc<Discovered>> {
        self.current.read().expect("provider lock").clone()
    }

    /// Discovery and keys as cached; loaded first when the provider could not be reached
    /// before (at most once every few seconds). An unreachable provider is a 502, its cause
    /// only in the log.
    pub async fn metadata(&self) -> Result<Arc<Discovered>, AppError> {
        if let Some(d) = self.cached() {
            return Ok(d);
        }
        let mut last = self.loading.lock().await;
        if let Some(d) = self.cached() {
            return Ok(d);
        }
        if last.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return Err(AppError::Upstream(format!(
                "identity provider {} unavailable (last attempt failed)",
                self.config.id
            )));
        }
        *last = Some(Instant::now());
        self.load()
            .await
            .map_err(|e| AppError::Upstream(format!("identity provider {}: {e}", self.config.id)))
    }

    /// The keys to check a token signed with `kid`: the cached ones, refreshed first when
    /// `kid` is unknown and no such refresh happened in the last [`KID_REFRESH_EVERY`].
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<Discovered>, AppError> {
        let d = self.metadata().await?;
        let Some(kid) = kid else { return Ok(d) };
        if d.keys.has_kid(kid) {
            return Ok(d);
        }
        let mut last = self.kid_refresh.lock().await;
        // Someone else may have refreshed while this one waited.
        let d = self.metadata().await?;
        if d.keys.has_kid(kid) || last.is_some_and(|t| t.elapsed() < KID_REFRESH_EVERY) {
            return Ok(d);
        }
        *last = Some(Instant::now());
        match self.fetch_jwks(&d.jwks_uri).await {
            Ok(keys) => {
                tracing::info!(provider = %self.config.id, kid, known = keys.has_kid(kid), "identity provider keys refreshed for an unknown key id");
                let fresh = Arc::new(Discovered {
                    issuer: d.issuer.clone(),
                    authorization_endpoint: d.authorization_endpoint.clone(),
                    token_endpoint: d.token_endpoint.clone(),
                    userinfo_endpoint: d.userinfo_endpoint.clone(),
                    jwks_uri: d.jwks_uri.clone(),
                    iss_parameter: d.iss_parameter,
                    auth_method: d.auth_method,
                    keys,
                });
                *self.current.write().expect("provider lock") = Some(fresh.clone());
                Ok(fresh)
            }
            Err(e) => Err(AppError::Upstream(format!(
                "identity provider {}: key refresh failed: {e}",
                self.config.id
            ))),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        self.config.kind
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Every configured provider by id.
#[derive(Clone, Default)]
pub struct Registry(Arc<HashMap<String, Arc<Provider>>>);

impl Registry {
    /// One HTTP client for every provider: short timeouts, no redirects followed.
    pub fn new(providers: &[IdentityProviderConfig]) -> Result<Registry, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the identity providers' HTTP client: {e}"))?;
        Ok(Registry(Arc::new(
            providers
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        Arc::new(Provider {
                            config: c.clone(),
                            http: http.clone(),
                            current: RwLock::new(None),
                            loading: Default::default(),
                            kid_refresh: Default::default(),
                        }),
                    )
                })
                .collect(),
        )))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.0.get(id)
    }

    /// Loads every provider now, then again every [`REFRESH_EVERY`] (sooner after a failure);
    /// a provider that cannot be reached keeps its last good keys.
    pub async fn refresh_forever(self) {
        let mut tasks = Vec::new();
        for p in self.0.values() {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let wait = {
                        let mut last = p.loading.lock().await;
                        *last = Some(Instant::now());
                        match p.load().await {
                            Ok(_) => REFRESH_EVERY,
                            Err(e) => {
                                tracing::warn!(provider = %p.config.id, error = %e, "identity provider discovery failed; retrying");
                                Duration::from_secs(30)
                            }
                        }
                    };
                    tokio::time::sleep(wait).await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}
