//! `gatehouse admin …`: prints a human summary, or one JSON document with `--json`; exits
//! non-zero with a clear message on bad input.

use super::ops::{OpError, Ops, Revoked, generate_temp_password};
use crate::audit::{self, Actor};
use crate::config::Config;
use crate::core::Core;
use crate::directory::{UserStatus, parse_role_spec};
use crate::store::{self, AuditFilter, UserRow};
use clap::{ArgGroup, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users: create, list, show, block, unblock, unlock, reset-mfa, set-temp-password, anonymize, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Grant a role to a user (on one app, or every app).
    Grant(GrantArgs),
    /// Revoke a role from a user.
    Revoke(GrantArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The audit trail.
    Audit(AuditArgs),
    /// Modify seats (an app's licensed concurrent modify users).
    #[command(subcommand)]
    Seats(SeatsCommand),
}

#[derive(Subcommand)]
pub enum SeatsCommand {
    /// Who holds a seat now.
    List {
        #[arg(long)]
        app: String,
    },
    /// Frees a user's seat at once.
    Release {
        #[arg(long)]
        app: String,
        #[arg(long)]
        email: String,
    },
    /// Per day: peak concurrent modify users, licensed seats, minutes over the licence.
    Report {
        #[arg(long)]
        app: String,
        /// A duration ("30d") or a date ("2026-11-01"); default: 30 days.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// R or R@APP; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the initial password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    Show(EmailArg),
    Block(EmailArg),
    Unblock(EmailArg),
    Unlock(EmailArg),
    ResetMfa(EmailArg),
    /// Sets a temporary password (generated, or from stdin) that must be changed at next sign-in.
    SetTempPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    Anonymize(EmailArg),
    Delete(EmailArg),
}

#[derive(clap::Args)]
pub struct EmailArg {
    #[arg(long)]
    pub email: String,
}

#[derive(Subcommand)]
pub enum RoleCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["limited", "modify"])]
        seat: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
}

#[derive(clap::Args)]
pub struct GrantArgs {
    /// The user's email.
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub role: String,
    /// The app id; omitted = every app.
    #[arg(long, default_value = "*")]
    pub app: String,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Creates an API token and prints it once.
    Create {
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    List {
        #[arg(long)]
        email: Option<String>,
    },
    #[command(group(ArgGroup::new("which").required(true).args(["email", "id"])))]
    Revoke {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// A duration ("24h") or a time ("2026-11-01", RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

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
        "locked_until": u.locked_until.filter(|t| *t > store::now()).map(|t| if t == i64::MAX { "manual unlock".to_string() } else { audit::format_time(t) }),
        "roles": grants.iter().map(|g| json!({"role": g.role, "app": g.app, "seat": g.seat})).collect::<Vec<_>>(),
        "sessions": sessions.len(),
        "created_at": audit::format_time(u.created_at),
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
    Ok(match cmd {
        AdminCommand::User(u) => match u {
            UserCommand::Create {
                email,
                name,
                roles,
                password_stdin,
            } => {
                let roles: Vec<(String, String)> =
                    roles.iter().map(|r| parse_role_spec(r)).collect();
                let password = if password_stdin {
                    Some(read_stdin_password()?)
                } else {
                    None
                };
                let user = ops
                    .create_user(&email, &name, &roles, password.as_deref(), false)
                    .await?;
                let j = user_json(core, &ops, &user).await?;
                let hint = if password.is_none() {
                    "\n  no password yet: give one with `gatehouse admin user set-temp-password`"
                } else {
                    ""
                };
                Out {
                    text: format!("created user {} ({}){hint}", user.email, user.id),
                    json: j,
                }
            }
            UserCommand::List => {
                let users = core.store.list_users().await?;
                let mut list = Vec::new();
                let mut text = String::new();
                for u in &users {
                    let j = user_json(core, &ops, u).await?;
                    text.push_str(&format!(
                        "{:<40} {:<13} mfa={:<5} roles={}\n",
                        u.email,
                        ops.display_status(u),
                        u.totp_secret.is_some(),
                        j["roles"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .map(|g| format!(
                                    "{}@{}",
                                    g["role"].as_str().unwrap_or(""),
                                    g["app"].as_str().unwrap_or("")
                                ))
                                .collect::<Vec<_>>()
                                .join(","))
                            .unwrap_or_default()
                    ));
                    list.push(j);
                }
                text.push_str(&format!("{} user(s)", users.len()));
                Out {
                    json: json!(list),
                    text,
                }
            }
            UserCommand::Show(a) => {
                let user = ops.user(&a.email).await?;
                let j = user_json(core, &ops, &user).await?;
                Out {
                    text: serde_json::to_string_pretty(&j).unwrap_or_default(),
                    json: j,
                }
            }
            UserCommand::Block(a) => {
                let blocked = UserStatus::Blocked;
                let (u, r) = ops.set_status(&a.email, blocked).await?;
                Out {
                    text: format!("blocked {}; {}", u.email, revoked_text(&r)),
                    json: json!({ "email": u.email, "status": blocked.as_str(), "revoked": r }),
                }
            }
            UserCommand::Unblock(a) => {
                let (u, _) = ops.set_status(&a.email, UserStatus::Active).await?;
                Out {
                    text: format!("unblocked {}", u.email),
                    json: json!({ "email": u.email, "status": ops.display_status(&u) }),
                }
            }
            UserCommand::Unlock(a) => {
                let u = ops.unlock(&a.email).await?;
                Out {
                    text: format!("unlocked {}", u.email),
                    json: json!({ "email": u.email, "status": ops.display_status(&u) }),
                }
            }
            UserCommand::ResetMfa(a) => {
                let (u, r) = ops.reset_mfa(&a.email).await?;
                Out {
                    text: format!("reset MFA of {}; {}", u.email, revoked_text(&r)),
                    json: json!({ "email": u.email, "mfa": false, "revoked": r }),
                }
            }
            UserCommand::SetTempPassword {
                email,
                password_stdin,
            } => {
                let (password, generated) = if password_stdin {
                    (read_stdin_password()?, false)
                } else {
                    (generate_temp_password(), true)
                };
                let r = ops.set_temp_password(&email, &password).await?;
                let shown = if generated {
                    Some(password.clone())
                } else {
                    None
                };
                Out {
                    text: match &shown {
                        Some(p) => format!(
                            "temporary password for {email}: {p}\n  (shown once; it must be changed at the next sign-in; {})",
                            revoked_text(&r)
                        ),
                        None => format!("temporary password set for {email}; {}", revoked_text(&r)),
                    },
                    json: json!({ "email": email.trim(), "temporary_password": shown, "must_change": true, "revoked": r }),
                }
            }
            UserCommand::Anonymize(a) => {
                let (pseudonym, r) = ops.anonymize(&a.email).await?;
                Out {
                    text: format!(
                        "anonymized {} as {pseudonym}; {}",
                        a.email.trim(),
                        revoked_text(&r)
                    ),
                    json: json!({ "pseudonym": pseudonym, "revoked": r }),
                }
            }
            UserCommand::Delete(a) => {
                let r = ops.delete(&a.email).await?;
                Out {
                    text: format!("deleted {}; {}", a.email.trim(), revoked_text(&r)),
                    json: json!({ "email": a.email.trim(), "deleted": true, "revoked": r }),
                }
            }
        },
        AdminCommand::Role(RoleCommand::Create {
            name,
            seat,
            description,
        }) => {
            ops.create_role(&name, &seat, &description).await?;
            Out {
                text: format!("created role {name} ({seat})"),
                json: json!({ "name": name, "seat": seat, "description": description }),
            }
        }
        AdminCommand::Role(RoleCommand::List) => {
            let roles = core.store.list_roles().await?;
            Out {
                text: roles
                    .iter()
                    .map(|r| format!("{:<20} {:<8} {}", r.name, r.seat, r.description))
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!(roles),
            }
        }
        AdminCommand::Grant(g) => {
            let changed = ops.set_grant(&g.user, &g.role, &g.app, true).await?;
            Out {
                text: if changed {
                    format!("granted {} on {} to {}", g.role, g.app, g.user)
                } else {
                    format!("{} already has {} on {}", g.user, g.role, g.app)
                },
                json: json!({ "user": g.user, "role": g.role, "app": g.app, "changed": changed }),
            }
        }
        AdminCommand::Revoke(g) => {
            let changed = ops.set_grant(&g.user, &g.role, &g.app, false).await?;
            Out {
                text: if changed {
                    format!("revoked {} on {} from {}", g.role, g.app, g.user)
                } else {
                    format!("{} did not have {} on {}", g.user, g.role, g.app)
                },
                json: json!({ "user": g.user, "role": g.role, "app": g.app, "changed": changed }),
            }
        }
        AdminCommand::Token(TokenCommand::Create { name }) => {
            let token = ops.create_api_token(&name).await?;
            Out {
                text: format!("API token {name} (shown once, store it now):\n{token}"),
                json: json!({ "name": name, "token": token }),
            }
        }
        AdminCommand::Token(TokenCommand::List) => {
            let tokens = core.store.list_api_tokens().await?;
            Out {
                text: tokens
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<24} created {}",
                            t.name,
                            audit::format_time(t.created_at)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                json: json!(tokens),
            }
        }
        AdminCommand::Session(SessionCommand::List { email }) => {
            let user = match &email {
                Some(e) => Some(ops.user(e).await?),
                None => None,
            };
            let rows = core
                .store
                .list_sessions(user.as_ref().map(|u| u.id.as_str()), store::now())
                .await?;
            let mut list = Vec::new();
            let mut text = String::new();
            for s in &rows {
                let email = match &user {
                    Some(u) => u.email.clone(),
                    None => core
                        .store
                        .user_by_id(&s.user_id)
                        .await?
                        .map(|u| u.email)
                        .unwrap_or_default(),
                };
                text.push_str(&format!(
                    "{}  {:<32} {:<10} {:<15} since {}\n",
                    s.id,
                    email,
                    s.stage,
                    s.ip,
                    audit::format_time(s.created_at)
                ));
                list.push(json!({
                    "id": s.id, "email": email, "stage": s.stage, "amr": s.amr, "ip": s.ip,
                    "user_agent": s.user_agent, "created_at": audit::format_time(s.created_at),
                    "last_seen_at": audit::format_time(s.last_seen_at), "expires_at": audit::format_time(s.expires_at),
                }));
            }
            text.push_str(&format!("{} session(s)", rows.len()));
            Out {
                json: json!(list),
                text,
            }
        }
        AdminCommand::Session(SessionCommand::Revoke { email, id }) => {
            let r = match (email, id) {
                (_, Some(id)) => ops.revoke_session_by_id(&id).await?,
                (Some(e), None) => ops.revoke_sessions_of(&e).await?,
                (None, None) => return Err(OpError::Invalid("give --email or --id".into())),
            };
            Out {
                text: revoked_text(&r),
                json: json!({ "revoked": r }),
            }
        }
        AdminCommand::Seats(SeatsCommand::List { app }) => {
            let rows = ops.seat_holders(&app).await?;
            let mut text: String = rows
                .iter()
                .map(|r| {
                    format!(
                        "{:<40} since {}  last active {}\n",
                        r.email,
                        audit::format_time(r.acquired_at),
                        audit::format_time(r.last_active_at)
                    )
                })
                .collect();
            text.push_str(&format!("{} seat(s) in use", rows.len()));
            Out {
                json: json!(
                    rows.iter()
                        .map(|r| json!({
                            "email": r.email, "user_id": r.user_id,
                            "acquired_at": audit::format_time(r.acquired_at),
                            "last_active_at": audit::format_time(r.last_active_at),
                        }))
                        .collect::<Vec<_>>()
                ),
                text,
            }
        }
        AdminCommand::Seats(SeatsCommand::Release { app, email }) => {
            let released = ops.release_seat(&app, &email).await?;
            Out {
                text: if released {
                    format!("released the seat of {email} on {app}")
                } else {
                    format!("{email} held no seat on {app}")
                },
                json: json!({ "app": app, "email": email, "released": released }),
            }
        }
        AdminCommand::Seats(SeatsCommand::Report { app, since, format }) => {
            let since = match &since {
                Some(s) => audit::parse_since(s).ok_or_else(|| {
                    OpError::Invalid(format!(
                        "--since: {s:?} is neither a duration (\"30d\") nor a date (\"2026-11-01\")"
                    ))
                })?,
                None => store::now() - 30 * 86_400,
            };
            let days = ops.seat_report(&app, since).await?;
            let csv = std::iter::once("day,peak,licensed,minutes_over".to_string())
                .chain(
                    days.iter()
                        .map(|d| format!("{},{},{},{}", d.day, d.peak, d.licensed, d.minutes_over)),
                )
                .collect::<Vec<_>>()
                .join("\n");
            let j = json!(days);
            Out {
                text: match format {
                    Some(Format::Json) => serde_json::to_string_pretty(&j).unwrap_or_default(),
                    _ => csv,
                },
                json: j,
            }
        }
        AdminCommand::Audit(a) => {
            let since = match &a.since {
                Some(s) => Some(audit::parse_since(s).ok_or_else(|| {
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
            let rows = core.store.query_audit(&filter).await?;
            let json_rows: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id, "time": audit::format_time(r.at), "actor": r.actor, "action": r.action,
                        "target": r.target, "outcome": r.outcome, "ip": r.ip,
                        "details": serde_json::from_str::<Value>(&r.details).unwrap_or(Value::Null),
                    })
                })
                .collect();
            let text = match a.format {
                Some(Format::Csv) => audit::to_csv(&rows),
                Some(Format::Json) => serde_json::to_string_pretty(&json_rows).unwrap_or_default(),
                None => rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {:<22} {:<8} {:<28} {} {}",
                            audit::format_time(r.at),
                            r.action,
                            r.outcome,
                            r.actor,
                            r.target,
                            r.details
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            Out {
                json: json!(json_rows),
                text,
            }
        }
    })
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
