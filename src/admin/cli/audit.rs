//! `gatehouse admin audit`.

use super::Out;
use super::args::{AuditArgs, Format};
use crate::admin::ops::{OpError, Ops};
use crate::audit::{display, display_target};
use serde_json::{Value, json};

pub async fn execute(ops: &Ops<'_>, a: AuditArgs) -> Result<Out, OpError> {
    let since = match &a.since {
        Some(s) => Some(crate::audit::parse_since(s).ok_or_else(|| {
            OpError::Invalid(format!(
                "--since: {s:?} is neither a duration (\"24h\") nor a date (\"2026-11-01\")"
            ))
        })?),
        None => None,
    };
    let trail = ops
        .audit_trail(since, a.email.as_deref(), a.viewer.as_deref())
        .await?;
    let (rows, viewer) = (trail.events, trail.viewer);
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "time": crate::audit::format_time(r.at), "actor": display(r, viewer), "action": r.action,
                "target": display_target(r, viewer), "outcome": r.outcome, "ip": r.ip,
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
                    display_target(r, viewer),
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
