//! The audit trail: append-only events of who did what, to whom, from where, with what outcome.
//! Writers call [`record`]; the CLI and (later) the API read through [`crate::store`].

use crate::store::{self, AuditRow, Store};
use serde_json::Value;

/// What kind of party acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    /// An operator at the command line.
    Cli,
    /// The gateway itself (expiry, automatic lockout…).
    System,
    /// Someone not signed in (a failed sign-in, say).
    Anonymous,
    /// An API token (by its name).
    Token,
    /// An identity provider's SCIM client (by the provider's id).
    Scim,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
            ActorKind::Token => "token",
            ActorKind::Scim => "scim",
        }
    }

    fn parse(s: &str) -> Option<ActorKind> {
        [
            ActorKind::User,
            ActorKind::Cli,
            ActorKind::System,
            ActorKind::Anonymous,
            ActorKind::Token,
            ActorKind::Scim,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Who acted, as recorded: structured, so that the label is made when the event is read (for
/// whoever reads it, see `display`), never stored.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub user_id: Option<String>,
    /// The OS user of a `Cli` actor, the name of a `Token`.
    pub name: String,
    /// The actor's organization. Left `None` for a person, whose organization (the one they
    /// belong to as the event is written) is filled in by the store.
    pub org_id: Option<String>,
}

impl Actor {
    fn of(kind: ActorKind) -> Actor {
        Actor {
            kind,
            user_id: None,
            name: String::new(),
            org_id: None,
        }
    }
    /// A signed-in person (`_email` is read from the user when the event is displayed).
    pub fn user(id: &str, _email: &str) -> Actor {
        Actor {
            user_id: Some(id.to_string()),
            ..Actor::of(ActorKind::User)
        }
    }
    /// An operator at the command line (the OS user, when known).
    pub fn cli() -> Actor {
        Actor {
            name: std::env::var("USER").unwrap_or_default(),
            ..Actor::of(ActorKind::Cli)
        }
    }
    /// A provider's SCIM client.
    pub fn scim(provider: &str) -> Actor {
        Actor {
            name: provider.to_string(),
            ..Actor::of(ActorKind::Scim)
        }
    }
    pub fn system() -> Actor {
        Actor::of(ActorKind::System)
    }
    pub fn anonymous() -> Actor {
        Actor::of(ActorKind::Anonymous)
    }
}

/// Who reads the audit trail: a full access administrator sees an organization member's
/// address next to the organization's name; everyone else sees the organization only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    FullAdmin,
    Other,
}

/// The actor of an event as `viewer` is shown it: `user:<email>` (the user's address now, so an
/// anonymized user shows as their pseudonym), `cli` or `cli:<os user>`, `system`,
/// `anonymous`, `token:<name>`, `scim:<provider>`; events written before actors were structured show the label
/// they were written with. A person who was an organization member when they acted is shown
/// by the organization (SPEC: Organization rules): `Org display name (person@domain)` to a
/// full access administrator, `Org display name` to everyone else.
pub fn display(row: &AuditRow, viewer: Viewer) -> String {
    match ActorKind::parse(&row.actor_kind) {
        None => row.actor.clone(),
        Some(ActorKind::User) => {
            let person = match (&row.actor_email, &row.actor_user_id) {
                (Some(email), _) => Some(email.as_str()),
                (None, Some(id)) => Some(id.as_str()),
                (None, None) => None,
            };
            if let Some(org) = member_org(row) {
                return match (viewer, person) {
                    (Viewer::FullAdmin, Some(p)) => format!("{org} ({p})"),
                    _ => org.to_string(),
                };
            }
            match person {
                Some(p) => format!("user:{p}"),
                None => "user".into(),
            }
        }
        Some(k @ (ActorKind::Cli | ActorKind::Token | ActorKind::Scim))
            if !row.actor_name.is_empty() =>
        {
            format!("{}:{}", k.as_str(), row.actor_name)
        }
        Some(k) => k.as_str().to_string(),
    }
}

/// The organization of a person who was a member when they acted: its name now or, once it
/// is deleted, its name when the event was written (kept in `actor_name`).
fn member_org(row: &AuditRow) -> Option<&str> {
    if row.actor_org_id.is_none() || ActorKind::parse(&row.actor_kind) != Some(ActorKind::User) {
        return None;
    }
    Some(match row.actor_org_name.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ if !row.actor_name.is_empty() => row.actor_name.as_str(),
        _ => "an organization",
    })
}

/// The target of an event as `viewer` is shown it. When an organization member's event is
/// about themself (their sign-in, say, whose target is their address), someone other than a
/// full access administrator sees the organization there too, so the address `display` keeps
/// from them is not read off the next column.
pub fn display_target(row: &AuditRow, viewer: Viewer) -> String {
    match member_org(row) {
        Some(org)
            if viewer == Viewer::Other
                && row.target_user_id.is_some()
                && row.target_user_id == row.actor_user_id =>
        {
            org.to_string()
        }
        _ => row.target.clone(),
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
        actor: String::new(),
        actor_kind: e.actor.kind.as_str().to_string(),
        actor_name: e.actor.name.clone(),
        actor_user_id: e.actor.user_id.clone(),
        actor_org_id: e.actor.org_id.clone(),
        actor_email: None,
        actor_org_name: None,
        action: e.action.to_string(),
        target: e.target.to_string(),
        target_user_id: e.target_user_id.map(str::to_string),
        outcome: e.outcome.to_string(),
        ip: e.ip.to_string(),
        details: e.details.to_string(),
    };
    // Counted through the `metrics` facade (a no-op without an installed recorder; `/metrics`
    // renders it as `gatehouse_audit_events_total`).
    ::metrics::counter!(
        "gatehouse_audit_events_total",
        "action" => e.action.to_string(),
        "outcome" => e.outcome.to_string()
    )
    .increment(1);
    tracing::info!(
        target: "audit",
        action = %row.action,
        outcome = %row.outcome,
        actor = %row.actor_kind,
        actor_user_id = row.actor_user_id.as_deref().unwrap_or(""),
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
pub fn to_csv(rows: &[AuditRow], viewer: Viewer) -> String {
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
            display(r, viewer),
            r.action.clone(),
            display_target(r, viewer),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        kind: &str,
        name: &str,
        user: Option<&str>,
        email: Option<&str>,
        legacy: &str,
    ) -> AuditRow {
        AuditRow {
            id: 1,
            at: 0,
            actor: legacy.into(),
            actor_kind: kind.into(),
            actor_name: name.into(),
            actor_user_id: user.map(str::to_string),
            actor_org_id: None,
            actor_email: email.map(str::to_string),
            actor_org_name: None,
            action: "a".into(),
            target: String::new(),
            target_user_id: None,
            outcome: "success".into(),
            ip: String::new(),
            details: "{}".into(),
        }
    }

    #[test]
    fn actors_are_labelled_when_read() {
        let v = Viewer::FullAdmin;
        // The user's address as it is now: after anonymization, the pseudonym.
        let r = row("user", "", Some("u1"), Some("anon-7@invalid"), "");
        assert_eq!(display(&r, v), "user:anon-7@invalid");
        assert_eq!(
            display(&row("user", "", Some("u1"), None, ""), v),
            "user:u1"
        );
        assert_eq!(display(&row("cli", "ops", None, None, ""), v), "cli:ops");
        assert_eq!(display(&row("cli", "", None, None, ""), v), "cli");
        assert_eq!(
            display(&row("token", "deploy", None, None, ""), v),
            "token:deploy"
        );
        assert_eq!(
            display(&row("system", "", None, None, ""), Viewer::Other),
            "system"
        );
        // Written before actors were structured: the label as written.
        let old = row(
            "",
            "",
            Some("u1"),
            Some("now@example.com"),
            "user:then@example.com",
        );
        assert_eq!(display(&old, v), "user:then@example.com");
    }

    #[test]
    fn an_organization_members_address_is_shown_to_full_admins_only() {
        let member = |org_name: Option<&str>, kept: &str| AuditRow {
            actor_org_id: Some("o1".into()),
            actor_org_name: org_name.map(str::to_string),
            ..row("user", kept, Some("u1"), Some("ann@acme.example"), "")
        };
        let cases = [
            (
                member(Some("Acme Ltd"), "Acme"),
                Viewer::FullAdmin,
                "Acme Ltd (ann@acme.example)",
            ),
            (member(Some("Acme Ltd"), "Acme"), Viewer::Other, "Acme Ltd"),
            // The organization was deleted: its name when the event was written.
            (
                member(None, "Acme"),
                Viewer::FullAdmin,
                "Acme (ann@acme.example)",
            ),
            (member(None, "Acme"), Viewer::Other, "Acme"),
            (member(None, ""), Viewer::Other, "an organization"),
        ];
        for (r, viewer, want) in cases {
            assert_eq!(display(&r, viewer), want, "{viewer:?}");
        }
        // Not a member when they acted: the address, to everyone.
        let staff = row("user", "", Some("u2"), Some("sam@corp.example"), "");
        assert_eq!(display(&staff, Viewer::Other), "user:sam@corp.example");
        // Their own address as the target of their event is hidden from the same viewers.
        let about_self = AuditRow {
            target: "ann@acme.example".into(),
            target_user_id: Some("u1".into()),
            ..member(Some("Acme Ltd"), "Acme")
        };
        assert_eq!(display_target(&about_self, Viewer::Other), "Acme Ltd");
        assert_eq!(
            display_target(&about_self, Viewer::FullAdmin),
            "ann@acme.example"
        );
        let about_app = AuditRow {
            target: "crm".into(),
            ..member(Some("Acme Ltd"), "Acme")
        };
        assert_eq!(display_target(&about_app, Viewer::Other), "crm");
        // Only people are shown by organization.
        let cli = AuditRow {
            actor_org_id: Some("o1".into()),
            ..row("cli", "ops", None, None, "")
        };
        assert_eq!(display(&cli, Viewer::Other), "cli:ops");
    }
}
