//! `gatehouse admin seats …`.

use super::Out;
use super::args::{Format, SeatsCommand};
use crate::admin::ops::{OpError, Ops};
use crate::store;
use serde_json::json;

pub async fn execute(ops: &Ops<'_>, cmd: SeatsCommand) -> Result<Out, OpError> {
    Ok(match cmd {
        SeatsCommand::List { app } => {
            let rows = ops.seat_holders(&app).await?;
            let mut text: String = rows
                .iter()
                .map(|r| {
                    format!(
                        "{:<40} since {}  last active {}\n",
                        r.email,
                        crate::audit::format_time(r.acquired_at),
                        crate::audit::format_time(r.last_active_at)
                    )
                })
                .collect();
            text.push_str(&format!("{} seat(s) in use", rows.len()));
            Out {
                json: json!(
                    rows.iter()
                        .map(|r| json!({
                            "email": r.email, "user_id": r.user_id,
                            "acquired_at": crate::audit::format_time(r.acquired_at),
                            "last_active_at": crate::audit::format_time(r.last_active_at),
                        }))
                        .collect::<Vec<_>>()
                ),
                text,
            }
        }
        SeatsCommand::Release { app, email } => {
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
        SeatsCommand::Report { app, since, format } => {
            let since = match &since {
                Some(s) => crate::audit::parse_since(s).ok_or_else(|| {
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
    })
}
