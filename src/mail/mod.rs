//! Outgoing mail. Every message is queued in the database first (its text sealed with the
//! master key, since it carries single-use links), then delivered by whichever running
//! instance claims it — to the SMTP server of `[mail] smtp_url`, or as one `.eml` file per
//! message in `[mail] outbox_dir`. A failed delivery is retried after `retry_after`, then twice
//! as long each time (at most an hour), for as long as it takes: an outage of the mail server
//! loses no message. The sent text is not kept.

use crate::config::{MailConfig, MailTransport};
use crate::crypto::Keys;
use crate::store::{self, MailRow, Store};
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// A claimed message is not tried again by anyone for this long (an attempt's upper bound).
const LEASE: i64 = 120;
/// Longest wait between two attempts.
const MAX_BACKOFF: i64 = 3600;
/// Messages taken per pass.
const BATCH: i64 = 50;

enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    retry_after: i64,
    /// Woken by `queue`, so a new message leaves at once instead of at the next tick.
    wake: tokio::sync::Notify,
}

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("not a mail address: {0:?}")]
    Address(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl Mailer {
    /// The transport of `[mail]` (validated by the config reader; what can still fail here is
    /// named without the URL, which may hold a password).
    pub fn new(config: &MailConfig) -> Result<Mailer, String> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("mail.from: {e}"))?;
        let transport = match &config.transport {
            MailTransport::Outbox(dir) => Transport::Outbox(dir.clone()),
            MailTransport::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| format!("mail.smtp_url: cannot be used ({e})"))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
        };
        Ok(Mailer {
            from,
            transport,
            retry_after: config.retry_after.as_secs().max(1) as i64,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Where messages go, for people: the outbox directory or the SMTP host (never its
    /// credentials).
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Outbox(dir) => format!("the outbox directory {}", dir.display()),
            Transport::Smtp(_) => "the SMTP server of mail.smtp_url".into(),
        }
    }

    /// Queues a plain-text message; a running server (or `deliver_due`) sends it.
    pub async fn queue(
        &self,
        store: &Store,
        keys: &Keys,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, QueueError> {
        if to.parse::<Mailbox>().is_err() {
            return Err(QueueError::Address(to.to_string()));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let sealed = keys.seal(&context(&id), body.as_bytes());
        store
            .enqueue_mail(&id, to, subject, &sealed, store::now())
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// One pass over the due messages: each claimed, sent, and marked sent or scheduled again.
    /// Returns how many were sent.
    pub async fn deliver_due(&self, store: &Store, keys: &Keys) -> store::Result<usize> {
        let now = store::now();
        let mut sent = 0;
        for m in store.due_mail(now, BATCH).await? {
            if !store
                .claim_mail(&m.id, m.next_attempt_at, now + LEASE)
                .await?
            {
                continue;
            }
            match self.send(keys, &m).await {
                Ok(()) => {
                    store.mail_sent(&m.id, store::now()).await?;
                    tracing::info!(mail = %m.id, attempts = m.attempts + 1, "mail delivered");
                    sent += 1;
                }
                Err(e) => {
                    let wait = backoff(self.retry_after, m.attempts);
                    tracing::warn!(mail = %m.id, attempts = m.attempts + 1, retry_in_s = wait, error = %e, "mail delivery failed; will retry");
                    store.mail_failed(&m.id, store::now() + wait, &e).await?;
                }
            }
        }
        Ok(sent)
    }

    /// Delivers due mail until `stop` turns true: at every `queue` on this instance, and every
    /// few seconds for messages queued elsewhere (the CLI, other instances) and retries.
    pub async fn run(
        &self,
        store: Store,
        keys: &Keys,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let tick = Duration::from_secs(self.retry_after.clamp(1, 5) as u64);
        loop {
            if let Err(e) = self.deliver_due(&store, keys).await {
                tracing::warn!(error = %e, "mail queue unavailable");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn send(&self, keys: &Keys, m: &MailRow) -> Result<(), String> {
        let body = keys
            .unseal(&context(&m.id), &m.body_sealed)
            .map_err(|_| "the message cannot be unsealed with this master key".to_string())?;
        let to = m
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(String::from_utf8_lossy(&body).into_owned())
            .map_err(|e| format!("message: {e}"))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| short(&e.to_string())),
            Transport::Outbox(dir) => write_eml(dir, m, &message.formatted())
                .map_err(|e| format!("outbox {}: {e}", dir.display())),
        }
    }
}

fn context(id: &str) -> String {
    format!("mail:{id}")
}

/// The wait after the `attempts`+1-th failure: `first`, doubled each time, at most an hour.
fn backoff(first: i64, attempts: i64) -> i64 {
    first
        .saturating_mul(1 << attempts.clamp(0, 20))
        .min(MAX_BACKOFF)
}

fn short(e: &str) -> String {
    e.chars().take(300).collect()
}

/// `<outbox>/<created>-<id>.eml`, readable by the owner only (it holds single-use links).
fn write_eml(dir: &std::path::Path, m: &MailRow, bytes: &[u8]) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let path = dir.join(format!("{}-{}.eml", m.created_at, m.id));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path)?, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_but_at_most_an_hour() {
        assert_eq!(backoff(30, 0), 30);
        assert_eq!(backoff(30, 1), 60);
        assert_eq!(backoff(30, 3), 240);
        assert_eq!(backoff(30, 7), 3600);
        assert_eq!(backoff(30, 1000), 3600);
    }
}
