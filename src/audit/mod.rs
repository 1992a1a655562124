//! The audit trail: append-only events of who did what, to whom, from where, with what outcome.
//! Writers call [`record`]; the CLI and (later) the API read through [`crate::store`].

use crate::store::{self, AuditRow, Store};
use serde_json::Value;

/// Who acted.
#[derive(Debug, Clone)]
pub struct Actor {
    pub label: String,
    pub user_id: Option<String>,
}

impl Actor {
    pub fn user(id: &str, email: &str) -> Actor {
        Actor {
            label: format!("user:{email}"),
            user_id: Some(id.to_string()),
        }
    }
    /// An operator at the command line (the OS user, when known).
    pub fn cli() -> Actor {
        let who = std::env::var("USER").unwrap_or_default();
        Actor {
            label: if who.is_empty() {
                "cli".into()
            } else {
                format!("cli:{who}")
            },
            user_id: None,
        }
    }
    pub fn system() -> Actor {
        Actor {
            label: "system".into(),
            user_id: None,
        }
    }
    pub fn anonymous() -> Actor {
        Actor {
            label: "anonymous".into(),
            user_id: None,
        }
    }
}

pub struct Event<'a> {
    pub action: &'a str,
    pub outcome: &'a str,
    pub actor: &'a Actor,
    pub target: &'a str,
    pub target_user_id: Option<&'a str>,
    pub ip: &'a str,
    pub details: Value,
}

/// Writes one event. A failed write is logged loudly but does not undo the action it records.
pub async fn record(store: &Store, e: Event<'_>) {
    let row = AuditRow {
        id: 0,
        at: store::now(),
        actor: e.actor.label.clone(),
        actor_user_id: e.actor.user_id.clone(),
        action: e.action.to_string(),
        target: e.target.to_string(),
        target_user_id: e.target_user_id.map(str::to_string),
        outcome: e.outcome.to_string(),
        ip: e.ip.to_string(),
        details: e.details.to_string(),
    };
    crate::metrics::audit_event(e.action, e.outcome);
    tracing::info!(
        target: "audit",
        action = %row.action,
        outcome = %row.outcome,
        actor = %row.actor,
        subject = %row.target,
        ip = %row.ip,
        "audit"
    );
    if let Err(err) = store.insert_audit(&row).await {
        tracing::error!(error = %err, action = %row.action, "could not write audit event");
    }
}

pub fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// CSV with a header row; fields quoted per RFC 4180, and cells that a spreadsheet would run
/// as a formula are prefixed with `'` (CSV injection).
pub fn to_csv(rows: &[AuditRow]) -> String {
    fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from("id,time,actor,action,target,outcome,ip,details\n");
    for r in rows {
        let fields = [
            r.id.to_string(),
            format_time(r.at),
            r.actor.clone(),
            r.action.clone(),
            r.target.clone(),
            r.outcome.clone(),
            r.ip.clone(),
            r.details.clone(),
        ];
        out.push_str(&fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

pub fn parse_since(text: &str) -> Option<i64> {
    if let Some(d) = crate::config::reader::parse_duration(text) {
        return Some(store::now() - d.as_secs() as i64);
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Some(t.unix_timestamp());
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}
