//! SQL for API keys (`api_keys`). No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{api_keys, users},
    error::Result,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub previous_key_hash: Option<Vec<u8>>,
    pub previous_key_expires_at: Option<DateTime<Utc>>,
    pub user_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub creator_user_id: Uuid,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which keys a listing shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    #[default]
    Any,
    Active,
    Expired,
    Revoked,
}

/// Filters of a key listing.
#[derive(Debug, Default)]
pub struct ApiKeyFilter {
    pub user_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub status: StatusFilter,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: ApiKeyRow) -> Result<ApiKeyRow> {
    Ok(diesel::insert_into(api_keys::table)
        .values(row)
        .returning(ApiKeyRow::as_returning())
        .get_result(conn)
        .await?)
}

/// The key, locked until the end of the transaction (against a concurrent rotation or revocation).
pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The key whose current value, or whose replaced value still in its overlap, has this digest.
/// Whether it is revoked or expired is for the caller to judge.
pub async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(
            api_keys::key_hash.eq(hash).or(api_keys::previous_key_hash
                .eq(hash)
                .and(api_keys::previous_key_expires_at.gt(now))),
        )
        .select(ApiKeyRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page, newest first, strictly after the `after` cursor `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ApiKeyFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>> {
    let now = Utc::now();
    let mut query = api_keys::table.select(ApiKeyRow::as_select()).into_boxed();
    if let Some(user) = filter.user_id {
        query = query.filter(api_keys::user_id.eq(user));
    }
    if let Some(org) = filter.organization_id {
        query = query.filter(api_keys::organization_id.eq(org));
    }
    query = match filter.status {
        StatusFilter::Any => query,
        StatusFilter::Revoked => query.filter(api_keys::revoked_at.is_not_null()),
        StatusFilter::Expired => query
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::expires_at.le(now)),
        StatusFilter::Active => query.filter(api_keys::revoked_at.is_null()).filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(now)),
        ),
    };
    if let Some((at, id)) = after {
        query = query.filter(
            api_keys::created_at
                .lt(at)
                .or(api_keys::created_at.eq(at).and(api_keys::id.lt(id))),
        );
    }
    Ok(query
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .limit(limit)
        .load(conn)
        .await?)
}

/// Replaces the key's value; the replaced one keeps working until `previous_until` (none: stops now).
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    prefix: &str,
    key_hash: &[u8],
    previous_hash: Option<&[u8]>,
    previous_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<ApiKeyRow> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::prefix.eq(prefix),
            api_keys::key_hash.eq(key_hash),
            api_keys::previous_key_hash.eq(previous_hash),
            api_keys::previous_key_expires_at.eq(previous_until),
            api_keys::rotated_at.eq(now),
        ))
        .returning(ApiKeyRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Revokes the key, and a replaced value still in its overlap, as of `revoked_at`.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    revoked_at: DateTime<Utc>,
) -> Result<ApiKeyRow> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::revoked_at.eq(revoked_at),
            api_keys::previous_key_hash.eq(None::<Vec<u8>>),
            api_keys::previous_key_expires_at.eq(None::<DateTime<Utc>>),
        ))
        .returning(ApiKeyRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Whether the user exists and is not suspended (a personal key acts only for an active user).
pub async fn user_is_active(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<bool> {
    let status: Option<String> = users::table
        .find(user_id)
        .select(users::status)
        .first(conn)
        .await
        .optional()?;
    Ok(status.as_deref() == Some("active"))
}

/// Whether the organization exists (raw SQL: the organizations domain owns that table).
pub async fn organization_exists(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1) AS exists")
            .bind::<diesel::sql_types::Uuid, _>(organization_id)
            .get_result(conn)
            .await?;
    Ok(found.exists)
}

/// Records a use, unless one was recorded within the last minute (by any instance).
pub async fn touch(conn: &mut AsyncPgConnection, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    diesel::update(
        api_keys::table.find(id).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(now - chrono::Duration::minutes(1))),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)
    .await?;
    Ok(())
}
