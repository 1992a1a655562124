//! `gatehouse admin token …`.

use super::Out;
use super::args::TokenCommand;
use crate::admin::ops::{OpError, Ops};
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, cmd: TokenCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        TokenCommand::Create { name } => {
            let token = ops.create_api_token(&name).await?;
            Out {
                text: format!("API token {name} (shown once, store it now):\n{token}"),
                json: json!({ "name": name, "token": token }),
            }
        }
        TokenCommand::List => {
            let tokens = ops.list_api_tokens().await?;
            Out {
                text: tokens
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<24} created {}",
                            t.name,
                            crate::audit::format_time(t.created_at)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!(tokens),
            }
        }
    })
}
