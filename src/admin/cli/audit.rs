//! `gatehouse admin audit`.

use super::Out;
use super::args::{AuditArgs, Format};
use crate::admin::ops::OpError;
use crate::audit::{Viewer, display};
use crate::core::Core;
use crate::store::AuditFilter;
use serde_json::{Value, json};

pub async fn execute(core: &Core, a: AuditArgs) -> Result<Out, OpError> {
    let since = match &a.since {
        Some(s) => Some(crate::audit::parse_since(s).ok_or_else(|| {
            OpError::Invalid(format!(
                "--since: {s:?} is neither a duration (\"24h\") nor a date (\"2026-11-01\")"
            ))
        })?),
        None => None,
    };
    let mut filter = AuditFilter {
        since,
        ..Default::default()
    };
    if let Some(e) = &a.email {
        match core
            .store
            .user_by_email(&crate::directory::normalize_email(e))
            .await?
        {
            Some(u) => filter.user_id = Some(u.id),
            None => filter.target = Some(crate::directory::normalize_email(e)),
        }
    }
    let viewer = match &a.viewer {
        None => Viewer::FullAdmin,
        Some(e) => {
            let Some(u) = core
                .store
                .user_by_email(&crate::directory::normalize_email(e))
                .await?
            else {
                return Err(OpError::Invalid(format!("--as: no user {}", e.trim())));
            };
            let grants = core.store.grants_of(&u.id).await?;
            if grants.iter().any(|g| g.role == "admin") {
                Viewer::FullAdmin
            } else {
                Viewer::Other
            }
        }
    };
    let rows = core.store.query_audit(&filter).await?;
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "time": crate::audit::format_time(r.at), "actor": display(r, viewer), "action": r.action,
                "target": r.target, "outcome": r.outcome, "ip": r.ip,
                "details": serde_json::from_str::<Value>(&r.details).unwrap_or(Value::Null),
            })
        })
        .collect();
    let text = match a.format {
        Some(Format::Csv) => crate::audit::to_csv(&rows, viewer),
        Some(Format::Json) => serde_json::to_string_pretty(&json_rows).unwrap_or_default(),
        None => rows
            .iter()
            .map(|r| {
                format!(
                    "{} {:<22} {:<8} {:<28} {} {}",
                    crate::audit::format_time(r.at),
                    r.action,
                    r.outcome,
                    display(r, viewer),
                    r.target,
                    r.details
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Ok(Out {
        json: json!(json_rows),
        text,
    })
}
