//! Outgoing mail: a test message (to check `[mail]`), and what is still waiting to be sent.

use super::*;

/// What became of a test message.
#[derive(Debug, serde::Serialize)]
pub struct MailTest {
    pub id: String,
    pub delivered: bool,
    /// Why the first attempt failed (a running server keeps retrying).
    pub error: Option<String>,
    pub via: String,
}

impl Ops<'_> {
    /// Queues a test message to `to` and makes one delivery attempt now (of everything due).
    pub async fn send_test_mail(&self, to: &str) -> OpResult<MailTest> {
        let to = to.trim();
        if !valid_email(&normalize_email(to)) {
            return Err(OpError::Invalid(format!(
                "--to: not an email address: {to:?}"
            )));
        }
        let mail = &self.base.mail;
        let id = mail
            .queue(
                &self.base.store,
                &self.base.keys,
                to,
                "Gatehouse test message",
                "This is a test message from Gatehouse: mail delivery works.\n",
            )
            .await
            .map_err(|e| match e {
                crate::mail::QueueError::Store(s) => OpError::Store(s),
                other => OpError::Invalid(other.to_string()),
            })?;
        mail.deliver_due(&self.base.store, &self.base.keys).await?;
        let pending = self.base.store.pending_mail().await?;
        let waiting = pending.iter().find(|m| m.id == id);
        self.audit("mail.test", to, None, json!({ "id": id })).await;
        Ok(MailTest {
            delivered: waiting.is_none(),
            error: waiting.and_then(|m| m.last_error.clone()),
            via: mail.describe(),
            id,
        })
    }

    /// One delivery pass over the queue now, waiting at most 10 s (the CLI uses it so that a
    /// message leaves even when no server runs; what is left, a running server retries).
    /// Returns whether the message `id` has left.
    pub async fn deliver_now(&self, id: &str) -> OpResult<bool> {
        let mail = &self.base.mail;
        let pass = mail.deliver_due(&self.base.store, &self.base.keys);
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(10), pass).await {
            r?;
        }
        let pending = self.base.store.pending_mail().await?;
        Ok(!pending.iter().any(|m| m.id == id))
    }

    pub async fn mail_queue(&self) -> OpResult<Vec<store::MailRow>> {
        Ok(self.base.store.pending_mail().await?)
    }
}
