//! SQL for API resources. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::api_resources,
    error::{Error, Result},
    oauth::model::ApiResourceRow,
};

/// The columns an update may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = api_resources)]
pub struct ApiResourceChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<serde_json::Value>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The unique index on `indicator` is what keeps two concurrent creates from both succeeding.
fn conflict(err: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) = &err {
        return Error::already_exists(
            "RESOURCE_INDICATOR_TAKEN",
            "another API resource has this indicator",
        );
    }
    err.into()
}

pub async fn insert(conn: &mut AsyncPgConnection, row: ApiResourceRow) -> Result<ApiResourceRow> {
    diesel::insert_into(api_resources::table)
        .values(row)
        .returning(ApiResourceRow::as_returning())
        .get_result(conn)
        .await
        .map_err(conflict)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ApiResourceRow>> {
    Ok(api_resources::table
        .find(id)
        .select(ApiResourceRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The resource, locked until the end of the transaction.
pub async fn get_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<ApiResourceRow>> {
    Ok(api_resources::table
        .find(id)
        .select(ApiResourceRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The resources with these indicators, share-locked until the end of the transaction so that
/// they (and their scopes) cannot change or disappear while a reference to them is written.
/// Locked in id order, the order every writer of resources uses, so lockers cannot deadlock.
pub async fn lock_by_indicators(
    conn: &mut AsyncPgConnection,
    indicators: &[String],
) -> Result<Vec<ApiResourceRow>> {
    Ok(api_resources::table
        .filter(api_resources::indicator.eq_any(indicators))
        .order(api_resources::id)
        .select(ApiResourceRow::as_select())
        .for_share()
        .load(conn)
        .await?)
}

/// One page, newest first, strictly after the `after` cursor `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    query: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ApiResourceRow>> {
    let mut q = api_resources::table
        .select(ApiResourceRow::as_select())
        .into_boxed();
    if let Some(text) = query {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q = q.filter(
            api_resources::name
                .ilike(pattern.clone())
                .or(api_resources::indicator.ilike(pattern)),
        );
    }
    if let Some((at, id)) = after {
        q = q.filter(
            api_resources::created_at
                .lt(at)
                .or(api_resources::created_at
                    .eq(at)
                    .and(api_resources::id.lt(id))),
        );
    }
    Ok(
        q.order((api_resources::created_at.desc(), api_resources::id.desc()))
            .limit(limit)
            .load(conn)
            .await?,
    )
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: ApiResourceChanges,
) -> Result<Option<ApiResourceRow>> {
    Ok(diesel::update(api_resources::table.find(id))
        .set(changes)
        .returning(ApiResourceRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    Ok(diesel::delete(api_resources::table.find(id))
        .execute(conn)
        .await?
        == 1)
}
