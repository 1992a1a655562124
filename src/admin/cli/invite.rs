//! `gatehouse admin invite …`.

use super::Out;
use super::args::{InviteArgs, InviteCommand};
use crate::admin::ops::{OpError, Ops};
use crate::directory::{FullAdmin, parse_role_spec};
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, args: InviteArgs) -> Result<Out, OpError> {
    Ok(match args.command {
        Some(InviteCommand::List) => {
            let list = ops.list_invitations().await?;
            let mut text = String::new();
            for i in &list {
                text.push_str(&format!(
                    "{:<40} provider={:<12} expires {}\n",
                    i.email,
                    i.provider.as_deref().unwrap_or("-"),
                    crate::audit::format_time(i.expires_at)
                ));
            }
            text.push_str(&format!("{} pending invitation(s)", list.len()));
            Out {
                json: json!(
                    list.iter()
                        .map(|i| json!({
                            "email": i.email,
                            "provider": i.provider,
                            "created_at": crate::audit::format_time(i.created_at),
                            "expires_at": crate::audit::format_time(i.expires_at),
                        }))
                        .collect::<Vec<_>>()
                ),
                text,
            }
        }
        Some(InviteCommand::Revoke(a)) => {
            let n = ops.revoke_invitation(&a.email).await?;
            Out {
                text: format!("revoked {n} pending invitation(s) of {}", a.email.trim()),
                json: json!({ "email": a.email.trim(), "revoked": n }),
            }
        }
        None => {
            let Some(email) = args.email else {
                return Err(OpError::Invalid(
                    "--email is required (or use `invite list` / `invite revoke --email E`)".into(),
                ));
            };
            let roles: Vec<(String, String)> =
                args.roles.iter().map(|r| parse_role_spec(r)).collect();
            let admin = FullAdmin::operator();
            let org = args.org.as_deref().map(|slug| (&admin, slug));
            let inv = ops
                .invite(&email, "", &roles, args.provider.as_deref(), org)
                .await?;
            let delivered = ops.deliver_now(&inv.mail_id).await?;
            let mut text = format!(
                "invitation for {}{} (valid until {}, single use), {}:\n{}",
                inv.email,
                inv.org
                    .as_deref()
                    .map(|o| format!(", listed in {o}"))
                    .unwrap_or_default(),
                crate::audit::format_time(inv.expires_at),
                if delivered {
                    format!("mailed to {} via {}", inv.email, ops.base.mail.describe())
                } else {
                    "queued for mail (not delivered yet: a running server keeps trying; see `admin mail queue`)".to_string()
                },
                inv.link
            );
            if let Some(p) = &inv.provider {
                text.push_str(&format!(
                    "\n  or they sign in with {p} at {} (their verified address {} links the account)",
                    ops.base.config.server.public_url.as_str().trim_end_matches('/').to_string() + "/login",
                    inv.email
                ));
            }
            Out {
                text,
                json: json!({
                    "email": inv.email,
                    "user_id": inv.user_id,
                    "provider": inv.provider,
                    "org": inv.org,
                    "link": inv.link,
                    "expires_at": crate::audit::format_time(inv.expires_at),
                    "mailed": true,
                    "mail_id": inv.mail_id,
                    "delivered": delivered,
                }),
            }
        }
    })
}
