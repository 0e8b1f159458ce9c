//! SQL of the hosted pages: browser sessions (cookie digest → session) and interactions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{browser_sessions, sessions, users},
    error::Result,
};

diesel::table! {
    oauth_interactions (id_hash) {
        id_hash -> Bytea,
        browser_hash -> Bytea,
        kind -> Text,
        request -> Jsonb,
        session_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

/// The session behind a browser cookie, alive (not revoked, not expired, user active).
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub amr: Vec<String>,
    /// The second factor the session still owes; until it is proven the browser is not signed in.
    pub pending_second_factor: Option<String>,
    pub auth_time: DateTime<Utc>,
}

pub async fn find_browser_session(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> Result<Option<BrowserSession>> {
    type Row = (Uuid, Uuid, Vec<String>, Option<String>, DateTime<Utc>);
    let row: Option<Row> = browser_sessions::table
        .inner_join(sessions::table.inner_join(users::table))
        .filter(browser_sessions::token_hash.eq(token_hash))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .filter(users::status.eq("active"))
        .select((
            sessions::id,
            sessions::user_id,
            sessions::amr,
            sessions::pending_second_factor,
            sessions::auth_time,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(
        |(session_id, user_id, amr, pending_second_factor, auth_time)| BrowserSession {
            session_id,
            user_id,
            amr,
            pending_second_factor,
            auth_time,
        },
    ))
}

pub async fn insert_browser_session(
    conn: &mut AsyncPgConnection,
    token_hash: Vec<u8>,
    session_id: Uuid,
) -> Result<()> {
    diesel::insert_into(browser_sessions::table)
        .values((
            browser_sessions::token_hash.eq(token_hash),
            browser_sessions::session_id.eq(session_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_browser_session(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> Result<()> {
    diesel::delete(browser_sessions::table.filter(browser_sessions::token_hash.eq(token_hash)))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_interactions)]
pub struct InteractionRow {
    pub id_hash: Vec<u8>,
    pub kind: String,
    pub request: serde_json::Value,
    pub session_id: Option<Uuid>,
}

pub async fn insert_interaction(
    conn: &mut AsyncPgConnection,
    id_hash: Vec<u8>,
    browser_hash: Vec<u8>,
    kind: &str,
    request: serde_json::Value,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    // Expired interactions go as new ones come (the expiry index keeps this cheap).
    diesel::delete(oauth_interactions::table.filter(oauth_interactions::expires_at.lt(Utc::now())))
        .execute(conn)
        .await?;
    diesel::insert_into(oauth_interactions::table)
        .values((
            oauth_interactions::id_hash.eq(id_hash),
            oauth_interactions::browser_hash.eq(browser_hash),
            oauth_interactions::kind.eq(kind),
            oauth_interactions::request.eq(request),
            oauth_interactions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A live interaction of this browser.
pub async fn find_interaction(
    conn: &mut AsyncPgConnection,
    id_hash: &[u8],
    browser_hash: &[u8],
) -> Result<Option<InteractionRow>> {
    Ok(oauth_interactions::table
        .filter(oauth_interactions::id_hash.eq(id_hash))
        .filter(oauth_interactions::browser_hash.eq(browser_hash))
        .filter(oauth_interactions::expires_at.gt(Utc::now()))
        .select(InteractionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The newest live interaction of this browser (a magic link opened in the browser that asked
/// for it continues the interaction it was asked from).
pub async fn newest_interaction(
    conn: &mut AsyncPgConnection,
    browser_hash: &[u8],
) -> Result<Option<InteractionRow>> {
    Ok(oauth_interactions::table
        .filter(oauth_interactions::browser_hash.eq(browser_hash))
        .filter(oauth_interactions::expires_at.gt(Utc::now()))
        .order(oauth_interactions::created_at.desc())
        .select(InteractionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Gives an interaction a new id (its old one stops working).
pub async fn rekey_interaction(
    conn: &mut AsyncPgConnection,
    old_hash: &[u8],
    new_hash: Vec<u8>,
) -> Result<()> {
    diesel::update(oauth_interactions::table.filter(oauth_interactions::id_hash.eq(old_hash)))
        .set(oauth_interactions::id_hash.eq(new_hash))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the session signed in during the interaction.
pub async fn set_interaction_session(
    conn: &mut AsyncPgConnection,
    id_hash: &[u8],
    session_id: Uuid,
) -> Result<()> {
    diesel::update(oauth_interactions::table.filter(oauth_interactions::id_hash.eq(id_hash)))
        .set(oauth_interactions::session_id.eq(Some(session_id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends an interaction; `false` when it was already gone (a second submit of the same form).
pub async fn delete_interaction(conn: &mut AsyncPgConnection, id_hash: &[u8]) -> Result<bool> {
    Ok(
        diesel::delete(oauth_interactions::table.filter(oauth_interactions::id_hash.eq(id_hash)))
            .execute(conn)
            .await?
            > 0,
    )
}
