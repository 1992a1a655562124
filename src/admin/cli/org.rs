//! `gatehouse admin org …` and `grant|revoke --org`.

use super::Out;
use super::args::{AccessByArg, OrgCommand, OrgOptions};
use crate::admin::ops::{OpError, Ops, OrgChanges, OrgDetail, OrgEffects};
use crate::directory::{AccessBy, FullAdmin, parse_role_spec};
use serde_json::{Value, json};

/// The options as changes: a list option given at least once replaces that list.
fn changes(o: OrgOptions) -> OrgChanges {
    let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
    OrgChanges {
        name: o.name,
        email: o.email,
        access_by: o.access_by.map(|a| match a {
            AccessByArg::Domain => AccessBy::Domain,
            AccessByArg::Email => AccessBy::Email,
        }),
        domains: list(o.domains),
        members: list(o.members),
        enforce_mfa: o.enforce_mfa,
        providers: list(o.providers),
        roles: list(o.roles).map(|r| r.iter().map(|s| parse_role_spec(s)).collect()),
    }
}

fn org_json(o: &OrgDetail) -> Value {
    let d = &o.data;
    json!({
        "id": o.id,
        "slug": d.slug,
        "name": d.name,
        "email": d.email,
        "access_by": d.access_by,
        "enforce_mfa": d.enforce_mfa,
        "domains": d.domains,
        "members": o.members.iter().map(|m| json!({
            "email": m.email,
            "listed": m.listed,
            "account": m.status.is_some(),
            "status": m.status,
        })).collect::<Vec<_>>(),
        "providers": d.providers,
        "roles": d.grants.iter().map(|(r, a)| json!({ "role": r, "app": a })).collect::<Vec<_>>(),
        "created_at": crate::audit::format_time(o.created_at),
        "updated_at": crate::audit::format_time(o.updated_at),
    })
}

fn org_text(o: &OrgDetail) -> String {
    let d = &o.data;
    let none = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut t = format!(
        "{} ({})\n  id           {}\n  email        {} (never signs in)\n  access by    {}\n  enforce MFA  {}\n",
        d.slug,
        d.name,
        o.id,
        d.email,
        d.access_by,
        if d.enforce_mfa { "yes" } else { "no" },
    );
    if d.access_by == "domain" {
        t.push_str(&format!("  domains      {}\n", none(&d.domains)));
    }
    t.push_str(&format!("  providers    {}\n", none(&d.providers)));
    let roles: Vec<String> = d.grants.iter().map(|(r, a)| format!("{r}@{a}")).collect();
    t.push_str(&format!("  roles        {}\n", none(&roles)));
    t.push_str(&format!("  members      {}\n", o.members.len()));
    for m in &o.members {
        let state = match &m.status {
            // Only while an activation could not be made (saving makes one for every listed
            // address without an account).
            None => "no account yet".to_string(),
            Some(s) if s == "invited" => "invited (activation link mailed, not used yet)".into(),
            Some(s) => s.clone(),
        };
        let how = if m.listed { "listed" } else { "by domain" };
        t.push_str(&format!("    {:<40} {how:<9} {state}\n", m.email));
    }
    t
}

fn effects_text(e: &OrgEffects) -> String {
    let mut parts = Vec::new();
    if e.joined > 0 {
        parts.push(format!("{} user(s) joined", e.joined));
    }
    if e.left > 0 {
        parts.push(format!("{} user(s) left", e.left));
    }
    if e.sessions_ended > 0 {
        parts.push(format!(
            "{} session(s) ended (members without a second factor enrol at their next sign-in)",
            e.sessions_ended
        ));
    }
    if e.activations_sent > 0 {
        parts.push(format!(
            "{} activation mail(s) queued for listed people without an account",
            e.activations_sent
        ));
    }
    if e.invitations_revoked > 0 {
        parts.push(format!(
            "{} pending activation link(s) withdrawn",
            e.invitations_revoked
        ));
    }
    if e.instances_pending > 0 {
        parts.push(format!(
            "warning: {} running instance(s) did not confirm within 3s",
            e.instances_pending
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join("; "))
    }
}

pub async fn execute(ops: &Ops<'_>, cmd: OrgCommand) -> Result<Out, OpError> {
    // The command line is run by whoever holds the database and the master key.
    let admin = FullAdmin::operator();
    let out = run(ops, &admin, cmd).await?;
    if out.1 {
        // Activation mails leave now when they can (a running server sends what is left).
        ops.deliver_now("").await?;
    }
    Ok(out.0)
}

/// The command's output, and whether it queued mail.
async fn run(ops: &Ops<'_>, admin: &FullAdmin, cmd: OrgCommand) -> Result<(Out, bool), OpError> {
    let mut mailed = false;
    let mut mail = |e: &OrgEffects| mailed |= e.activations_sent > 0;
    let out = match cmd {
        OrgCommand::Create { slug, options } => {
            let (o, e) = ops.create_org(admin, &slug, changes(options)).await?;
            mail(&e);
            Out {
                text: format!(
                    "created organization {}{}\n{}",
                    o.data.slug,
                    effects_text(&e),
                    org_text(&o)
                ),
                json: json!({ "org": org_json(&o), "effects": e }),
            }
        }
        OrgCommand::Update { slug, options } => {
            let (o, e) = ops.update_org(admin, &slug, changes(options)).await?;
            mail(&e);
            Out {
                text: format!(
                    "updated organization {}{}\n{}",
                    o.data.slug,
                    effects_text(&e),
                    org_text(&o)
                ),
                json: json!({ "org": org_json(&o), "effects": e }),
            }
        }
        OrgCommand::List => {
            let orgs = ops.list_orgs().await?;
            let mut text = String::new();
            for o in &orgs {
                text.push_str(&format!(
                    "{:<24} {:<8} members={:<5} {}\n",
                    o.data.slug,
                    o.data.access_by,
                    o.members.len(),
                    o.data.name
                ));
            }
            text.push_str(&format!("{} organization(s)", orgs.len()));
            Out {
                json: json!(orgs.iter().map(org_json).collect::<Vec<_>>()),
                text,
            }
        }
        OrgCommand::Show { slug } => {
            let o = ops.show_org(&slug).await?;
            Out {
                text: org_text(&o),
                json: org_json(&o),
            }
        }
        OrgCommand::AddMember(a) => {
            let (changed, e) = ops.add_org_member(admin, &a.slug, &a.email).await?;
            mail(&e);
            let email = a.email.trim();
            Out {
                text: if changed {
                    format!("listed {email} in {}{}", a.slug.trim(), effects_text(&e))
                } else {
                    format!("{email} is already listed in {}", a.slug.trim())
                },
                json: json!({ "slug": a.slug.trim(), "email": email, "changed": changed, "effects": e }),
            }
        }
        OrgCommand::RemoveMember(a) => {
            let e = ops.remove_org_member(admin, &a.slug, &a.email).await?;
            let email = a.email.trim();
            Out {
                text: format!("removed {email} from {}{}", a.slug.trim(), effects_text(&e)),
                json: json!({ "slug": a.slug.trim(), "email": email, "changed": true, "effects": e }),
            }
        }
        OrgCommand::Delete { slug } => {
            let e = ops.delete_org(admin, &slug).await?;
            Out {
                text: format!("deleted organization {}{}", slug.trim(), effects_text(&e)),
                json: json!({ "slug": slug.trim(), "deleted": true, "effects": e }),
            }
        }
    };
    Ok((out, mailed))
}

/// `grant --org` (`add`) or `revoke --org`.
pub async fn grant(
    ops: &Ops<'_>,
    slug: &str,
    role: &str,
    app: &str,
    add: bool,
) -> Result<Out, OpError> {
    let admin = FullAdmin::operator();
    let changed = ops.set_org_grant(&admin, slug, role, app, add).await?;
    let text = match (add, changed) {
        (true, true) => format!("granted {role} on {app} to organization {slug}"),
        (true, false) => format!("organization {slug} already has {role} on {app}"),
        (false, true) => format!("revoked {role} on {app} from organization {slug}"),
        (false, false) => format!("organization {slug} did not have {role} on {app}"),
    };
    Ok(Out {
        text,
        json: json!({ "org": slug, "role": role, "app": app, "changed": changed }),
    })
}
