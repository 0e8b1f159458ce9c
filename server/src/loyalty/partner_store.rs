//! SQL of reward partners and their API keys. No protobuf types and no business rules here.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    db::schema::{loyalty_partner_api_keys as keys, loyalty_partners as partners},
    error::{Error, Result},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = partners)]
pub struct PartnerRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub contact_name: String,
    pub contact_email: String,
    pub contact_phone: String,
    pub status: String,
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = keys)]
pub struct PartnerKeyRow {
    pub id: Uuid,
    pub partner_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn name_taken(err: DieselError) -> Error {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            Error::already_exists("PARTNER_NAME_TAKEN", "another partner has this name")
        }
        other => other.into(),
    }
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &PartnerRow) -> Result<PartnerRow> {
    diesel::insert_into(partners::table)
        .values(row)
        .returning(PartnerRow::as_returning())
        .get_result(conn)
        .await
        .map_err(name_taken)
}

/// Writes every column of the row (the service merged the update mask into it).
pub async fn update(conn: &mut AsyncPgConnection, row: &PartnerRow) -> Result<PartnerRow> {
    diesel::update(partners::table.find(row.id))
        .set(row)
        .returning(PartnerRow::as_returning())
        .get_result(conn)
        .await
        .map_err(name_taken)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<PartnerRow>> {
    Ok(partners::table.find(id).select(PartnerRow::as_select()).first(conn).await.optional()?)
}

pub async fn get_for_update(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<PartnerRow>> {
    Ok(partners::table.find(id).select(PartnerRow::as_select()).for_update().first(conn).await.optional()?)
}

/// Partners by name, after the `(name, id)` cursor, optionally filtered.
pub async fn list(
    conn: &mut AsyncPgConnection,
    query: Option<&str>,
    status: Option<&str>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<PartnerRow>> {
    let mut q = partners::table.select(PartnerRow::as_select()).into_boxed();
    if let Some(text) = query {
        let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        q = q.filter(partners::name.ilike(format!("%{escaped}%")));
    }
    if let Some(status) = status {
        q = q.filter(partners::status.eq(status.to_string()));
    }
    if let Some((name, id)) = after {
        q = q.filter(partners::name.gt(name.clone()).or(partners::name.eq(name).and(partners::id.gt(id))));
    }
    Ok(q.order((partners::name.asc(), partners::id.asc())).limit(limit).load(conn).await?)
}

pub async fn insert_key(conn: &mut AsyncPgConnection, row: &PartnerKeyRow) -> Result<PartnerKeyRow> {
    Ok(diesel::insert_into(keys::table).values(row).returning(PartnerKeyRow::as_returning()).get_result(conn).await?)
}

/// A partner's keys, newest first, after the `(created_at, id)` cursor.
pub async fn list_keys(
    conn: &mut AsyncPgConnection,
    partner_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<PartnerKeyRow>> {
    let mut q = keys::table.filter(keys::partner_id.eq(partner_id)).select(PartnerKeyRow::as_select()).into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(keys::created_at.lt(at).or(keys::created_at.eq(at).and(keys::id.lt(id))));
    }
    Ok(q.order((keys::created_at.desc(), keys::id.desc())).limit(limit).load(conn).await?)
}

/// Revokes the key unless it already is (the first revocation time stays); returns the key as it
/// is now, `None` when the partner has no such key.
pub async fn revoke_key(
    conn: &mut AsyncPgConnection,
    partner_id: Uuid,
    key_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<PartnerKeyRow>> {
    let mine = keys::table.filter(keys::id.eq(key_id)).filter(keys::partner_id.eq(partner_id));
    let revoked = diesel::update(mine.filter(keys::revoked_at.is_null()))
        .set(keys::revoked_at.eq(now))
        .returning(PartnerKeyRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match revoked {
        Some(row) => Ok(Some(row)),
        None => Ok(mine.select(PartnerKeyRow::as_select()).first(conn).await.optional()?),
    }
}

/// The key with this digest and its partner's status.
pub async fn find_key_by_hash(conn: &mut AsyncPgConnection, hash: &[u8]) -> Result<Option<(PartnerKeyRow, String)>> {
    Ok(keys::table
        .inner_join(partners::table)
        .filter(keys::key_hash.eq(hash))
        .select((PartnerKeyRow::as_select(), partners::status))
        .first(conn)
        .await
        .optional()?)
}

/// Records a key's use, at most once a minute (the guard holds across instances).
pub async fn touch_key(conn: &mut AsyncPgConnection, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    diesel::update(keys::table.find(id))
        .filter(keys::last_used_at.is_null().or(keys::last_used_at.lt(now - chrono::Duration::minutes(1))))
        .set(keys::last_used_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}
