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

/// `grant` (`add`) or `revoke` a role.
pub async fn grant(ops: &Ops<'_>, g: GrantArgs, add: bool) -> Result<Out, OpError> {
    let changed = ops.set_grant(&g.user, &g.role, &g.app, add).await?;
    let text = match (add, changed) {
        (true, true) => format!("granted {} on {} to {}", g.role, g.app, g.user),
        (true, false) => format!("{} already has {} on {}", g.user, g.role, g.app),
        (false, true) => format!("revoked {} on {} from {}", g.role, g.app, g.user),
        (false, false) => format!("{} did not have {} on {}", g.user, g.role, g.app),
    };
    Ok(Out {
        text,
        json: json!({ "user": g.user, "role": g.role, "app": g.app, "changed": changed }),
    })
}
