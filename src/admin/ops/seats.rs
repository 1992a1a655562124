//! Modify seats: holders, release, the licence report.

use super::*;

impl Ops<'_> {
    fn metered_app(&self, app: &str) -> OpResult<&crate::config::app::AppConfig> {
        let a = self
            .base
            .config
            .apps
            .iter()
            .find(|a| a.id == app)
            .ok_or_else(|| {
                OpError::Invalid(format!("--app: no app {app:?} in the configuration"))
            })?;
        if a.modify_seats.is_none() {
            return Err(OpError::Invalid(format!(
                "--app: app {app:?} has no modify_seats"
            )));
        }
        Ok(a)
    }

    pub async fn seat_holders(&self, app: &str) -> OpResult<Vec<store::SeatRow>> {
        let a = self.metered_app(app)?;
        Ok(self
            .base
            .store
            .seat_holders(app, store::now(), a.seat_idle_timeout.as_secs() as i64)
            .await?)
    }

    /// Frees a user's seat on an app at once, on every instance.
    pub async fn release_seat(&self, app: &str, email: &str) -> OpResult<bool> {
        self.metered_app(app)?;
        let user = self.user(email).await?;
        let released = self.base.store.release_seat(app, &user.id).await?;
        self.invalidate(Invalidate::User(user.id.clone())).await?;
        self.audit(
            "seat.release",
            &user.email,
            Some(&user.id),
            json!({ "app": app, "released": released }),
        )
        .await;
        Ok(released)
    }

    /// Per UTC day: the peak of concurrent modify users, the licensed seats, the minutes over.
    pub async fn seat_report(&self, app: &str, since: i64) -> OpResult<Vec<SeatDay>> {
        let a = self.metered_app(app)?;
        let rows = self.base.store.seat_usage(app, since / 60).await?;
        let mut days: Vec<SeatDay> = Vec::new();
        for r in rows {
            let day = crate::audit::format_time(r.minute * 60)[..10].to_string();
            let licensed = r.licensed.max(0);
            if days.last().is_none_or(|d| d.day != day) {
                days.push(SeatDay {
                    day,
                    peak: 0,
                    licensed: a.modify_seats.unwrap_or(0) as i64,
                    minutes_over: 0,
                });
            }
            let d = days.last_mut().expect("pushed above");
            d.peak = d.peak.max(r.users);
            if r.users > licensed {
                d.minutes_over += 1;
            }
        }
        Ok(days)
    }
}

#[derive(Debug, serde::Serialize)]
pub struct SeatDay {
    pub day: String,
    pub peak: i64,
    pub licensed: i64,
    pub minutes_over: i64,
}
