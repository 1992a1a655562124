//! `[mail]`: where outgoing mail goes — one `.eml` file per message in `outbox_dir`
//! (development), or an SMTP server (`smtp_url`, which may carry credentials and so is read
//! like a secret: `smtp_url`, `smtp_url_file` or `smtp_url_env`) — and who it is from.

use super::reader::Section;
use super::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum MailTransport {
    /// One `.eml` file per message in this directory.
    Outbox(PathBuf),
    /// `smtp://host[:port]` (plain), `smtp://…?tls=required` (STARTTLS),
    /// `smtp://…?tls=opportunistic`, `smtps://host[:port]` (TLS from the start); user and
    /// password URL-encoded in the authority.
    Smtp(Secret<String>),
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// `Name <address>` or an address.
    pub from: String,
    /// The wait before the first retry of a failed delivery; each later retry waits twice as
    /// long, at most an hour. A message is never dropped.
    pub retry_after: Duration,
}

pub(super) fn read_mail(s: &Section) -> MailConfig {
    let outbox = s.opt_string("outbox_dir");
    let smtp = s.secret("smtp_url");
    let transport = match (outbox, smtp) {
        (Some(_), Some(_)) => {
            s.problem(
                "smtp_url",
                "give either mail.outbox_dir or mail.smtp_url, not both",
            );
            MailTransport::Outbox(PathBuf::from("data/outbox"))
        }
        (Some(dir), None) if dir.is_empty() => {
            s.problem("outbox_dir", "must not be empty");
            MailTransport::Outbox(PathBuf::from("data/outbox"))
        }
        (Some(dir), None) => MailTransport::Outbox(PathBuf::from(dir)),
        (None, Some(url)) => {
            match url::Url::parse(url.expose()) {
                Ok(u) if !matches!(u.scheme(), "smtp" | "smtps") => {
                    s.problem("smtp_url", "must start with smtp:// or smtps://")
                }
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    s.problem("smtp_url", "names no host")
                }
                Ok(u) => {
                    if let Some((_, tls)) = u.query_pairs().find(|(k, _)| k == "tls")
                        && (u.scheme() == "smtps"
                            || !matches!(tls.as_ref(), "required" | "opportunistic"))
                    {
                        s.problem(
                            "smtp_url",
                            "tls= may only be \"required\" (STARTTLS) or \"opportunistic\", on smtp://",
                        );
                    }
                }
                // The URL may hold a password: say what is wrong, never what it is.
                Err(e) => s.problem("smtp_url", format!("not a URL ({e})")),
            }
            MailTransport::Smtp(url)
        }
        (None, None) => MailTransport::Outbox(PathBuf::from("data/outbox")),
    };
    let from = s.string("from", "Gatehouse <no-reply@localhost>");
    if from.parse::<lettre::message::Mailbox>().is_err() {
        s.problem(
            "from",
            "not a mailbox: give an address or \"Name <address>\"",
        );
    }
    let retry_after = s.duration("retry_after", "30s");
    if retry_after.is_zero() {
        s.problem("retry_after", "must be more than zero");
    }
    s.finish();
    MailConfig {
        transport,
        from,
        retry_after,
    }
}
