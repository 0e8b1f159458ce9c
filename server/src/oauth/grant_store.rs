//! SQL for the short-lived state of the OAuth grants: authorization codes, device
//! authorizations, consents, and the sessions (refresh-token families) grants create.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{authorization_codes, consents, device_authorizations, sessions},
    error::Result,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: Vec<u8>,
    pub application_id: Uuid,
    pub user_id: Uuid,
    pub browser_session_id: Option<Uuid>,
    pub redirect_uri: String,
    pub scope: String,
    pub resource: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub grant_session_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
}

pub async fn insert_code(conn: &mut AsyncPgConnection, code: &CodeRow) -> Result<()> {
    diesel::insert_into(authorization_codes::table)
        .values(code.clone())
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a code of this application used and returns it, if it was unused. Exactly one of any
/// number of concurrent redemptions gets the row (the update takes the row lock; the others then
/// see `used_at`). Another application's code is left untouched.
pub async fn claim_code(
    conn: &mut AsyncPgConnection,
    code_hash: &[u8],
    application_id: Uuid,
) -> Result<Option<CodeRow>> {
    Ok(diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null())
            .filter(authorization_codes::application_id.eq(application_id)),
    )
    .set(authorization_codes::used_at.eq(Utc::now()))
    .returning(CodeRow::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

pub async fn find_code(conn: &mut AsyncPgConnection, code_hash: &[u8]) -> Result<Option<CodeRow>> {
    Ok(authorization_codes::table
        .find(code_hash)
        .select(CodeRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn set_code_grant_session(
    conn: &mut AsyncPgConnection,
    code_hash: &[u8],
    session_id: Uuid,
) -> Result<()> {
    diesel::update(authorization_codes::table.find(code_hash))
        .set(authorization_codes::grant_session_id.eq(session_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// The session behind a grant: its refresh tokens form one family (see identity's sessions).
pub struct NewGrantSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub application_id: Uuid,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub organization_id: Option<Uuid>,
}

pub async fn insert_grant_session(conn: &mut AsyncPgConnection, s: NewGrantSession) -> Result<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(s.id),
            sessions::user_id.eq(s.user_id),
            sessions::application_id.eq(s.application_id.to_string()),
            sessions::scope.eq(s.scope),
            sessions::resource.eq(s.resource),
            sessions::auth_time.eq(s.auth_time),
            sessions::amr.eq(s.amr),
            sessions::expires_at.eq(s.expires_at),
            sessions::organization_id.eq(s.organization_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// What a refresh needs to know about a grant session.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct GrantSessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub application_id: String,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub organization_id: Option<Uuid>,
}

pub async fn get_grant_session(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<GrantSessionRow>> {
    Ok(sessions::table
        .find(id)
        .select(GrantSessionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn revoke_session(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> Result<()> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Utc::now()),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_authorizations)]
pub struct DeviceRow {
    pub device_code_hash: Vec<u8>,
    pub user_code: String,
    pub application_id: Uuid,
    pub scope: String,
    pub resource: Option<String>,
    pub status: String,
    pub user_id: Option<Uuid>,
    pub auth_time: Option<DateTime<Utc>>,
    pub amr: Vec<String>,
    pub interval_secs: i32,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_device(conn: &mut AsyncPgConnection, row: &DeviceRow) -> Result<()> {
    // Expired rows keep their user code reserved until deleted; drop them first.
    diesel::delete(
        device_authorizations::table.filter(device_authorizations::expires_at.lt(Utc::now())),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(device_authorizations::table)
        .values(row.clone())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find_device_by_user_code(
    conn: &mut AsyncPgConnection,
    user_code: &str,
) -> Result<Option<DeviceRow>> {
    Ok(device_authorizations::table
        .filter(device_authorizations::user_code.eq(user_code))
        .select(DeviceRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Approves or denies a pending, unexpired device authorization; `None` if it is not pending.
pub async fn decide_device(
    conn: &mut AsyncPgConnection,
    user_code: &str,
    status: &str,
    user_id: Uuid,
    auth_time: DateTime<Utc>,
    amr: &[String],
) -> Result<Option<DeviceRow>> {
    Ok(diesel::update(
        device_authorizations::table
            .filter(device_authorizations::user_code.eq(user_code))
            .filter(device_authorizations::status.eq("pending"))
            .filter(device_authorizations::expires_at.gt(Utc::now())),
    )
    .set((
        device_authorizations::status.eq(status),
        device_authorizations::user_id.eq(user_id),
        device_authorizations::auth_time.eq(auth_time),
        device_authorizations::amr.eq(amr),
    ))
    .returning(DeviceRow::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Locks a device authorization for a poll.
pub async fn lock_device(
    conn: &mut AsyncPgConnection,
    device_code_hash: &[u8],
) -> Result<Option<DeviceRow>> {
    Ok(device_authorizations::table
        .find(device_code_hash)
        .select(DeviceRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn set_device_polled(
    conn: &mut AsyncPgConnection,
    device_code_hash: &[u8],
    interval_secs: i32,
) -> Result<()> {
    diesel::update(device_authorizations::table.find(device_code_hash))
        .set((
            device_authorizations::last_polled_at.eq(Utc::now()),
            device_authorizations::interval_secs.eq(interval_secs),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_device_status(
    conn: &mut AsyncPgConnection,
    device_code_hash: &[u8],
    status: &str,
) -> Result<()> {
    diesel::update(device_authorizations::table.find(device_code_hash))
        .set(device_authorizations::status.eq(status))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn consented_scopes(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    application_id: Uuid,
) -> Result<Vec<String>> {
    Ok(consents::table
        .find((user_id, application_id))
        .select(consents::scopes)
        .first(conn)
        .await
        .optional()?
        .unwrap_or_default())
}

/// Adds scopes to a user's consent for an application (never removes any).
pub async fn add_consent(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    application_id: Uuid,
    scopes: &[String],
) -> Result<()> {
    diesel::sql_query(
        "INSERT INTO consents (user_id, application_id, scopes) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, application_id) DO UPDATE
         SET scopes = ARRAY(SELECT DISTINCT unnest(consents.scopes || EXCLUDED.scopes)), updated_at = now()",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Uuid, _>(application_id)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(scopes)
    .execute(conn)
    .await?;
    Ok(())
}
