//! `gatehouse admin …`: prints a human summary, or one JSON document with `--json`; exits
//! non-zero with a clear message on bad input. One file per noun; the arguments in `args`.

mod args;
mod audit;
mod role;
mod seats;
mod session;
mod token;
mod user;

pub use args::*;

use super::ops::{OpError, Ops, Revoked};
use crate::audit::Actor;
use crate::config::Config;
use crate::core::Core;
use crate::store::{self, UserRow};
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

async fn user_json(core: &Core, ops: &Ops<'_>, u: &UserRow) -> Result<Value, OpError> {
    let grants = core.store.grants_of(&u.id).await?;
    let sessions = core.store.list_sessions(Some(&u.id), store::now()).await?;
    Ok(json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "status": ops.display_status(u),
        "password_set": u.password_hash.is_some(),
        "password_must_change": u.password_must_change != 0,
        "mfa": u.totp_secret.is_some(),
        "recovery_codes_left": core.store.recovery_codes_left(&u.id).await?,
        "failed_attempts": u.failed_count,
        "locked_until": u.locked_until.filter(|t| *t > store::now()).map(|t| if t == i64::MAX { "manual unlock".to_string() } else { crate::audit::format_time(t) }),
        "roles": grants.iter().map(|g| json!({"role": g.role, "app": g.app, "seat": g.seat})).collect::<Vec<_>>(),
        "sessions": sessions.len(),
        "created_at": crate::audit::format_time(u.created_at),
    }))
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

async fn execute(core: &Core, cmd: AdminCommand) -> Result<Out, OpError> {
    let ops = Ops {
        core,
        actor: Actor::cli(),
    };
    match cmd {
        AdminCommand::User(c) => user::execute(core, &ops, c).await,
        AdminCommand::Role(c) => role::execute(core, &ops, c).await,
        AdminCommand::Grant(g) => role::grant(&ops, g, true).await,
        AdminCommand::Revoke(g) => role::grant(&ops, g, false).await,
        AdminCommand::Token(c) => token::execute(core, &ops, c).await,
        AdminCommand::Session(c) => session::execute(core, &ops, c).await,
        AdminCommand::Seats(c) => seats::execute(&ops, c).await,
        AdminCommand::Audit(a) => audit::execute(core, a).await,
    }
}

pub async fn run(config: Config, json: bool, cmd: AdminCommand) -> ExitCode {
    let core = match Core::open(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = execute(&core, cmd).await;
    core.store.close().await;
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
