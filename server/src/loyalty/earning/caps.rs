//! Per-user caps, enforced atomically with the award: every cap of a rule has one counter row per
//! (user, period); the award locks the rows (`FOR UPDATE`, in a fixed order), grants what the
//! tightest cap leaves and adds it to every row before its transaction commits. A concurrent award
//! of the same rule to the same user waits for the lock, so caps cannot be exceeded; awards to
//! other users never touch these rows.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::engine::Cap;
use crate::{db::schema::loyalty_cap_counters as c, error::Result};

/// Cap periods (= proto `CapPeriod`).
pub const DAY: i16 = 1;
pub const WEEK: i16 = 2;
pub const MONTH: i16 = 3;
pub const LIFETIME: i16 = 4;

/// The first day of the period containing the local day `local`.
pub fn period_start(period: i16, local: NaiveDate) -> NaiveDate {
    match period {
        DAY => local,
        WEEK => local - Duration::days(i64::from(local.weekday().num_days_from_monday())),
        MONTH => local.with_day(1).unwrap_or(local),
        _ => NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch"),
    }
}

/// The day `at` falls on in the loyalty time zone (an IANA name; Postgres knows its rules,
/// daylight saving included).
async fn local_date(
    conn: &mut AsyncPgConnection,
    at: DateTime<Utc>,
    time_zone: &str,
) -> Result<NaiveDate> {
    #[derive(QueryableByName)]
    struct Day {
        #[diesel(sql_type = diesel::sql_types::Date)]
        day: NaiveDate,
    }
    let day: Day = diesel::sql_query("SELECT (timezone($1, $2))::date AS day")
        .bind::<diesel::sql_types::Text, _>(time_zone)
        .bind::<diesel::sql_types::Timestamptz, _>(at)
        .get_result(conn)
        .await?;
    Ok(day.day)
}

/// The counter keys of a rule's caps for an event on the local day `local`, in lock order.
fn keys(caps: &[Cap], local: NaiveDate) -> Vec<(i16, NaiveDate, i64)> {
    let mut keys: Vec<_> = caps
        .iter()
        .map(|cap| (cap.period, period_start(cap.period, local), cap.max_points))
        .collect();
    keys.sort_by_key(|k| k.0);
    keys
}

/// Points already counted per cap, without locking (dry runs).
pub async fn usage(
    conn: &mut AsyncPgConnection,
    rule: Uuid,
    user: Uuid,
    caps: &[Cap],
    at: DateTime<Utc>,
    time_zone: &str,
) -> Result<Vec<(i64, i64)>> {
    let mut used = Vec::new();
    for (period, start, max) in keys(caps, local_date(conn, at, time_zone).await?) {
        let points: Option<i64> = c::table
            .find((rule, user, period, start))
            .select(c::points)
            .first(conn)
            .await
            .optional()?;
        used.push((points.unwrap_or(0), max));
    }
    Ok(used)
}

/// What the caps leave of `want`, given (used, max) per cap.
pub fn allowed(want: i64, usage: &[(i64, i64)]) -> i64 {
    usage
        .iter()
        .fold(want, |left, (used, max)| left.min((max - used).max(0)))
}

/// Grants up to `want` points under the caps, inside the award's transaction; returns the points
/// granted (what every counter was increased by).
pub async fn grant(
    conn: &mut AsyncPgConnection,
    rule: Uuid,
    user: Uuid,
    caps: &[Cap],
    at: DateTime<Utc>,
    time_zone: &str,
    want: i64,
) -> Result<i64> {
    let keys = keys(caps, local_date(conn, at, time_zone).await?);
    let mut usage = Vec::with_capacity(keys.len());
    for (period, start, max) in &keys {
        diesel::insert_into(c::table)
            .values((
                c::rule_id.eq(rule),
                c::user_id.eq(user),
                c::period.eq(period),
                c::period_start.eq(start),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let used: i64 = c::table
            .find((rule, user, *period, *start))
            .select(c::points)
            .for_update()
            .first(conn)
            .await?;
        usage.push((used, *max));
    }
    let granted = allowed(want, &usage);
    if granted > 0 {
        for (period, start, _) in &keys {
            diesel::update(c::table.find((rule, user, *period, *start)))
                .set(c::points.eq(c::points + granted))
                .execute(conn)
                .await?;
        }
    }
    Ok(granted)
}

/// Gives back points a reversed award had counted against the caps.
pub async fn release(
    conn: &mut AsyncPgConnection,
    rule: Uuid,
    user: Uuid,
    caps: &[Cap],
    at: DateTime<Utc>,
    time_zone: &str,
    points: i64,
) -> Result<()> {
    for (period, start, _) in keys(caps, local_date(conn, at, time_zone).await?) {
        use diesel::sql_types::{BigInt, Date, SmallInt, Uuid as SqlUuid};
        diesel::sql_query(
            "UPDATE loyalty_cap_counters SET points = GREATEST(points - $1, 0) \
             WHERE rule_id = $2 AND user_id = $3 AND period = $4 AND period_start = $5",
        )
        .bind::<BigInt, _>(points)
        .bind::<SqlUuid, _>(rule)
        .bind::<SqlUuid, _>(user)
        .bind::<SmallInt, _>(period)
        .bind::<Date, _>(start)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_calendar() {
        // Wednesday 2026-11-25.
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(period_start(DAY, day), day);
        assert_eq!(
            period_start(WEEK, day),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        assert_eq!(
            period_start(MONTH, day),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
        assert_eq!(
            period_start(LIFETIME, day),
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
        );
        assert_eq!(allowed(100, &[(90, 100), (0, 1000)]), 10);
        assert_eq!(allowed(100, &[(120, 100)]), 0);
    }
}
