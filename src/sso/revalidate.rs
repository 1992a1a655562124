//! Revalidation: a session signed in through a provider that granted a refresh token is checked
//! with that provider every `revalidate_every` by using the token once. `invalid_grant` — the
//! person was removed or disabled upstream, or signed out there — ends the session (with the
//! sessions handed off from it) on every instance. A provider that cannot be asked ends
//! nothing at first: the check is retried (every `revalidate_every`, at most every 30 s), the
//! failure is logged, and only once it has lasted `revalidate_grace` does the session end.
//! Each instance claims the sessions it checks, so that none is checked twice.

use super::Sso;
use super::backchannel::end_sessions;
use super::flow::refresh_context;
use super::provider::Provider;
use super::token::{self, Refreshed};
use crate::audit::{self, Actor};
use crate::store::{self, DueSession};
use std::sync::Arc;
use std::time::Duration;

/// Sessions checked per provider per pass.
const BATCH: i64 = 100;
/// A failing provider is asked again at most this often.
const MAX_RETRY: i64 = 30;

impl Sso {
    /// Checks due sessions, forever (every few seconds, sooner for short `revalidate_every`).
    pub async fn revalidate_forever(self: Arc<Self>) {
        let Some(shortest) = (self.config.identity_providers.iter())
            .map(|p| p.revalidate_every)
            .min()
        else {
            return;
        };
        let tick = (shortest / 5).clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            for p in self.config.identity_providers.iter() {
                let Some(provider) = self.providers.get(&p.id) else {
                    continue;
                };
                if let Err(e) = self.revalidate(provider).await {
                    tracing::warn!(provider = %p.id, error = %e, "revalidation pass failed");
                }
            }
        }
    }

    /// One pass over `p`'s due sessions.
    async fn revalidate(&self, p: &Provider) -> Result<(), crate::error::AppError> {
        let c = &p.config;
        let now = store::now();
        let every = c.revalidate_every.as_secs() as i64;
        let retry = every.min(MAX_RETRY);
        let due = self
            .store
            .claim_due_revalidations(&c.id, now - every, now - retry, now, BATCH)
            .await?;
        for s in due {
            self.check(p, &s, now).await?;
        }
        Ok(())
    }

    async fn check(
        &self,
        p: &Provider,
        s: &DueSession,
        now: i64,
    ) -> Result<(), crate::error::AppError> {
        let c = &p.config;
        let context = refresh_context(&c.id, &s.user_id);
        let Ok(token) = self.keys.unseal(&context, &s.upstream_refresh_token) else {
            // Sealed under another key or for another user: it proves nothing any more.
            return self.end(s, "revalidation_token_unreadable").await;
        };
        let token = String::from_utf8_lossy(&token).into_owned();
        match token::refresh(p, &token).await {
            Ok(Refreshed::Valid { rotated }) => {
                let sealed = rotated.map(|t| self.keys.seal(&context, t.as_bytes()));
                self.store.revalidated(&s.id, sealed.as_deref()).await?;
                if s.upstream_failing_since.is_some() {
                    tracing::info!(provider = %c.id, session = %s.id, "provider answers again; session revalidated");
                }
                Ok(())
            }
            Ok(Refreshed::Revoked) => self.end(s, "upstream_invalid_grant").await,
            Err(e) => {
                let since = s.upstream_failing_since.unwrap_or(now);
                let grace = c.revalidate_grace.as_secs() as i64;
                if now - since >= grace {
                    tracing::warn!(provider = %c.id, session = %s.id, error = %e, "provider unreachable past revalidate_grace; session ended");
                    return self.end(s, "revalidation_grace_passed").await;
                }
                tracing::warn!(provider = %c.id, session = %s.id, error = %e, failing_for_s = now - since, "cannot revalidate the session; keeping it and retrying");
                self.store.revalidation_failed(&s.id, since).await?;
                Ok(())
            }
        }
    }

    async fn end(&self, s: &DueSession, reason: &str) -> Result<(), crate::error::AppError> {
        let sessions = [(s.id.clone(), s.user_id.clone())];
        let ended = end_sessions(self, &sessions, reason).await?;
        crate::metrics::deprovisioning("revalidation", "sessions_ended", ended);
        let email = self
            .store
            .user_by_id(&s.user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        audit::record(
            &self.store,
            audit::Event {
                action: "session.revoke",
                outcome: "success",
                actor: &Actor::system(),
                target: &email,
                target_user_id: Some(&s.user_id),
                ip: "",
                details: serde_json::json!({
                    "source": "revalidation",
                    "provider": s.upstream_provider,
                    "reason": reason,
                    "sessions_ended": ended,
                }),
            },
        )
        .await;
        Ok(())
    }
}
