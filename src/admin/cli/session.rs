//! `gatehouse admin session …`.

use super::Out;
use super::args::SessionCommand;
use super::revoked_text;
use crate::admin::ops::{OpError, Ops};
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, cmd: SessionCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        SessionCommand::List { email } => {
            let rows = ops.list_sessions(email.as_deref()).await?;
            let mut list = Vec::new();
            let mut text = String::new();
            for s in &rows {
                text.push_str(&format!(
                    "{}  {:<32} {:<10} {:<15} since {}\n",
                    s.id,
                    s.email,
                    s.stage,
                    s.ip,
                    crate::audit::format_time(s.created_at)
                ));
                list.push(json!({
                    "id": s.id, "email": s.email, "stage": s.stage, "amr": s.amr, "ip": s.ip,
                    "user_agent": s.user_agent, "created_at": crate::audit::format_time(s.created_at),
                    "last_seen_at": crate::audit::format_time(s.last_seen_at), "expires_at": crate::audit::format_time(s.expires_at),
                }));
            }
            text.push_str(&format!("{} session(s)", rows.len()));
            Out {
                json: json!(list),
                text,
            }
        }
        SessionCommand::Revoke { email, id } => {
            let r = match (email, id) {
                (_, Some(id)) => ops.revoke_session_by_id(&id).await?,
                (Some(e), None) => ops.revoke_sessions_of(&e).await?,
                (None, None) => return Err(OpError::Invalid("give --email or --id".into())),
            };
            Out {
                text: revoked_text(&r),
                json: json!({ "revoked": r }),
            }
        }
    })
}
