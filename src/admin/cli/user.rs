//! `gatehouse admin user …`.

use super::Out;
use super::args::UserCommand;
use super::{read_stdin_password, revoked_text, user_json};
use crate::admin::ops::generate_temp_password;
use crate::admin::ops::{OpError, Ops};
use crate::directory::{UserStatus, parse_role_spec};
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, cmd: UserCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        UserCommand::Create {
            email,
            name,
            roles,
            password_stdin,
            invite,
        } => {
            let roles: Vec<(String, String)> = roles.iter().map(|r| parse_role_spec(r)).collect();
            if invite {
                if let Ok(u) = ops.user(&email).await {
                    return Err(OpError::Conflict(format!(
                        "a user with email {} already exists (to invite them anyway: `gatehouse admin invite --email {}`)",
                        u.email, u.email
                    )));
                }
                let inv = ops.invite(&email, &name, &roles, None, None).await?;
                let delivered = ops.deliver_now(&inv.mail_id).await?;
                let user = ops.user(&inv.email).await?;
                let mut j = user_json(&ops.describe(&user).await?);
                j["invitation"] = serde_json::json!({
                    "link": inv.link,
                    "expires_at": crate::audit::format_time(inv.expires_at),
                    "mail_id": inv.mail_id,
                    "delivered": delivered,
                });
                return Ok(Out {
                    text: format!(
                        "created user {} ({}), invited: {}\n{}",
                        user.email,
                        user.id,
                        if delivered {
                            "link mailed"
                        } else {
                            "link queued for mail"
                        },
                        inv.link
                    ),
                    json: j,
                });
            }
            let password = if password_stdin {
                Some(read_stdin_password()?)
            } else {
                None
            };
            let user = ops
                .create_user(&email, &name, &roles, password.as_deref(), false)
                .await?;
            let j = user_json(&ops.describe(&user).await?);
            let hint = if password.is_none() {
                "\n  no password yet: give one with `gatehouse admin user set-temp-password`"
            } else {
                ""
            };
            Out {
                text: format!("created user {} ({}){hint}", user.email, user.id),
                json: j,
            }
        }
        UserCommand::List => {
            let users = ops.list_users().await?;
            let mut list = Vec::new();
            let mut text = String::new();
            for u in &users {
                let org = match &u.org {
                    Some(o) => format!(" org={}", o.slug),
                    None => String::new(),
                };
                text.push_str(&format!(
                    "{:<40} {:<13} mfa={:<5} roles={}{org}\n",
                    u.email,
                    u.status,
                    u.mfa,
                    u.grants
                        .iter()
                        .map(|g| format!("{}@{}", g.role, g.app))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
                list.push(user_json(u));
            }
            text.push_str(&format!("{} user(s)", users.len()));
            Out {
                json: json!(list),
                text,
            }
        }
        UserCommand::Show(a) => {
            let j = user_json(&ops.show_user(&a.email).await?);
            Out {
                text: serde_json::to_string_pretty(&j).unwrap_or_default(),
                json: j,
            }
        }
        UserCommand::Block(a) => {
            let blocked = UserStatus::Blocked;
            let (u, r) = ops.set_status(&a.email, blocked).await?;
            Out {
                text: format!("blocked {}; {}", u.email, revoked_text(&r)),
                json: json!({ "email": u.email, "status": blocked.as_str(), "revoked": r }),
            }
        }
        UserCommand::Unblock(a) => {
            let (u, _) = ops.set_status(&a.email, UserStatus::Active).await?;
            Out {
                text: format!("unblocked {}", u.email),
                json: json!({ "email": u.email, "status": ops.display_status(&u) }),
            }
        }
        UserCommand::Unlock(a) => {
            let u = ops.unlock(&a.email).await?;
            Out {
                text: format!("unlocked {}", u.email),
                json: json!({ "email": u.email, "status": ops.display_status(&u) }),
            }
        }
        UserCommand::ResetMfa(a) => {
            let admin = crate::directory::FullAdmin::operator();
            let (u, r, left) = ops.reset_mfa(&admin, &a.email).await?;
            let out_of = match &left {
                Some(slug) => format!(
                    "; removed from organization {slug} (grant their access again to restore it)"
                ),
                None => String::new(),
            };
            Out {
                text: format!("reset MFA of {}; {}{out_of}", u.email, revoked_text(&r)),
                json: json!({ "email": u.email, "mfa": false, "revoked": r, "left_org": left }),
            }
        }
        UserCommand::SetTempPassword {
            email,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                (read_stdin_password()?, false)
            } else {
                (generate_temp_password(), true)
            };
            let r = ops.set_temp_password(&email, &password).await?;
            let shown = if generated {
                Some(password.clone())
            } else {
                None
            };
            Out {
                text: match &shown {
                    Some(p) => format!(
                        "temporary password for {email}: {p}\n  (shown once; it must be changed at the next sign-in; {})",
                        revoked_text(&r)
                    ),
                    None => format!("temporary password set for {email}; {}", revoked_text(&r)),
                },
                json: json!({ "email": email.trim(), "temporary_password": shown, "must_change": true, "revoked": r }),
            }
        }
        UserCommand::Anonymize(a) => {
            let (pseudonym, r) = ops.anonymize(&a.email).await?;
            Out {
                text: format!(
                    "anonymized {} as {pseudonym}; {}",
                    a.email.trim(),
                    revoked_text(&r)
                ),
                json: json!({ "pseudonym": pseudonym, "revoked": r }),
            }
        }
        UserCommand::Delete(a) => {
            let r = ops.delete(&a.email).await?;
            Out {
                text: format!("deleted {}; {}", a.email.trim(), revoked_text(&r)),
                json: json!({ "email": a.email.trim(), "deleted": true, "revoked": r }),
            }
        }
    })
}
