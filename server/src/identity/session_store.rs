//! SQL for sessions, refresh tokens and sign-in throttling.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, upsert::excluded};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{login_throttle, refresh_tokens, sessions},
    error::Result,
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub application_id: String,
    pub user_agent: String,
    pub ip_address: String,
    pub amr: Vec<String>,
    pub pending_second_factor: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: String,
    pub ip_address: String,
    pub amr: Vec<String>,
    pub pending_second_factor: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub session_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert_session(
    conn: &mut AsyncPgConnection,
    session: NewSession,
) -> Result<SessionRow> {
    Ok(diesel::insert_into(sessions::table)
        .values(session)
        .returning(SessionRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn insert_refresh_token(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    token_hash: Vec<u8>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The refresh token with this digest, locked until the transaction ends so that two concurrent
/// uses of one token are serialised (the second sees it used).
pub async fn lock_refresh_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> Result<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn mark_refresh_token_used(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> Result<()> {
    diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(token_hash)))
        .set(refresh_tokens::used_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_session(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<SessionRow>> {
    Ok(sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn touch_session(conn: &mut AsyncPgConnection, id: Uuid) -> Result<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_used_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Active sessions of a user, newest first.
pub async fn list_active(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Vec<SessionRow>> {
    let mut query = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .select(SessionRow::as_select())
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            sessions::created_at
                .lt(at)
                .or(sessions::created_at.eq(at).and(sessions::id.lt(id))),
        );
    }
    Ok(query
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

/// Revokes sessions of `user_id` (one when `only` is set; all but `keep` otherwise) and returns
/// how many were revoked. Their refresh tokens die with them.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    only: Option<Uuid>,
    keep: Option<Uuid>,
    reason: &str,
) -> Result<usize> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(sessions::id.eq(id));
    }
    if let Some(id) = keep {
        query = query.filter(sessions::id.ne(id));
    }
    Ok(query
        .set((
            sessions::revoked_at.eq(Utc::now()),
            sessions::revoked_reason.eq(reason),
        ))
        .execute(conn)
        .await?)
}

/// Whether the session may still be used (not revoked, not expired, no factor pending).
pub async fn session_state(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(bool, Option<String>)>> {
    let row: Option<(Option<DateTime<Utc>>, DateTime<Utc>, Option<String>)> = sessions::table
        .find(id)
        .select((
            sessions::revoked_at,
            sessions::expires_at,
            sessions::pending_second_factor,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(revoked, expires, pending)| (revoked.is_none() && expires > Utc::now(), pending)))
}

/// The lock of a throttle key, if it is locked now.
pub async fn locked_until(
    conn: &mut AsyncPgConnection,
    keys: &[String],
) -> Result<Option<DateTime<Utc>>> {
    let now = Utc::now();
    let until: Vec<Option<DateTime<Utc>>> = login_throttle::table
        .filter(login_throttle::key.eq_any(keys))
        .filter(login_throttle::locked_until.gt(now))
        .select(login_throttle::locked_until)
        .load(conn)
        .await?;
    Ok(until.into_iter().flatten().max())
}

/// Counts one failure for `key` and returns the new failure count.
pub async fn record_failure(conn: &mut AsyncPgConnection, key: &str) -> Result<i32> {
    Ok(diesel::insert_into(login_throttle::table)
        .values((login_throttle::key.eq(key), login_throttle::failures.eq(1)))
        .on_conflict(login_throttle::key)
        .do_update()
        .set((
            login_throttle::failures.eq(login_throttle::failures + 1),
            login_throttle::last_failure_at.eq(excluded(login_throttle::last_failure_at)),
        ))
        .returning(login_throttle::failures)
        .get_result(conn)
        .await?)
}

pub async fn lock(conn: &mut AsyncPgConnection, key: &str, until: DateTime<Utc>) -> Result<()> {
    diesel::update(login_throttle::table.find(key))
        .set(login_throttle::locked_until.eq(until))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn clear_throttle(conn: &mut AsyncPgConnection, keys: &[String]) -> Result<()> {
    diesel::delete(login_throttle::table.filter(login_throttle::key.eq_any(keys)))
        .execute(conn)
        .await?;
    Ok(())
}
