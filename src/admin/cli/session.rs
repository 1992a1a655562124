//! `gatehouse admin session …`.

use super::Out;
use super::args::SessionCommand;
use super::revoked_text;
use crate::admin::ops::{OpError, Ops};
use crate::core::Core;
use crate::store;
use serde_json::json;

pub async fn execute(core: &Core, ops: &Ops<'_>, cmd: SessionCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        SessionCommand::List { email } => {
            let user = match &email {
                Some(e) => Some(ops.user(e).await?),
                None => None,
            };
            let rows = core
                .store
                .list_sessions(user.as_ref().map(|u| u.id.as_str()), store::now())
                .await?;
            let mut list = Vec::new();
            let mut text = String::new();
            for s in &rows {
                let email = match &user {
                    Some(u) => u.email.clone(),
                    None => core
                        .store
                        .user_by_id(&s.user_id)
                        .await?
                        .map(|u| u.email)
                        .unwrap_or_default(),
                };
                text.push_str(&format!(
                    "{}  {:<32} {:<10} {:<15} since {}\n",
                    s.id,
                    email,
                    s.stage,
                    s.ip,
                    crate::audit::format_time(s.created_at)
                ));
                list.push(json!({
                    "id": s.id, "email": email, "stage": s.stage, "amr": s.amr, "ip": s.ip,
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
