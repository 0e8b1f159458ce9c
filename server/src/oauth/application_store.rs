//! SQL for applications and their client secrets. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{applications, client_secrets, sessions},
    error::Result,
    oauth::model::{ApplicationRow, ClientSecretRow},
};

/// The columns an update may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = applications)]
pub struct ApplicationChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub allowed_resources: Option<serde_json::Value>,
    pub allowed_origins: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<i32>,
    pub refresh_token_ttl_secs: Option<i32>,
    pub id_token_ttl_secs: Option<i32>,
    pub first_party: Option<bool>,
    pub require_pkce: Option<bool>,
    pub branding: Option<serde_json::Value>,
    pub id_token_signing_alg: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Filters of an application listing.
#[derive(Debug, Default)]
pub struct ApplicationFilter {
    /// Substring of the name or the client id, case-insensitive.
    pub query: Option<String>,
    /// `web`, `spa`, `native` or `m2m`.
    pub app_type: Option<String>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: ApplicationRow) -> Result<ApplicationRow> {
    Ok(diesel::insert_into(applications::table)
        .values(row)
        .returning(ApplicationRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ApplicationRow>> {
    Ok(applications::table
        .find(id)
        .select(ApplicationRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The application, locked until the end of the transaction.
pub async fn get_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<ApplicationRow>> {
    Ok(applications::table
        .find(id)
        .select(ApplicationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The applications with these ids, share-locked in id order until the end of the transaction
/// (their deletion waits for a role assignment naming them).
pub async fn lock_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<ApplicationRow>> {
    Ok(applications::table
        .filter(applications::id.eq_any(ids))
        .order(applications::id)
        .select(ApplicationRow::as_select())
        .for_share()
        .load(conn)
        .await?)
}

/// One page, newest first, strictly after the `after` cursor `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ApplicationFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ApplicationRow>> {
    let mut query = applications::table
        .select(ApplicationRow::as_select())
        .into_boxed();
    if let Some(q) = &filter.query {
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query = query.filter(
            applications::name
                .ilike(pattern.clone())
                .or(applications::client_id.ilike(pattern)),
        );
    }
    if let Some(kind) = &filter.app_type {
        query = query.filter(applications::app_type.eq(kind.clone()));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            applications::created_at
                .lt(at)
                .or(applications::created_at.eq(at).and(applications::id.lt(id))),
        );
    }
    Ok(query
        .order((applications::created_at.desc(), applications::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: ApplicationChanges,
) -> Result<Option<ApplicationRow>> {
    Ok(diesel::update(applications::table.find(id))
        .set(changes)
        .returning(ApplicationRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Deletes the application; its secrets, codes, device authorizations, consents and role
/// assignments go with it (foreign keys `ON DELETE CASCADE`). Returns the deleted row.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ApplicationRow>> {
    Ok(diesel::delete(applications::table.find(id))
        .returning(ApplicationRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Revokes the live sessions (refresh-token families) created through the application.
/// `sessions.application_id` is free text, so both spellings of the application are matched.
pub async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    app: &ApplicationRow,
    reason: &str,
) -> Result<usize> {
    Ok(diesel::update(sessions::table)
        .filter(sessions::application_id.eq_any([app.id.to_string(), app.client_id.clone()]))
        .filter(sessions::revoked_at.is_null())
        .set((
            sessions::revoked_at.eq(Utc::now()),
            sessions::revoked_reason.eq(reason),
        ))
        .execute(conn)
        .await?)
}

/// The applications whose `allowed_resources` name `indicator`, locked in id order.
pub async fn referencing_resource(
    conn: &mut AsyncPgConnection,
    indicator: &str,
) -> Result<Vec<ApplicationRow>> {
    Ok(applications::table
        .filter(
            applications::allowed_resources
                .contains(serde_json::json!([{ "resource": indicator }])),
        )
        .order(applications::id)
        .select(ApplicationRow::as_select())
        .for_update()
        .load(conn)
        .await?)
}

pub async fn insert_secret(conn: &mut AsyncPgConnection, secret: ClientSecretRow) -> Result<()> {
    diesel::insert_into(client_secrets::table)
        .values(secret)
        .execute(conn)
        .await?;
    Ok(())
}

/// The secrets of these applications that still work at `now`, newest first.
pub async fn live_secrets(
    conn: &mut AsyncPgConnection,
    application_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<ClientSecretRow>> {
    Ok(client_secrets::table
        .filter(client_secrets::application_id.eq_any(application_ids))
        .filter(
            client_secrets::expires_at
                .is_null()
                .or(client_secrets::expires_at.gt(now)),
        )
        .order((client_secrets::created_at.desc(), client_secrets::id.desc()))
        .select(ClientSecretRow::as_select())
        .load(conn)
        .await?)
}

pub async fn set_secret_expiry(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    diesel::update(client_secrets::table.find(id))
        .set(client_secrets::expires_at.eq(expires_at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes every secret of the application except `keep`.
pub async fn delete_secrets_except(
    conn: &mut AsyncPgConnection,
    application_id: Uuid,
    keep: &[Uuid],
) -> Result<usize> {
    Ok(diesel::delete(
        client_secrets::table
            .filter(client_secrets::application_id.eq(application_id))
            .filter(client_secrets::id.ne_all(keep)),
    )
    .execute(conn)
    .await?)
}
