//! `gatehouse admin mail …`.

use super::Out;
use super::args::MailCommand;
use crate::admin::ops::{OpError, Ops};
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, cmd: MailCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        MailCommand::Test { to } => {
            let t = ops.send_test_mail(&to).await?;
            let text = match &t.error {
                None => format!("test message {} delivered to {}", t.id, t.via),
                Some(e) => format!(
                    "test message {} queued; delivery to {} failed: {e}\na running server retries it (see `gatehouse admin mail queue`)",
                    t.id, t.via
                ),
            };
            Out {
                text,
                json: json!(t),
            }
        }
        MailCommand::Queue => {
            let rows = ops.mail_queue().await?;
            let text = if rows.is_empty() {
                "no mail waiting".to_string()
            } else {
                rows.iter()
                    .map(|m| {
                        format!(
                            "{}  to {}  {:?}  attempts {}  next {}{}",
                            m.id,
                            m.recipient,
                            m.subject,
                            m.attempts,
                            crate::audit::format_time(m.next_attempt_at),
                            m.last_error
                                .as_deref()
                                .map(|e| format!("  last error: {e}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let json = json!(
                rows.iter()
                    .map(|m| json!({
                        "id": m.id, "to": m.recipient, "subject": m.subject,
                        "queued_at": m.created_at, "attempts": m.attempts,
                        "next_attempt_at": m.next_attempt_at, "last_error": m.last_error,
                    }))
                    .collect::<Vec<_>>()
            );
            Out { text, json }
        }
    })
}
