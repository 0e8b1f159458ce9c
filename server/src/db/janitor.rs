//! Deletes what has outlived its use: expired verification codes and grant state, delivered
//! messages, ended sessions, stale sign-in counters. One instance per round does the work (a
//! Postgres advisory lock), so several instances on one database do not repeat it.

use std::time::Duration;

use diesel::{QueryableByName, sql_types::Bool};
use diesel_async::RunQueryDsl;

use crate::{db::DbPool, error::Result};

/// Arbitrary, fixed: identifies the janitor's advisory lock.
const LOCK_ID: i64 = 0x6d67_7061_7373_4a01;

/// What is deleted, and after how long. Margins are generous: a code is kept a day after it
/// expires, a delivered message a week (its body was wiped at delivery), an ended session a month
/// (the user's session list shows only live ones).
const PURGES: [(&str, &str); 8] = [
    (
        "verification_codes",
        "DELETE FROM verification_codes WHERE expires_at < now() - interval '1 day'",
    ),
    (
        "outbox",
        "DELETE FROM outbox WHERE status IN ('sent', 'failed') AND created_at < now() - interval '7 days'",
    ),
    (
        "authorization_codes",
        "DELETE FROM authorization_codes WHERE expires_at < now() - interval '1 hour'",
    ),
    (
        "device_authorizations",
        "DELETE FROM device_authorizations WHERE expires_at < now() - interval '1 hour'",
    ),
    (
        "oauth_interactions",
        "DELETE FROM oauth_interactions WHERE expires_at < now()",
    ),
    (
        "revoked_access_tokens",
        "DELETE FROM revoked_access_tokens WHERE expires_at < now() - interval '5 minutes'",
    ),
    (
        "sessions",
        "DELETE FROM sessions WHERE coalesce(revoked_at, expires_at) < now() - interval '30 days'",
    ),
    (
        "login_throttle",
        "DELETE FROM login_throttle WHERE coalesce(locked_until, last_failure_at) < now() - interval '1 day'",
    ),
];

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// One round: every purge, if this instance gets the lock. Returns rows deleted per table.
pub async fn run_once(pool: &DbPool) -> Result<Vec<(&'static str, usize)>> {
    let mut conn = pool.get().await?;
    let lock: Locked =
        diesel::sql_query(format!("SELECT pg_try_advisory_lock({LOCK_ID}) AS locked"))
            .get_result(&mut conn)
            .await?;
    if !lock.locked {
        return Ok(Vec::new());
    }
    let mut deleted = Vec::new();
    let mut outcome = Ok(());
    for (table, sql) in PURGES {
        match diesel::sql_query(sql).execute(&mut conn).await {
            Ok(n) => deleted.push((table, n)),
            Err(err) => {
                outcome = Err(err.into());
                break;
            }
        }
    }
    diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK_ID})"))
        .execute(&mut conn)
        .await?;
    outcome.map(|()| deleted)
}

/// Runs a round every `interval` until the process ends.
pub fn spawn(pool: DbPool, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&pool).await {
                Ok(deleted) => {
                    let total: usize = deleted.iter().map(|(_, n)| n).sum();
                    if total > 0 {
                        tracing::info!(?deleted, total, "expired rows purged");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "purging expired rows failed"),
            }
        }
    });
}
