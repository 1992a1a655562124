use super::{Result, Store};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SeatRow {
    pub user_id: String,
    pub email: String,
    pub acquired_at: i64,
    pub last_active_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    pub minute: i64,
    pub users: i64,
    pub licensed: i64,
}

/// What happened when a modify user asked for a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatGrant {
    /// Already held (refreshed) or newly taken within the licence.
    Held,
    /// Taken beyond the licence (`seat_overflow = "admit"`): `in_use` counts this user.
    Over { in_use: i64 },
    /// Every seat is taken (`seat_overflow = "refuse"`); the earliest frees at `frees_at`.
    Full { frees_at: i64 },
}

impl Store {
    /// Refreshes or takes `user`'s seat on `app`. Admissions are serialised per app by a row lock
    /// (`seat_locks`), so concurrent arrivals on any number of instances never overshoot `licensed`.
    pub async fn take_seat(
        &self,
        app: &str,
        user: &str,
        licensed: i64,
        admit_over: bool,
        now: i64,
        idle: i64,
    ) -> Result<SeatGrant> {
        let cutoff = now - idle;
        // The common case, a held seat being refreshed, needs no lock.
        let r = sqlx::query(
            "UPDATE seats SET last_active_at = $3 WHERE app = $1 AND user_id = $2 AND last_active_at > $4",
        )
        .bind(app)
        .bind(user)
        .bind(now)
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(SeatGrant::Held);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO seat_locks (app, touched_at) VALUES ($1, $2) \
             ON CONFLICT (app) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(app)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM seats WHERE app = $1 AND last_active_at <= $2")
            .bind(app)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        // The user is counted once, however many of their requests arrive together: a sibling
        // request may have taken this user's seat since the refresh above missed it, so the
        // decision is about the *other* holders, and the user's own seat is simply refreshed.
        let (others, mine): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN user_id <> $2 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN user_id = $2 THEN 1 ELSE 0 END), 0) \
             FROM seats WHERE app = $1",
        )
        .bind(app)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        if mine == 0 && others >= licensed && !admit_over {
            let (oldest,): (Option<i64>,) =
                sqlx::query_as("SELECT MIN(last_active_at) FROM seats WHERE app = $1")
                    .bind(app)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            return Ok(SeatGrant::Full {
                frees_at: oldest.unwrap_or(now) + idle,
            });
        }
        sqlx::query(
            "INSERT INTO seats (app, user_id, acquired_at, last_active_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (app, user_id) DO UPDATE SET last_active_at = excluded.last_active_at",
        )
        .bind(app)
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let in_use = others + 1;
        // The licence report's peak: the most seats seen in use during this minute.
        sqlx::query(
            "INSERT INTO seat_usage (app, minute, users, licensed) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (app, minute) DO UPDATE SET \
             users = CASE WHEN excluded.users > seat_usage.users THEN excluded.users ELSE seat_usage.users END, \
             licensed = excluded.licensed",
        )
        .bind(app)
        .bind(now / 60)
        .bind(in_use)
        .bind(licensed)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if in_use > licensed {
            SeatGrant::Over { in_use }
        } else {
            SeatGrant::Held
        })
    }

    /// Records, once a minute, how many seats are in use (so the report covers quiet minutes).
    pub async fn sample_seat_usage(
        &self,
        app: &str,
        licensed: i64,
        now: i64,
        idle: i64,
    ) -> Result<()> {
        let in_use = self.seats_in_use(app, now, idle).await?;
        sqlx::query(
            "INSERT INTO seat_usage (app, minute, users, licensed) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (app, minute) DO UPDATE SET \
             users = CASE WHEN excluded.users > seat_usage.users THEN excluded.users ELSE seat_usage.users END, \
             licensed = excluded.licensed",
        )
        .bind(app)
        .bind(now / 60)
        .bind(in_use)
        .bind(licensed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many seats of `app` are held now (active within `idle` seconds).
    pub async fn seats_in_use(&self, app: &str, now: i64, idle: i64) -> Result<i64> {
        let (in_use,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM seats WHERE app = $1 AND last_active_at > $2")
                .bind(app)
                .bind(now - idle)
                .fetch_one(&self.pool)
                .await?;
        Ok(in_use)
    }

    pub async fn release_seat(&self, app: &str, user: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM seats WHERE app = $1 AND user_id = $2")
            .bind(app)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn release_user_seats(&self, user: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM seats WHERE user_id = $1")
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn seat_holders(&self, app: &str, now: i64, idle: i64) -> Result<Vec<SeatRow>> {
        Ok(sqlx::query_as(
            "SELECT s.user_id, u.email, s.acquired_at, s.last_active_at FROM seats s JOIN users u ON u.id = s.user_id \
             WHERE s.app = $1 AND s.last_active_at > $2 ORDER BY s.acquired_at",
        )
        .bind(app)
        .bind(now - idle)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn seat_usage(&self, app: &str, since_minute: i64) -> Result<Vec<UsageRow>> {
        Ok(sqlx::query_as(
            "SELECT minute, users, licensed FROM seat_usage WHERE app = $1 AND minute >= $2 ORDER BY minute",
        )
        .bind(app)
        .bind(since_minute)
        .fetch_all(&self.pool)
        .await?)
    }
}
