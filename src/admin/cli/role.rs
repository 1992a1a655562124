//! `gatehouse admin role …`, `grant` and `revoke`.

use super::Out;
use super::args::{GrantArgs, RoleCommand};
use crate::admin::ops::{OpError, Ops};
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, cmd: RoleCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        RoleCommand::Create {
            name,
            seat,
            description,
        } => {
            ops.create_role(&name, &seat, &description).await?;
            Out {
                text: format!("created role {name} ({seat})"),
                json: json!({ "name": name, "seat": seat, "description": description }),
            }
        }
        RoleCommand::List => {
            let roles = ops.list_roles().await?;
            Out {
                text: roles
                    .iter()
                    .map(|r| format!("{:<20} {:<8} {}", r.name, r.seat, r.description))
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!(roles),
            }
        }
    })
}

/// `grant` (`add`) or `revoke` a role, of a user or (`--org`) an organization.
pub async fn grant(ops: &Ops<'_>, g: GrantArgs, add: bool) -> Result<Out, OpError> {
    let user = match (&g.user, &g.org) {
        (Some(user), None) => user.clone(),
        (None, Some(org)) => return super::org::grant(ops, org, &g.role, &g.app, add).await,
        // clap's argument group allows exactly one of the two.
        _ => {
            return Err(OpError::Invalid(
                "give exactly one of --user and --org".into(),
            ));
        }
    };
    let changed = ops.set_grant(&user, &g.role, &g.app, add).await?;
    let text = match (add, changed) {
        (true, true) => format!("granted {} on {} to {user}", g.role, g.app),
        (true, false) => format!("{user} already has {} on {}", g.role, g.app),
        (false, true) => format!("revoked {} on {} from {user}", g.role, g.app),
        (false, false) => format!("{user} did not have {} on {}", g.role, g.app),
    };
    Ok(Out {
        text,
        json: json!({ "user": user, "role": g.role, "app": g.app, "changed": changed }),
    })
}
