//! `gatehouse admin …`: prints a human summary, or one JSON document with `--json`; exits
//! non-zero with a clear message on bad input. One file per noun; the arguments in `args`.

mod args;
mod audit;
mod invite;
mod mail;
mod org;
mod role;
mod seats;
mod session;
mod token;
mod user;

pub use args::*;

use super::ops::{OpError, Ops, Revoked, UserDetail};
use crate::audit::Actor;
use crate::config::Config;
use crate::core::Base;
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

struct Out {
    json: Value,
    text: String,
}

fn read_stdin_password() -> Result<String, OpError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| {
        OpError::Invalid(format!("cannot read the password from stdin: {}", e.kind()))
    })?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        return Err(OpError::Invalid(
            "--password-stdin: no password on standard input".into(),
        ));
    }
    Ok(p)
}

fn user_json(u: &UserDetail) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "status": u.status,
        "password_set": u.password_set,
        "password_must_change": u.password_must_change,
        "mfa": u.mfa,
        "recovery_codes_left": u.recovery_codes_left,
        "failed_attempts": u.failed_attempts,
        "locked_until": u.locked_until.map(|t| if t == i64::MAX { "manual unlock".to_string() } else { crate::audit::format_time(t) }),
        "roles": u.grants.iter().map(|g| json!({"role": g.role, "app": g.app, "seat": g.seat})).collect::<Vec<_>>(),
        "org": u.org.as_ref().map(|o| json!({
            "slug": o.slug,
            "name": o.name,
            "roles": o.grants.iter().map(|g| json!({"role": g.role, "app": g.app, "seat": g.seat})).collect::<Vec<_>>(),
        })),
        "sessions": u.sessions,
        "upstream_identities": u.identities.iter().map(|i| json!({
            "provider": i.provider,
            "subject": i.subject,
            "email": i.email,
            "linked_at": crate::audit::format_time(i.linked_at),
            "last_used_at": i.last_used_at.map(crate::audit::format_time),
        })).collect::<Vec<_>>(),
        "created_at": crate::audit::format_time(u.created_at),
    })
}

fn revoked_text(r: &Revoked) -> String {
    let mut s = format!("{} session(s) ended", r.sessions);
    if r.instances_pending > 0 {
        s.push_str(&format!(
            "; warning: {} running instance(s) did not confirm within 3s",
            r.instances_pending
        ));
    }
    s
}

async fn execute(base: &Base, cmd: AdminCommand) -> Result<Out, OpError> {
    let ops = Ops {
        base,
        actor: Actor::cli(),
    };
    match cmd {
        AdminCommand::User(c) => user::execute(&ops, c).await,
        AdminCommand::Org(c) => org::execute(&ops, c).await,
        AdminCommand::Role(c) => role::execute(&ops, c).await,
        AdminCommand::Grant(g) => role::grant(&ops, g, true).await,
        AdminCommand::Revoke(g) => role::grant(&ops, g, false).await,
        AdminCommand::Token(c) => token::execute(&ops, c).await,
        AdminCommand::Session(c) => session::execute(&ops, c).await,
        AdminCommand::Seats(c) => seats::execute(&ops, c).await,
        AdminCommand::Audit(a) => audit::execute(&ops, a).await,
        AdminCommand::Invite(c) => invite::execute(&ops, c).await,
        AdminCommand::Mail(c) => mail::execute(&ops, c).await,
    }
}

/// Runs one command on a [`Base`] (the store, keys, config and revocation publisher; no
/// server state): a CLI process holds no caches, so its invalidations are only published.
pub async fn run(config: Config, json: bool, cmd: AdminCommand) -> ExitCode {
    let base = match Base::open(config, crate::revocation::Bus::default()).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = execute(&base, cmd).await;
    base.store.close().await;
    match result {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else if !out.text.is_empty() {
                println!("{}", out.text.trim_end());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = match e {
                OpError::Store(_) => ExitCode::FAILURE,
                _ => ExitCode::from(2),
            };
            if json {
                println!("{}", json!({ "error": e.to_string() }));
            }
            eprintln!("error: {e}");
            code
        }
    }
}
