//! The shared state at the bottom, in two layers. [`Base`] is what an administrative command
//! needs — the config, the migrated store, the keys, password hashing and the revocation
//! publisher — and is all that `gatehouse admin …` and `gatehouse migrate` open. [`Core`]
//! adds what every feature serving requests shares (sessions, lockout, CSRF, templates, the
//! assertion signer, metrics), built once by `Core::open`, and derefs to its `Base`. A
//! feature's own state sits above it and holds it (the proxy's `proxy::Proxy`), so nothing
//! here names a feature. No HTTP routing here; `app` assembles the routers and serves.

use crate::config::{Config, MasterKey};
use crate::credentials::lockout::Lockout;
use crate::credentials::password::Passwords;
use crate::crypto::{self, Keys};
use crate::revocation::{self, Invalidate};
use crate::session::Sessions;
use crate::store::{self, Store};
use crate::web::csrf::Csrf;
use crate::web::{Templates, client::TrustedProxies, cookies::CookieSpec};
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an administrative command needs: no HTTP client, no proxy tables, no signer.
pub struct Base {
    pub config: Config,
    pub store: Store,
    pub keys: Keys,
    pub passwords: Passwords,
    /// Outgoing mail (queued in the store; a server delivers it, see `mail`).
    pub mail: crate::mail::Mailer,
    /// Everything that invalidations clear on this instance (the session cache of a server;
    /// nothing in a CLI process, which only publishes).
    pub revocation: revocation::Bus,
}

/// Everything a request needs: the [`Base`] (reached through `Deref`: `core.store`,
/// `core.config`, …) and the serving state; no HTTP types inside.
pub struct Core {
    pub base: Base,
    pub lockout: Lockout,
    pub sessions: Arc<Sessions>,
    pub templates: Templates,
    pub csrf: Csrf,
    pub signer: crate::crypto::signing::Signer,
    pub metrics: crate::metrics::Metrics,
}

pub type AppState = Arc<Core>;

impl std::ops::Deref for Core {
    type Target = Base;

    fn deref(&self) -> &Base {
        &self.base
    }
}

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

impl Base {
    /// Resolves the master key, connects, migrates, applies config-declared roles. `revocation`
    /// is what invalidations clear here (empty for a CLI process).
    pub async fn open(config: Config, revocation: revocation::Bus) -> Result<Base, BoxError> {
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
        let group_roles: Vec<(&str, String, &str, &str)> = config
            .identity_providers
            .iter()
            .flat_map(|p| {
                p.group_roles.iter().map(|g| {
                    (
                        p.id.as_str(),
                        g.group.to_lowercase(),
                        g.role.as_str(),
                        g.app.as_str(),
                    )
                })
            })
            .collect();
        store.replace_group_roles(&group_roles).await?;
        Ok(Base {
            mail: crate::mail::Mailer::new(&config.mail)?,
            keys: Keys::new(&key),
            passwords: Passwords::new(&config.password_hashing)?,
            revocation,
            store,
            config,
        })
    }

    /// Applies an invalidation here at once and publishes it to every other instance.
    pub async fn invalidate(&self, what: Invalidate) -> store::Result<i64> {
        self.revocation.apply(&what).await;
        revocation::publish(&self.store, &what).await
    }
}

impl Core {
    /// Opens the [`Base`] (its revocation bus clearing the session cache), then the signer.
    pub async fn open(config: Config) -> Result<Arc<Core>, BoxError> {
        let sessions = Arc::new(Sessions::new(config.session.clone()));
        let base = Base::open(config, revocation::Bus::new(vec![sessions.clone()])).await?;
        let config = &base.config;
        let signer =
            crate::crypto::signing::Signer::load_or_create(&base.store, &base.keys).await?;
        let csrf = Csrf::new(config.public_is_https(), config.session_cookie_name());
        Ok(Arc::new(Core {
            signer,
            metrics: crate::metrics::Metrics::new(config.apps.len(), config.server.workers),
            lockout: Lockout::new(config.lockout.clone()),
            sessions,
            templates: Templates::new(&config.branding),
            csrf,
            base,
        }))
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
